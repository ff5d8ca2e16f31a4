"""The worker's own promises, in-process: heartbeat, bounded concurrency, message fate, drain."""

from __future__ import annotations

import json
import threading
import time

import pytest

from runtime.pipeline import Outcome, ProcessorHandler, Result
from runtime.worker import InFlight, Worker
from runtime.worker import loop as worker_module
from tests.support.aws_platform import Platform


class ScriptedProcessor:
    """Stands in for the processor: each process() call sleeps, then returns a fixed outcome."""

    customer_code = "hts"

    def __init__(self, outcome: Outcome, seconds: float = 0.0) -> None:
        self.outcome = outcome
        self.seconds = seconds
        self.active = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def process(self, ref, owner, cancelled=None, *, trigger=None):  # type: ignore[no-untyped-def]
        with self._lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not (cancelled and cancelled.is_set()):
            time.sleep(0.01)
        with self._lock:
            self.active -= 1
        interrupted = cancelled is not None and cancelled.is_set()
        return Result(Outcome.RETRY if interrupted else self.outcome, "scripted", ref.change_id)


def event(key: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "ttp-metadata-local"}, "object": {"key": key}},
    }
    return json.dumps({"Records": [record]})


def worker(platform: Platform, processor: ScriptedProcessor, **kwargs: object) -> Worker:
    options = {
        "max_concurrency": 2,
        "visibility_timeout": 2,
        "receive_wait_seconds": 0,
        "retry_base_seconds": 0,
        "drain_seconds": 5.0,
        "heartbeat_seconds": 0.3,
    }
    options.update(kwargs)
    return Worker(
        platform.sqs, platform.box.customers["hts"].queue_url, ProcessorHandler(platform.bucket, processor), **options
    )


def depth(platform: Platform) -> tuple[int, int]:
    attrs = platform.sqs.get_queue_attributes(
        QueueUrl=platform.box.customers["hts"].queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_heartbeat_keeps_slow_work_invisible_and_concurrency_is_bounded(platform: Platform) -> None:
    url = platform.box.customers["hts"].queue_url
    for n in range(5):
        platform.sqs.send_message(QueueUrl=url, MessageBody=event(f"customers/hts/CHG-{n}.json"))
    processor = ScriptedProcessor(Outcome.PROCESSED, seconds=3.0)  # longer than the 2 s visibility timeout
    w = worker(platform, processor, receive_wait_seconds=1)  # a long poll, as in production
    thread = threading.Thread(target=w.run, kwargs={"until": lambda: processor.calls >= 5 and processor.active == 0})
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert processor.calls == 5  # no message was handed out twice despite taking longer than its visibility
    assert processor.peak == 2  # max_concurrency
    assert depth(platform) == (0, 0)


def test_retry_returns_the_message_and_dead_letter_burns_receives(platform: Platform) -> None:
    url = platform.box.customers["hts"].queue_url
    platform.sqs.send_message(QueueUrl=url, MessageBody="garbage")  # poison: DLQ after maxReceiveCount (3)
    w = worker(platform, ScriptedProcessor(Outcome.PROCESSED))
    dlq = platform.box.customers["hts"].dlq_url

    def in_dlq() -> bool:
        attrs = platform.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"

    thread = threading.Thread(target=w.run, kwargs={"until": in_dlq})
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and in_dlq()


def test_stop_drains_then_interrupts_and_returns_in_flight_work(platform: Platform) -> None:
    url = platform.box.customers["hts"].queue_url
    platform.sqs.send_message(QueueUrl=url, MessageBody=event("customers/hts/CHG-1.json"))
    processor = ScriptedProcessor(Outcome.PROCESSED, seconds=30.0)
    w = worker(platform, processor, drain_seconds=0.5, visibility_timeout=30)
    thread = threading.Thread(target=w.run)
    thread.start()
    deadline = time.monotonic() + 10
    while processor.active == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_at = time.monotonic()
    w.request_stop()
    thread.join(20)
    assert not thread.is_alive()
    assert time.monotonic() - stop_at < 5  # drain budget 0.5 s, then interrupted; not the 30 s of work
    assert w.cancelled.is_set()
    assert depth(platform) == (1, 0)  # returned to the queue at once, visible again


@pytest.mark.parametrize("outcome", [Outcome.PROCESSED, Outcome.TRIGGER_GONE, Outcome.LEASE_HELD])
def test_acked_outcomes_delete_the_message(platform: Platform, outcome: Outcome) -> None:
    url = platform.box.customers["hts"].queue_url
    platform.sqs.send_message(QueueUrl=url, MessageBody=event("customers/hts/CHG-1.json"))
    processor = ScriptedProcessor(outcome)
    w = worker(platform, processor)
    thread = threading.Thread(target=w.run, kwargs={"until": lambda: w.handled >= 1})
    thread.start()
    thread.join(20)
    assert depth(platform) == (0, 0)


class BlockingProcessor:
    """A send that cannot be interrupted (a slow or throttled ``SendEmail``): each process() call
    blocks ``seconds`` whatever ``cancelled`` says, then returns its change's scripted outcome
    (RETRY when the drain interrupted it, as the real processor does)."""

    customer_code = "hts"

    def __init__(self, seconds: float, outcomes: dict[str, Outcome]) -> None:
        self.seconds = seconds
        self.outcomes = outcomes
        self.started: set[str] = set()
        self.running = 0
        self.release = threading.Event()  # ends the blocked send early
        self._lock = threading.Lock()

    def process(self, ref, owner, cancelled=None, *, trigger=None):  # type: ignore[no-untyped-def]
        with self._lock:
            self.started.add(ref.change_id)
            self.running += 1
        self.release.wait(self.seconds)
        with self._lock:
            self.running -= 1
        return Result(self.outcomes[ref.change_id], "scripted", ref.change_id)


@pytest.mark.slow
def test_drain_never_hands_out_a_message_whose_work_still_runs(platform: Platform) -> None:
    """Issue 11 item 6: after the drain time the worker used to set visibility 0 on every in-flight
    message while its thread still sent; another task received it and sent again. The work outlasts
    the drain (0.5 s) and the interruption (the old 10 s grace): its message must stay invisible until
    the work ends, then be settled by its own outcome (deleted when done, visible at once when not)."""
    url = platform.box.customers["hts"].queue_url
    for change_id in ("CHG-DONE", "CHG-LEFT"):
        platform.sqs.send_message(QueueUrl=url, MessageBody=event(f"customers/hts/{change_id}.json"))
    processor = BlockingProcessor(12.0, {"CHG-DONE": Outcome.PROCESSED, "CHG-LEFT": Outcome.RETRY})
    w = worker(platform, processor, drain_seconds=0.5, visibility_timeout=30)
    thread = threading.Thread(target=w.run)
    thread.start()
    deadline = time.monotonic() + 10
    while len(processor.started) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processor.started) == 2
    w.request_stop()
    handed_out: list[str] = []  # another task polling the queue while the work still runs
    while processor.running and thread.is_alive():
        got = platform.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        handed_out += [m["Body"] for m in got.get("Messages", []) if processor.running]
        time.sleep(0.1)
    thread.join(20)
    assert not thread.is_alive()
    assert handed_out == [], "a message was made visible while its work still ran"
    assert w.cancelled.is_set()
    left = platform.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert [m["Body"] for m in left.get("Messages", [])] == [event("customers/hts/CHG-LEFT.json")]
    assert depth(platform) == (1, 0)  # the unfinished one is back at once, the finished one deleted


def test_after_the_drain_time_running_work_is_kept_invisible_only_briefly(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ECS stop timeout kills a task whose work outlasts the drain: its messages must then come back
    about as soon as returned ones would, not a whole visibility timeout (30 s here) later. The kill is
    simulated by stopping the heartbeat while the work still runs."""
    monkeypatch.setattr(worker_module, "OVERTIME_VISIBILITY_SECONDS", 2)
    url = platform.box.customers["hts"].queue_url
    platform.sqs.send_message(QueueUrl=url, MessageBody=event("customers/hts/CHG-1.json"))
    processor = BlockingProcessor(60.0, {"CHG-1": Outcome.RETRY})
    w = worker(platform, processor, drain_seconds=0.2, visibility_timeout=30, heartbeat_seconds=5.0)
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not processor.running and time.monotonic() < deadline:
            time.sleep(0.05)
        w.request_stop()
        assert w.cancelled.wait(5)
        time.sleep(0.5)  # the first short extension is made at once
        w.in_flight.stop_heartbeat()  # the task is killed: nobody extends any more
        killed_at = time.monotonic()
        back_after = None
        while time.monotonic() - killed_at < 20:
            got = platform.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)
            if got.get("Messages"):
                back_after = time.monotonic() - killed_at
                break
            time.sleep(0.1)
        assert back_after is not None and back_after < 2 + 1.5, back_after
    finally:
        processor.release.set()
        thread.join(20)
    assert not thread.is_alive()


class GatedSqs:
    """Records visibility calls as they land; a heartbeat batch call waits for ``release``."""

    def __init__(self) -> None:
        self.landed: list[tuple[str, str, int]] = []
        self.extending = threading.Event()
        self.release = threading.Event()

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
        self.extending.set()
        self.release.wait(5)
        self.landed += [("extend", str(e["ReceiptHandle"]), int(str(e["VisibilityTimeout"]))) for e in Entries]
        return {}

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.landed.append(("return", ReceiptHandle, VisibilityTimeout))


def test_a_message_is_settled_only_after_a_heartbeat_already_on_its_way_has_landed() -> None:
    """A heartbeat extension sent just before a message was returned used to land after it, hiding
    the returned message again for a whole visibility timeout. Removing it from the registry waits for
    that extension, and the worker settles a message only after removing it."""
    sqs = GatedSqs()
    in_flight = InFlight(sqs, "https://q", visibility_timeout=30, heartbeat_seconds=60)
    in_flight.add("m1", "r1")
    heartbeat = threading.Thread(target=in_flight.extend_visibility)
    heartbeat.start()
    assert sqs.extending.wait(5)
    settle = threading.Thread(target=lambda: (in_flight.remove("m1"), in_flight.return_to_queue("r1", 0)))
    settle.start()
    time.sleep(0.3)
    sqs.release.set()
    heartbeat.join(5)
    settle.join(5)
    assert sqs.landed == [("extend", "r1", 30), ("return", "r1", 0)]
