"""The delivery-event consumer: SES events of the customers' accounts → ``delivery/{code}/{id}.json``.

Each message of the delivery-events queue is one EventBridge event exactly as EventBridge hands it to
an SQS target: ``{"source": "aws.ses", "detail-type": "Email Bounced", "account": <customer account>,
"detail": <the SES event record>}``. The record names the email's change, customer and revision in
the email tags the worker set (:data:`~runtime.contract.names.EMAIL_TAG_CHANGE_ID` …).

Refused as poison — dead-lettered with the reason, logged as a security event and counted in
``DeliveryEventsRefused``, nothing written — is anything that is not such an event: another source, an
event type the configuration sets do not publish (or a ``detail-type`` that does not match it), missing
or invalid tags, a customer whose account is not the event's (when the accounts are known), an event
without recipients or timestamp.

An event that passes is recorded only when the bucket shows its email was sent to the (customer,
change, revision) its tags name (:mod:`runtime.coordinator.delivery_check`): anything else is refused
for good (dead-lettered with the reason, a security log line, ``DeliveryEventsRefused``), except an event
of a targeted customer whose processor has not checkpointed the send yet, which is retried.

Every recipient of an accepted event becomes a :class:`~runtime.archive.delivery.RecipientEvent`;
:class:`DeliveryHandler` records them by compare-and-swap (the ordering rule is
:mod:`runtime.archive.delivery`'s: an older event never overwrites a newer status, a duplicate is a
no-op) and emits ``EmailsDelivered`` / ``EmailsBounced`` / ``EmailsComplained`` for the customer only
for what was actually recorded, so a redelivered event never counts twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from botocore.exceptions import ClientError

from runtime.archive import (
    ArchiveError,
    ArchiveInvalid,
    DeliveryStatus,
    DeliveryStore,
    RecipientEvent,
    RecipientStatus,
    RecordOutcome,
)
from runtime.contract import keys
from runtime.contract.metric_names import MetricName
from runtime.contract.names import COORDINATOR_METRICS_DIMENSION_VALUE
from runtime.coordinator.batching import BatchFailed, KeyedBatcher
from runtime.coordinator.delivery_check import NOT_YET, REFUSED, SentCheck
from runtime.notify import tags_from_event
from runtime.pipeline import Outcome, Result
from runtime.telemetry import MetricsFactory, log_context, logger
from runtime.worker import MAX_MESSAGE_BYTES

SES_SOURCE = "aws.ses"

DETAIL_TYPES: dict[str, str] = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Reject": "Email Rejected",
    "DeliveryDelay": "Email Delivery Delayed",
    "Subscription": "Email Subscribed",
    "Rendering Failure": "Email Rendering Failed",
}
"""The SES ``eventType`` of every event the configuration sets publish → EventBridge's ``detail-type``."""

_METRIC_OF_STATUS: dict[str, MetricName] = {
    "delivered": MetricName.EMAILS_DELIVERED,
    "bounced": MetricName.EMAILS_BOUNCED,
    "complained": MetricName.EMAILS_COMPLAINED,
}


class ForeignEvent(ValueError):
    """Not an SES event of this platform's emails: the message is poison (the text is the reason)."""


@dataclass(frozen=True)
class DeliveryEvent:
    """One accepted SES event: whose email it was and what it says per recipient."""

    event_type: str
    account: str
    change_id: str
    customer_code: str
    revision: int
    message_id: str
    recipients: list[RecipientEvent]

    def identity(self) -> str:
        """The same for every copy of this event (an SQS redelivery, EventBridge's at-least-once duplicate)."""
        parts = [self.event_type, self.account, self.change_id, self.customer_code, str(self.revision), self.message_id]
        parts += [f"{r.address}={r.status.status}@{r.status.event_time.isoformat()}" for r in self.recipients]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _tags_from_event(mail_tags: Any) -> tuple[str, str, int]:
    """The email's change, customer and revision, each valid as a key part; :class:`ForeignEvent` otherwise."""
    if not isinstance(mail_tags, dict):
        raise ForeignEvent("detail.mail.tags is missing: not an email of this platform")
    try:
        change_id, customer_code, revision = tags_from_event(mail_tags)
        return keys.validate_change_id(change_id), keys.validate_customer_code(customer_code), revision
    except keys.InvalidKeyError as exc:
        raise ForeignEvent(f"invalid email tag: {exc}") from None
    except ValueError as exc:
        raise ForeignEvent(str(exc)) from None


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ForeignEvent(f"{field} is missing (an ISO 8601 time)")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ForeignEvent(f"{field} is {value[:40]!r}, not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _address(value: Any, field: str) -> str:
    address = parseaddr(value)[1] if isinstance(value, str) else ""
    if "@" not in address:
        raise ForeignEvent(f"{field} holds {str(value)[:80]!r}, not an email address")
    return address.strip().lower()


_RECIPIENT_SECTIONS: dict[str, tuple[str, str, DeliveryStatus, str | None]] = {
    "Delivery": ("delivery", "recipients", "delivered", None),
    "Complaint": ("complaint", "complainedRecipients", "complained", "emailAddress"),
    "DeliveryDelay": ("deliveryDelay", "delayedRecipients", "delayed", "emailAddress"),
}
"""Event types whose section lists its recipients: event type -> (section, recipients field, status,
key of the address in each entry: None when the entries are addresses), as SES's event publishing
documents them."""


def _addresses(values: Any, field: str, *, key: str | None = None) -> list[str]:
    if not isinstance(values, list) or not values:
        raise ForeignEvent(f"{field} is missing or empty")
    found = []
    for index, value in enumerate(values):
        item = value.get(key) if key is not None and isinstance(value, dict) else value
        found.append(_address(item, f"{field}[{index}]{'.' + key if key else ''}"))
    return found


def _section(detail: dict[str, Any], name: str) -> dict[str, Any]:
    section = detail.get(name)
    if not isinstance(section, dict):
        raise ForeignEvent(f"detail.{name} is missing for a {detail.get('eventType')} event")
    return section


def _opted_out(subscription: dict[str, Any]) -> bool:
    """Whether a Subscription event's new preferences unsubscribe (from everything, or from a topic)."""
    new = subscription.get("newTopicPreferences")
    if not isinstance(new, dict):
        return False
    if new.get("unsubscribeAll") is True:
        return True
    topics = new.get("topicSubscriptionStatus")
    return isinstance(topics, list) and any(
        isinstance(t, dict) and str(t.get("subscriptionStatus", "")).lower() == "optout" for t in topics
    )


def _statuses(
    detail: dict[str, Any], mail: dict[str, Any]
) -> list[tuple[str, DeliveryStatus, datetime, dict[str, Any]]]:
    """``(address, status, event time, extra fields)`` per recipient of the record."""
    kind = detail["eventType"]

    def destination() -> list[str]:
        return _addresses(mail.get("destination"), "detail.mail.destination")

    def sent_at() -> datetime:
        return _time(mail.get("timestamp"), "detail.mail.timestamp")

    if kind == "Send":
        return [(a, "sent", sent_at(), {}) for a in destination()]
    if kind == "Reject":
        return [(a, "rejected", sent_at(), {}) for a in destination()]
    if kind == "Rendering Failure":
        return [(a, "rendering_failed", sent_at(), {}) for a in destination()]
    if kind in _RECIPIENT_SECTIONS:
        name, recipients_field, status, address_key = _RECIPIENT_SECTIONS[kind]
        section = _section(detail, name)
        at = _time(section.get("timestamp"), f"detail.{name}.timestamp")
        recipients = _addresses(section.get(recipients_field), f"detail.{name}.{recipients_field}", key=address_key)
        return [(a, status, at, {}) for a in recipients]
    if kind == "Bounce":
        section = _section(detail, "bounce")
        at = _time(section.get("timestamp"), "detail.bounce.timestamp")
        bounce_type = str(section.get("bounceType", "")).lower()
        if bounce_type not in ("permanent", "transient", "undetermined"):
            raise ForeignEvent(f"detail.bounce.bounceType is {section.get('bounceType')!r}")
        subtype = section.get("bounceSubType")
        extra = {"bounce_type": bounce_type, "bounce_subtype": subtype if isinstance(subtype, str) else None}
        recipients = _addresses(section.get("bouncedRecipients"), "detail.bounce.bouncedRecipients", key="emailAddress")
        return [(a, "bounced", at, extra) for a in recipients]
    # Subscription: preferences changed through SES's unsubscribe link; only an opt-out is a status
    section = _section(detail, "subscription")
    at = _time(section.get("timestamp"), "detail.subscription.timestamp")
    if not _opted_out(section):
        return []
    return [(a, "unsubscribed", at, {}) for a in destination()]


def parse_delivery_event(body: str, customer_accounts: Mapping[str, str] | None = None) -> DeliveryEvent:
    """The SES event of one delivery-queue message; raises :class:`ForeignEvent` with the reason.

    ``customer_accounts`` (customer code → AWS account id), when given, must name the event's account
    for the customer its tags name: a customer account can then only report on its own emails."""
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        raise ForeignEvent(f"message body exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise ForeignEvent(f"body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ForeignEvent("body is not an EventBridge event (a JSON object)")
    if event.get("source") != SES_SOURCE:
        raise ForeignEvent(f"source is {str(event.get('source'))[:60]!r}, expected {SES_SOURCE!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise ForeignEvent("detail is missing: not an SES event record")
    kind = detail.get("eventType")
    if kind not in DETAIL_TYPES:
        raise ForeignEvent(f"eventType {str(kind)[:40]!r} is not one the configuration sets publish")
    if event.get("detail-type") != DETAIL_TYPES[kind]:
        raise ForeignEvent(
            f"detail-type {str(event.get('detail-type'))[:40]!r} does not match eventType {kind!r} "
            f"(expected {DETAIL_TYPES[kind]!r})"
        )
    account = event.get("account")
    if not isinstance(account, str) or not (len(account) == 12 and account.isdigit()):
        raise ForeignEvent(f"account is {str(account)[:20]!r}, not an AWS account id")
    mail = detail.get("mail")
    if not isinstance(mail, dict):
        raise ForeignEvent("detail.mail is missing")
    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise ForeignEvent("detail.mail.messageId is missing")
    change_id, code, revision = _tags_from_event(mail.get("tags"))
    if customer_accounts is not None and customer_accounts.get(code) != account:
        raise ForeignEvent(f"the tags name customer {code!r}, whose account is not {account} (the event's)")
    recipients = [
        RecipientEvent(
            address,
            RecipientStatus(status=status, event_time=at, message_id=message_id, revision=revision, **extra),
        )
        for address, status, at, extra in _statuses(detail, mail)
    ]
    return DeliveryEvent(kind, account, change_id, code, revision, message_id, recipients)


REFUSALS_REMEMBERED = 10_000
"""Refused events (:meth:`DeliveryEvent.identity`) remembered so that ``DeliveryEventsRefused`` counts each once,
although SQS hands a refused message back up to ``maxReceiveCount`` times before dead-lettering it."""


DELIVERY_EVENTS_KEEPS = (
    "message kept: it returns to the queue until the redrive moves it to the delivery-events DLQ "
    "(after the queue's maxReceiveCount receives), to redrive once the cause is fixed"
)
"""What a delivery event's permanent error keeps: the consumer has no trigger, only the message (issue 22)."""


class DeliveryHandler:
    """A :data:`runtime.worker.MessageHandler` for the delivery-events queue.

    Events of one customer's change handled at once are recorded with one compare-and-swap write
    (:class:`~runtime.coordinator.batching.KeyedBatcher`, ``linger_seconds``). ``sent_check`` decides
    whether an event's email was sent; by default it reads the delivery store's bucket."""

    def __init__(
        self,
        store: DeliveryStore,
        metrics: MetricsFactory,
        *,
        linger_seconds: float = 0.0,
        customer_accounts: Mapping[str, str] | None = None,
        sent_check: SentCheck | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.customer_accounts = customer_accounts
        self.sent_check = sent_check or SentCheck.for_bucket(store.s3, store.bucket)
        self._refusals: OrderedDict[str, None] = OrderedDict()
        self._refusals_lock = threading.Lock()
        self.batcher: KeyedBatcher[tuple[str, str], RecipientEvent, RecordOutcome] = KeyedBatcher(
            lambda key, items: store.record(key[0], key[1], items), linger_seconds
        )

    def __call__(self, body: str, owner: str, cancelled: threading.Event | None = None) -> list[Result]:
        try:
            event = parse_delivery_event(body, self.customer_accounts)
        except ForeignEvent as exc:
            self._count_refusal(hashlib.sha256(body.encode(errors="replace")).hexdigest())
            return [Result(Outcome.POISON, f"delivery event refused: {exc}")]
        with log_context(change_id=event.change_id, customer_code=event.customer_code):
            recorded = self.record(event)
        if recorded.outcome is Outcome.PERMANENT_ERROR:
            recorded = replace(recorded, kept=DELIVERY_EVENTS_KEEPS)
        return [recorded]

    def record(self, event: DeliveryEvent) -> Result:
        change_id, revision = event.change_id, event.revision
        if not event.recipients:
            return Result(Outcome.ALREADY_RECORDED, f"{event.event_type}: no status to record", change_id=change_id)
        try:
            verdict = self.sent_check.check(event.customer_code, change_id, revision)
        except ArchiveInvalid as exc:
            return Result(Outcome.PERMANENT_ERROR, f"cannot tell whether it was sent: {exc}", change_id=change_id)
        except (ArchiveError, ClientError, OSError) as exc:
            return Result(Outcome.RETRY, f"cannot tell whether it was sent: {exc}", change_id=change_id)
        if verdict.decision == REFUSED:
            return self._refuse(event, verdict.reason)
        if verdict.decision == NOT_YET:
            reason = f"{event.event_type}: {verdict.reason}"
            return Result(Outcome.RETRY, reason, change_id=change_id, revision=revision)
        try:
            outcome = self.batcher.submit((event.customer_code, change_id), event.recipients)
        except ArchiveInvalid as exc:
            return Result(Outcome.PERMANENT_ERROR, str(exc), change_id=change_id, revision=revision)
        except (BatchFailed, ArchiveError, ClientError, OSError) as exc:
            return Result(Outcome.RETRY, f"delivery status not recorded: {exc}", change_id=change_id)
        mine = {id(r) for r in event.recipients}
        recorded = [r for r in outcome.recorded if id(r) in mine]
        counted = [_METRIC_OF_STATUS[r.status.status] for r in recorded if r.status.status in _METRIC_OF_STATUS]
        if counted:
            with self.metrics.batch(event.customer_code) as batch:
                for name in sorted(set(counted)):
                    batch.add(name, counted.count(name))
        if not recorded:
            return Result(
                Outcome.ALREADY_RECORDED,
                f"{event.event_type}: nothing newer than the recorded statuses",
                change_id=change_id,
                revision=revision,
            )
        logger.info(
            "delivery status recorded",
            extra={"event_type": event.event_type, "recorded": len(recorded), "ses_message_id": event.message_id},
        )
        return Result(
            Outcome.PROCESSED,
            f"{event.event_type}: {len(recorded)} of {len(event.recipients)} recipient status(es) recorded",
            change_id=change_id,
            revision=revision,
        )

    def _count_refusal(self, identity: str) -> None:
        """``DeliveryEventsRefused`` +1, unless this process counted the same event already."""
        with self._refusals_lock:
            first = identity not in self._refusals
            self._refusals[identity] = None
            self._refusals.move_to_end(identity)
            while len(self._refusals) > REFUSALS_REMEMBERED:
                self._refusals.popitem(last=False)
        if first:
            with self.metrics.batch(COORDINATOR_METRICS_DIMENSION_VALUE) as batch:
                batch.add(MetricName.DELIVERY_EVENTS_REFUSED)

    def _refuse(self, event: DeliveryEvent, reason: str) -> Result:
        """Dead-letter an event whose email the bucket does not show sent: log it as a security event
        naming customer, change and revision, and count it once however often SQS hands it back."""
        logger.error(
            "delivery event refused: its email was not sent to this customer, change and revision",
            extra={
                "security": True,
                "event_type": event.event_type,
                "customer": event.customer_code,
                "revision": event.revision,
                "account": event.account,
                "ses_message_id": event.message_id,
                "refusal": reason,
            },
        )
        self._count_refusal(event.identity())
        return Result(
            Outcome.POISON,
            f"delivery event refused ({event.event_type} of {event.customer_code}/{event.change_id} "
            f"revision {event.revision}): {reason}",
            change_id=event.change_id,
            revision=event.revision,
        )
