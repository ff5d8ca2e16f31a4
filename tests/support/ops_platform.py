"""Helpers shared by the ops and sweeper tests (no tests here).

Time: the emulator stamps objects with the wall clock, so "a trigger 20 minutes old" is made by
moving its ``LastModified`` back in moto's in-process backend (what waiting would do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner, Result

from devtools import hand_layout
from devtools import sandbox as sb
from devtools.sandbox import PLATFORM_ACCOUNT
from runtime.archive import processing as v2
from runtime.archive.documents import PROCESSED, ArchiveDocument, ModificationEntry, ProcessingLease, utcnow
from runtime.archive.store import ArchiveStore
from runtime.cli import app
from runtime.contract import names
from runtime.contract.keys import TriggerRef, processing_key
from runtime.ops.clients import OpsClients
from runtime.pipeline import Outcome
from tests.support.aws_platform import Faulty, Platform, client_error

ALL = ("customer-a", "hts", "htsnonprod")


def light_platform(bucket: str = "ttp-metadata-local", region: str = "us-east-1") -> Platform:
    """The sandbox's bucket, queues (with DLQs and redrive) and customer registry, without the customers'
    SES: enough for everything but sending email, and much faster to build. Call inside ``mock_aws()``.
    Not the deployed assembly: the ops tests age objects in moto's in-process backend and need no stack."""
    import boto3

    s3, sqs = boto3.client("s3", region_name=region), boto3.client("sqs", region_name=region)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    created = {}
    for spec in sb.sample_customers():
        dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue_name(spec.code))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=names.queue_name(spec.code),
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[spec.code] = hand_layout.CustomerResources(spec, queue_url, arn, dlq_url)
    hand_layout.register_customers(list(created), region)
    return Platform(hand_layout.Sandbox(bucket, region, created))


@pytest.fixture
def light(aws_credentials: None) -> Iterator[Platform]:
    """The light platform inside ``mock_aws()`` (``aws_credentials`` is in ``tests/runtime/conftest.py``)."""
    with mock_aws():
        yield light_platform()


def record_processed(platform: Platform, change_id: str, code: str) -> None:
    """What the processor's step 7 records (used where sending real email adds nothing to a test)."""

    def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        entry = ModificationEntry(
            user_id=f"processor:{code}", modification_type=PROCESSED, customer_code=code, revision=doc.revision
        )
        doc.modifications = [*doc.modifications, entry]
        doc.leases = {k: v for k, v in doc.leases.items() if k != code}
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(change_id, mutate)


def leave_trigger_after_processing(platform: Platform, code: str, change_id: str) -> None:
    """Process for real, but the trigger delete fails: the processing object records it, the trigger stays."""
    faulty = Faulty(platform.s3).fail("delete_object", client_error("InternalError", 500))
    result = platform.processor(code, s3=faulty).process(TriggerRef(code, change_id), "sqs:m")
    assert result.outcome is Outcome.PROCESSED and platform.trigger_exists(code, change_id)


def set_lease(platform: Platform, change_id: str, code: str, expires_in: timedelta) -> None:
    def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        lease = ProcessingLease(owner="sqs:other", revision=doc.revision, expires_at=utcnow() + expires_in)
        doc.leases = {**doc.leases, code: lease}
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(change_id, mutate)


def put_processing(
    platform: Platform,
    change_id: str,
    code: str,
    *,
    results: Mapping[int, tuple[int, int, int]] | None = None,
    lease: tuple[int, timedelta] | None = None,
    progress: tuple[int, int, int, list[str]] | None = None,
) -> str:
    """Write ``processing/{code}/{change_id}.json`` as customer ``code``'s processor would (the model of
    ``runtime.archive.processing``): ``results`` {revision: (sent, rejected, recipients)}, ``lease``
    (revision, expires in), ``progress`` (revision, done, recipients, rejected addresses). Returns the key."""
    doc = v2.ProcessingDocument(
        customer_code=code,
        change_id=change_id,
        lease=None
        if lease is None
        else v2.ProcessingLease(
            owner="sqs:m-2:r-1", message_id="m-2", revision=lease[0], expires_at=utcnow() + lease[1]
        ),
        progress=None
        if progress is None
        else v2.SendProgress(
            revision=progress[0],
            recipients=progress[2],
            recipients_digest="0" * 64,
            done=progress[1],
            done_through=f"r{progress[1]:03d}@example.com",
            rejected=progress[3],
        ),
        results={
            str(revision): v2.RevisionResult(revision=revision, recipients=n, sent=sent, rejected=rejected)
            for revision, (sent, rejected, n) in (results or {}).items()
        },
    )
    key = processing_key(code, change_id)
    put_raw(platform, key, json.dumps(doc.to_json_dict()))
    return key


def backdate(platform: Platform, key: str, seconds: float) -> None:
    """Make every version (and delete marker) of ``key`` ``seconds`` older."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[PLATFORM_ACCOUNT]["aws"].buckets[platform.bucket]
    versions = bucket.keys.getlist(key)
    assert versions, f"no object {key} to backdate"
    for version in versions:
        version.last_modified = version.last_modified - timedelta(seconds=seconds)


def queues(platform: Platform) -> dict[str, str]:
    return {code: res.queue_url for code, res in platform.box.customers.items()}


def ops_env(platform: Platform, **extra: str) -> dict[str, str]:
    env = {
        "TTP_BUCKET_NAME": platform.bucket,
        "TTP_CUSTOMER_QUEUES": json.dumps(queues(platform)),
        "TTP_STUCK_AFTER_SECONDS": "900",
        "TTP_MAX_REDRIVE_ATTEMPTS": "3",
    }
    env.update(extra)
    return env


def run(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], *args: str) -> Result:
    """The CLI as an operator runs it, rendering as a 160-column pipe unless ``env`` says ``COLUMNS``: the
    tables wrap to the width (runtime.cli.render.console), so an inherited width must not decide a test."""
    for name, value in {"COLUMNS": "160", **env}.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def as_json(result: Result) -> Any:
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"stdout is not one JSON document:\n{result.stdout}\nstderr:\n{result.stderr}") from None


def clients(platform: Platform, **overrides: Any) -> OpsClients:
    return OpsClients(s3=overrides.pop("s3", platform.s3), sqs=overrides.pop("sqs", platform.sqs), **overrides)


def ecs_services(platform: Platform, running: Mapping[str, int], desired: int = 1) -> Any:
    """The cluster with one service per customer: ``running[code]`` tasks of ``desired`` running.

    moto reports 0 running for a new service and ``desiredCount`` running after ``update_service``.
    """
    import boto3

    ecs = boto3.client("ecs", region_name=platform.box.region)
    ecs.create_cluster(clusterName=names.CLUSTER_NAME)
    ecs.register_task_definition(family="processor", containerDefinitions=[{"name": "p", "image": "x", "memory": 512}])
    for code in platform.box.customers:
        ecs.create_service(
            cluster=names.CLUSTER_NAME,
            serviceName=names.service_name(code),
            taskDefinition="processor",
            desiredCount=desired,
        )
        if running.get(code):
            ecs.update_service(cluster=names.CLUSTER_NAME, service=names.service_name(code), desiredCount=running[code])
            if running[code] != desired:  # desired back up, running stays
                ecs.update_service(cluster=names.CLUSTER_NAME, service=names.service_name(code), desiredCount=desired)
    return ecs


def s3_event(bucket: str, key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
                }
            ]
        }
    )


def depth(platform: Platform, url: str) -> tuple[int, int]:
    attrs = platform.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def drain(platform: Platform, url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message of a queue."""
    out: list[dict[str, Any]] = []
    while True:
        batch = platform.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return out
        for message in batch:
            platform.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        out += batch


def put_raw(platform: Platform, key: str, body: bytes | str) -> None:
    platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=body if isinstance(body, bytes) else body.encode())


UNSAFE_TRIGGER_KEYS = (
    "customers/hts/CHG 1 [bold red]boom[/].json",  # a space, and rich markup
    "customers/hts/CHG-2.json\x1b[2J",  # a terminal escape (clears the screen), and no .json at the end
    "customers/hts/../archive/CHG-3.json",  # traversal
    "customers/Not A Code/CHG-4.json",  # not a customer code
)
"""Hand-written objects under ``customers/`` that are not valid trigger keys (``runtime.contract.keys``)."""


def put_unsafe_triggers(platform: Platform, age_seconds: float = 0) -> list[str]:
    """Write every :data:`UNSAFE_TRIGGER_KEYS` object (``age_seconds`` old); returns their keys."""
    for key in UNSAFE_TRIGGER_KEYS:
        put_raw(platform, key, '{"change_id": "CHG-1", "customer_code": "hts", "revision": 1}')
        if age_seconds:
            backdate(platform, key, age_seconds)
    return list(UNSAFE_TRIGGER_KEYS)
