"""SES's event publishing on the emulator (issues 13, 18): every email the emulator's SES v2 accepts gets the
events SES would publish through its configuration set's event destinations, as deployed, with no step
of anyone's.

moto's SES accepts ``SendEmail`` and records the message, but publishes no event. :func:`install` wraps
moto's handler (in the process that runs the emulator; :class:`devtools.emulator.LocalAws` installs it):
once moto has accepted an email, the events of each recipient's outcome are published to every enabled
event destination of the email's configuration set (``AWS::SES::ConfigurationSetEventDestination`` as the
deployed world keeps it: :attr:`devtools.local_deploy.deployer.AccountWorld.ses_event_destinations`) whose
``MatchingEventTypes`` name them: an EventBridge destination puts them on its bus through the emulator's
EventBridge routing (:mod:`devtools.local_deploy.event_routing`: in the sample, the customer account's
default bus, whose forwarding rule sends them with its role to the governance account's delivery-events
bus, whose rule sends them to the delivery-events queue, each step decided by the deployed policies); an
SNS destination publishes the event record to its topic. An email without a configuration set, or whose
set has no destination, publishes nothing, as in SES.

``{"version": "0", "id", "detail-type", "source": "aws.ses", "account", "time", "region", "resources",
"detail"}``, ``detail`` being the SES event record (``eventType``, ``mail`` and one of ``send``,
``delivery``, ``bounce``, ``complaint``). Shapes: "Monitoring SES events using Amazon EventBridge"
(https://docs.aws.amazon.com/ses/latest/dg/monitoring-eventbridge.html: detail types "Email Sent",
"Email Delivered", "Email Bounced", "Email Complaint Received", …), "Contents of event data that Amazon
SES publishes" and its examples (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html,
…-sns-examples.html: the ``mail``, ``bounce``, ``complaint`` and ``delivery`` objects; ``mail.tags``
maps each tag name to a list of values and holds SES's own ``ses:*`` tags besides the sender's).

The outcome of each recipient follows SES's mailbox simulator
(https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html):
``success@simulator.amazonses.com`` delivered; ``bounce@`` a hard bounce (Permanent / General);
``complaint@`` delivered, then a complaint; ``ooto@`` delivered (the out-of-office reply goes to the
sender, no event); ``suppressionlist@`` a hard bounce (Permanent / Suppressed). A ``+label`` after the
local part is ignored, as SES does. Every other address is delivered.

moto 5.2.5 keeps neither ``EmailTags`` nor ``ConfigurationSetName`` of an SES v2 ``SendEmail``
(``moto/sesv2/responses.py`` passes only source, destinations, subject and body on): the wrapper keeps
them per message id, next to moto's own record (a reset forgets both), and :func:`published_events` lists
what was published per account. An email recorded without them has its tags rebuilt from the email
itself (the Change / Revision / Customer rows of :func:`runtime.notify.rendering.render_email`'s HTML).
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.local_deploy import event_routing
from runtime.coordinator.delivery import DETAIL_TYPES, SES_SOURCE  # what the consumer accepts
from runtime.notify.email_tags import email_tags

SIMULATOR_DOMAIN = "simulator.amazonses.com"
SUCCESS = f"success@{SIMULATOR_DOMAIN}"
BOUNCE = f"bounce@{SIMULATOR_DOMAIN}"
COMPLAINT = f"complaint@{SIMULATOR_DOMAIN}"
OUT_OF_OFFICE = f"ooto@{SIMULATOR_DOMAIN}"
SUPPRESSION_LIST = f"suppressionlist@{SIMULATOR_DOMAIN}"


_EVENT_NAMESPACE = uuid.UUID("6f1c2d4e-8a37-4c55-9a0e-13d0e1ea5e13")
_REPORTING_MTA = "a8-70.smtp-out.amazonses.com"
_RECORD_ATTRIBUTE = "_ttp_send_parameters"
_PUBLISHED_ATTRIBUTE = "_ttp_published_events"
_LOCK = threading.Lock()
_installed = False
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendParameters:
    """What moto drops from an SES v2 ``SendEmail`` call, kept by :func:`install`."""

    tags: tuple[tuple[str, str], ...]
    configuration_set: str | None
    sent_at: datetime


@dataclass(frozen=True)
class RecordedEmail:
    """One email the emulator's SES accepted, with what :func:`install` kept of its call."""

    account: str
    region: str
    message_id: str
    source: str
    destinations: tuple[str, ...]
    subject: str
    body: str
    parameters: SendParameters | None = None


def event_kind(detail: dict[str, Any]) -> tuple[str, str]:
    """An event's ``eventType`` and, for a bounce, its ``bounceType/bounceSubType`` (else ``""``)."""
    kind = str(detail["eventType"])
    if kind != "Bounce":
        return kind, ""
    return kind, f"{detail['bounce']['bounceType']}/{detail['bounce']['bounceSubType']}"


@dataclass
class Published:
    """Events SES published (:func:`published_events`), each with the destination it went to."""

    events: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)  # per event: the bus or topic ARN

    def counts(self) -> dict[str, int]:
        """Events per ``eventType`` (a bounce with its sub-type: ``Bounce/Permanent/General``)."""
        totals: dict[str, int] = {}
        for event in self.events:
            kind, bounce = event_kind(event["detail"])
            kind = f"{kind}/{bounce}" if bounce else kind
            totals[kind] = totals.get(kind, 0) + 1
        return totals


def _core_backend(account: str, region: str) -> Any:
    from moto.ses.models import ses_backends

    return ses_backends[account][region]


def install() -> None:
    """Make moto's SES v2 ``SendEmail`` keep each message's ``EmailTags`` and ``ConfigurationSetName`` and
    publish its events once accepted (idempotent; affects this process's moto, in-process or behind its
    server). Publishing never fails the send: SES publishes after it has accepted the email."""
    global _installed
    with _LOCK:
        if _installed:
            return
        from moto.sesv2.responses import SESV2Response

        event_routing.install()
        original = SESV2Response.send_email

        @functools.wraps(original)
        def send_email(self: Any) -> str:
            answer: str = original(self)
            params = json.loads(self.body or "{}")
            record = SendParameters(
                tuple((str(t["Name"]), str(t["Value"])) for t in params.get("EmailTags") or []),
                params.get("ConfigurationSetName"),
                datetime.now(UTC),
            )
            message_id = json.loads(answer)["MessageId"]
            backend = _core_backend(self.current_account, self.region)
            with _LOCK:
                if not hasattr(backend, _RECORD_ATTRIBUTE):
                    setattr(backend, _RECORD_ATTRIBUTE, {})
                getattr(backend, _RECORD_ATTRIBUTE)[message_id] = record
            try:
                for email in recorded_emails(self.current_account, self.region, message_id=message_id):
                    publish(email)
            except Exception:
                log.exception("publishing the SES events of message %s failed", message_id)
            return answer

        SESV2Response.send_email = send_email  # type: ignore[method-assign]
        _installed = True


def recorded_emails(account: str, region: str = "us-east-1", *, message_id: str = "") -> list[RecordedEmail]:
    """The emails the emulator's SES accepted in one account, in sending order (only ``message_id``'s, if given)."""
    backend = _core_backend(account, region)
    kept: dict[str, SendParameters] = getattr(backend, _RECORD_ATTRIBUTE, {})
    emails = []
    messages = list(backend.sent_messages)
    if message_id:
        messages = [m for m in reversed(messages) if m.id == message_id][:1]
    for message in messages:
        destinations = getattr(message, "destinations", None)
        if not isinstance(destinations, dict):  # raw or templated messages: not what the worker sends
            continue
        addresses = tuple(
            a for kind in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destinations.get(kind, [])
        )
        emails.append(
            RecordedEmail(
                account,
                region,
                message.id,
                message.source,
                addresses,
                message.subject,
                message.body,
                kept.get(message.id),
            )
        )
    return emails


def simulated_outcome(address: str) -> str:
    """The mailbox simulator's outcome for ``address``: ``delivered``, ``bounced``, ``complained``,
    ``out_of_office`` or ``suppressed`` (every address outside the simulator is delivered)."""
    local, _, domain = address.strip().lower().rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return "delivered"
    return {
        "success": "delivered",
        "bounce": "bounced",
        "complaint": "complained",
        "ooto": "out_of_office",
        "suppressionlist": "suppressed",
    }.get(local.split("+", 1)[0], "delivered")


_ROW = re.compile(r'<tr><th align="left">([^<]*)</th><td>([^<]*)</td></tr>')


def rebuilt_tags(email: RecordedEmail) -> tuple[tuple[str, str], ...]:
    """The tags of an email whose call was not recorded, from the rows ``render_email`` writes; () when
    the body is not one of ours (the event then carries SES's own tags only)."""
    rows = {html.unescape(k): html.unescape(v) for k, v in _ROW.findall(email.body)}
    try:
        tags = email_tags(rows["Change"], rows["Customer"], int(rows["Revision"]))
    except (KeyError, ValueError):
        return ()
    return tuple((tag["Name"], tag["Value"]) for tag in tags)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events_for(email: RecordedEmail, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The EventBridge events SES would publish for one email, in the order SES emits them: Send, then
    Delivery / Bounce, then Complaint (each a second later, so their ``timestamp`` orders them)."""
    parameters = email.parameters
    sent_at = parameters.sent_at if parameters is not None else (now or datetime.now(UTC))
    tags = parameters.tags if parameters is not None else rebuilt_tags(email)
    configuration_set = parameters.configuration_set if parameters is not None else None
    mail = _mail(email, sent_at, tags, configuration_set)
    resources = (
        [f"arn:aws:ses:{email.region}:{email.account}:configuration-set/{configuration_set}"]
        if configuration_set
        else []
    )
    events = []
    for event_type, seconds_after, key, body, variant in _outcomes(email, sent_at):
        moment = sent_at + timedelta(seconds=seconds_after)
        events.append(
            {
                "version": "0",
                # stable per email, type and variant: a re-run repeats the same event
                "id": str(uuid.uuid5(_EVENT_NAMESPACE, f"{email.account}/{email.message_id}/{event_type}/{variant}")),
                "detail-type": DETAIL_TYPES[event_type],
                "source": SES_SOURCE,
                "account": email.account,
                "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": email.region,
                "resources": resources,
                "detail": {"eventType": event_type, "mail": mail, key: body},
            }
        )
    return events


def _mail(
    email: RecordedEmail, sent_at: datetime, tags: Sequence[tuple[str, str]], configuration_set: str | None
) -> dict[str, Any]:
    """The ``mail`` object every event of one email carries (SES's own tags first, then the message's)."""
    sender_domain = email.source.rpartition("@")[2]
    mail_tags: dict[str, list[str]] = {"ses:operation": ["SendEmail"], "ses:from-domain": [sender_domain]}
    if configuration_set:
        mail_tags["ses:configuration-set"] = [configuration_set]
    for name, value in tags:
        mail_tags.setdefault(name, []).append(value)
    return {
        "timestamp": _iso(sent_at),
        "source": email.source,
        "sourceArn": f"arn:aws:ses:{email.region}:{email.account}:identity/{email.source}",  # the sandbox's identity
        "sendingAccountId": email.account,
        "messageId": email.message_id,
        "destination": list(email.destinations),
        "headersTruncated": False,
        "commonHeaders": {
            "from": [email.source],
            "to": list(email.destinations),
            "messageId": email.message_id,
            "subject": email.subject,
        },
        "tags": mail_tags,
    }


def _outcomes(email: RecordedEmail, sent_at: datetime) -> list[tuple[str, int, str, dict[str, Any], str]]:
    """``(event type, seconds after sending, detail key, body, variant)`` of each event the mailbox
    simulator's addresses among the destinations produce."""
    outcomes: dict[str, list[str]] = {}
    for address in email.destinations:
        outcomes.setdefault(simulated_outcome(address), []).append(address)
    delivered = [a for a in email.destinations if simulated_outcome(a) in {"delivered", "complained", "out_of_office"}]
    found: list[tuple[str, int, str, dict[str, Any], str]] = [("Send", 0, "send", {}, "")]
    if delivered:
        delivery = {
            "timestamp": _iso(sent_at + timedelta(seconds=1)),
            "processingTimeMillis": 1000,
            "recipients": delivered,
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": _REPORTING_MTA,
            "remoteMtaIp": "127.0.0.1",
        }
        found.append(("Delivery", 1, "delivery", delivery, ""))
    for outcome, sub_type, diagnostic in (
        ("bounced", "General", "smtp; 550 5.1.1 user unknown"),
        (
            "suppressed",
            "Suppressed",
            "Amazon SES has suppressed sending to this address because it is on the suppression list.",
        ),
    ):
        if outcomes.get(outcome):
            bounce = {
                "bounceType": "Permanent",
                "bounceSubType": sub_type,
                "bouncedRecipients": [
                    {"emailAddress": a, "action": "failed", "status": "5.1.1", "diagnosticCode": diagnostic}
                    for a in outcomes[outcome]
                ],
                "timestamp": _iso(sent_at + timedelta(seconds=1)),
                "feedbackId": f"{email.message_id}-{sub_type.lower()}",
                "reportingMTA": f"dsn; {_REPORTING_MTA}",
            }
            found.append(("Bounce", 1, "bounce", bounce, sub_type))
    if outcomes.get("complained"):
        complaint = {
            "complainedRecipients": [{"emailAddress": a} for a in outcomes["complained"]],
            "timestamp": _iso(sent_at + timedelta(seconds=2)),
            "feedbackId": f"{email.message_id}-complaint",
            "userAgent": "Amazon SES Mailbox Simulator",
            "complaintFeedbackType": "abuse",
            "arrivalDate": _iso(sent_at + timedelta(seconds=2)),
        }
        found.append(("Complaint", 2, "complaint", complaint, ""))
    return found


MATCHING_EVENT_TYPES = {"Send": "send", "Delivery": "delivery", "Bounce": "bounce", "Complaint": "complaint"}
"""``eventType`` -> its name in an event destination's ``MatchingEventTypes`` (CloudFormation's spelling)."""


def destinations_of(account: str, configuration_set: str) -> list[dict[str, Any]]:
    """The enabled event destinations of ``configuration_set`` in ``account``, as deployed."""
    world = event_routing.router.world
    if world is None or account not in world.accounts:
        return []
    return [
        destination["EventDestination"]
        for destination in world.accounts[account].ses_event_destinations
        if destination.get("ConfigurationSetName") == configuration_set
        and destination.get("EventDestination", {}).get("Enabled", False)
    ]


def publish(email: RecordedEmail) -> Published:
    """Publish the events of one accepted email to its configuration set's event destinations."""
    published = Published()
    configuration_set = email.parameters.configuration_set if email.parameters is not None else None
    if not configuration_set:
        return published
    destinations = destinations_of(email.account, configuration_set)
    for event in events_for(email):
        kind = MATCHING_EVENT_TYPES[event["detail"]["eventType"]]
        for destination in destinations:
            if kind not in {str(t) for t in destination.get("MatchingEventTypes", [])}:
                continue
            if "EventBridgeDestination" in destination:
                target = str(destination["EventBridgeDestination"]["EventBusArn"])
                event_routing.router.put(event, target)
            elif "SnsDestination" in destination:
                from moto.sns.models import sns_backends

                target = str(destination["SnsDestination"]["TopicARN"])
                sns_backends[email.account][email.region].publish(message=json.dumps(event["detail"]), arn=target)
            else:
                log.warning("SES event destination %s: only EventBridge and SNS are emulated", destination.get("Name"))
                continue
            published.events.append(event)
            published.destinations.append(target)
    backend = _core_backend(email.account, email.region)
    with _LOCK:
        if not hasattr(backend, _PUBLISHED_ATTRIBUTE):
            setattr(backend, _PUBLISHED_ATTRIBUTE, Published())
        record: Published = getattr(backend, _PUBLISHED_ATTRIBUTE)
        record.events += published.events
        record.destinations += published.destinations
    return published


def published_events(accounts: Iterable[str], region: str = "us-east-1") -> Published:
    """What SES published in ``accounts`` since the emulator's last reset, in publishing order per account."""
    total = Published()
    for account in accounts:
        record: Published | None = getattr(_core_backend(account, region), _PUBLISHED_ATTRIBUTE, None)
        if record is not None:
            with _LOCK:
                total.events += record.events
                total.destinations += record.destinations
    return total
