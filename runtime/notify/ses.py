"""Sending email to a customer's subscribers through the customer's own SES (docs/design.md §4).

* :class:`CustomerSes` assumes the customer's sender role (role ARN + ExternalId) with botocore's
  refreshing assume-role credentials and hands out SES v2 clients in that account.
* :func:`topic_subscribers` reads the contact list and keeps contacts opted in to a topic, applying
  the filter on the client too (not every SES implementation honours ``TopicFilter``).
* Rendering (subject, text, HTML) is :mod:`runtime.notify.rendering`.
* :class:`EmailSender` sends one ``SendEmail`` per recipient with ``ListManagementOptions`` (personal
  unsubscribe links), the customer's configuration set (its event destination publishes the email's
  delivery events, issue 13) and the email's tags (change id, customer code, revision:
  :mod:`runtime.notify.email_tags`), paced by a shared :class:`RateLimiter` under the configured rate. Throttling is
  retried by botocore's standard mode first, then by a bounded backoff here. Any other refusal is
  classified by :func:`recipient_rejection`: that recipient's (recorded as rejected, never as sent) or
  the whole message's (:class:`~runtime.notify.errors.MessageRejected`: retried, then the DLQ).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import boto3
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from runtime import aws
from runtime.aws import error_code
from runtime.notify.errors import EmailConfigurationError, EmailError, MessageRejected, SendInterrupted
from runtime.notify.rendering import RenderedEmail


class StopSignal(Protocol):
    """Asked right before each ``SendEmail`` attempt whether to stop (a :class:`threading.Event` is one).

    The worker's drain sets one; the processor's also answers whether a newer revision took over its
    lease, so a superseded revision starts no send after it could know (issue 17 item 4)."""

    def is_set(self) -> bool: ...


THROTTLING_CODES = {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}

_NOT_VERIFIED = re.compile(
    r"not verified\.?\s*(?:The following identities failed the check in region [^:]*:)?(.*)", re.IGNORECASE
)
_MALFORMED_ADDRESS_MARKERS = (
    "missing final '@domain'",
    "illegal address",
    "local address contains",
    "domain contains illegal character",
    "domain starts with dot",
    "domain ends with dot",
)


def recipient_rejection(code: str, message: str, recipient: str, sender: str) -> str | None:
    """Why SES refused *this recipient* for good, or None when the refusal is not about the recipient.

    SES v2 ``SendEmail`` errors (``MessageRejected``, ``BadRequestException``,
    ``MailFromDomainNotVerifiedException``, ``SendingPausedException``, ``AccountSuspendedException``,
    ``NotFoundException``, ``LimitExceededException``, ``TooManyRequestsException``; the SESV2 error
    list: https://docs.rs/aws-sdk-sesv2/1.26.0/aws_sdk_sesv2/operation/send_email/enum.SendEmailError.html)
    all refuse the call, and none names a recipient by its code: ``MessageRejected`` is "the message
    can't be sent because it contains invalid content". Two refusals are nevertheless about the one
    recipient of our calls (we send one ``SendEmail`` per recipient), per the SendEmail reference
    (https://docs.amazonaws.cn/goto/WebAPI/email-2010-12-01/SendEmail):

    * an account in the SES sandbox "may only send to verified addresses" (also
      https://docs.aws.amazon.com/ses/latest/dg/verify-addresses-and-domains.html): ``MessageRejected``
      "Email address is not verified. The following identities failed the check in region …:
      <identities>" (AWS knowledge center "ses-554-400-message-rejected-error",
      https://repost.aws/es/knowledge-center/ses-554-400-message-rejected-error) where every identity
      listed is the recipient (address or domain) and none is the sender's;
    * a recipient "not in the format UserName@[SubDomain.]Domain.TopLevelDomain" rejects the message:
      ``BadRequestException`` with the address parser's message ("Missing final '@domain'", "Illegal
      address", …: the parser's wording as SES returns it, not quoted from a documentation page); the
      sender is a verified identity, so the malformed address is the recipient's.

    Anything else (sender or MAIL FROM not verified, configuration set missing, message too large,
    content, sending paused) is per message: the caller raises :class:`MessageRejected`.
    """
    if code == "MessageRejected":
        match = _NOT_VERIFIED.search(message)
        if match is None:
            return None
        identities = {part.strip().strip(".").lower() for part in re.split(r"[,\s]+", match.group(1))} - {""}
        recipient_ids = {recipient.lower(), recipient.rpartition("@")[2].lower()}
        sender_ids = {sender.lower(), sender.rpartition("@")[2].lower()}
        if identities and identities <= recipient_ids and not identities & sender_ids:
            return f"{code}: {message}"
        return None
    if code == "BadRequestException" and any(marker in message.lower() for marker in _MALFORMED_ADDRESS_MARKERS):
        return f"{code}: {message}"
    return None


class CustomerSes:
    """SES v2 clients in a customer account, through an assumed role whose credentials refresh.

    The customer's session has its own credentials and shares the loaded service data of the base
    session (:func:`runtime.aws.session`), and the STS client that assumes the role is the base's one
    (:func:`runtime.aws.cached_client_creator`): a customer costs a client, not a botocore session.
    """

    def __init__(
        self,
        role_arn: str,
        external_id: str,
        session_name: str,
        region: str | None = None,
        base_session: boto3.session.Session | None = None,
    ) -> None:
        base = base_session or aws.session()
        self.region = region or base.region_name
        self.role_arn = role_arn
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=aws.cached_client_creator(base),
            source_credentials=base.get_credentials(),
            role_arn=role_arn,
            extra_args={"ExternalId": external_id, "RoleSessionName": session_name[:64]},
        )
        credentials = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
        self._session = aws.session(region_name=self.region, credentials=credentials, share_with=base)
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def client(self, service: str = "sesv2") -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service, config=aws.client_config(20))
            return self._clients[service]


def _opted_in(contact: dict[str, Any], topic: str, default_status: str) -> bool:
    if contact.get("UnsubscribeAll"):
        return False
    for preferences in ("TopicPreferences", "TopicDefaultPreferences"):
        for preference in contact.get(preferences, []):
            if preference.get("TopicName") == topic:
                status: object = preference.get("SubscriptionStatus")
                return status == "OPT_IN"
    return default_status == "OPT_IN"


def topic_subscribers(ses: Any, contact_list: str, topic: str) -> list[str]:
    """Addresses opted in to ``topic``, de-duplicated case-insensitively, in list order."""
    try:
        described = ses.get_contact_list(ContactListName=contact_list)
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            raise EmailConfigurationError(f"SES contact list {contact_list!r} does not exist") from None
        raise EmailError(f"cannot read contact list {contact_list!r}: {exc}") from exc
    topics = {t["TopicName"]: t.get("DefaultSubscriptionStatus", "OPT_OUT") for t in described.get("Topics", [])}
    if topic not in topics:
        raise EmailConfigurationError(f"topic {topic!r} is not defined on contact list {contact_list!r}")
    request: dict[str, Any] = {
        "ContactListName": contact_list,
        "Filter": {
            "FilteredStatus": "OPT_IN",
            "TopicFilter": {"TopicName": topic, "UseDefaultIfPreferenceUnavailable": True},
        },
        "PageSize": 1000,
    }
    seen: set[str] = set()
    addresses: list[str] = []
    while True:
        page = ses.list_contacts(**request)
        for contact in page.get("Contacts", []):
            address = contact.get("EmailAddress", "")
            if address and _opted_in(contact, topic, topics[topic]) and address.lower() not in seen:
                seen.add(address.lower())
                addresses.append(address)
        token = page.get("NextToken")
        if not token:
            return addresses
        request["NextToken"] = token


# ---- sending -----------------------------------------------------------------------------------


class RateLimiter:
    """Token bucket shared by every thread of a process: at most ``rate`` acquisitions per second."""

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(burst, 1.0)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1 - 1e-9:  # float rounding must not strand a waiter
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.rate
            sleep(wait)


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


class EmailSender:
    def __init__(
        self,
        ses: Any,
        from_address: str,
        contact_list: str,
        limiter: RateLimiter,
        *,
        configuration_set: str | None = None,
        throttle_retries: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ses = ses
        self.from_address = from_address
        self.contact_list = contact_list
        self.configuration_set = configuration_set
        self._limiter = limiter
        self._throttle_retries = throttle_retries
        self._sleep = sleep

    def send_all(
        self,
        recipients: Iterable[str],
        message: RenderedEmail,
        topic: str,
        *,
        on_done: Callable[[str, str | None], None],
        cancelled: StopSignal | None = None,
    ) -> SendReport:
        """Send to each recipient in order. ``on_done(address, None)`` after SES accepted an email,
        ``on_done(address, reason)`` after SES rejected that recipient for good (never counted as sent)."""
        report = SendReport()
        for address in recipients:
            outcome = self._send_one(address, message, topic, cancelled, len(report.sent))
            if outcome is None:
                report.sent.append(address)
            else:
                report.rejected[address] = outcome
            on_done(address, outcome)  # a rejected address is final too: do not retry it on redelivery
        return report

    def request(self, address: str, message: RenderedEmail, topic: str) -> dict[str, Any]:
        """The ``SendEmail`` parameters of one email to ``address``."""
        params: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [address]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": message.text, "Charset": "UTF-8"},
                        "Html": {"Data": message.html, "Charset": "UTF-8"},
                    },
                }
            },
            "ListManagementOptions": {"ContactListName": self.contact_list, "TopicName": topic},
        }
        if message.tags:
            params["EmailTags"] = [{"Name": name, "Value": value} for name, value in message.tags]
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        return params

    def _send_one(
        self, address: str, message: RenderedEmail, topic: str, cancelled: StopSignal | None = None, sent: int = 0
    ) -> str | None:
        """Send to one recipient; None when SES accepted it, a reason when SES rejected the address.

        ``cancelled`` is asked after the pacing wait and each throttling back-off, right before the
        call: a wait can be long, and what it says may have changed meanwhile."""
        for attempt in range(self._throttle_retries + 1):
            self._limiter.acquire(self._sleep)
            if cancelled is not None and cancelled.is_set():
                raise SendInterrupted(f"stopped after {sent} emails")
            try:
                self._ses.send_email(**self.request(address, message, topic))
                return None
            except ClientError as exc:
                code = error_code(exc)
                if code in THROTTLING_CODES:
                    if attempt < self._throttle_retries:
                        self._sleep(random.uniform(0, min(20.0, 0.5 * 2**attempt)))
                        continue
                    raise EmailError(f"SES kept throttling SendEmail ({code}); giving up for now") from exc
                detail = str(exc.response.get("Error", {}).get("Message", ""))
                reason = recipient_rejection(code, detail, address, self.from_address)
                if reason is not None:
                    return reason
                if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)) >= 500:
                    raise EmailError(f"SES SendEmail failed: {code or exc}") from exc
                raise MessageRejected(f"SES rejected the whole message ({code or exc}: {detail})") from exc
            except BotoCoreError as exc:
                raise EmailError(f"SES SendEmail failed: {exc}") from exc
        raise AssertionError("unreachable")


class SesMailer:
    """The processor's :class:`~runtime.pipeline.state_machine.Mailer` over a customer's SES.

    The topic's subscribers are cached per worker for ``contact_cache_seconds`` (0: read the contact
    list for every trigger). A contact who unsubscribes within that window is still not mailed: every
    ``SendEmail`` carries ``ListManagementOptions`` (contact list + topic), and SES's list management
    does not deliver messages sent to contacts unsubscribed in the contact list — it emits a bounce
    event for them instead (SES Developer Guide, "Using list management", list management overview:
    https://docs.aws.amazon.com/ses/latest/dg/sending-email-list-management.html, and "Using
    subscription management"). That refusal is asynchronous: such an address may count as sent here
    (SES accepted the call) while the configuration set's event destination records the bounce.

    ``configuration_set`` (``TTP_CONFIGURATION_SET``): every ``SendEmail`` names it, so its event
    destination publishes the email's send, delivery, bounce and complaint events; None sends without.
    """

    def __init__(
        self,
        ses: Callable[[], Any],
        from_address: str,
        contact_list: str,
        limiter: RateLimiter,
        *,
        contact_cache_seconds: float = 0.0,
        configuration_set: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ses = ses
        self.contact_list = contact_list
        self._sender = partial(
            EmailSender,
            from_address=from_address,
            contact_list=contact_list,
            limiter=limiter,
            configuration_set=configuration_set,
        )
        self.contact_cache_seconds = contact_cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._cache_lock = threading.Lock()
        self._listing_lock = threading.Lock()

    def subscribers(self, topic: str) -> list[str]:
        """The topic's subscribers, from the cache while it is fresh. One thread lists them when it is not;
        the threads that find it cold meanwhile wait for that listing (SES allows ListContacts one request a
        second) instead of each listing them too."""
        if self.contact_cache_seconds <= 0:
            return topic_subscribers(self._ses(), self.contact_list, topic)
        cached = self._fresh(topic)
        if cached is not None:
            return cached
        with self._listing_lock:
            cached = self._fresh(topic)  # listed by the thread this one waited for
            if cached is not None:
                return cached
            read_at = self._monotonic()
            addresses = topic_subscribers(self._ses(), self.contact_list, topic)
            with self._cache_lock:
                self._cache[topic] = (read_at, list(addresses))
            return addresses

    def _fresh(self, topic: str) -> list[str] | None:
        with self._cache_lock:
            cached = self._cache.get(topic)
        if cached is not None and self._monotonic() - cached[0] < self.contact_cache_seconds:
            return list(cached[1])
        return None

    def send(
        self,
        recipients: list[str],
        message: RenderedEmail,
        topic: str,
        *,
        on_done: Callable[[str, str | None], None],
        cancelled: StopSignal | None,
    ) -> list[str]:
        report = self._sender(self._ses()).send_all(recipients, message, topic, on_done=on_done, cancelled=cancelled)
        return report.sent
