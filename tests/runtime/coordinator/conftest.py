"""Fixtures of the coordinator tests: an in-process moto platform, the fake Graph, event bodies."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from devtools import hand_layout
from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS
from devtools.fake_graph import FakeGraph
from runtime.archive.documents import utcnow
from runtime.archive.processing import ProcessingDocument, RevisionResult
from runtime.archive.store import ArchiveStore
from runtime.contract import keys
from runtime.contract.names import EMAIL_TAG_CHANGE_ID, EMAIL_TAG_CUSTOMER_CODE, EMAIL_TAG_REVISION
from runtime.coordinator.folding import FoldBatcher, Folder
from runtime.coordinator.handler import CoordinatorHandler, Meetings
from runtime.notify.email_tags import encode_tag_value
from runtime.telemetry.metrics import MetricsFactory
from tests.support.aws_platform import Platform


@pytest.fixture(scope="module")
def shared_platform() -> Iterator[Platform]:
    """Not the deployed assembly: these tests call the coordinator's handler in process with notifications off
    (test_delivery's worker reads the coordinator queue, which the deployed bucket would fill with every other
    test's objects); the deployed coordinator process is test_cli_process.py's and test_graph_worker.py's."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield Platform(hand_layout.create_sandbox(sb.sample_customers(), notifications=False))


@pytest.fixture
def platform(shared_platform: Platform) -> Platform:
    shared_platform.metrics_stream = io.StringIO()
    return shared_platform


_IDS = itertools.count(1)


@pytest.fixture
def change_id() -> str:
    return f"CHG-C{next(_IDS)}"


@pytest.fixture(scope="module")
def graph_server() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
def fake(graph_server: FakeGraph) -> FakeGraph:
    graph_server.reset()
    return graph_server


def _is_segment(key: str) -> bool:
    return key.startswith(keys.ARCHIVE_PREFIX) and "/folds/" in key and not key.endswith("/head")


class S3Counter:
    """Wraps the S3 client and counts the PUTs and GETs of archive objects (documents and fold heads: a
    fold's compare-and-swap write is its head's), of fold segments apart, and the GETs of processing objects."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.archive_puts = 0
        self.archive_gets = 0
        self.segment_puts = 0
        self.segment_gets = 0
        self.processing_gets = 0

    def put_object(self, **kwargs: Any) -> Any:
        key = str(kwargs.get("Key", ""))
        if _is_segment(key):
            self.segment_puts += 1
        elif key.startswith(keys.ARCHIVE_PREFIX):
            self.archive_puts += 1
        return self._target.put_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        key = str(kwargs.get("Key", ""))
        if _is_segment(key):
            self.segment_gets += 1
        elif key.startswith(keys.ARCHIVE_PREFIX):
            self.archive_gets += 1
        elif key.startswith(keys.PROCESSING_PREFIX):
            self.processing_gets += 1
        return self._target.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def make_handler(
    platform: Platform,
    *,
    s3: Any = None,
    linger: float = 0.0,
    meetings: Meetings | None = None,
    max_waiting: int = 0,
) -> CoordinatorHandler:
    client = s3 or platform.s3
    archive = ArchiveStore(client, platform.bucket, sleep=lambda _s: None)
    metrics = MetricsFactory("CustomMetrics", platform.metrics_stream)
    return CoordinatorHandler(
        client,
        platform.bucket,
        archive,
        FoldBatcher(Folder(archive, metrics), linger),
        metrics,
        meetings,
        max_waiting=max_waiting,
    )


def result(revision: int, sent: int = 3, rejected: int = 0, finished_ago: float = 2.0) -> RevisionResult:
    finished = utcnow() - timedelta(seconds=finished_ago)
    return RevisionResult(
        revision=revision,
        recipients=sent + rejected,
        sent=sent,
        rejected=rejected,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
    )


def write_processing(platform: Platform, code: str, change_id: str, *results: RevisionResult) -> None:
    """What a v2 processor leaves after step 7 (written directly: the processor is another branch's)."""
    doc = ProcessingDocument(customer_code=code, change_id=change_id, results={str(r.revision): r for r in results})
    platform.s3.put_object(
        Bucket=platform.bucket,
        Key=keys.processing_key(code, change_id),
        Body=json.dumps(doc.to_json_dict()).encode(),
        ContentType="application/json",
    )


def s3_event(bucket: str, key: str) -> str:
    """An S3 event notification body (keys URL-encoded, as S3 sends them)."""
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
                }
            ]
        }
    )


def processed(platform: Platform, change_id: str) -> list[dict[str, Any]]:
    return platform.processed_entries(change_id)


def as_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


HTS_ACCOUNT = "333333333333"
OTHER_ACCOUNT = "444444444444"


def ses_event(
    event_type: str,
    change_id: str,
    recipients: list[str],
    *,
    at: str = "2026-11-30T12:00:05.000Z",
    code: str = "hts",
    revision: int = 1,
    account: str = HTS_ACCOUNT,
    message_id: str = "0100-msg-1",
    **overrides: Any,
) -> dict[str, Any]:
    """An SES event record as EventBridge delivers it to an SQS target (shapes from the SES docs)."""
    mail = {
        "timestamp": "2026-11-30T12:00:00.000Z",
        "messageId": message_id,
        "source": "changes@hts.example.com",
        "destination": recipients,
        "tags": {
            EMAIL_TAG_CHANGE_ID: [encode_tag_value(change_id)],  # as the worker sends it
            EMAIL_TAG_CUSTOMER_CODE: [code],
            EMAIL_TAG_REVISION: [str(revision)],
            "ses:configuration-set": [f"ttp-{code}"],
        },
    }
    detail: dict[str, Any] = {"eventType": event_type, "mail": mail}
    if event_type == "Delivery":
        detail["delivery"] = {"timestamp": at, "recipients": recipients, "smtpResponse": "250 ok"}
    elif event_type == "Bounce":
        detail["bounce"] = {
            "bounceType": overrides.pop("bounce_type", "Permanent"),
            "bounceSubType": overrides.pop("bounce_subtype", "General"),
            "bouncedRecipients": [{"emailAddress": r, "action": "failed"} for r in recipients],
            "timestamp": at,
            "feedbackId": "fb",
        }
    elif event_type == "Complaint":
        detail["complaint"] = {
            "complainedRecipients": [{"emailAddress": r} for r in recipients],
            "timestamp": at,
            "feedbackId": "fb",
            "complaintFeedbackType": "abuse",
        }
    elif event_type == "DeliveryDelay":
        detail["deliveryDelay"] = {
            "timestamp": at,
            "delayType": "MailboxFull",
            "delayedRecipients": [{"emailAddress": r, "status": "4.2.2"} for r in recipients],
        }
    elif event_type == "Subscription":
        detail["subscription"] = {
            "contactList": "ttp-contacts",
            "timestamp": at,
            "source": "UnsubscribeHeader",
            "newTopicPreferences": {"unsubscribeAll": True},
            "oldTopicPreferences": {"unsubscribeAll": False},
        }
    elif event_type == "Send":
        detail["send"] = {}
    elif event_type == "Reject":
        detail["reject"] = {"reason": "Bad content"}
    elif event_type == "Rendering Failure":
        detail["failure"] = {"errorMessage": "missing attribute", "templateName": "t"}
    detail_types = {
        "Send": "Email Sent",
        "Delivery": "Email Delivered",
        "Bounce": "Email Bounced",
        "Complaint": "Email Complaint Received",
        "Reject": "Email Rejected",
        "DeliveryDelay": "Email Delivery Delayed",
        "Subscription": "Email Subscribed",
        "Rendering Failure": "Email Rendering Failed",
    }
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": detail_types.get(event_type, "Email Opened"),
        "source": "aws.ses",
        "account": account,
        "time": at,
        "region": "us-east-1",
        "resources": [f"arn:aws:ses:us-east-1:{account}:configuration-set/ttp-{code}"],
        "detail": detail,
    }
    event.update(overrides)
    return event
