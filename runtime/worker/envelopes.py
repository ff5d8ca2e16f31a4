"""Queue message envelopes, reduced to :class:`ObjectCreated` records (steps 0 of docs/design.md §2).

S3 event notifications (and the ``s3:TestEvent`` S3 sends when a notification is configured) and
EventBridge "Object Created" events. Anything else is an :class:`UnparseableMessage` (poison).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.contract.errors import describe_validation_error
from runtime.worker.errors import UnparseableMessage

__all__ = [
    "MAX_MESSAGE_BYTES",
    "EventBridgeObjectCreated",
    "ObjectCreated",
    "S3EventNotification",
    "S3EventRecord",
    "S3TestEvent",
    "UnparseableMessage",
    "parse_message_body",
]


class ObjectCreated(BaseModel):
    """One object-created notification, whichever envelope carried it."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    key_is_url_encoded: bool
    event_name: str
    etag: str | None = None
    sequencer: str | None = None
    event_time: datetime | None = None
    """When S3 created the object (the record's ``eventTime``, the EventBridge event's ``time``): with
    ``etag``, what the processor would otherwise HEAD the trigger for."""


class _S3Object(BaseModel):
    key: str
    e_tag: str | None = Field(None, alias="eTag")
    sequencer: str | None = None
    size: int | None = None


class _S3Bucket(BaseModel):
    name: str


class _S3Entity(BaseModel):
    bucket: _S3Bucket
    object: _S3Object


class S3EventRecord(BaseModel):
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    event_time: str | None = Field(None, alias="eventTime")
    s3: _S3Entity


class S3EventNotification(BaseModel):
    records: list[S3EventRecord] = Field(alias="Records", min_length=1)


class S3TestEvent(BaseModel):
    """S3 sends this once when a notification configuration is saved; it carries no object."""

    service: Literal["Amazon S3"] = Field(alias="Service")
    event: Literal["s3:TestEvent"] = Field(alias="Event")
    bucket: str | None = Field(None, alias="Bucket")


class _EventBridgeObject(BaseModel):
    key: str
    etag: str | None = None
    sequencer: str | None = None


class _EventBridgeDetail(BaseModel):
    bucket: _S3Bucket
    object: _EventBridgeObject


class EventBridgeObjectCreated(BaseModel):
    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    time: str | None = None
    detail: _EventBridgeDetail


MAX_MESSAGE_BYTES = 256 * 1024


def _event_time(value: str | None) -> datetime | None:
    """An event's ISO-8601 time, aware; None when absent or unreadable (the processor then HEADs the
    trigger, as it did before events were trusted for it): a time is never a reason to refuse a message."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_message_body(body: str) -> list[ObjectCreated]:
    """Return the object-created records of a queue message; ``[]`` for an ``s3:TestEvent``.

    S3 notification keys are URL-encoded; EventBridge keys are not. Both are recorded so the key
    parser decodes exactly once.
    """
    if len(body.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise UnparseableMessage("message body larger than 256 KiB")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, or a number too long for int()
        raise UnparseableMessage(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise UnparseableMessage("body is JSON but not an object")
    if payload.get("Event") == "s3:TestEvent":
        try:
            S3TestEvent.model_validate(payload)
        except ValidationError as exc:
            raise UnparseableMessage(f"malformed s3:TestEvent: {describe_validation_error(exc)}") from None
        return []
    if "Records" in payload:
        try:
            notification = S3EventNotification.model_validate(payload)
        except ValidationError as exc:
            raise UnparseableMessage(f"malformed S3 event notification: {describe_validation_error(exc)}") from None
        records = []
        for record in notification.records:
            if record.event_source != "aws:s3" or not record.event_name.startswith("ObjectCreated:"):
                raise UnparseableMessage(f"unexpected S3 event {record.event_source}/{record.event_name}")
            records.append(
                ObjectCreated(
                    bucket=record.s3.bucket.name,
                    key=record.s3.object.key,
                    key_is_url_encoded=True,
                    event_name=record.event_name,
                    etag=record.s3.object.e_tag,
                    sequencer=record.s3.object.sequencer,
                    event_time=_event_time(record.event_time),
                )
            )
        return records
    if payload.get("source") == "aws.s3":
        try:
            event = EventBridgeObjectCreated.model_validate(payload)
        except ValidationError as exc:
            raise UnparseableMessage(f"malformed EventBridge S3 event: {describe_validation_error(exc)}") from None
        return [
            ObjectCreated(
                bucket=event.detail.bucket.name,
                key=event.detail.object.key,
                key_is_url_encoded=False,
                event_name="Object Created",
                etag=event.detail.object.etag,
                sequencer=event.detail.object.sequencer,
                event_time=_event_time(event.time),
            )
        ]
    raise UnparseableMessage("body is neither an S3 event notification nor an EventBridge S3 event")
