"""Issue 13, locally: the sandbox has the delivery-events queue and routes ``delivery/`` objects to the
coordinator; an email the processor sends carries the configuration set and tags that the SES event
simulator turns into the events the delivery-event consumer reads."""

from __future__ import annotations

import json

import boto3

from devtools import sandbox as sb
from devtools import ses_events
from runtime.contract import names
from runtime.contract.keys import DELIVERY_PREFIX, TriggerRef
from runtime.notify.email_tags import tags_from_event
from runtime.notify.ses import RateLimiter, SesMailer
from runtime.pipeline import Outcome
from tests.support.aws_platform import Platform


def test_the_sandbox_has_the_delivery_queue_and_gives_its_url_to_the_coordinator(platform: Platform) -> None:
    box = platform.box
    sqs = boto3.client("sqs", region_name=box.region)
    assert box.delivery_queue_url == sqs.get_queue_url(QueueName=names.DELIVERY_EVENTS_QUEUE_NAME)["QueueUrl"]
    assert box.delivery is not None
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=box.delivery_queue_url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert redrive["deadLetterTargetArn"].endswith(f":{names.DELIVERY_EVENTS_DLQ_NAME}")
    assert box.coordinator_env()["TTP_DELIVERY_QUEUE_URL"] == box.delivery_queue_url
    assert box.worker_env("hts")["TTP_CONFIGURATION_SET"] == names.configuration_set_name("hts")
    ses = platform.ses("hts")
    assert ses.get_configuration_set(ConfigurationSetName="ttp-hts")["ConfigurationSetName"] == "ttp-hts"


def test_delivery_objects_notify_the_coordinators_queue(aws_credentials: None) -> None:
    from moto import mock_aws

    with mock_aws():
        box = sb.create_sandbox(sb.sample_customers())
        assert box.coordinator is not None
        configs = boto3.client("s3").get_bucket_notification_configuration(Bucket=box.bucket)["QueueConfigurations"]
        [delivery] = [
            c
            for c in configs
            if any(
                r["Name"].lower() == "prefix" and r["Value"] == DELIVERY_PREFIX
                for r in c["Filter"]["Key"]["FilterRules"]
            )
        ]
        assert delivery["QueueArn"] == box.coordinator.queue_arn


def test_a_processed_trigger_yields_tagged_events_for_the_delivery_queue(platform: Platform) -> None:
    ses_events.record_send_parameters()
    platform.submit()
    processor = platform.processor("hts")
    client = platform.ses("hts")
    spec = platform.box.customers["hts"].spec
    processor.mailer = SesMailer(
        lambda: client, spec.sender, sb.DEFAULT_CONTACT_LIST_NAME, RateLimiter(1000), configuration_set="ttp-hts"
    )
    result = processor.process(TriggerRef("hts", "CHG-1"), "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.emails_sent == 2
    published = ses_events.publish_ses_events([spec.account], platform.box.delivery_queue_url)
    assert published.counts() == {"Send": 2, "Delivery": 2}
    for event in published.events:
        assert event["account"] == spec.account
        assert event["resources"] == [f"arn:aws:ses:us-east-1:{spec.account}:configuration-set/ttp-hts"]
        assert tags_from_event(event["detail"]["mail"]["tags"]) == ("CHG-1", "hts", 1)
    sqs = boto3.client("sqs", region_name="us-east-1")
    depth = sqs.get_queue_attributes(QueueUrl=platform.box.delivery_queue_url, AttributeNames=["All"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "4"
