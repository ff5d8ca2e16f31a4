"""The Python side of the policy engine: one long-lived node process, decisions over a JSON-lines pipe.

The evaluator is not ours: ``@cloud-copilot/iam-simulate`` (pinned in package.json, installed by ``make
setup``) decides every request the way AWS documents it (explicit deny wins; across accounts the identity
policy and the resource policy must both allow; trust and key policies must name the caller's account).
Starting node costs ~0.13 s and a decision ~1 ms, so a caller starts one engine and keeps it; ``decide``
may be called from many threads at once (each answer carries its request's id).

The engine derives nothing from the principal. ``decide`` fills in what AWS would put in the request
context from the principal itself (``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalTag/*``,
``aws:SecureTransport``); whatever depends on the call (``aws:SourceArn``, ``kms:ViaService``,
``s3:prefix``, ``s3:if-match``, ``sts:ExternalId``, ...) is the caller's to pass in ``context``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from devtools.processes import terminate_with

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@cloud-copilot/iam-simulate"
SHIM = Path(__file__).with_name("engine.mjs")
START_TIMEOUT_SECONDS = 30.0
DECIDE_TIMEOUT_SECONDS = 30.0

Result = Literal["Allowed", "ExplicitlyDenied", "ImplicitlyDenied"]
ALLOWS = frozenset({"Allowed", "AllowedForAccount"})
"""A resource policy's own verdict when one of its statements grants the request (``...ForAccount``: the
statement names the caller's account, so the caller's identity policy must allow it too)."""
DENIES = frozenset({"ExplicitlyDenied", "DeniedForAccount"})
"""A resource policy's own verdict when one of its statements denies the request: a deny naming the
caller's account (``arn:aws:iam::<account>:root``) applies to every principal of that account."""
ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/[^/]+$")
SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com$")
PRINCIPAL_ACCOUNT = re.compile(r"^arn:[^:]+:(?:iam|sts)::(?P<account>\d{12}):")


class PolicyEngineError(RuntimeError):
    """The engine could not decide: it is not installed, it died, or the request was malformed."""


class PolicyEngineUnavailable(PolicyEngineError):
    """node or the pinned package is missing: ``make setup`` installs both from package.json."""


def pinned_version(root: Path = ROOT) -> str:
    """The version package.json pins (the one ``npm ci`` installs from the lockfile)."""
    manifest = json.loads((root / "package.json").read_text())
    return str(manifest["devDependencies"][PACKAGE])


@dataclass(frozen=True)
class Principal:
    """Who makes the request: an IAM role (or a session of it), its tags, and its identity policies.

    ``identity_policies`` maps a policy's name to its document: the role's inline policies and the documents
    of its managed policies alike (IAM evaluates them the same way)."""

    arn: str
    """A role's ARN, a role session's (``arn:aws:sts::...:assumed-role/...``), or an AWS service principal
    (``s3.amazonaws.com``: S3 delivering an event notification), which has no identity policies."""
    identity_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return SERVICE_PRINCIPAL.match(self.arn) is not None

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: for a role session, the role's ARN (AWS documents it so)."""
        session = ASSUMED_ROLE.match(self.arn)
        if session:
            return f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
        return self.arn

    @property
    def account(self) -> str:
        found = PRINCIPAL_ACCOUNT.match(self.arn)
        if found is None:
            raise PolicyEngineError(f"principal {self.arn!r}: expected an IAM or STS ARN with a 12-digit account")
        return found["account"]

    def context(self) -> dict[str, str]:
        if self.is_service:
            if self.identity_policies or self.tags:
                raise PolicyEngineError(f"{self.arn} is a service principal: it has no identity policies nor tags")
            return {"aws:PrincipalIsAWSService": "true", "aws:PrincipalServiceName": self.arn}
        return {
            "aws:PrincipalArn": self.principal_arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalIsAWSService": "false",
            **{f"aws:PrincipalTag/{key}": value for key, value in self.tags.items()},
        }


@dataclass(frozen=True)
class Decision:
    """The engine's answer. ``identity`` and ``resource`` are each policy type's own verdict (``None`` when
    no such policy was given), so a test can ask what the bucket policy alone says."""

    result: Result
    identity: str | None
    resource: str | None
    same_account: bool | None
    grants: tuple[Mapping[str, Any], ...]
    denials: tuple[Mapping[str, Any], ...]
    ignored_context_keys: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"

    @property
    def explicitly_denied(self) -> bool:
        return self.result == "ExplicitlyDenied"

    def explain(self) -> str:
        """One line for an AccessDenied message: which statement denied it, or which policy failed to allow."""
        if self.allowed:
            return "allowed by " + "; ".join(_statement(grant) for grant in self.grants)
        reasons = []
        for denial in self.denials:
            if denial.get("denialType") == "Explicit":
                reasons.append(f"explicit deny in {_statement(denial)}")
            else:
                reasons.append(
                    f"no statement of the {_POLICY_TYPES.get(denial['policyType'], denial['policyType'])} allows it"
                )
        return ("explicitly denied: " if self.explicitly_denied else "implicitly denied: ") + "; ".join(reasons)


_POLICY_TYPES = {"identity": "identity policies", "resource": "resource policy", "scp": "SCPs", "rcp": "RCPs"}


def _statement(reason: Mapping[str, Any]) -> str:
    where = _POLICY_TYPES.get(reason["policyType"], reason["policyType"])
    name = reason.get("policyIdentifier")
    sid = reason.get("statementId")
    return f"{where}{f' {name!r}' if name else ''} statement {reason.get('statementIndex')}{f' ({sid})' if sid else ''}"


class PolicyEngine:
    """One node process running the pinned iam-simulate; ``decide`` is thread-safe.

    ``with PolicyEngine() as engine: engine.decide(...)``, or ``start()`` once and ``close()`` at the end."""

    def __init__(self, *, root: Path = ROOT, node: str | None = None) -> None:
        self._root = root
        self._node = node
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._stderr_reader: threading.Thread | None = None
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stderr: list[str] = []
        self.version: str | None = None
        self.allowed = 0
        self.denied = 0
        """How many requests this engine allowed and denied (what the demo reports)."""

    def __enter__(self) -> PolicyEngine:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _check_installed(self) -> tuple[str, str]:
        node = self._node or shutil.which("node")
        if node is None or not Path(node).is_file():
            raise PolicyEngineUnavailable(
                f"the policy engine needs Node.js 20+ ({node or 'node'} not found): install it, then run make setup"
            )
        manifest = self._root / "node_modules" / PACKAGE / "package.json"
        if not manifest.is_file():
            raise PolicyEngineUnavailable(
                f"{PACKAGE} is not installed in {self._root / 'node_modules'}: run make setup"
            )
        installed, pinned = json.loads(manifest.read_text())["version"], pinned_version(self._root)
        if installed != pinned:
            raise PolicyEngineUnavailable(
                f"{PACKAGE} {installed} is installed but package.json pins {pinned}: run make setup"
            )
        return node, installed

    def start(self) -> None:
        if self._process is not None:
            return
        node, version = self._check_installed()
        process = subprocess.Popen(
            [node, str(SHIM), str(self._root)],
            preexec_fn=terminate_with(os.getpid()),
            cwd=self._root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert process.stdout is not None and process.stderr is not None
        self._stderr_reader = threading.Thread(target=self._drain_stderr, args=(process,), daemon=True)
        self._stderr_reader.start()
        ready: Future[dict[str, Any]] = Future()
        self._pending[0] = ready
        self._process = process
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True, name="policy-engine")
        self._reader.start()
        try:
            ready.result(timeout=START_TIMEOUT_SECONDS)
        except Exception as error:
            self.close()
            raise PolicyEngineUnavailable(f"the policy engine did not start (run make setup): {error}") from None
        self.version = version

    def _drain_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._stderr.append(line)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(f"(stdout) {line}")  # not an answer: kept for the error message
                continue
            key = 0 if message.get("ready") else int(message["id"])
            with self._lock:
                future = self._pending.pop(key, None)
            if future is not None:
                future.set_result(message)
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=2)  # what node said before it died belongs in the error
        failure = PolicyEngineError(f"the policy engine exited: {self._stderr_tail()}")
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(failure)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        *,
        resource_account: str,
        resource_policy: Mapping[str, Any] | None = None,
        context: Mapping[str, str | list[str]] | None = None,
    ) -> Decision:
        """Decide one request. ``resource_policy`` is the bucket, queue or key policy of ``resource``, or for
        ``sts:AssumeRole`` the role's trust policy; ``context`` adds to (and may override) what ``decide``
        derives from the principal, e.g. ``{"sts:ExternalId": "..."}`` or ``{"aws:SecureTransport": "false"}``."""
        simulation: dict[str, Any] = {
            "request": {
                "principal": principal.arn,
                "action": action,
                "resource": {"resource": resource, "accountId": resource_account},
                "contextVariables": {"aws:SecureTransport": "true", **principal.context(), **(context or {})},
            },
            "identityPolicies": [{"name": name, "policy": doc} for name, doc in principal.identity_policies.items()],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if resource_policy is not None:
            simulation["resourcePolicy"] = resource_policy
        answer = self._send(simulation)
        if "error" in answer:
            raise PolicyEngineError(
                f"the policy engine refused {action} on {resource} by {principal.arn}: {answer['error']}"
                f"{_details(answer.get('details'))}"
            )
        with self._lock:
            if answer["result"] == "Allowed":
                self.allowed += 1
            else:
                self.denied += 1
        return Decision(
            result=answer["result"],
            identity=answer["identity"],
            resource=answer["resource"] if resource_policy is not None else None,
            same_account=answer["sameAccount"],
            grants=tuple(answer["grants"]),
            denials=tuple(answer["denials"]),
            ignored_context_keys=tuple(answer["ignoredContextKeys"]),
        )

    def _send(self, simulation: Mapping[str, Any]) -> dict[str, Any]:
        process = self._process
        if process is None:
            raise PolicyEngineError("the policy engine is not running: call start() (or use it as a context manager)")
        if process.poll() is not None:
            raise PolicyEngineError(f"the policy engine exited ({process.returncode}): {self._stderr_tail()}")
        future: Future[dict[str, Any]] = Future()
        request_id = next(self._ids)  # itertools.count is atomic under the GIL
        line = json.dumps({"id": request_id, "simulation": simulation}) + "\n"
        with self._lock:
            self._pending[request_id] = future
            assert process.stdin is not None
            try:
                process.stdin.write(line)
                process.stdin.flush()
            except (BrokenPipeError, ValueError) as error:
                self._pending.pop(request_id, None)
                raise PolicyEngineError(f"the policy engine is gone ({error}): {self._stderr_tail()}") from None
        try:
            return future.result(timeout=DECIDE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise PolicyEngineError(f"the policy engine did not answer in {DECIDE_TIMEOUT_SECONDS:.0f} s") from None

    def _stderr_tail(self) -> str:
        return "".join(self._stderr)[-2000:]


def _details(details: Any) -> str:
    if not details:
        return ""
    found = {key: value for key, value in details.items() if key != "message" and value}
    return f" {json.dumps(found)}" if found else ""
