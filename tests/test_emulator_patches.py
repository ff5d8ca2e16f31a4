"""The emulator's patches of moto's hot spots keep its answers and drop the per-request work (issue 21).

Measured in `make bench` before the patches: the dispatcher listed moto's package directory under its
global lock on every request, each S3 notification's SendMessage asked every message of the target
queue for the clock (three times), and moto's clock built two naive datetimes per reading.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto.core import utils
from moto.sqs import models as sqs_models

from devtools.emulator import LocalAws, local_aws


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAws]:
    with local_aws() as running:
        yield running


@pytest.fixture
def sqs(server: LocalAws) -> Any:
    return boto3.client("sqs")


def test_requests_do_not_list_motos_package(server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    package = os.path.dirname(moto.__file__)
    listed: list[str] = []
    original = os.listdir

    def listdir(path: Any = ".") -> list[str]:
        if str(path) == package and sys._getframe(1).f_code.co_name == "list_of_moto_modules":
            listed.append(str(path))  # the dispatcher routing a request (botocore's loader lists it once)
        return original(path)

    monkeypatch.setattr(os, "listdir", listdir)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches")
    for n in range(5):
        s3.put_object(Bucket="patches", Key=f"k{n}", Body=b"x")
    assert listed == []


def test_an_s3_notification_does_not_ask_every_queued_message_for_the_clock(
    server: LocalAws, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqs.create_queue(QueueName="patches-busy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for _ in range(20):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(10)])
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches-notified")
    s3.put_bucket_notification_configuration(
        Bucket="patches-notified",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    asked: list[int] = []
    visible = sqs_models.Message.visible

    def counting(self: Any) -> bool:
        asked.append(1)
        return bool(visible.fget(self))  # type: ignore[attr-defined]

    monkeypatch.setattr(sqs_models.Message, "visible", property(counting))
    s3.put_object(Bucket="patches-notified", Key="a.json", Body=b"{}")
    assert asked == []
    monkeypatch.undo()
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "202"  # 200 + the test event + the notification


def test_a_fifo_queue_still_deduplicates_by_content(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="patches.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "1"
    }
    plain = sqs.create_queue(QueueName="patches-plain.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(sqs.exceptions.ClientError, match="MessageDeduplicationId"):
        sqs.send_message(QueueUrl=plain, MessageBody="same", MessageGroupId="g")


def test_motos_clock_reads_time_time(server: LocalAws) -> None:
    before = time.time()
    reading = utils.unix_time()
    assert before <= reading <= time.time()
    moment = datetime.datetime(2026, 12, 7, 15, 30, 1, 250000)
    assert utils.unix_time(moment) == moment.replace(tzinfo=datetime.UTC).timestamp()
    assert getattr(sqs_models, "unix_time_millis")(moment) == 1000 * utils.unix_time(moment)  # noqa: B009
    assert abs((utils.utcnow() - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds()) < 1
    assert utils.utcfromtimestamp(0) == datetime.datetime(1970, 1, 1)
