"""Issue 22: neither of the change coordinator's consumers has a trigger, so no line they log (or result
they return) may say "trigger kept"; each says what happens to the message: kept for the redrive, then
its own queue's DLQ. The customer processor's line is the one that keeps a trigger."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from runtime.archive.delivery_store import DeliveryStore
from runtime.contract import keys
from runtime.coordinator.delivery import DeliveryHandler
from runtime.pipeline import Outcome, Result
from runtime.telemetry import logger
from runtime.telemetry.metrics import MetricsFactory
from runtime.worker import Fate
from tests.runtime.coordinator.conftest import make_handler, result, s3_event, ses_event, write_processing
from tests.support.aws_platform import Platform


def error_line(res: Result) -> dict[str, Any]:
    """The one line the worker logs for ``res`` when it dead-letters it."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        res.log(Fate.DEAD_LETTER)
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]
    return line


def delivery_consumer(platform: Platform) -> DeliveryHandler:
    return DeliveryHandler(
        DeliveryStore(platform.s3, platform.bucket, sleep=lambda _s: None),
        MetricsFactory("CustomMetrics", platform.metrics_stream),
    )


@pytest.mark.parametrize("broken", ["archive", "delivery object"])
def test_a_delivery_events_permanent_error_says_the_message_is_kept_not_a_trigger(
    platform: Platform, change_id: str, broken: str
) -> None:
    platform.submit(change_id, customers=["hts"])
    write_processing(platform, "hts", change_id, result(1))
    key = keys.archive_key(change_id) if broken == "archive" else keys.delivery_key("hts", change_id)
    platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=b'{"not": "valid"}')
    event = ses_event("Delivery", change_id, ["a@x.example"])
    [res] = delivery_consumer(platform)(json.dumps(event), "test-owner", None)
    assert res.outcome is Outcome.PERMANENT_ERROR, res
    assert "trigger" not in res.kept
    line = error_line(res)
    assert line["level"] == "ERROR"
    assert "trigger" not in line["message"]
    assert "message kept" in line["message"] and "delivery-events DLQ" in line["message"]
    assert "maxReceiveCount" in line["message"]


def test_the_fold_and_the_meeting_say_the_coordinators_dlq(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.processing_key("hts", change_id), Body=b'{"results": 3}')
    [res] = make_handler(platform)(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None)
    assert res.outcome is Outcome.PERMANENT_ERROR
    message = error_line(res)["message"]
    assert "trigger" not in message and "coordinator's DLQ" in message


def test_the_customer_processor_still_keeps_its_trigger() -> None:
    assert "trigger kept" in error_line(Result(Outcome.PERMANENT_ERROR, "archive missing"))["message"]
