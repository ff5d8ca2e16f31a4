"""Issue 13, locally, on the deployed sample assembly (tests/support/deployed.py): the stacks deploy the
delivery-events queue and route ``delivery/`` objects to the coordinator; an email the deployed processor
sends carries the configuration set and tags that the SES event simulator turns into the events the
delivery-event consumer reads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from devtools import ses_events
from devtools.emulator import LocalAws
from devtools.local_deploy.resolve import queue_arn_of_url
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import names
from runtime.contract.keys import DELIVERY_PREFIX
from runtime.notify.email_tags import tags_from_event
from tests.support import deployed as dp

ROOT = Path(__file__).resolve().parents[2]
sample_assembly = dp.sample_assembly  # synthesized once per session
deploy_server = dp.deploy_server  # the emulator over HTTP, one per module, in this process


@pytest.fixture(scope="module")
def box(deploy_server: LocalAws, sample_assembly: Path) -> Iterator[dp.Deployed]:
    """Deployed once for the module: the first two tests only read it, the third adds its own change."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        deployed = dp.deploy_sample(deploy_server, sample_assembly, dp.customer_specs(dp.sandbox_contacts()))
        yield dp.use_operator(deployed, monkeypatch)


def test_the_stacks_deploy_the_delivery_queue_and_give_its_url_to_the_coordinator(box: dp.Deployed) -> None:
    sqs = boto3.client("sqs", region_name=box.region)
    delivery_queue_url = box.plan(None).environment["TTP_DELIVERY_QUEUE_URL"]
    assert delivery_queue_url.endswith(f"/{names.DELIVERY_EVENTS_QUEUE_NAME}")
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=delivery_queue_url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert redrive["deadLetterTargetArn"].endswith(f":{names.DELIVERY_EVENTS_DLQ_NAME}")
    assert box.plan("hts").environment["TTP_CONFIGURATION_SET"] == names.configuration_set_name("hts")
    ses = box.aws.client("sesv2", box.customers["hts"].account, box.region)
    assert ses.get_configuration_set(ConfigurationSetName="ttp-hts")["ConfigurationSetName"] == "ttp-hts"


def test_delivery_objects_notify_the_coordinators_queue(box: dp.Deployed) -> None:
    configs = boto3.client("s3").get_bucket_notification_configuration(Bucket=box.bucket)["QueueConfigurations"]
    [delivery] = [
        c
        for c in configs
        if any(
            r["Name"].lower() == "prefix" and r["Value"] == DELIVERY_PREFIX for r in c["Filter"]["Key"]["FilterRules"]
        )
    ]
    assert delivery["QueueArn"] == queue_arn_of_url(box.queue_url(None), box.region)


def test_a_processed_trigger_yields_tagged_events_for_the_delivery_queue(box: dp.Deployed) -> None:
    """``python -m runtime process`` with the deployed processor's environment and task role sends the
    emails; the emulator's SES publishes their events (no call by the test), tagged, to the deployed
    delivery-events queue."""
    s3 = boto3.client("s3")
    change = {"change_id": "CHG-1", "title": "Change CHG-1", "customers": ["hts", "htsnonprod"]}
    submit_change(ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket), change, user_id="tester")
    command = [sys.executable, "-m", "runtime", "process", "--customer", "hts", "--change-id", "CHG-1", "--json"]
    done = subprocess.run(command, env=box.service_env("hts"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["outcome"], result["emails_sent"]) == ("processed", 2), result
    spec = box.customers["hts"]
    delivery_queue_url = box.plan(None).environment["TTP_DELIVERY_QUEUE_URL"]
    published = ses_events.published_events([spec.account])
    assert published.counts() == {"Send": 2, "Delivery": 2}
    for event in published.events:
        assert event["account"] == spec.account
        assert event["resources"] == [f"arn:aws:ses:us-east-1:{spec.account}:configuration-set/ttp-hts"]
        assert tags_from_event(event["detail"]["mail"]["tags"]) == ("CHG-1", "hts", 1)
    sqs = boto3.client("sqs", region_name="us-east-1")
    depth = sqs.get_queue_attributes(QueueUrl=delivery_queue_url, AttributeNames=["All"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "4"
