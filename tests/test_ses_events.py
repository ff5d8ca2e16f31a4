"""Issue 13: the local SES event simulator (devtools/ses_events.py) turns the emails moto recorded into
the EventBridge events SES would publish, delivered to a queue as an EventBridge SQS target would."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools import ses_events
from devtools.emulator import FAKE_CREDENTIALS
from runtime.archive.documents import ArchiveDocument
from runtime.notify.email_tags import email_tags, tags_from_event
from runtime.notify.rendering import render_email

ACCOUNT = "123456789012"  # moto's default account
SENDER = "changes@hts.example.com"
TAGS = email_tags("CHG.1", "hts", 2)


class Ses:
    def __init__(self) -> None:
        self.sesv2 = boto3.client("sesv2", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.sesv2.create_email_identity(EmailIdentity=SENDER)
        self.queue_url = self.sqs.create_queue(QueueName="ttp-delivery-events")["QueueUrl"]

    def send(self, *addresses: str, configuration_set: str | None = "ttp-hts") -> str:
        params: dict[str, Any] = {
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": list(addresses)},
            "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
            "EmailTags": TAGS,
        }
        if configuration_set:
            params["ConfigurationSetName"] = configuration_set
        return str(self.sesv2.send_email(**params)["MessageId"])

    def publish(self, **kwargs: Any) -> ses_events.Published:
        return ses_events.publish_ses_events([ACCOUNT], self.queue_url, sqs=self.sqs, **kwargs)

    def queued(self) -> list[dict[str, Any]]:
        bodies = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def ses() -> Iterator[Ses]:
    saved = {k: os.environ.get(k) for k in [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    ses_events.record_send_parameters()
    try:
        with mock_aws():
            yield Ses()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def kinds(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for event in events:
        detail = event["detail"]
        kind = detail["eventType"]
        if kind == "Bounce":
            kind += f"/{detail['bounce']['bounceType']}/{detail['bounce']['bounceSubType']}"
        out.append(kind)
    return out


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("success@simulator.amazonses.com", ["Send", "Delivery"]),
        ("bounce@simulator.amazonses.com", ["Send", "Bounce/Permanent/General"]),
        ("complaint@simulator.amazonses.com", ["Send", "Delivery", "Complaint"]),
        ("ooto@simulator.amazonses.com", ["Send", "Delivery"]),
        ("suppressionlist@simulator.amazonses.com", ["Send", "Bounce/Permanent/Suppressed"]),
        ("Bounce+label@Simulator.AmazonSES.com", ["Send", "Bounce/Permanent/General"]),  # labels and case ignored
        ("ops@hts.example.com", ["Send", "Delivery"]),
    ],
)
def test_each_simulator_address_gets_the_events_ses_publishes_for_it(
    ses: Ses, address: str, expected: list[str]
) -> None:
    ses.send(address)
    published = ses.publish()
    queued = ses.queued()
    assert kinds(queued) == expected == kinds(published.events)
    for event in queued:
        detail = event["detail"]
        assert event["detail-type"] == ses_events.DETAIL_TYPES[detail["eventType"]]
        for recipients in (
            [r["emailAddress"] for r in detail.get("bounce", {}).get("bouncedRecipients", [])],
            [r["emailAddress"] for r in detail.get("complaint", {}).get("complainedRecipients", [])],
            detail.get("delivery", {}).get("recipients", []),
        ):
            assert recipients in ([], [address])


def test_the_events_have_the_eventbridge_to_sqs_shape(ses: Ses) -> None:
    message_id = ses.send("complaint@simulator.amazonses.com")
    ses.publish()
    events = ses.queued()
    send, delivery, complaint = events
    for event in events:
        assert set(event) == {
            "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"
        }  # fmt: skip
        assert event["version"] == "0" and event["source"] == "aws.ses"
        assert event["account"] == ACCOUNT and event["region"] == "us-east-1"
        assert event["resources"] == [f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/ttp-hts"]
        datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
        mail = event["detail"]["mail"]
        assert mail["messageId"] == message_id and mail["source"] == SENDER and mail["sendingAccountId"] == ACCOUNT
        assert mail["destination"] == ["complaint@simulator.amazonses.com"]
        assert mail["tags"]["ses:configuration-set"] == ["ttp-hts"]
        assert tags_from_event(mail["tags"]) == ("CHG.1", "hts", 2)  # the tags the sender passed, decoded
    assert len({e["id"] for e in events}) == 3
    assert send["detail"]["send"] == {}
    assert delivery["detail"]["delivery"]["smtpResponse"].startswith("250")
    assert complaint["detail"]["complaint"]["complaintFeedbackType"] == "abuse"
    stamps = [
        send["detail"]["mail"]["timestamp"],
        delivery["detail"]["delivery"]["timestamp"],
        complaint["detail"]["complaint"]["timestamp"],
    ]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3  # SES's order, told apart by time
    assert all(datetime.fromisoformat(s.replace("Z", "+00:00")).utcoffset() == UTC.utcoffset(None) for s in stamps)


def test_without_a_configuration_set_the_event_names_none(ses: Ses) -> None:
    ses.send("success@simulator.amazonses.com", configuration_set=None)
    events = ses.publish().events
    assert all(e["resources"] == [] and "ses:configuration-set" not in e["detail"]["mail"]["tags"] for e in events)


def test_publishing_twice_sends_each_email_once_unless_asked(ses: Ses) -> None:
    first_id = ses.send("success@simulator.amazonses.com")
    first = ses.publish()
    assert len(first.events) == 2 and first.skipped == []
    second_id = ses.send("bounce@simulator.amazonses.com")
    second = ses.publish()
    assert second.skipped == [first_id] and {e["detail"]["mail"]["messageId"] for e in second.events} == {second_id}
    assert ses.publish().events == []
    again = ses.publish(again=True)
    assert len(again.events) == 4
    queued = ses.queued()
    assert len(queued) == 8  # 2 + 2 + 0 + 4: the re-run repeats the same events (same ids), as SES may
    assert len({e["id"] for e in queued}) == 4


def test_an_email_to_several_recipients_gets_one_event_per_outcome(ses: Ses) -> None:
    ses.send("success@simulator.amazonses.com", "bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com")
    events = ses.publish().events
    assert kinds(events) == ["Send", "Delivery", "Bounce/Permanent/General", "Complaint"]
    assert events[1]["detail"]["delivery"]["recipients"] == [
        "success@simulator.amazonses.com",
        "complaint@simulator.amazonses.com",
    ]


def test_tags_of_an_unrecorded_email_are_rebuilt_from_its_body() -> None:
    document = ArchiveDocument.model_validate(
        {"change_id": "CHG.9", "title": "<t>", "customers": ["hts"], "revision": 3}
    )
    rendered = render_email(document, "hts")
    email = ses_events.RecordedEmail(ACCOUNT, "us-east-1", "m-1", SENDER, ("a@x.com",), rendered.subject, rendered.html)
    assert ses_events.rebuilt_tags(email) == rendered.tags
    [send, _] = ses_events.events_for(email)
    assert tags_from_event(send["detail"]["mail"]["tags"]) == ("CHG.9", "hts", 3)
    foreign = ses_events.RecordedEmail(ACCOUNT, "us-east-1", "m-2", SENDER, ("a@x.com",), "s", "<p>not ours</p>")
    assert ses_events.rebuilt_tags(foreign) == ()
