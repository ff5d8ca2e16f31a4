"""The ECS agent's task scale-in protection endpoint, emulated for the processes the local runner starts.

ECS injects ``ECS_AGENT_URI`` into every container of a task; the worker
(:mod:`runtime.worker.task_protection`) protects its task through ``PUT $ECS_AGENT_URI/task-protection/v1/state``
and the agent calls ``UpdateTaskProtection`` (``GetTaskProtection`` for a GET) with the *task role's*
credentials. Without the variable the worker's protection is a no-op, so locally nothing would show that
the task role may protect its own task. :class:`TaskAgent` is one loopback HTTP server with a path per
task (``/api/<task id>``, as each ECS task has its own URI); each call is decided as the ECS API call of
that task's role, by the same :class:`~devtools.enforcement.Enforcement` (policy engine, decision cache
and counts) that decides the services' requests on the emulator, on the task's ARN with the condition keys
the Service Authorization Reference lists for both actions (``aws:ResourceTag/${TagKey}`` of the tags the
service propagates to its tasks, ``ecs:cluster``).

Answers, as the agent documents them ("Amazon ECS task scale-in protection endpoint"): a success is
``{"protection": {"ExpirationDate", "ProtectionEnabled", "TaskArn"}}``; an error of the ECS API (a denial
is ``AccessDeniedException``) is ``{"requestID", "error": {"Arn", "Code", "Message"}}`` with HTTP 400 (the
documentation gives the body, not the status: the agent passes on the API error's, 400 for this one), which the worker
logs as a failed call and goes on processing.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from devtools.enforcement_requests import Check

if TYPE_CHECKING:
    from devtools.enforcement import Enforcement

STATE_PATH = "/task-protection/v1/state"
DEFAULT_EXPIRES_MINUTES = 120
MAX_EXPIRES_MINUTES = 2880


@dataclass
class Task:
    """One running task as the agent knows it: its ARN, cluster, tags and the task role session's key."""

    task_arn: str
    cluster_arn: str
    tags: dict[str, str]
    access_key: str
    protected: bool = False
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Call:
    """One call the agent answered (what a test or the report reads)."""

    task_arn: str
    action: str
    enabled: bool | None
    allowed: bool
    answer: dict[str, Any] = field(default_factory=dict)


class TaskAgent:
    """The agent endpoint of every task the runner starts; :meth:`register` gives a task its ``ECS_AGENT_URI``."""

    def __init__(self, enforcement: Enforcement) -> None:
        self.enforcement = enforcement
        self.tasks: dict[str, Task] = {}
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                agent._serve(self, None)

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                agent._serve(self, self.rfile.read(length) if length else b"")

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ecs-agent", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> TaskAgent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TaskAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register(self, *, region: str, account: str, cluster: str, tags: dict[str, str], access_key: str) -> str:
        """A new task of ``cluster`` (a name or an ARN) carrying ``tags``, whose role session signs with
        ``access_key``; returns its ``ECS_AGENT_URI``."""
        task_id = uuid.uuid4().hex
        cluster_arn = cluster if cluster.startswith("arn:") else f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"
        cluster_name = cluster_arn.rpartition("/")[2]
        task_arn = f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/{task_id}"
        task = Task(task_arn, cluster_arn, dict(tags), access_key)
        with self._lock:
            self.tasks[task_id] = task
        return f"{self.url}/api/{task_id}"

    def calls_of(self, task_arn_suffix: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.task_arn.endswith(task_arn_suffix)]

    # --- one call -----------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        status, answer = self._answer(handler.path, body)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, path: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        task_id, _, rest = path.removeprefix("/api/").partition("/")
        with self._lock:
            task = self.tasks.get(task_id)
        if task is None or "/" + rest != STATE_PATH:
            return 404, {"error": {"Code": "NotFound", "Message": f"no task-protection endpoint at {path}"}}
        enabled: bool | None = None
        expires = DEFAULT_EXPIRES_MINUTES
        if body is not None:
            try:
                request = json.loads(body or b"{}")
                enabled = request["ProtectionEnabled"]
                expires = int(request.get("ExpiresInMinutes", DEFAULT_EXPIRES_MINUTES))
            except (ValueError, KeyError, TypeError) as exc:
                message = f"invalid request body: ProtectionEnabled (boolean) is required ({exc})"
                return 400, {"error": {"Arn": task.task_arn, "Code": "InvalidParameterException", "Message": message}}
            if not isinstance(enabled, bool) or not 1 <= expires <= MAX_EXPIRES_MINUTES:
                message = f"ProtectionEnabled must be a boolean and ExpiresInMinutes 1 to {MAX_EXPIRES_MINUTES}"
                return 400, {"error": {"Arn": task.task_arn, "Code": "InvalidParameterException", "Message": message}}
        action = "ecs:GetTaskProtection" if body is None else "ecs:UpdateTaskProtection"
        denial = self._decide(task, action)
        if denial is not None:
            answer: dict[str, Any] = {
                "requestID": str(uuid.uuid4()),  # the ECS API call's, as the agent passes it on
                "error": {"Arn": task.task_arn, "Code": "AccessDeniedException", "Message": denial},
            }
            self._record(Call(task.task_arn, action, enabled, False, answer))
            return 400, answer
        if enabled is not None:
            task.protected = enabled
            task.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=expires) if enabled else None
        answer = {
            "protection": {
                "ExpirationDate": task.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if task.expires_at else None,
                "ProtectionEnabled": task.protected,
                "TaskArn": task.task_arn,
            }
        }
        self._record(Call(task.task_arn, action, enabled, True, answer))
        return 200, answer

    def _decide(self, task: Task, action: str) -> str | None:
        """``None`` when the task role may; else the denial's message (fail closed on an unknown key)."""
        from devtools.enforcement import Denial, caller_of
        from devtools.iam_engine import PolicyEngineError

        account = task.task_arn.split(":")[4]
        caller = caller_of(task.access_key)
        if caller is None:
            return f"the task's access key {task.access_key} is no role session the emulator's STS issued"
        tags = tuple((f"aws:ResourceTag/{key}", value) for key, value in sorted(task.tags.items()))
        context = (*tags, ("ecs:cluster", task.cluster_arn))
        try:
            decision = self.enforcement.decide(caller, Check(action, task.task_arn, account, context=context))
        except PolicyEngineError as error:  # fail closed, saying why
            return self.enforcement.record_denial(Denial(caller.arn, action, task.task_arn, str(error))).message
        if decision.allowed:
            return None
        return self.enforcement.record_denial(Denial(caller.arn, action, task.task_arn, decision.explain())).message

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
