"""The delivery-event consumer (SES events → ``delivery/{code}/{id}.json``) and the fold of its counts
into the archive, against moto."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from runtime.archive.delivery import DeliveryDocument, RecipientEvent, RecipientStatus
from runtime.archive.delivery_store import DeliveryStore
from runtime.archive.documents import ArchiveDocument, utcnow
from runtime.archive.processing import ProcessingDocument, SendProgress
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import keys, names
from runtime.contract.metric_names import MetricName
from runtime.contract.names import EMAIL_TAG_CHANGE_ID, EMAIL_TAG_CUSTOMER_CODE, EMAIL_TAG_REVISION
from runtime.contract.settings import CoordinatorSettings
from runtime.coordinator.composition import CoordinatorProcess, build_coordinator
from runtime.coordinator.delivery import DeliveryHandler
from runtime.pipeline import Outcome, Result
from runtime.telemetry.metrics import MetricsFactory
from tests.runtime.coordinator.conftest import (
    HTS_ACCOUNT,
    OTHER_ACCOUNT,
    make_handler,
    result,
    s3_event,
    ses_event,
    write_processing,
)
from tests.support.aws_platform import Platform


def consumer(platform: Platform, **kwargs: Any) -> DeliveryHandler:
    return DeliveryHandler(
        DeliveryStore(platform.s3, platform.bucket, sleep=lambda _s: None),
        MetricsFactory("CustomMetrics", platform.metrics_stream),
        **kwargs,
    )


def handle(handler: DeliveryHandler, event: dict[str, Any]) -> Result:
    (result,) = handler(json.dumps(event), "test-owner", None)
    return result


def delivery_doc(platform: Platform, change_id: str, code: str = "hts") -> dict[str, Any]:
    body = platform.s3.get_object(Bucket=platform.bucket, Key=keys.delivery_key(code, change_id))["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_every_event_type_is_recorded_per_recipient(platform: Platform, change_id: str) -> None:
    sent_to(platform, change_id)
    handler = consumer(platform)
    r = ["a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example", "f@x.example", "g@x.example"]
    events = [
        ses_event("Send", change_id, r, at="2026-11-30T12:00:00Z"),
        ses_event("Delivery", change_id, ["a@x.example", "b@x.example"], at="2026-11-30T12:00:02Z"),
        ses_event("Bounce", change_id, ["c@x.example"], bounce_type="Permanent", bounce_subtype="NoEmail"),
        ses_event("Bounce", change_id, ["d@x.example"], bounce_type="Transient", bounce_subtype="MailboxFull"),
        ses_event("Complaint", change_id, ["b@x.example"], at="2026-11-30T12:10:00Z"),
        ses_event("DeliveryDelay", change_id, ["e@x.example"]),
        ses_event("Subscription", change_id, ["a@x.example"], at="2026-11-30T12:20:00Z"),
        ses_event("Reject", change_id, ["f@x.example"], message_id="0100-msg-2"),
        ses_event("Rendering Failure", change_id, ["G@X.example"], message_id="0100-msg-3"),
    ]
    for e in events:
        assert handle(handler, e).outcome is Outcome.PROCESSED
    doc = delivery_doc(platform, change_id)
    statuses = {a: s["status"] for a, s in doc["revisions"]["1"].items()}
    assert statuses == {
        "a@x.example": "unsubscribed",
        "b@x.example": "complained",
        "c@x.example": "bounced",
        "d@x.example": "bounced",
        "e@x.example": "delayed",
        "f@x.example": "rejected",
        "g@x.example": "rendering_failed",
    }
    c = doc["revisions"]["1"]["c@x.example"]
    assert (c["bounce_type"], c["bounce_subtype"], c["message_id"]) == ("permanent", "NoEmail", "0100-msg-1")
    counts = doc["counts"]["1"]
    assert (counts["bounced_permanent"], counts["bounced_transient"], counts["complained"]) == (1, 1, 1)
    assert platform.metric_total("EmailsDelivered", "hts") == 2
    assert platform.metric_total("EmailsBounced", "hts") == 2
    assert platform.metric_total("EmailsComplained", "hts") == 1


def test_a_change_id_the_worker_had_to_encode_is_filed_under_that_change(platform: Platform) -> None:
    """SES tag values allow only letters, digits, ``_`` and ``-``: ``CHG.2026_1`` travels encoded."""
    change_id = "CHG.2026_1"
    sent_to(platform, change_id)
    assert handle(consumer(platform), ses_event("Delivery", change_id, ["a@x.example"])).outcome is Outcome.PROCESSED
    assert delivery_doc(platform, change_id)["revisions"]["1"]["a@x.example"]["status"] == "delivered"


def test_duplicates_and_late_events_change_nothing_and_count_once(platform: Platform, change_id: str) -> None:
    sent_to(platform, change_id)
    handler = consumer(platform)
    delivered = ses_event("Delivery", change_id, ["a@x.example"], at="2026-11-30T12:00:02Z")
    bounced = ses_event("Bounce", change_id, ["b@x.example"], at="2026-11-30T12:00:03Z")
    late_send = ses_event("Send", change_id, ["a@x.example", "b@x.example"], at="2026-11-30T12:00:00Z")
    assert handle(handler, delivered).outcome is Outcome.PROCESSED
    assert handle(handler, bounced).outcome is Outcome.PROCESSED
    before = delivery_doc(platform, change_id)
    assert handle(handler, delivered).outcome is Outcome.ALREADY_RECORDED
    assert handle(handler, bounced).outcome is Outcome.ALREADY_RECORDED
    assert handle(handler, late_send).outcome is Outcome.ALREADY_RECORDED  # older: never overwrites
    assert delivery_doc(platform, change_id) == before
    assert platform.metric_total("EmailsDelivered", "hts") == 1
    assert platform.metric_total("EmailsBounced", "hts") == 1


def test_concurrent_events_of_one_change_all_land(platform: Platform, change_id: str) -> None:
    sent_to(platform, change_id)
    handler = consumer(platform, linger_seconds=0.05)
    events = [ses_event("Delivery", change_id, [f"r{i}@x.example"]) for i in range(12)]
    results: list[Result] = []
    threads = [threading.Thread(target=lambda e=e: results.append(handle(handler, e))) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.outcome for r in results} == {Outcome.PROCESSED}
    assert delivery_doc(platform, change_id)["counts"]["1"]["delivered"] == 12
    assert handler.batcher.writes < 12
    assert platform.metric_total("EmailsDelivered", "hts") == 12


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda e: e.update(source="aws.s3"), "source is 'aws.s3'"),
        (lambda e: e["detail"].update(eventType="Open"), "eventType 'Open'"),
        (lambda e: e.update({"detail-type": "Email Delivered"}), "does not match eventType 'Bounce'"),
        (lambda e: e["detail"]["mail"]["tags"].pop(EMAIL_TAG_CHANGE_ID), "['ttp-change-id'] must hold exactly one"),
        (lambda e: e["detail"]["mail"].pop("tags"), "tags is missing"),
        (lambda e: e["detail"]["mail"]["tags"].update({EMAIL_TAG_CUSTOMER_CODE: ["../x"]}), "not an encoded tag value"),
        (lambda e: e["detail"]["mail"]["tags"].update({EMAIL_TAG_CUSTOMER_CODE: ["_Li4veA"]}), "invalid email tag"),
        (lambda e: e["detail"]["mail"]["tags"].update({EMAIL_TAG_REVISION: ["one"]}), "must be a whole number"),
        (lambda e: e["detail"]["mail"]["tags"].update({EMAIL_TAG_CHANGE_ID: ["_Q0hH/jE"]}), "not an encoded tag value"),
        (lambda e: e["detail"]["mail"]["tags"].update({EMAIL_TAG_CUSTOMER_CODE: ["hts", "x"]}), "exactly one value"),
        (lambda e: e.update(account="not-an-account"), "not an AWS account id"),
        (lambda e: e["detail"]["bounce"].update(bouncedRecipients=[]), "bouncedRecipients is missing or empty"),
        (lambda e: e["detail"]["bounce"].update(timestamp="yesterday"), "not an ISO 8601 time"),
    ],
)
def test_unknown_or_foreign_events_are_poison_with_a_reason(
    platform: Platform, change_id: str, mangle: Callable[[dict[str, Any]], None], reason: str
) -> None:
    event = ses_event("Bounce", change_id, ["a@x.example"])
    mangle(event)
    handler = consumer(platform)
    result = handle(handler, event)
    assert result.outcome is Outcome.POISON and result.fate.value == "dead_letter"
    assert reason in result.reason
    handle(handler, event)  # SQS hands it back until maxReceiveCount: counted once
    assert refused_total(platform) == 1
    listed = platform.s3.list_objects_v2(Bucket=platform.bucket, Prefix=keys.delivery_key("hts", change_id))
    assert listed.get("KeyCount", 0) == 0


def test_a_body_that_is_no_event_is_poison(platform: Platform) -> None:
    (result,) = consumer(platform)("not json", "owner", None)
    assert result.outcome is Outcome.POISON and "not JSON" in result.reason


def test_an_account_reporting_on_another_customers_emails_is_poison(platform: Platform, change_id: str) -> None:
    sent_to(platform, change_id)
    handler = consumer(platform, customer_accounts={"hts": HTS_ACCOUNT, "htsnonprod": OTHER_ACCOUNT})
    foreign = ses_event("Complaint", change_id, ["a@x.example"], account=OTHER_ACCOUNT)
    result = handle(handler, foreign)
    assert result.outcome is Outcome.POISON and "whose account is not 444444444444" in result.reason
    assert refused_total(platform) == 1
    assert handle(handler, ses_event("Complaint", change_id, ["a@x.example"])).outcome is Outcome.PROCESSED


def test_delivery_counts_fold_into_the_archive_once_and_survive_resubmission(
    platform: Platform, change_id: str
) -> None:
    sent_to(platform, change_id, customers=["hts", "htsnonprod"])
    handler = consumer(platform)
    handle(handler, ses_event("Delivery", change_id, ["a@x.example", "b@x.example"]))
    handle(handler, ses_event("Bounce", change_id, ["c@x.example"], bounce_type="Transient"))
    coordinator = make_handler(platform)
    key = keys.delivery_key("hts", change_id)
    (folded,) = coordinator(s3_event(platform.bucket, key), "owner", None)
    assert folded.outcome is Outcome.PROCESSED, folded
    counts = platform.archive(change_id)["delivery"]["hts"]["1"]
    assert (counts["delivered"], counts["bounced"], counts["bounced_transient"]) == (2, 1, 1)
    etag = platform.s3.head_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))["ETag"]
    (again,) = coordinator(s3_event(platform.bucket, key), "owner", None)
    assert again.outcome is Outcome.ALREADY_RECORDED
    assert platform.s3.head_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))["ETag"] == etag
    platform.submit(change_id, title="Resubmitted")
    archive = platform.archive(change_id)
    assert archive["revision"] == 2 and archive["delivery"]["hts"]["1"]["delivered"] == 2


def test_stale_counts_never_replace_fresher_ones(platform: Platform, change_id: str) -> None:
    from runtime.archive.documents import DeliveryCounts
    from runtime.coordinator.delivery_fold import CustomerDeliveryCounts

    platform.submit(change_id)
    coordinator = make_handler(platform)
    fresh = CustomerDeliveryCounts("hts", {"1": DeliveryCounts(sequence=5, recipients=3, delivered=3)})
    stale = CustomerDeliveryCounts("hts", {"1": DeliveryCounts(sequence=4, recipients=3, delivered=1)})
    assert coordinator.delivery_fold.submit(change_id, fresh).folded == [("hts", "1")]
    assert coordinator.delivery_fold.submit(change_id, stale).folded == []
    assert platform.archive(change_id)["delivery"]["hts"]["1"]["delivered"] == 3
    newer = CustomerDeliveryCounts("hts", {"9": DeliveryCounts(sequence=6)})
    assert coordinator.delivery_fold.submit(change_id, newer).refused == [("hts", "9")]


def test_the_coordinator_runs_the_delivery_consumer_beside_the_fold(platform: Platform, change_id: str) -> None:
    """Both workers in one process: an SES event on the delivery queue ends up in delivery/ and, through
    the bucket's delivery/ notification to the coordinator queue, in the archive's counts."""
    sqs = platform.sqs
    delivery_dlq = sqs.create_queue(QueueName=f"ttp-delivery-events-dlq-{change_id.lower()}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=delivery_dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    delivery_queue = sqs.create_queue(
        QueueName=f"ttp-delivery-events-{change_id.lower()}",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})},
    )["QueueUrl"]
    coordinator_queue = platform.box.coordinator.queue_url
    coordinator_arn = platform.box.coordinator.queue_arn
    platform.s3.put_bucket_notification_configuration(
        Bucket=platform.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": coordinator_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": keys.DELIVERY_PREFIX}]}},
                }
            ]
        },
    )
    try:
        sent_to(platform, change_id)
        settings = CoordinatorSettings(
            bucket_name=platform.bucket,
            queue_url=coordinator_queue,
            delivery_queue_url=delivery_queue,
            customer_accounts={"hts": HTS_ACCOUNT},
            receive_wait_seconds=0,
            retry_base_seconds=0,
            drain_seconds=5,
            fold_linger_seconds=0,
            max_concurrency=2,
        )
        process = build_coordinator(settings, boto3.session.Session(region_name=platform.box.region))
        assert isinstance(process, CoordinatorProcess) and len(process.workers) == 2
        sqs.send_message(
            QueueUrl=delivery_queue, MessageBody=json.dumps(ses_event("Delivery", change_id, ["a@x.example"]))
        )
        sqs.send_message(QueueUrl=delivery_queue, MessageBody=json.dumps(ses_event("Open", change_id, ["a@x.example"])))
        runner = threading.Thread(target=process.run, daemon=True)
        runner.start()

        def folded() -> bool:
            return platform.archive(change_id).get("delivery", {}).get("hts", {}).get("1", {}).get("delivered") == 1

        deadline = time.monotonic() + 30
        while not folded() and time.monotonic() < deadline:
            time.sleep(0.2)
        dead = sqs.receive_message(QueueUrl=delivery_dlq, WaitTimeSeconds=2).get("Messages", [])
        process.request_stop()
        runner.join(timeout=30)
        assert not runner.is_alive(), "the coordinator process did not drain and stop"
        assert folded()
        assert delivery_doc(platform, change_id)["revisions"]["1"]["a@x.example"]["status"] == "delivered"
        assert [json.loads(m["Body"])["detail"]["eventType"] for m in dead] == ["Open"]
    finally:
        platform.s3.put_bucket_notification_configuration(
            Bucket=platform.bucket, NotificationConfiguration={"QueueConfigurations": []}
        )


def test_a_subscription_event_without_an_opt_out_records_nothing(platform: Platform, change_id: str) -> None:
    sent_to(platform, change_id)
    event = ses_event("Subscription", change_id, ["a@x.example"])
    event["detail"]["subscription"]["newTopicPreferences"] = {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [{"topicName": "change-notifications", "subscriptionStatus": "OptIn"}],
    }
    assert handle(consumer(platform), event).outcome is Outcome.ALREADY_RECORDED
    opted_out = ses_event("Subscription", change_id, ["a@x.example"])
    opted_out["detail"]["subscription"]["newTopicPreferences"] = {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [{"topicName": "change-notifications", "subscriptionStatus": "OptOut"}],
    }
    assert handle(consumer(platform), opted_out).outcome is Outcome.PROCESSED
    assert delivery_doc(platform, change_id)["revisions"]["1"]["a@x.example"]["status"] == "unsubscribed"


class _StubWorker:
    def __init__(self, queue_url: str, fail: bool = False) -> None:
        self.queue_url = queue_url
        self.fail = fail
        self.stopping = threading.Event()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        if self.fail:
            raise RuntimeError("receive loop broke")
        self.stopping.wait(10)

    def request_stop(self) -> None:
        self.stopping.set()


def test_a_failing_worker_stops_the_other_and_the_error_surfaces() -> None:
    healthy, broken = _StubWorker("q-coordinator"), _StubWorker("q-delivery", fail=True)
    process = CoordinatorProcess([healthy, broken])  # type: ignore[list-item]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="receive loop broke"):
        process.run()
    assert healthy.stopping.is_set() and time.monotonic() - started < 5


def test_without_a_delivery_queue_the_coordinator_runs_one_worker(platform: Platform) -> None:
    settings = CoordinatorSettings(bucket_name=platform.bucket, queue_url=platform.box.coordinator.queue_url)
    process = build_coordinator(settings, boto3.session.Session(region_name=platform.box.region))
    assert [w.queue_url for w in process.workers] == [platform.box.coordinator.queue_url]


def test_the_coordinator_refuses_bad_delivery_objects_and_keys(platform: Platform, change_id: str) -> None:
    sent_to(platform, change_id)
    coordinator = make_handler(platform)
    (unsafe,) = coordinator(s3_event(platform.bucket, "delivery/hts/../x.json"), "owner", None)
    assert unsafe.outcome is Outcome.POISON and "unsafe key" in unsafe.reason
    key = keys.delivery_key("hts", change_id)
    (absent,) = coordinator(s3_event(platform.bucket, key), "owner", None)
    assert absent.outcome is Outcome.ALREADY_RECORDED
    platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=b'{"customer_code": "hts"}')
    (invalid,) = coordinator(s3_event(platform.bucket, key), "owner", None)
    assert invalid.outcome is Outcome.PERMANENT_ERROR and "not a valid delivery document" in invalid.reason
    refused = handle(consumer(platform), ses_event("Delivery", change_id, ["a@x.example"]))
    assert refused.outcome is Outcome.PERMANENT_ERROR  # the consumer never overwrites an invalid object
    platform.s3.delete_object(Bucket=platform.bucket, Key=key)
    assert handle(consumer(platform), ses_event("Delivery", change_id, ["a@x.example"])).outcome is Outcome.PROCESSED
    platform.s3.delete_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))  # withdrawn meanwhile
    (no_archive,) = coordinator(s3_event(platform.bucket, key), "owner", None)
    assert no_archive.outcome is Outcome.ALREADY_RECORDED and "no archive" in no_archive.reason


# --- Issue 17 item 2: an event is recorded only for a (customer, change, revision) really sent to ------------


def sent_to(platform: Platform, change_id: str, customers: list[str] | None = None, **fields: Any) -> None:
    """Submit ``change_id`` and record, for each targeted customer, a result with emails sent."""
    targets = customers or ["hts"]
    platform.submit(change_id, customers=targets, **fields)
    revision = platform.archive(change_id)["revision"]
    for code in targets:
        write_processing(platform, code, change_id, result(revision))


def delivery_exists(platform: Platform, change_id: str, code: str = "hts") -> bool:
    listed = platform.s3.list_objects_v2(Bucket=platform.bucket, Prefix=keys.delivery_key(code, change_id))
    return bool(listed.get("KeyCount", 0))


def refused_total(platform: Platform) -> float:
    return platform.metric_total(MetricName.DELIVERY_EVENTS_REFUSED, names.COORDINATOR_METRICS_DIMENSION_VALUE)


def test_a_bounce_naming_a_change_that_does_not_target_the_customer_is_refused(
    platform: Platform, change_id: str
) -> None:
    """Issue 17 item 2 (a): customer A's own SES account reports a bounce whose tags name CHG-B, which
    targets only another customer. Before: recorded in delivery/A/CHG-B.json and folded into CHG-B's archive."""
    sent_to(platform, change_id, customers=["htsnonprod"])
    handler = consumer(platform, customer_accounts={"hts": HTS_ACCOUNT, "htsnonprod": OTHER_ACCOUNT})
    refused = handle(handler, ses_event("Bounce", change_id, ["victim@x.example"], code="hts"))
    assert refused.outcome is Outcome.POISON and refused.fate.value == "dead_letter", refused
    assert "hts" in refused.reason and "not targeted" in refused.reason and "revision 1" in refused.reason
    assert not delivery_exists(platform, change_id, "hts")
    (folded,) = make_handler(platform)(s3_event(platform.bucket, keys.delivery_key("hts", change_id)), "o", None)
    assert folded.outcome is Outcome.ALREADY_RECORDED, folded  # nothing to fold: nothing was recorded
    assert "hts" not in platform.archive(change_id).get("delivery", {})
    assert refused_total(platform) == 1
    legit = ses_event("Bounce", change_id, ["b@x.example"], code="htsnonprod", account=OTHER_ACCOUNT)
    assert handle(handler, legit).outcome is Outcome.PROCESSED


def test_a_bounce_for_a_change_not_yet_submitted_never_reaches_its_archive(platform: Platform, change_id: str) -> None:
    """Issue 17 item 2 (b): a bounce for a change id that does not exist yet. Before: recorded in
    delivery/A/CHG-NEW.json, and once CHG-NEW was submitted its archive showed that bounce."""
    handler = consumer(platform)
    early = handle(handler, ses_event("Bounce", change_id, ["victim@x.example"]))
    assert early.outcome is Outcome.POISON, early
    assert "no archive" in early.reason and change_id in early.reason
    assert not delivery_exists(platform, change_id)
    sent_to(platform, change_id)
    assert handle(handler, ses_event("Delivery", change_id, ["a@x.example"])).outcome is Outcome.PROCESSED
    coordinator = make_handler(platform)
    (folded,) = coordinator(s3_event(platform.bucket, keys.delivery_key("hts", change_id)), "o", None)
    assert folded.outcome is Outcome.PROCESSED, folded
    counts = platform.archive(change_id)["delivery"]["hts"]["1"]
    assert (counts["delivered"], counts["bounced"], counts["recipients"]) == (1, 0, 1)
    assert "victim@x.example" not in delivery_doc(platform, change_id)["revisions"]["1"]


def test_an_event_before_the_processors_checkpoint_is_retried_then_recorded(platform: Platform, change_id: str) -> None:
    """SES publishes seconds after the send, possibly before the processor's next checkpoint: such an
    event is left for redelivery (the worker's backoff; the DLQ only after maxReceiveCount), not lost."""
    platform.submit(change_id, customers=["hts"])
    handler = consumer(platform)
    event = ses_event("Delivery", change_id, ["a@x.example"])
    first = handle(handler, event)
    assert first.outcome is Outcome.RETRY and "not yet shown as sent" in first.reason, first
    claimed = ProcessingDocument(
        customer_code="hts",
        change_id=change_id,
        progress=SendProgress(revision=1, recipients=2, recipients_digest="d", done=0),
    )
    _put_processing(platform, claimed)
    assert handle(handler, event).outcome is Outcome.RETRY
    assert not delivery_exists(platform, change_id)
    assert refused_total(platform) == 0
    checkpointed = claimed.model_copy(
        update={"progress": SendProgress(revision=1, recipients=2, recipients_digest="d", done=1)}
    )
    _put_processing(platform, checkpointed)
    assert handle(handler, event).outcome is Outcome.PROCESSED
    assert delivery_doc(platform, change_id)["revisions"]["1"]["a@x.example"]["status"] == "delivered"


def test_a_checkpoint_of_rejections_only_does_not_show_a_send(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    rejected_only = ProcessingDocument(
        customer_code="hts",
        change_id=change_id,
        progress=SendProgress(revision=1, recipients=2, recipients_digest="d", done=1, rejected=["a@x.example"]),
    )
    _put_processing(platform, rejected_only)
    assert handle(consumer(platform), ses_event("Delivery", change_id, ["a@x.example"])).outcome is Outcome.RETRY


@pytest.mark.parametrize(
    ("setup", "event_revision", "reason"),
    [
        ("newer", 2, "newer than the archive's revision 1"),
        ("unsent", 1, "records no email sent"),
        ("reused", 2, "revision 2 precedes the archive's first submitted revision 3"),
    ],
)
def test_final_refusals_go_to_the_dlq_with_their_reason(
    platform: Platform, change_id: str, setup: str, event_revision: int, reason: str
) -> None:
    if setup == "newer":
        sent_to(platform, change_id)
    elif setup == "unsent":
        platform.submit(change_id, customers=["hts"])
        write_processing(platform, "hts", change_id, result(1, sent=0))
    else:  # withdrawn (archive deleted) and submitted again: revisions continue, 2 is the old submission's
        _put_archive(platform, change_id, revision=3, customers=["hts"])
        write_processing(platform, "hts", change_id, result(2), result(3))
    refused = handle(consumer(platform), ses_event("Bounce", change_id, ["a@x.example"], revision=event_revision))
    assert refused.outcome is Outcome.POISON and reason in refused.reason, refused
    assert not delivery_exists(platform, change_id)
    assert refused_total(platform) == 1


def test_a_refused_event_is_counted_once_however_often_it_is_received(platform: Platform, change_id: str) -> None:
    handler = consumer(platform)
    event = ses_event("Complaint", change_id, ["a@x.example"])
    for _ in range(3):
        assert handle(handler, event).outcome is Outcome.POISON
    assert refused_total(platform) == 1
    handle(handler, ses_event("Complaint", change_id, ["b@x.example"]))
    assert refused_total(platform) == 2


def test_the_check_reads_the_archive_and_the_processing_object_once_per_customer_revision(
    platform: Platform, change_id: str
) -> None:
    """Requests per event: the first event of a (customer, change, revision) reads the archive (and the
    processing object when the archive has not folded the result yet); every later one reads nothing more."""
    sent_to(platform, change_id)
    counter = _S3Reads(platform.s3)
    handler = DeliveryHandler(
        DeliveryStore(counter, platform.bucket, sleep=lambda _s: None),
        MetricsFactory("CustomMetrics", platform.metrics_stream),
    )
    events = [ses_event(kind, change_id, [f"r{i}@x.example"]) for i in range(10) for kind in ("Send", "Delivery")]
    for e in events:
        assert handle(handler, e).outcome is Outcome.PROCESSED
    assert counter.gets["archive"] == 1 and counter.gets["processing"] == 1, counter.gets
    assert counter.gets["delivery"] == counter.puts == len(events)  # the delivery object's read-modify-write
    assert (sum(counter.gets.values()) + counter.puts) / len(events) == 2.1  # 2.0 without the check
    platform.fold(change_id, ["hts"])
    other = f"{change_id}-B"
    sent_to(platform, other)
    platform.fold(other, ["hts"])
    before = dict(counter.gets)
    assert handle(handler, ses_event("Delivery", other, ["a@x.example"])).outcome is Outcome.PROCESSED
    assert counter.gets["archive"] - before["archive"] == 1
    # the folded entry is in a fold segment, not the document: the processing object (one GET) answers
    assert counter.gets["processing"] == before["processing"] + 1


def test_the_fold_skips_counts_of_a_customer_the_revision_did_not_target(platform: Platform, change_id: str) -> None:
    """A delivery object written before this check (or by hand) for a customer the revision did not
    target is not folded into the archive."""
    sent_to(platform, change_id, customers=["htsnonprod"])
    stale = DeliveryDocument.model_validate({"customer_code": "hts", "change_id": change_id})
    stale, _ = stale.apply(
        [
            RecipientEvent(
                "victim@x.example",
                RecipientStatus(
                    status="bounced", event_time=utcnow(), message_id="m", revision=1, bounce_type="permanent"
                ),
            )
        ]
    )
    key = keys.delivery_key("hts", change_id)
    platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=json.dumps(stale.to_json_dict()).encode())
    (folded,) = make_handler(platform)(s3_event(platform.bucket, key), "o", None)
    assert "hts" not in platform.archive(change_id).get("delivery", {}), folded


class _S3Reads:
    """Counts the GETs per kind of object."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.gets = {"archive": 0, "processing": 0, "delivery": 0}
        self.puts = 0

    def get_object(self, **kwargs: Any) -> Any:
        self.gets[str(kwargs["Key"]).split("/", 1)[0]] += 1
        return self._target.get_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        self.puts += 1
        return self._target.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _put_processing(platform: Platform, doc: ProcessingDocument) -> None:
    platform.s3.put_object(
        Bucket=platform.bucket,
        Key=keys.processing_key(doc.customer_code, doc.change_id),
        Body=json.dumps(doc.to_json_dict()).encode(),
    )


def _put_archive(platform: Platform, change_id: str, *, revision: int, customers: list[str]) -> None:
    doc = ArchiveDocument.model_validate(
        {
            "change_id": change_id,
            "title": "Resubmitted",
            "customers": customers,
            "revision": revision,
            "modifications": [
                {"user_id": "tester", "modification_type": "submitted", "revision": revision, "customers": customers}
            ],
        }
    )
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.archive_key(change_id), Body=doc.to_json_bytes())


class _SlowStores:
    """An archive and a processing store in memory that count their reads and take a while to answer."""

    def __init__(self, archive: ArchiveDocument | None, processing: ProcessingDocument | None) -> None:
        self.archive_doc, self.processing_doc = archive, processing
        self.reads = 0
        self.fail: Exception | None = None
        self.callers_entered: threading.Semaphore | None = None
        self.callers = 0
        self._first_read = threading.Lock()

    def load_optional(self, *args: str) -> Any:
        with self._first_read:
            self.reads += 1
            gate, self.callers_entered = self.callers_entered, None
        if gate is not None:  # hold the first read until every caller has asked (a loaded machine starts
            for _ in range(self.callers):  # threads late: one starting after the read would read again)
                gate.acquire()
            time.sleep(0.25)  # and long enough for the last caller to reach the shared check
        time.sleep(0.05)
        if self.fail is not None:
            raise self.fail
        doc = self.archive_doc if len(args) == 1 else self.processing_doc
        return None if doc is None else type("Versioned", (), {"document": doc})()


def test_concurrent_checks_of_one_revision_share_one_read_and_only_confirmations_are_kept() -> None:
    from runtime.coordinator.delivery_check import NOT_YET, SENT, SentCheck

    archive = ArchiveDocument.model_validate(
        {
            "change_id": "CHG-1",
            "title": "t",
            "customers": ["hts"],
            "revision": 1,
            "modifications": [{"user_id": "u", "modification_type": "submitted", "revision": 1, "customers": ["hts"]}],
        }
    )
    progress = ProcessingDocument(
        customer_code="hts",
        change_id="CHG-1",
        progress=SendProgress(revision=1, recipients=2, recipients_digest="d", done=0),
    )
    archive_store, processing_store = _SlowStores(archive, progress), _SlowStores(None, progress)
    check = SentCheck(archive_store, processing_store, cache_size=1)  # type: ignore[arg-type]
    verdicts: list[str] = []
    entered = archive_store.callers_entered = threading.Semaphore(0)
    archive_store.callers = 8

    def ask() -> None:
        entered.release()
        verdicts.append(check.check("hts", "CHG-1", 1).decision)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts == [NOT_YET] * 8 and archive_store.reads == 1  # one check, shared while it ran
    assert check.check("hts", "CHG-1", 1).decision == NOT_YET and archive_store.reads == 2  # not kept
    progress.progress = SendProgress(revision=1, recipients=2, recipients_digest="d", done=1)
    assert check.check("hts", "CHG-1", 1).decision == SENT and archive_store.reads == 3
    assert check.check("hts", "CHG-1", 1).decision == SENT and archive_store.reads == 3  # kept
    archive_store.fail = OSError("S3 unreachable")
    with pytest.raises(OSError):
        check.check("hts", "CHG-1", 2)
    archive_store.fail = None
    assert check.check("hts", "CHG-1", 2).decision == "refused"  # newer than the archive
    archive.revision = 2
    archive.modifications.append(archive.modifications[0].model_copy(update={"revision": 2}))
    progress.results = {"2": result(2)}
    assert check.check("hts", "CHG-1", 2).decision == SENT
    reads = archive_store.reads
    assert check.check("hts", "CHG-1", 1).decision == SENT and archive_store.reads == reads + 1  # evicted (size 1)


def test_an_email_of_a_newer_revision_sent_on_an_earlier_submissions_trigger_is_recorded(
    platform: Platform, change_id: str
) -> None:
    """``submit --customers htsnonprod`` while hts's trigger of revision 1 is still queued: hts's processor
    sends the newest revision (2), which its ``submitted`` entry does not name. Its events are the
    customer's own emails (the results' fold counts such a result too)."""
    platform.submit(change_id, customers=["hts", "htsnonprod"])
    document = {"change_id": change_id, "title": "Again", "customers": ["hts", "htsnonprod"]}
    stores = ArchiveStore(platform.s3, platform.bucket), TriggerStore(platform.s3, platform.bucket)
    submit_change(*stores, document, user_id="tester", customers=["htsnonprod"])  # still lists hts
    write_processing(platform, "hts", change_id, result(2))
    handler = consumer(platform)
    assert handle(handler, ses_event("Delivery", change_id, ["a@x.example"], revision=2)).outcome is Outcome.PROCESSED
    key = keys.delivery_key("hts", change_id)
    (folded,) = make_handler(platform)(s3_event(platform.bucket, key), "o", None)
    assert platform.archive(change_id)["delivery"]["hts"]["2"]["delivered"] == 1, folded
    dropped = f"{change_id}-D"
    platform.submit(dropped, customers=["hts", "htsnonprod"])
    platform.submit(dropped, customers=["htsnonprod"])  # the document no longer lists hts
    write_processing(platform, "hts", dropped, result(2))
    refused = handle(handler, ses_event("Delivery", dropped, ["a@x.example"], revision=2))
    assert refused.outcome is Outcome.POISON and "does not list" in refused.reason, refused
