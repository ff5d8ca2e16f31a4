"""The worker's own promises, in-process: heartbeat, bounded concurrency, message fate, drain."""

from __future__ import annotations

import json
import threading
import time

import pytest

from runtime.pipeline.routing import ProcessorHandler
from runtime.pipeline.state_machine import Outcome, Result
from runtime.pipeline.worker import Worker
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

    def process(self, ref, owner, cancelled=None):  # type: ignore[no-untyped-def]
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
