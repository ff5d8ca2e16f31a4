"""Issue 11 item 2: SES rejections are classified (docs/design.md §4).

A rejection of the whole message (content, size, sender, configuration) is not a fact about one
recipient: the processing object records nothing as sent or rejected, the trigger stays, the message
is never acked: it retries and, after the queue's ``maxReceiveCount``, the redrive policy moves it to
the DLQ. A rejection of one recipient is recorded as rejected (``EmailsRejected``), never as sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools import sandbox as sb
from runtime.contract.keys import TriggerRef
from runtime.notify.ses import RateLimiter, SesMailer
from runtime.pipeline import Outcome, ProcessorHandler
from runtime.worker import Fate, Worker
from tests.runtime.pipeline.test_state_machine import s3_event
from tests.support.aws_platform import Faulty, Platform, client_error

HTS = TriggerRef("hts", "CHG-1")
SENDER = "changes@hts.example.com"
FIRST, SECOND = "lead@hts.example.com", "ops@hts.example.com"  # hts's default-topic subscribers, in send order
NOT_VERIFIED = "Email address is not verified. The following identities failed the check in region US-EAST-1: "

PER_MESSAGE = [
    pytest.param(client_error("MessageRejected", 400, NOT_VERIFIED + SENDER), id="sender-not-verified"),
    pytest.param(
        client_error("MessageRejected", 400, NOT_VERIFIED + f"{SENDER}, {FIRST}"), id="sender-and-recipient-unverified"
    ),
    pytest.param(client_error("MessageRejected", 400, "Email address is not verified"), id="unverified-unnamed"),
    pytest.param(
        client_error("BadRequestException", 400, "Configuration set <ttp-hts> does not exist."), id="configuration"
    ),
    pytest.param(client_error("MessageRejected", 400, "Message length is more than 10 megabytes"), id="too-large"),
    pytest.param(client_error("MessageRejected", 400, "Message contains a virus"), id="content"),
    pytest.param(client_error("MailFromDomainNotVerifiedException", 400, "MAIL FROM"), id="mail-from"),
    pytest.param(client_error("SendingPausedException", 400, "paused"), id="sending-paused"),
    pytest.param(client_error("AccountSuspendedException", 400, "suspended"), id="account-suspended"),
    pytest.param(client_error("NotFoundException", 404, "Contact list does not exist"), id="not-found"),
]

PER_RECIPIENT = [
    pytest.param(client_error("MessageRejected", 400, NOT_VERIFIED + FIRST), id="sandbox-recipient-unverified"),
    pytest.param(client_error("BadRequestException", 400, "Missing final '@domain'"), id="malformed-recipient"),
]


def assert_nothing_recorded(platform: Platform, *, emails: int = 0) -> None:
    """The processing object holds no result, the trigger stays, no metric counts an email."""
    doc = platform.processing("hts") or {}
    assert doc.get("results", {}) == {}
    progress = doc.get("progress") or {"done": 0, "rejected": []}
    assert progress["done"] == emails and progress["rejected"] == []
    assert platform.trigger_exists("hts")
    assert platform.metric_total("EmailsSent", "hts") == emails
    assert platform.metric_total("EmailsRejected", "hts") == 0
    assert len(platform.emails("hts")) == emails


@pytest.mark.parametrize("rejection", PER_MESSAGE)
def test_a_per_message_rejection_retries_and_records_nothing_as_sent(
    platform: Platform, rejection: ClientError
) -> None:
    platform.submit()
    ses = Faulty(platform.ses("hts")).fail("send_email", rejection)
    result = platform.processor("hts", ses=ses).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.RETRY and result.fate is Fate.RETRY, result
    assert result.emails_sent == 0 and result.rejected == []
    assert "rejected the whole message" in result.reason
    assert_nothing_recorded(platform)
    assert platform.metric_total("ProcessingFailure", "hts") == 1


def test_the_emulators_own_rejection_of_an_unverified_sender_is_per_message(platform: Platform) -> None:
    """No injection: moto refuses ``SendEmail`` from an identity that is not verified."""
    platform.submit()
    processor = platform.processor("hts")
    ses = platform.ses("hts")
    unverified = "nobody@unverified.example.org"
    processor.mailer = SesMailer(lambda: ses, unverified, sb.DEFAULT_CONTACT_LIST_NAME, RateLimiter(1000))
    result = processor.process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.RETRY and result.emails_sent == 0, result
    assert_nothing_recorded(platform)


def test_a_per_message_rejection_after_an_accepted_email_keeps_only_that_one_as_sent(platform: Platform) -> None:
    """The first email went out; SES then refuses the message (e.g. sending paused). The redelivery,
    once SES accepts again, sends only the second and records 2 sent, 0 rejected."""
    platform.submit()
    ses = Faulty(platform.ses("hts"))
    ses.fail("send_email", lambda **kw: None).fail("send_email", client_error("SendingPausedException", 400, "paused"))
    first = platform.processor("hts", ses=ses).process(HTS, "sqs:m1:r1")
    assert first.outcome is Outcome.RETRY and first.emails_sent == 1
    assert_nothing_recorded(platform, emails=1)
    second = platform.processor("hts").process(HTS, "sqs:m1:r2")
    assert second.outcome is Outcome.PROCESSED and second.fate is Fate.ACK
    assert platform.result("hts") is not None
    recorded = platform.result("hts") or {}
    assert recorded["sent"] == 2 and recorded["rejected"] == 0
    assert sorted(m["to"][0].lower() for m in platform.emails("hts")) == [FIRST, SECOND]


@pytest.mark.parametrize("rejection", PER_RECIPIENT)
def test_a_per_recipient_rejection_is_recorded_as_rejected_never_as_sent(
    platform: Platform, rejection: ClientError
) -> None:
    platform.submit()
    ses = Faulty(platform.ses("hts")).fail("send_email", rejection)  # the first recipient: FIRST
    result = platform.processor("hts", ses=ses).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.fate is Fate.ACK
    assert result.rejected == [FIRST] and result.emails_sent == 1
    recorded = platform.result("hts") or {}
    assert recorded["recipients"] == 2 and recorded["sent"] == 1 and recorded["rejected"] == 1
    assert platform.metric_total("EmailsRejected", "hts") == 1
    assert platform.metric_total("EmailsSent", "hts") == 1
    assert [m["to"][0].lower() for m in platform.emails("hts")] == [SECOND]
    assert not platform.trigger_exists("hts")


def test_a_per_message_rejection_reaches_the_dlq_after_the_queues_receives(platform: Platform) -> None:
    """The message is never acked: the worker returns it until the redrive policy (``maxReceiveCount``
    3 in the sandbox) moves it to the DLQ. Trigger and processing object keep the work for a redrive."""
    platform.submit()
    resources = platform.box.customers["hts"]
    platform.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=s3_event("customers/hts/CHG-1.json"))
    ses: Any = Faulty(platform.ses("hts")).fail(
        "send_email", client_error("MessageRejected", 400, NOT_VERIFIED + SENDER), times=10
    )
    handler = ProcessorHandler(platform.bucket, platform.processor("hts", ses=ses))
    worker = Worker(
        platform.sqs, resources.queue_url, handler, max_concurrency=1, visibility_timeout=30, receive_wait_seconds=0
    )
    worker.retry_base_seconds = 0
    handled = 0
    for _ in range(6):
        messages = platform.sqs.receive_message(
            QueueUrl=resources.queue_url, MessageSystemAttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        if not messages:
            break
        worker._slots.acquire()
        worker._handle(messages[0])
        handled += 1
    assert handled == 3
    dead = platform.sqs.receive_message(QueueUrl=resources.dlq_url).get("Messages", [])
    assert len(dead) == 1
    assert_nothing_recorded(platform)
