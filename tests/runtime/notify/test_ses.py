"""SES: topic subscribers (the client-side filter, the per-worker cache), rejections, the rate limiter."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from runtime.notify.errors import MessageRejected
from runtime.notify.rendering import RenderedEmail
from runtime.notify.ses import RateLimiter, SesMailer, recipient_rejection, topic_subscribers

# ---- subscribers (client-side filter) -----------------------------------------------------------


class FakeSes:
    """An SES that ignores TopicFilter, like moto: the client-side filter must still be right."""

    def __init__(self, contacts: list[dict], default: str = "OPT_IN") -> None:
        self.contacts = contacts
        self.default = default

    def get_contact_list(self, ContactListName: str) -> dict:
        return {"Topics": [{"TopicName": "t", "DefaultSubscriptionStatus": self.default}]}

    def list_contacts(self, **kwargs: object) -> dict:
        start = int(str(kwargs.get("NextToken", "0")))
        page = self.contacts[start : start + 2]
        token = str(start + 2) if start + 2 < len(self.contacts) else None
        return {"Contacts": page, **({"NextToken": token} if token else {})}


def test_subscribers_honour_preferences_defaults_unsubscribe_all_and_pages() -> None:
    contacts = [
        {"EmailAddress": "a@x.com"},
        {"EmailAddress": "B@x.com", "TopicPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_IN"}]},
        {"EmailAddress": "b@X.com"},
        {"EmailAddress": "c@x.com", "TopicPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_OUT"}]},
        {"EmailAddress": "d@x.com", "UnsubscribeAll": True},
        {"EmailAddress": "e@x.com", "TopicDefaultPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_OUT"}]},
    ]
    assert topic_subscribers(FakeSes(contacts), "list", "t") == ["a@x.com", "B@x.com"]
    assert topic_subscribers(FakeSes(contacts, default="OPT_OUT"), "list", "t") == ["B@x.com"]


# ---- rate limiter -------------------------------------------------------------------------------


def test_rate_limiter_paces_to_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(5.0, clock=lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for _ in range(51):
        limiter.acquire(sleep)
    assert now[0] == pytest.approx(10.0, rel=0.01)  # 50 intervals of 1/5 s after the first token


# ---- contact cache ------------------------------------------------------------------------------


class CountingSes(FakeSes):
    def __init__(self, contacts: list[dict]) -> None:
        super().__init__(contacts)
        self.reads = 0

    def get_contact_list(self, ContactListName: str) -> dict:
        self.reads += 1
        return super().get_contact_list(ContactListName)


def test_subscribers_are_cached_per_worker_for_the_configured_time() -> None:
    ses = CountingSes([{"EmailAddress": "a@x.com"}])
    now = [0.0]
    mailer = SesMailer(
        lambda: ses, "from@x.com", "list", RateLimiter(100), contact_cache_seconds=60, monotonic=lambda: now[0]
    )
    assert mailer.subscribers("t") == ["a@x.com"]
    now[0] = 59.0
    assert mailer.subscribers("t") == ["a@x.com"] and ses.reads == 1  # within the window: no SES call
    now[0] = 61.0
    mailer.subscribers("t")
    assert ses.reads == 2  # expired: read again


def test_contact_cache_zero_reads_the_list_for_every_trigger() -> None:
    ses = CountingSes([{"EmailAddress": "a@x.com"}])
    mailer = SesMailer(lambda: ses, "from@x.com", "list", RateLimiter(100), contact_cache_seconds=0)
    mailer.subscribers("t")
    mailer.subscribers("t")
    assert ses.reads == 2


def test_threads_that_find_the_cache_cold_wait_for_one_listing() -> None:
    """A worker's threads start together and all find the cache cold: each used to list the contacts (up to
    the worker's concurrency in GetContactList + ListContacts calls, where SES allows ListContacts one
    request a second); one lists and the others take its answer."""
    import threading
    import time

    class SlowSes(CountingSes):
        def get_contact_list(self, ContactListName: str) -> dict:
            time.sleep(0.2)  # the listing's round trip: every thread arrives while it runs
            return super().get_contact_list(ContactListName)

    ses = SlowSes([{"EmailAddress": "a@x.com"}])
    mailer = SesMailer(lambda: ses, "from@x.com", "list", RateLimiter(100), contact_cache_seconds=60)
    answers: list[list[str]] = []
    threads = [threading.Thread(target=lambda: answers.append(mailer.subscribers("t"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == [["a@x.com"]] * 4
    assert ses.reads == 1


# ---- per-recipient rejections -------------------------------------------------------------------


class RejectingSes:
    def __init__(self, reject: str) -> None:
        self.reject = reject
        self.sent: list[str] = []

    def send_email(self, **kwargs: Any) -> dict:
        address = kwargs["Destination"]["ToAddresses"][0]
        if address == self.reject:
            raise ClientError({"Error": {"Code": "BadRequestException", "Message": "Illegal address"}}, "SendEmail")
        self.sent.append(address)
        return {"MessageId": "m"}


def test_a_rejected_recipient_is_reported_as_rejected_never_as_sent() -> None:
    ses = RejectingSes("b@x.com")
    done: list[tuple[str, str | None]] = []
    sent = SesMailer(lambda: ses, "from@x.com", "list", RateLimiter(1000, burst=1000)).send(
        ["a@x.com", "b@x.com", "c@x.com"],
        RenderedEmail("s", "t", "h"),
        "t",
        on_done=lambda a, why: done.append((a, why)),
        cancelled=None,
    )
    assert sent == ["a@x.com", "c@x.com"]
    assert [a for a, why in done if why is not None] == ["b@x.com"]
    assert [a for a, _ in done] == ["a@x.com", "b@x.com", "c@x.com"]  # in order, each exactly once


# ---- per-recipient or per-message (issue 11 item 2) ---------------------------------------------

NOT_VERIFIED = "Email address is not verified. The following identities failed the check in region US-EAST-1: "


@pytest.mark.parametrize(
    ("code", "message", "per_recipient"),
    [
        ("MessageRejected", NOT_VERIFIED + "b@y.com", True),  # sandbox: the recipient is not verified
        ("MessageRejected", NOT_VERIFIED + "y.com", True),  # … or its domain
        ("MessageRejected", NOT_VERIFIED + "from@x.com", False),  # the sender
        ("MessageRejected", NOT_VERIFIED + "from@x.com, b@y.com", False),  # both: the sender must be fixed
        ("MessageRejected", "Email address not verified from@x.com", False),  # moto's wording
        ("MessageRejected", "Email address is not verified", False),  # nobody named
        ("MessageRejected", "Message length is more than 10 megabytes", False),
        ("BadRequestException", "Missing final '@domain'", True),
        ("BadRequestException", "Configuration set <cs> does not exist.", False),
        ("MailFromDomainNotVerifiedException", "b@y.com", False),
        ("SendingPausedException", "", False),
    ],
)
def test_rejections_are_per_recipient_only_when_they_are_about_the_recipient(
    code: str, message: str, per_recipient: bool
) -> None:
    assert (recipient_rejection(code, message, "B@y.com", "from@x.com") is not None) is per_recipient


def test_a_per_message_rejection_raises_and_reports_nobody() -> None:
    class RefusingSes:
        def send_email(self, **kwargs: Any) -> dict:
            raise ClientError(
                {"Error": {"Code": "MessageRejected", "Message": "Message length is more than 10 megabytes"}},
                "SendEmail",
            )

    done: list[tuple[str, str | None]] = []
    with pytest.raises(MessageRejected, match="whole message"):
        SesMailer(lambda: RefusingSes(), "from@x.com", "list", RateLimiter(1000, burst=1000)).send(
            ["a@x.com"], RenderedEmail("s", "t", "h"), "t", on_done=lambda a, why: done.append((a, why)), cancelled=None
        )
    assert done == []


# ---- configuration set and message tags (issue 13) ----------------------------------------------

TAGGED = RenderedEmail("s", "t", "h", tags=(("ttp-change-id", "_Q0hHLjE"), ("ttp-customer-code", "hts")))


def stubbed_sesv2() -> tuple[Any, Stubber]:
    client = boto3.client(
        "sesv2", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s", aws_session_token="t"
    )
    return client, Stubber(client)


def expected_request(address: str, **extra: Any) -> dict[str, Any]:
    return {
        "FromEmailAddress": "from@x.com",
        "Destination": {"ToAddresses": [address]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "s", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": "t", "Charset": "UTF-8"}, "Html": {"Data": "h", "Charset": "UTF-8"}},
            }
        },
        "ListManagementOptions": {"ContactListName": "list", "TopicName": "topic"},
        **extra,
    }


def test_every_send_email_carries_the_configuration_set_and_the_tags() -> None:
    """botocore's Stubber checks the exact parameters (and that they are valid for SES v2)."""
    client, stubber = stubbed_sesv2()
    tags = [{"Name": "ttp-change-id", "Value": "_Q0hHLjE"}, {"Name": "ttp-customer-code", "Value": "hts"}]
    for address in ("a@x.com", "b@x.com"):
        stubber.add_response(
            "send_email",
            {"MessageId": f"m-{address}"},
            expected_request(address, EmailTags=tags, ConfigurationSetName="ttp-hts"),
        )
    mailer = SesMailer(lambda: client, "from@x.com", "list", RateLimiter(1000, burst=1000), configuration_set="ttp-hts")
    with stubber:
        sent = mailer.send(["a@x.com", "b@x.com"], TAGGED, "topic", on_done=lambda a, why: None, cancelled=None)
        stubber.assert_no_pending_responses()
    assert sent == ["a@x.com", "b@x.com"]


def test_without_a_configuration_set_none_is_named() -> None:
    client, stubber = stubbed_sesv2()
    stubber.add_response("send_email", {"MessageId": "m"}, expected_request("a@x.com"))
    with stubber:
        SesMailer(lambda: client, "from@x.com", "list", RateLimiter(1000)).send(
            ["a@x.com"], RenderedEmail("s", "t", "h"), "topic", on_done=lambda a, why: None, cancelled=None
        )
        stubber.assert_no_pending_responses()


def test_a_rejected_recipient_is_still_classified_with_a_configuration_set_and_tags() -> None:
    client, stubber = stubbed_sesv2()
    tags = [{"Name": "ttp-change-id", "Value": "_Q0hHLjE"}, {"Name": "ttp-customer-code", "Value": "hts"}]
    stubber.add_client_error(
        "send_email",
        "MessageRejected",
        NOT_VERIFIED + "a@x.com",
        400,
        expected_params=expected_request("a@x.com", EmailTags=tags, ConfigurationSetName="ttp-hts"),
    )
    stubber.add_response(
        "send_email", {"MessageId": "m"}, expected_request("b@x.com", EmailTags=tags, ConfigurationSetName="ttp-hts")
    )
    stubber.add_client_error(
        "send_email",
        "BadRequestException",
        "Configuration set <ttp-hts> does not exist.",
        400,
        expected_params=expected_request("c@x.com", EmailTags=tags, ConfigurationSetName="ttp-hts"),
    )
    done: list[tuple[str, str | None]] = []
    mailer = SesMailer(lambda: client, "from@x.com", "list", RateLimiter(1000, burst=1000), configuration_set="ttp-hts")
    with stubber, pytest.raises(MessageRejected, match="does not exist"):
        mailer.send(
            ["a@x.com", "b@x.com", "c@x.com"],
            TAGGED,
            "topic",
            on_done=lambda a, why: done.append((a, why)),
            cancelled=None,
        )
    assert [a for a, why in done if why is not None] == ["a@x.com"]  # the recipient's own rejection
    assert [a for a, why in done if why is None] == ["b@x.com"]  # the configuration error is per message
