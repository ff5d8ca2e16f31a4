"""Issues 13, 18: the emulator's SES (devtools/ses_events.py) publishes, for every email it accepts, the
events SES would publish through the configuration set's event destinations: here an EventBridge
destination on the default bus, whose rule sends them to a queue (routed by
devtools/local_deploy/event_routing.py). No test calls a publisher: sending the email is the whole step.
The deployed sample's path (customer account → governance bus → delivery-events queue, with enforced
policies) is tests/test_event_routing.py's."""

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
from devtools.local_deploy import World
from devtools.local_deploy.event_routing import router
from runtime.archive.documents import ArchiveDocument
from runtime.notify.email_tags import email_tags, tags_from_event
from runtime.notify.rendering import render_email

ACCOUNT = "123456789012"  # moto's default account
SENDER = "changes@hts.example.com"
TAGS = email_tags("CHG.1", "hts", 2)


ALL_TYPES = ["send", "delivery", "bounce", "complaint", "reject", "deliveryDelay", "subscription", "renderingFailure"]


def destination(
    configuration_set: str = "ttp-hts", types: list[str] = ALL_TYPES, enabled: bool = True
) -> dict[str, Any]:
    """An ``AWS::SES::ConfigurationSetEventDestination``'s properties as the deployed world keeps them."""
    return {
        "ConfigurationSetName": configuration_set,
        "EventDestination": {
            "Enabled": enabled,
            "EventBridgeDestination": {"EventBusArn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"},
            "MatchingEventTypes": types,
            "Name": "ttp-delivery-events",
        },
    }


class Ses:
    def __init__(self) -> None:
        self.sesv2 = boto3.client("sesv2", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.sesv2.create_email_identity(EmailIdentity=SENDER)
        self.queue_url = self.sqs.create_queue(QueueName="ttp-delivery-events")["QueueUrl"]
        events = boto3.client("events", region_name="us-east-1")
        events.put_rule(Name="ses-to-queue", EventPattern=json.dumps({"source": ["aws.ses"]}), State="ENABLED")
        queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ttp-delivery-events"
        events.put_targets(Rule="ses-to-queue", Targets=[{"Id": "queue", "Arn": queue_arn}])
        self.world = World()
        self.world.account(ACCOUNT).ses_event_destinations.append(destination())

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

    def queued(self) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
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
    ses_events.install()
    saved_world, saved_enforcement = router.world, router.enforcement
    router.enforcement = None
    try:
        with mock_aws():
            box = Ses()
            router.world = box.world
            yield box
    finally:
        router.world, router.enforcement = saved_world, saved_enforcement
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
    queued = ses.queued()
    assert kinds(queued) == expected == kinds(ses_events.published_events([ACCOUNT]).events)
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


def test_without_a_configuration_set_or_a_matching_destination_nothing_is_published(ses: Ses) -> None:
    ses.send("success@simulator.amazonses.com", configuration_set=None)
    ses.send("success@simulator.amazonses.com", configuration_set="someone-elses")
    assert ses.queued() == [] and ses_events.published_events([ACCOUNT]).events == []


def test_only_the_enabled_destinations_event_types_are_published(ses: Ses) -> None:
    ses.world.accounts[ACCOUNT].ses_event_destinations[:] = [
        destination(types=["bounce", "complaint"]),
        destination(types=ALL_TYPES, enabled=False),
    ]
    ses.send("complaint@simulator.amazonses.com", "bounce@simulator.amazonses.com")
    assert kinds(ses.queued()) == ["Bounce/Permanent/General", "Complaint"]


def test_each_email_is_published_once_when_it_is_accepted(ses: Ses) -> None:
    first = ses.send("success@simulator.amazonses.com")
    assert [e["detail"]["mail"]["messageId"] for e in ses.queued()] == [first, first]
    second = ses.send("bounce@simulator.amazonses.com")
    assert [e["detail"]["mail"]["messageId"] for e in ses.queued()] == [second, second]
    assert len(ses_events.published_events([ACCOUNT]).events) == 4


def test_an_email_to_several_recipients_gets_one_event_per_outcome(ses: Ses) -> None:
    ses.send("success@simulator.amazonses.com", "bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com")
    events = ses.queued()
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
