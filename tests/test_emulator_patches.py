"""The emulator's patches of moto's hot spots keep its answers and drop the per-request work (issue 21).

Measured in `make bench` before the patches: the dispatcher listed moto's package directory under its
global lock on every request, each S3 notification's SendMessage asked every message of the target
queue for the clock (three times), and moto's clock built two naive datetimes per reading. Profiled
again (``TTP_EMULATOR_PROFILE``, second issue 21 round): each message ReceiveMessage returned built every
queue attribute three times for its retention check, action and attribute names were converted to
snake case character by character on every request, and each request id drew its 52 characters one
``choice()`` at a time.
"""

from __future__ import annotations

import datetime
import json
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


def _counting(monkeypatch: pytest.MonkeyPatch, cls: Any, name: str) -> list[int]:
    """Count reads of the property ``cls.name`` (every other behaviour kept)."""
    calls: list[int] = []
    original = getattr(cls, name)

    def counted(self: Any) -> Any:
        calls.append(1)
        return original.fget(self)

    monkeypatch.setattr(cls, name, property(counted))
    return calls


def test_receiving_a_message_does_not_count_the_queue(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqs.create_queue(QueueName="patches-receive")["QueueUrl"]
    for _ in range(5):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(10)])
    counted = _counting(monkeypatch, sqs_models.Queue, "approximate_number_of_messages_delayed")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert len(received) == 10
    assert counted == []  # the retention check of each message reads MessageRetentionPeriod alone
    monkeypatch.undo()
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("40", "10")


def test_named_queue_attributes_answer_as_all_does(sqs: Any) -> None:
    dead = sqs.create_queue(QueueName="patches-dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    statement = {"Effect": "Allow", "Principal": "*", "Action": "sqs:*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    urls = [
        sqs.create_queue(
            QueueName="patches-full",
            Attributes={
                "Policy": policy,
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3}),
                "DelaySeconds": "2",
            },
        )["QueueUrl"],
        sqs.create_queue(
            QueueName="patches-named.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"],
        sqs.create_queue(QueueName="patches-kms", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"],
    ]
    sqs.send_message(QueueUrl=urls[0], MessageBody="delayed")
    sqs.send_message(QueueUrl=urls[2], MessageBody="visible")
    names = [*sqs_models.Queue.BASE_ATTRIBUTES, *sqs_models.Queue.FIFO_ATTRIBUTES, *sqs_models.Queue.KMS_ATTRIBUTES]
    for url in urls:
        everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for name in names:
            named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name]).get("Attributes", {})
            assert named == {k: v for k, v in everything.items() if k == name}, (url, name)
        some = ["QueueArn", "ApproximateNumberOfMessagesDelayed", "ContentBasedDeduplication", "Policy"]
        named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=some).get("Attributes", {})
        assert named == {k: v for k, v in everything.items() if k in some}
    assert sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["DelaySeconds"])["Attributes"] == {
        "DelaySeconds": "2"
    }


def test_pure_name_conversions_are_cached_with_the_same_answers(server: LocalAws) -> None:
    from moto.core import responses as core_responses
    from moto.s3.responses import S3Response

    convert: Any = getattr(core_responses, "camelcase_to_underscores")  # noqa: B009 (imported by name, not exported)
    original = convert.__wrapped__
    for name in ["ReceiveMessage", "ApproximateNumberOfMessagesNotVisible", "KmsMasterKeyId", "ListObjectsV2", ""]:
        assert convert(name) == original(name)
    before = convert.cache_info().hits
    convert("ReceiveMessage")
    assert convert.cache_info().hits == before + 1
    methods = getattr(core_responses, "method_names_from_class")  # noqa: B009
    assert methods(S3Response) == methods.__wrapped__(S3Response)
    assert methods(S3Response) is methods(S3Response)
    assert convert is utils.camelcase_to_underscores is getattr(sqs_models, "camelcase_to_underscores")  # noqa: B009


def test_random_strings_keep_their_alphabet_length_and_seed(server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    import string

    from moto.moto_api._internal import mock_random

    draws: list[int] = []
    choice = mock_random.choice

    def counted(seq: Any) -> Any:
        draws.append(1)
        return choice(seq)

    monkeypatch.setattr(mock_random, "choice", counted)
    request_id = mock_random.get_random_string(length=52)
    assert len(request_id) == 52 and set(request_id) <= set(string.ascii_letters + string.digits)
    assert draws == []  # one draw of 52 characters, not 52 draws
    assert set(mock_random.get_random_string(200, include_digits=False)) <= set(string.ascii_letters)
    assert mock_random.get_random_string(200, lower_case=True).islower()
    mock_random.seed(21)
    first = mock_random.get_random_string()
    mock_random.seed(21)
    assert mock_random.get_random_string() == first  # moto's seed API still makes its ids reproducible


def test_the_emulator_profiles_the_requests_it_serves_when_asked(tmp_path: Any) -> None:
    import pstats

    path = tmp_path / "emulator.prof"
    profiled = LocalAws(profile=str(path)).start()
    try:
        boto3.client("s3", endpoint_url=profiled.endpoint).list_buckets()
    finally:
        profiled.stop()
    functions = {name for _, _, name in pstats.Stats(str(path)).stats}  # type: ignore[attr-defined]
    assert "list_buckets" in functions  # moto's handler, run in a request thread of its own
