"""Steps 0-1 of docs/design.md §2 for one queue message: parse the envelope, route each record to the
processor (or refuse it as poison). The records' results combine into the message's fate with
:func:`runtime.worker.overall_fate`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from runtime.archive import TriggerInfo
from runtime.contract import keys
from runtime.pipeline.result import Outcome, Result
from runtime.pipeline.state_machine import Processor
from runtime.telemetry import log_context
from runtime.worker import ObjectCreated, UnparseableMessage, parse_message_body

__all__ = ["ProcessorHandler", "decide", "trigger_of"]


def trigger_of(ref: keys.TriggerRef, record: ObjectCreated) -> TriggerInfo | None:
    """The trigger as its event describes it (ETag and creation time), or None when the event lacks
    either: the processor then HEADs the trigger. S3's event ETag is unquoted; the ``IfMatch`` of the
    trigger's DELETE takes it as ``HeadObject`` returns it, quoted."""
    if not record.etag or record.event_time is None:
        return None
    etag = record.etag if record.etag.startswith('"') else f'"{record.etag}"'
    return TriggerInfo(ref, etag, record.event_time)


def handle_records(body: str, handle: Callable[[ObjectCreated], Result]) -> list[Result]:
    """Step 0 for any handler of bucket events: an unparseable body is poison, S3's test event is
    acknowledged, and each object record gets ``handle``'s result (the processor's and the coordinator's)."""
    try:
        records = parse_message_body(body)
    except UnparseableMessage as exc:
        return [Result(Outcome.POISON, str(exc))]
    if not records:
        return [Result(Outcome.TEST_EVENT, "s3:TestEvent")]
    return [handle(record) for record in records]


def decide(
    body: str, bucket: str, processor: Processor, owner: str, cancelled: threading.Event | None = None
) -> list[Result]:
    """Steps 0-1 (parse, route) for one message body, then the processor for each record."""

    def route(record: ObjectCreated) -> Result:
        if record.bucket != bucket:
            return Result(Outcome.POISON, f"event from bucket {record.bucket!r}, expected {bucket!r}")
        try:
            ref = keys.parse_trigger_key(record.key, encoded=record.key_is_url_encoded)
        except keys.InvalidKeyError as exc:
            return Result(Outcome.POISON, f"unsafe or misrouted key: {exc}")
        if ref.customer_code != processor.customer_code:
            return Result(
                Outcome.POISON, f"key of customer {ref.customer_code!r} on the queue of {processor.customer_code!r}"
            )
        with log_context(change_id=ref.change_id):
            return processor.process(ref, owner, cancelled, trigger=trigger_of(ref, record))

    return handle_records(body, route)


class ProcessorHandler:
    """The customer processor as a :data:`runtime.worker.MessageHandler`: steps 0-1, then the state machine."""

    def __init__(self, bucket: str, processor: Processor) -> None:
        self.bucket = bucket
        self.processor = processor

    def __call__(self, body: str, owner: str, cancelled: threading.Event | None = None) -> list[Result]:
        return decide(body, self.bucket, self.processor, owner, cancelled)
