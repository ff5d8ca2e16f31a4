"""Dead-letter queues: look without consuming, and move messages back to their source queue.

SQS's ``StartMessageMoveTask`` is not available everywhere (the local emulator lacks it) and moves
everything; ``redrive`` here is bounded and reports each message: receive from the DLQ, send the same
body to the customer's queue, and only after that send succeeded delete it from the DLQ. A crash
between send and delete leaves a copy in both queues, which the processor's idempotency absorbs
(the second delivery finds the trigger gone or the result recorded); nothing is ever lost.

A **poison** message — one whose body names no valid trigger, what ``dlq list`` flags in its problem
column — is not moved unless asked (``force``): the worker dead-letters it again on its first receive,
so moving it only hides it from ``dlq list`` for a while. It stays in the DLQ (visible again at the end
of the pass), reported as ``refused_poison`` with the reason; the other messages move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.contract.sqs_limits import MAX_BATCH_SIZE
from runtime.ops.errors import OpsError, OpsUsageError
from runtime.ops.queues import PeekedMessage, describe_body, dlq_url_for, peek_messages, release_messages


@dataclass
class DlqListing:
    customer: str
    queue_url: str
    dlq_url: str
    approximate_visible: int
    approximate_in_flight: int
    messages: list[PeekedMessage]

    @property
    def needs_attention(self) -> bool:
        return bool(self.approximate_visible or self.messages)


@dataclass
class MovedMessage:
    message_id: str
    new_message_id: str | None
    triggers: list[str]
    outcome: str  # moved | send_failed | moved_but_not_deleted | refused_poison
    detail: str = ""


@dataclass
class RedriveReport:
    customer: str
    dlq_url: str
    queue_url: str
    requested: int
    messages: list[MovedMessage] = field(default_factory=list)
    remaining: int | None = None

    @property
    def moved(self) -> int:
        return sum(1 for m in self.messages if m.outcome in ("moved", "moved_but_not_deleted"))

    @property
    def failed(self) -> int:
        return sum(1 for m in self.messages if m.outcome in ("send_failed", "moved_but_not_deleted"))

    @property
    def refused(self) -> list[MovedMessage]:
        """Poison messages left in the DLQ because ``force`` was not given."""
        return [m for m in self.messages if m.outcome == "refused_poison"]

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed or self.refused)


def resolve_dlq(sqs: Any, customer: str, queue_url: str) -> str:
    try:
        url, _ = dlq_url_for(sqs, queue_url)
    except ClientError as exc:
        raise OpsError(
            f"cannot read the redrive policy of {queue_url} ({aws.error_code(exc)}): check TTP_CUSTOMER_QUEUES "
            "and sqs:GetQueueAttributes permission"
        ) from None
    if url is None:
        raise OpsError(f"queue of {customer} ({queue_url}) has no redrive policy, so it has no DLQ")
    return url


def _depth(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    ).get("Attributes", {})
    return int(attrs.get("ApproximateNumberOfMessages", 0)), int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


def list_dlq(sqs: Any, customer: str, queue_url: str, *, limit: int = 100, triggers: bool = True) -> DlqListing:
    """``triggers``: the queue carries trigger events (a customer's), so a body naming none is poison;
    False for the coordinator's and the delivery events' queues, whose messages are other events."""
    dlq = resolve_dlq(sqs, customer, queue_url)
    visible, in_flight = _depth(sqs, dlq)
    messages = peek_messages(sqs, dlq, limit=limit, expected=visible)
    if not triggers:
        for message in messages:
            message.triggers, message.parse_error = [], None
    return DlqListing(customer, queue_url, dlq, visible, in_flight, messages)


def _copyable_attributes(message: dict[str, Any]) -> dict[str, Any]:
    copied = {}
    for name, value in message.get("MessageAttributes", {}).items():
        entry = {"DataType": value["DataType"]}
        for part in ("StringValue", "BinaryValue"):
            if part in value:
                entry[part] = value[part]
        copied[name] = entry
    return copied


def redrive_dlq(
    sqs: Any,
    customer: str,
    queue_url: str,
    *,
    limit: int = 100,
    hide_seconds: int = 60,
    force: bool = False,
    on_message: Callable[[MovedMessage], None] | None = None,
    triggers: bool = True,
) -> RedriveReport:
    """Move up to ``limit`` messages from the customer's DLQ back to its queue (see module doc); poison
    ones only with ``force``; ``triggers`` as in :func:`list_dlq` (False: nothing is poison)."""
    if limit < 1:
        raise OpsUsageError("--max must be at least 1")
    dlq = resolve_dlq(sqs, customer, queue_url)
    report = RedriveReport(customer, dlq, queue_url, limit)
    visible, _ = _depth(sqs, dlq)
    target = min(limit, visible)
    seen: set[str] = set()
    refused: list[str] = []  # kept hidden until the end, so the next receives return the others
    try:
        _redrive(sqs, dlq, queue_url, report, target, hide_seconds, force or not triggers, on_message, seen, refused)
    finally:
        release_messages(sqs, dlq, refused)
    report.remaining = _depth(sqs, dlq)[0]
    return report


def _redrive(
    sqs: Any,
    dlq: str,
    queue_url: str,
    report: RedriveReport,
    target: int,
    hide_seconds: int,
    force: bool,
    on_message: Callable[[MovedMessage], None] | None,
    seen: set[str],
    refused: list[str],
) -> None:
    empty_polls = 0
    while len(report.messages) < target and empty_polls < 2:
        response = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=max(1, min(MAX_BATCH_SIZE, target - len(report.messages))),
            VisibilityTimeout=hide_seconds,
            WaitTimeSeconds=empty_polls,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        if not batch:
            empty_polls += 1
            continue
        unsent: list[str] = []
        progress = False
        for message in batch:
            if message["MessageId"] in seen:  # a message we failed to send and released: not again
                unsent.append(message["ReceiptHandle"])
                continue
            seen.add(message["MessageId"])
            triggers, problem = describe_body(message["Body"])
            if problem is not None and not force:
                item = MovedMessage(message["MessageId"], None, triggers, "refused_poison", problem)
                refused.append(message["ReceiptHandle"])
                progress = True
            else:
                item = _move_one(sqs, dlq, queue_url, message, triggers)
                if item.outcome == "send_failed":
                    unsent.append(message["ReceiptHandle"])
                else:
                    progress = True
            report.messages.append(item)
            if on_message:
                on_message(item)
        release_messages(sqs, dlq, unsent)
        if not progress:
            break  # nothing new movable in this batch


def _move_one(sqs: Any, dlq: str, queue_url: str, message: dict[str, Any], triggers: list[str]) -> MovedMessage:
    params: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
    attributes = _copyable_attributes(message)
    if attributes:
        params["MessageAttributes"] = attributes
    try:
        sent = sqs.send_message(**params)
    except ClientError as exc:
        return MovedMessage(message["MessageId"], None, triggers, "send_failed", f"{aws.error_code(exc)}: {exc}")
    try:
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    except ClientError as exc:
        return MovedMessage(
            message["MessageId"],
            sent["MessageId"],
            triggers,
            "moved_but_not_deleted",
            f"sent, but the DLQ copy could not be deleted ({aws.error_code(exc)}); a duplicate is harmless",
        )
    return MovedMessage(message["MessageId"], sent["MessageId"], triggers, "moved")
