"""Reading SQS queues for diagnosis without disturbing them: depths, the DLQ behind a redrive policy,
and peeking at messages (received hidden for a moment, then made visible again at once).

Peek only dead-letter queues: receiving from a source queue counts towards its ``maxReceiveCount``
and could dead-letter live work.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.contract import keys
from runtime.contract.sqs_limits import MAX_BATCH_SIZE
from runtime.worker import UnparseableMessage, parse_message_body


def queue_name_from_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class QueueStats:
    url: str
    visible: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    dlq_url: str | None = None
    dlq_visible: int | None = None
    dlq_in_flight: int | None = None
    max_receive_count: int | None = None
    error: str | None = None

    @property
    def dlq_depth(self) -> int:
        return (self.dlq_visible or 0) + (self.dlq_in_flight or 0)

    @property
    def waiting(self) -> int:
        return (self.visible or 0) + (self.delayed or 0)


def _int_attr(attrs: dict[str, str], name: str) -> int | None:
    value = attrs.get(name)
    return int(value) if value is not None else None


def dlq_url_for(sqs: Any, queue_url: str, attributes: dict[str, str] | None = None) -> tuple[str | None, int | None]:
    """The DLQ of a queue from its redrive policy (the truth), as a URL, and its maxReceiveCount."""
    attrs = attributes
    if attrs is None:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    raw = attrs.get("RedrivePolicy")
    if not raw:
        return None, None
    policy = json.loads(raw)
    arn = str(policy.get("deadLetterTargetArn", ""))
    parts = arn.split(":")
    if len(parts) < 6:
        return None, None
    account, name = parts[4], parts[5]
    try:
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    except ClientError:
        url = f"{queue_url.rstrip('/').rsplit('/', 1)[0]}/{name}"
    count = policy.get("maxReceiveCount")
    return url, int(count) if count is not None else None


def queue_stats(sqs: Any, queue_url: str) -> QueueStats:
    stats = QueueStats(queue_url)
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"]).get("Attributes", {})
        stats.visible = _int_attr(attrs, "ApproximateNumberOfMessages")
        stats.in_flight = _int_attr(attrs, "ApproximateNumberOfMessagesNotVisible")
        stats.delayed = _int_attr(attrs, "ApproximateNumberOfMessagesDelayed")
        stats.dlq_url, stats.max_receive_count = dlq_url_for(sqs, queue_url, attrs)
        if stats.dlq_url:
            dlq = sqs.get_queue_attributes(
                QueueUrl=stats.dlq_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            ).get("Attributes", {})
            stats.dlq_visible = _int_attr(dlq, "ApproximateNumberOfMessages")
            stats.dlq_in_flight = _int_attr(dlq, "ApproximateNumberOfMessagesNotVisible")
    except ClientError as exc:
        stats.error = f"{aws.error_code(exc) or 'error'}: {exc}"
    return stats


@dataclass
class PeekedMessage:
    message_id: str
    sent_at: datetime | None
    receive_count: int | None
    triggers: list[str]
    body: str
    parse_error: str | None = None

    def mentions(self, key: str) -> bool:
        return key in self.triggers


def describe_body(body: str) -> tuple[list[str], str | None]:
    try:
        records = parse_message_body(body)
    except UnparseableMessage as exc:
        return [], str(exc)
    found = []
    for record in records:
        try:
            found.append(keys.parse_trigger_key(record.key, encoded=record.key_is_url_encoded).key)
        except keys.InvalidKeyError as exc:
            return found, f"unsafe or misrouted key: {exc}"
    return found, None


def _peeked(message: dict[str, Any], body_limit: int) -> PeekedMessage:
    attrs = message.get("Attributes", {})
    sent = attrs.get("SentTimestamp")
    body = message.get("Body", "")
    triggers, problem = describe_body(body)
    return PeekedMessage(
        message_id=message["MessageId"],
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(attrs["ApproximateReceiveCount"]) if "ApproximateReceiveCount" in attrs else None,
        triggers=triggers,
        body=body if len(body) <= body_limit else body[:body_limit] + "…",
        parse_error=problem,
    )


def peek_messages(
    sqs: Any,
    queue_url: str,
    *,
    limit: int = 100,
    hide_seconds: int = 20,
    body_limit: int = 2000,
    expected: int | None = None,
) -> list[PeekedMessage]:
    """Read up to ``limit`` messages of a queue (meant for DLQs) without consuming them.

    Each batch is received hidden for ``hide_seconds`` (so the next receive returns other messages)
    and every message is made visible again before returning, even on errors. Receiving increments
    ``ApproximateReceiveCount``; a DLQ has no redrive policy, so that changes nothing.
    """
    if expected is None:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        expected = int(attrs.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))
    target = min(limit, expected)
    seen: dict[str, PeekedMessage] = {}
    handles: list[str] = []
    empty_polls = 0
    try:
        while len(seen) < target and empty_polls < 2:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(MAX_BATCH_SIZE, target - len(seen))),
                VisibilityTimeout=hide_seconds,
                WaitTimeSeconds=empty_polls,  # long-poll only after an empty short poll
                AttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                empty_polls += 1
                continue
            for message in messages:
                handles.append(message["ReceiptHandle"])
                if message["MessageId"] not in seen:
                    seen[message["MessageId"]] = _peeked(message, body_limit)
    finally:
        release_messages(sqs, queue_url, handles)
    return sorted(seen.values(), key=lambda m: (m.sent_at or datetime.min.replace(tzinfo=UTC), m.message_id))


def release_messages(sqs: Any, queue_url: str, handles: list[str]) -> None:
    """Make received messages visible again (best effort: they reappear after their timeout anyway)."""
    for start in range(0, len(handles), MAX_BATCH_SIZE):
        chunk = handles[start : start + MAX_BATCH_SIZE]
        with contextlib.suppress(ClientError):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )
