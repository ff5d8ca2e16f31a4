"""The worker on ECS: the liveness record the container health check reads, and scale-in protection
through the ECS agent's endpoint (a stdlib HTTP server in the test plays the agent)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runtime.contract.thresholds import LIVENESS_MARGIN_SECONDS, TASK_PROTECTION_EXPIRES_MINUTES
from runtime.pipeline import Outcome, Result
from runtime.worker import ScaleInProtection, TaskProtectionClient, Worker, check_liveness, task_integration
from runtime.worker.task_protection import STATE_PATH


class FakeSqs:
    """A queue in memory: ``put`` messages, ``block`` makes receive_message hang until ``unblock``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.lock = threading.Lock()
        self.open = threading.Event()
        self.open.set()
        self.receives = 0

    def put(self, body: str = "{}") -> None:
        with self.lock:
            n = len(self.messages) + len(self.deleted)
            self.messages.append({"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body})

    def block(self) -> None:
        self.open.clear()

    def unblock(self) -> None:
        self.open.set()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.open.wait()
        with self.lock:
            self.receives += 1
            taken, self.messages = (
                self.messages[: kwargs["MaxNumberOfMessages"]],
                self.messages[kwargs["MaxNumberOfMessages"] :],
            )
        return {"Messages": taken}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)

    def change_message_visibility(self, **kwargs: Any) -> None:
        pass

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {}


class GatedHandler:
    """Each message's work runs until ``finish`` is set."""

    def __init__(self) -> None:
        self.finish = threading.Event()
        self.started = threading.Event()

    def __call__(self, body: str, owner: str, cancelled: threading.Event) -> list[Result]:
        self.started.set()
        self.finish.wait(10)
        return [Result(Outcome.PROCESSED, "done")]


def start(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def stop(worker: Worker, thread: threading.Thread) -> None:
    worker.request_stop()
    thread.join(10)
    assert not thread.is_alive()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---- liveness ------------------------------------------------------------------------------------


def test_the_liveness_record_is_fresh_while_the_loop_runs_and_stale_once_it_blocks(tmp_path: Path) -> None:
    path = tmp_path / "liveness.json"
    sqs = FakeSqs()
    worker = Worker(
        sqs, "https://q", GatedHandler(), receive_wait_seconds=0, liveness_path=path, liveness_margin_seconds=1.0
    )
    assert worker.liveness_stale_after == 1.0  # receive_wait_seconds + margin
    thread = start(worker)
    try:
        wait_for(path.exists, 5, "the first liveness record")
        first = json.loads(path.read_text())["at"]
        time.sleep(1.0)  # empty polls (0.2 s apart) keep refreshing it
        assert json.loads(path.read_text())["at"] > first
        assert check_liveness(path).healthy

        sqs.block()  # the receive call hangs: the loop no longer iterates, the process is still up
        time.sleep(2.0)
        stale = check_liveness(path)
        assert not stale.healthy and "stuck" in stale.reason, stale.reason

        sqs.unblock()
        wait_for(lambda: check_liveness(path).healthy, 5, "the record to be fresh again")
    finally:
        sqs.unblock()
        stop(worker, thread)


def test_without_a_liveness_path_nothing_is_written(tmp_path: Path) -> None:
    sqs = FakeSqs()
    worker = Worker(sqs, "https://q", GatedHandler(), receive_wait_seconds=0)
    thread = start(worker)
    wait_for(lambda: sqs.receives >= 2, 5, "two receives")
    stop(worker, thread)
    assert worker.liveness_path is None


def test_the_service_worker_writes_the_record_the_health_check_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_AGENT_URI", "http://169.254.170.2/api/task")
    for scale_in_protection in (True, False):
        options = task_integration(scale_in_protection=scale_in_protection)
        assert options["liveness_path"] == Path("/tmp/ttp-worker-liveness.json")
        assert (options["protection"].client is not None) is scale_in_protection  # the coordinator: none
    assert (
        Worker(FakeSqs(), "q", GatedHandler(), receive_wait_seconds=20).liveness_stale_after
        == 20 + LIVENESS_MARGIN_SECONDS
    )


# ---- scale-in protection -------------------------------------------------------------------------


class FakeAgent:
    """The ECS agent's task-protection endpoint: records every PUT body; ``fail`` answers 500."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.fail = False
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                agent.requests.append((self.path, self.headers["Content-Type"]))
                agent.calls.append(body)
                status = 500 if agent.fail else 200
                answer = (
                    {"error": {"Code": "ServerException"}}
                    if agent.fail
                    else {"protection": {"ProtectionEnabled": body["ProtectionEnabled"]}}
                )
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/api/task-id"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self) -> list[bool]:
        return [c["ProtectionEnabled"] for c in self.calls]


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def protected_worker(sqs: FakeSqs, handler: GatedHandler, protection: ScaleInProtection) -> Worker:
    return Worker(sqs, "https://q", handler, receive_wait_seconds=0, protection=protection)


def test_protects_when_busy_renews_while_busy_and_releases_once_idle(
    agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECS_AGENT_URI", agent.uri)
    client = TaskProtectionClient.from_environment()
    assert client is not None
    protection = ScaleInProtection(client, expires_in_minutes=5, idle_seconds=2.0, renew_after_seconds=0.5)
    sqs, handler = FakeSqs(), GatedHandler()
    worker = protected_worker(sqs, handler, protection)
    thread = start(worker)
    try:
        time.sleep(0.5)
        assert agent.calls == []  # idle from the start: nothing to protect
        sqs.put()
        assert handler.started.wait(5)
        assert agent.calls[0] == {"ProtectionEnabled": True, "ExpiresInMinutes": 5}  # before the work started
        assert agent.requests[0] == ("/api/task-id" + STATE_PATH, "application/json")
        wait_for(lambda: len(agent.calls) >= 3, 5, "renewals while the message is in flight")
        assert agent.states() == [True] * len(agent.calls)
        handler.finish.set()
        wait_for(lambda: sqs.deleted == ["r0"], 5, "the message to be settled")
        busy_calls = len(agent.calls)
        time.sleep(0.4)  # well within the 2 s quiet spell: still protected, no flapping
        assert agent.states()[busy_calls:] == [] or agent.states()[busy_calls:] == [True]
        wait_for(lambda: agent.states()[-1] is False, 10, "the release after the quiet spell")
        assert agent.calls[-1] == {"ProtectionEnabled": False}
    finally:
        handler.finish.set()
        stop(worker, thread)
    assert agent.states().count(False) == 1  # released once; stopping an unprotected worker calls nothing


def test_a_short_gap_between_messages_does_not_flap(agent: FakeAgent) -> None:
    protection = ScaleInProtection(TaskProtectionClient(agent.uri), idle_seconds=30)
    sqs, handler = FakeSqs(), GatedHandler()
    handler.finish.set()  # each message ends at once
    worker = protected_worker(sqs, handler, protection)
    thread = start(worker)
    try:
        for _ in range(3):
            sqs.put()
            time.sleep(0.5)
        wait_for(lambda: len(sqs.deleted) == 3, 5, "three messages settled")
        assert agent.calls == [{"ProtectionEnabled": True, "ExpiresInMinutes": TASK_PROTECTION_EXPIRES_MINUTES}]
    finally:
        stop(worker, thread)
    assert agent.states() == [True, False]  # the stop releases it


def test_agent_failures_are_logged_and_never_stop_processing(agent: FakeAgent) -> None:
    agent.fail = True
    protection = ScaleInProtection(TaskProtectionClient(agent.uri), failure_backoff_seconds=60)
    sqs, handler = FakeSqs(), GatedHandler()
    handler.finish.set()
    worker = protected_worker(sqs, handler, protection)
    thread = start(worker)
    try:
        sqs.put()
        sqs.put()
        wait_for(lambda: len(sqs.deleted) == 2, 5, "both messages settled despite the agent")
    finally:
        stop(worker, thread)
    assert agent.states() == [True]  # tried once, then backed off (no call per loop iteration)
    assert not protection.protected


def test_an_unreachable_agent_does_not_stop_processing() -> None:
    protection = ScaleInProtection(TaskProtectionClient("http://127.0.0.1:9/api", timeout=0.5))
    sqs, handler = FakeSqs(), GatedHandler()
    handler.finish.set()
    worker = protected_worker(sqs, handler, protection)
    thread = start(worker)
    try:
        sqs.put()
        wait_for(lambda: sqs.deleted == ["r0"], 5, "the message settled")
    finally:
        stop(worker, thread)


def test_without_ecs_agent_uri_protection_is_a_no_op(monkeypatch: pytest.MonkeyPatch, agent: FakeAgent) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    assert TaskProtectionClient.from_environment() is None
    assert TaskProtectionClient.from_environment({"ECS_AGENT_URI": "  "}) is None
    protection = task_integration(scale_in_protection=True)["protection"]
    sqs, handler = FakeSqs(), GatedHandler()
    handler.finish.set()
    worker = protected_worker(sqs, handler, protection)
    thread = start(worker)
    try:
        sqs.put()
        wait_for(lambda: sqs.deleted == ["r0"], 5, "the message settled")
    finally:
        stop(worker, thread)
    assert agent.calls == [] and not protection.protected


@pytest.mark.parametrize("minutes", [0, 2881])
def test_an_expiry_outside_the_agents_range_is_refused(minutes: int) -> None:
    with pytest.raises(ValueError, match="expires_in_minutes"):
        ScaleInProtection(None, expires_in_minutes=minutes)


def test_the_expiry_backstop_is_within_the_agents_range_and_renewed_at_half_of_it() -> None:
    protection = ScaleInProtection(TaskProtectionClient("http://agent"))
    assert 1 <= protection.expires_in_minutes <= 2880
    assert protection.renew_after_seconds == TASK_PROTECTION_EXPIRES_MINUTES * 60 / 2


def test_a_busy_loop_refreshes_the_liveness_record_at_most_once_a_refresh_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: writing the record on every iteration cost ~5 % of the worker's CPU under load (a file
    written and renamed per receive); once per refresh period keeps it far inside its staleness limit."""
    from runtime.worker import loop

    writes: list[float] = []
    real = loop.write_liveness
    monkeypatch.setattr(loop, "write_liveness", lambda *a, **k: (writes.append(time.monotonic()), real(*a, **k)))
    sqs = FakeSqs()
    for _ in range(60):
        sqs.put()
    worker = Worker(
        sqs,
        "https://q",
        lambda body, owner, cancelled: [Result(Outcome.PROCESSED, "done")],
        max_concurrency=1,
        receive_wait_seconds=0,
        liveness_path=tmp_path / "liveness.json",
    )
    assert worker.liveness_refresh_seconds <= worker.liveness_stale_after / 4
    started = time.monotonic()
    thread = start(worker)
    try:
        wait_for(lambda: len(sqs.deleted) == 60, 10, "the messages handled")
    finally:
        stop(worker, thread)
    elapsed = time.monotonic() - started
    assert sqs.receives >= 60
    assert 1 <= len(writes) <= 1 + elapsed / worker.liveness_refresh_seconds, (len(writes), elapsed)
    assert check_liveness(tmp_path / "liveness.json").healthy


def test_the_receives_run_on_one_long_lived_thread_not_a_thread_each(tmp_path: Path) -> None:
    """Issue 21: a thread started per receive (so that a stop need not wait for the long poll) cost ~3 %
    of the worker's CPU per trigger; one receiving thread serves every receive of the loop."""
    receivers: list[threading.Thread] = []

    class RecordingSqs(FakeSqs):
        def receive_message(self, **kwargs: Any) -> dict[str, Any]:
            receivers.append(threading.current_thread())
            return super().receive_message(**kwargs)

    sqs = RecordingSqs()
    for _ in range(20):
        sqs.put()
    worker = Worker(
        sqs, "https://q", lambda body, owner, cancelled: [Result(Outcome.PROCESSED, "done")], max_concurrency=1
    )
    thread = start(worker)
    try:
        wait_for(lambda: len(sqs.deleted) == 20, 10, "the messages handled")
    finally:
        stop(worker, thread)
    assert len(receivers) >= 20
    assert len({id(t) for t in receivers}) == 1 and receivers[0] is not thread
    wait_for(lambda: not receivers[0].is_alive(), 5, "the receiving thread to end with the worker")
