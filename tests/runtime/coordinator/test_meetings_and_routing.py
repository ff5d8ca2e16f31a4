"""The coordinator's meeting half (re-create a deleted event, cancel after a crashed creation, Graph down)
and its routing (poison keys), against moto and the fake Graph."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools import sandbox as sb
from devtools.fake_graph import FakeGraph
from runtime.archive.store import ArchiveStore
from runtime.contract import keys
from runtime.contract.names import COORDINATOR_METRICS_DIMENSION_VALUE
from runtime.notify.attendees import ContactDirectory
from runtime.notify.graph import GraphCalendar, GraphClient, MsalTokenProvider, TimeoutSession, graph_scope
from runtime.notify.meetings import MeetingCoordinator, transaction_id
from runtime.pipeline import Outcome, Result
from tests.runtime.coordinator.conftest import make_handler, processed, result, s3_event, write_processing
from tests.support.aws_platform import Faulty, Platform

MEETING = {"start_time": "2026-12-01T10:00:00Z", "end_time": "2026-12-01T11:00:00Z", "subject": "Bridge"}


class Crash(BaseException):
    """A process dying: not an Exception, so no handler in the runtime runs."""


def coordinator(platform: Platform, fake: FakeGraph, s3: Any = None) -> MeetingCoordinator:
    tokens = MsalTokenProvider(
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        authority_host=fake.authority_host,
        scope=graph_scope(fake.graph_base_url),
        http_client=TimeoutSession(ca_bundle=fake.ca_path),
    )
    client = GraphClient(
        fake.graph_base_url,
        tokens,
        session_factory=lambda: TimeoutSession(ca_bundle=fake.ca_path),
        sleep=lambda _s: None,
        backoff_base=0.0,
    )
    roles = {code: c.spec.contact_role_arn for code, c in platform.box.customers.items()}
    return MeetingCoordinator(
        ArchiveStore(s3 or platform.s3, platform.bucket, sleep=lambda _s: None),
        GraphCalendar(client, fake.organizer),
        ContactDirectory(
            roles, "ttp-contact-reader-external-id", sb.DEFAULT_CONTACT_LIST_NAME, region=platform.box.region
        ),
        organizer=fake.organizer,
        lease_seconds=60,
        wait_seconds=0.0,
    )


def archive_event(platform: Platform, fake: FakeGraph, change_id: str, owner: str, s3: Any = None) -> Result:
    handler = make_handler(platform, s3=s3, meetings=coordinator(platform, fake, s3))
    [res] = handler(s3_event(platform.bucket, keys.archive_key(change_id)), owner, None)
    return res


def delete_in_calendar(fake: FakeGraph, event_id: str) -> None:
    """The organizer deletes the event in Outlook (no cancellation, it is just gone)."""
    with fake._lock:
        del fake._events[event_id]


def entries(platform: Platform, change_id: str, kind: str) -> list[dict[str, Any]]:
    return [m for m in platform.archive(change_id)["modifications"] if m["modification_type"] == kind]


def test_event_deleted_in_the_calendar_is_recreated_on_the_next_update(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    platform.submit(change_id, customers=["hts"], meeting=MEETING)
    assert archive_event(platform, fake, change_id, "sqs:1").outcome is Outcome.PROCESSED
    [first] = fake.events()
    delete_in_calendar(fake, first["id"])

    moved = {**MEETING, "start_time": "2026-12-02T10:00:00Z", "end_time": "2026-12-02T11:00:00Z"}
    platform.submit(change_id, customers=["hts"], meeting=moved)
    res = archive_event(platform, fake, change_id, "sqs:2")
    assert res.outcome is Outcome.PROCESSED, res
    [second] = fake.events()
    assert second["id"] != first["id"] and second["transactionId"] == transaction_id(change_id, 1)
    assert second["start"]["dateTime"].startswith("2026-12-02T10:00:00")
    meta = platform.archive(change_id)["meeting_metadata"]
    assert meta["meeting_id"] == second["id"] and meta["generation"] == 1 and meta["revision"] == 2
    recreated = entries(platform, change_id, "meeting_scheduled")[-1]
    assert recreated["replaced_meeting_id"] == first["id"] and recreated["user_id"] == "coordinator"
    assert platform.metric_total("MeetingReconciled", COORDINATOR_METRICS_DIMENSION_VALUE) == 2


def test_event_deleted_in_the_calendar_is_recreated_even_when_the_meeting_did_not_change(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    platform.submit(change_id, customers=["hts"], meeting=MEETING)
    archive_event(platform, fake, change_id, "sqs:1")
    [first] = fake.events()
    delete_in_calendar(fake, first["id"])
    platform.submit(change_id, customers=["hts"], meeting=MEETING, summary="only the text changed")
    assert archive_event(platform, fake, change_id, "sqs:2").outcome is Outcome.PROCESSED
    [second] = fake.events()
    assert platform.archive(change_id)["meeting_metadata"]["meeting_id"] == second["id"] != first["id"]


def test_a_revision_that_drops_the_meeting_cancels_the_live_event_and_a_later_one_asks_again(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    """A submission states the whole content (docs/design.md §3): dropping ``meeting`` is a change to the request."""
    platform.submit(change_id, customers=["hts"], meeting=MEETING)
    assert archive_event(platform, fake, change_id, "sqs:1").outcome is Outcome.PROCESSED
    [first] = fake.events()

    platform.submit(change_id, customers=["hts"])  # revision 2: no meeting any more
    res = archive_event(platform, fake, change_id, "sqs:2")
    assert res.outcome is Outcome.PROCESSED and "cancel" in res.reason, res
    assert fake.events(include_cancelled=False) == []
    stored = platform.archive(change_id)
    assert stored["meeting_metadata"]["cancelled"] is True and stored["meeting_metadata"]["revision"] == 2
    [cancelled] = entries(platform, change_id, "meeting_cancelled")
    assert cancelled["user_id"] == "coordinator"
    assert archive_event(platform, fake, change_id, "sqs:3").outcome is Outcome.ALREADY_RECORDED  # in step

    platform.submit(change_id, customers=["hts"], meeting=MEETING)  # revision 3 asks again: a new event
    assert archive_event(platform, fake, change_id, "sqs:4").outcome is Outcome.PROCESSED
    [live] = fake.events(include_cancelled=False)
    assert live["id"] != first["id"]


def test_cancel_after_a_crash_mid_create_cancels_the_orphaned_event(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    platform.submit(change_id, customers=["hts", "htsnonprod"], meeting=MEETING)
    s3 = Faulty(platform.s3)
    s3.fail("put_object", lambda **_: None)  # the meeting lease claim goes through
    s3.fail("put_object", Crash())  # the coordinator dies before recording the event
    with pytest.raises(Crash):
        archive_event(platform, fake, change_id, "sqs:1", s3=s3)
    [orphan] = fake.events()
    assert "meeting_metadata" not in platform.archive(change_id)

    platform.submit(change_id, customers=["hts", "htsnonprod"], status="cancelled")
    res = archive_event(platform, fake, change_id, "sqs:1")  # the same message, redelivered: reclaims its lease
    assert res.outcome is Outcome.PROCESSED, res
    [event] = fake.events()
    assert event["id"] == orphan["id"] and event["_cancelled"] is True
    doc = platform.archive(change_id)
    assert doc["meeting_metadata"]["cancelled"] is True and "meeting_lease" not in doc
    [cancelled] = entries(platform, change_id, "meeting_cancelled")
    assert cancelled["event_existed"] is True and fake.create_requests == 1


def test_cancel_after_a_crashed_recreation_cancels_the_new_generation(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    platform.submit(change_id, customers=["hts"], meeting=MEETING)
    archive_event(platform, fake, change_id, "sqs:1")
    [first] = fake.events()
    delete_in_calendar(fake, first["id"])
    platform.submit(change_id, customers=["hts"], meeting={**MEETING, "subject": "Renamed"})
    s3 = Faulty(platform.s3)
    s3.fail("put_object", lambda **_: None)  # lease
    s3.fail("put_object", Crash())  # the re-created event is never recorded
    with pytest.raises(Crash):
        archive_event(platform, fake, change_id, "sqs:2", s3=s3)
    [recreated] = fake.events()
    platform.submit(change_id, customers=["hts"], status="cancelled")
    assert archive_event(platform, fake, change_id, "sqs:2").outcome is Outcome.PROCESSED
    assert fake.event(recreated["id"])["_cancelled"] is True
    assert fake.events(include_cancelled=False) == []


def test_graph_down_leaves_only_the_coordinators_message_for_retry(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    """Processors never call Graph; on the coordinator a Graph outage retries the archive event only."""
    platform.submit(change_id, customers=["hts", "htsnonprod"], meeting=MEETING)
    fake.fail_next(503, times=1000)
    res = archive_event(platform, fake, change_id, "sqs:1")
    assert res.outcome is Outcome.RETRY and "Graph" in res.reason
    assert res.fate.value == "retry"
    assert platform.metric_total("MeetingFailure", COORDINATOR_METRICS_DIMENSION_VALUE) == 1
    # meanwhile the customers' results (their emails went out) are folded as usual
    handler = make_handler(platform)
    for code in ("hts", "htsnonprod"):
        write_processing(platform, code, change_id, result(1))
        [folded] = handler(s3_event(platform.bucket, keys.processing_key(code, change_id)), f"sqs:{code}", None)
        assert folded.outcome is Outcome.PROCESSED
    assert sorted(e["customer_code"] for e in processed(platform, change_id)) == ["hts", "htsnonprod"]
    fake.reset()
    assert archive_event(platform, fake, change_id, "sqs:1").outcome is Outcome.PROCESSED  # the retry succeeds
    assert len(fake.events()) == 1


def test_archive_events_are_acked_when_the_meeting_is_in_step(
    platform: Platform, fake: FakeGraph, change_id: str
) -> None:
    platform.submit(change_id, customers=["hts"])
    res = archive_event(platform, fake, change_id, "sqs:1")
    assert res.outcome is Outcome.ALREADY_RECORDED and fake.requests == []


# ---- routing -------------------------------------------------------------------------------------


def record(bucket: str, key: str) -> str:
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


@pytest.mark.parametrize(
    "key",
    [
        "customers/hts/CHG-1.json",  # a trigger: the customer's queue, never the coordinator's
        "drafts/CHG-1.json",
        "processing/hts/..%2Fx.json",
        "processing/hts/sub/CHG-1.json",
        "processing/HTS/CHG-1.json",
        "archive/sub%2FCHG-1.json",
        "archive/CHG-1.txt",
        "processing/hts/CHG-1.txt",
    ],
)
def test_keys_outside_archive_and_processing_are_poison(platform: Platform, key: str) -> None:
    [res] = make_handler(platform)(record(platform.bucket, key), "sqs:1", None)
    assert res.outcome is Outcome.POISON and res.fate.value == "dead_letter"


def test_other_bucket_bad_bodies_and_test_events(platform: Platform, change_id: str) -> None:
    handler = make_handler(platform)
    [other] = handler(record("someone-elses-bucket", keys.archive_key(change_id)), "sqs:1", None)
    assert other.outcome is Outcome.POISON
    [garbage] = handler("not json at all", "sqs:2", None)
    assert garbage.outcome is Outcome.POISON
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": platform.bucket})
    [ack] = handler(test_event, "sqs:3", None)
    assert ack.outcome is Outcome.TEST_EVENT and ack.fate.value == "ack"


def test_processing_object_naming_another_customer_is_poison(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    write_processing(platform, "hts", change_id, result(1))
    body = platform.s3.get_object(Bucket=platform.bucket, Key=keys.processing_key("hts", change_id))["Body"].read()
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.processing_key("htsnonprod", change_id), Body=body)
    [res] = make_handler(platform)(
        s3_event(platform.bucket, keys.processing_key("htsnonprod", change_id)), "sqs:1", None
    )
    assert res.outcome is Outcome.POISON and processed(platform, change_id) == []


def test_invalid_processing_object_goes_to_the_dlq(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.processing_key("hts", change_id), Body=b'{"results": 3}')
    [res] = make_handler(platform)(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None)
    assert res.outcome is Outcome.PERMANENT_ERROR and "not a valid processing object" in res.reason


def test_invalid_processing_object_logs_what_the_coordinator_keeps(platform: Platform, change_id: str) -> None:
    """Issue 22: the coordinator has no trigger, so its ERROR line must not say "trigger kept"; it says
    the message is kept and reaches the coordinator's DLQ after the queue's maxReceiveCount receives."""
    import io
    import json

    from runtime.telemetry import logger
    from runtime.worker import Fate

    platform.submit(change_id, customers=["hts"])
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.processing_key("hts", change_id), Body=b'{"results": 3}')
    [res] = make_handler(platform)(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None)
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        res.log(Fate.DEAD_LETTER)
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]
    assert line["level"] == "ERROR"
    assert "trigger" not in line["message"]
    assert "message kept" in line["message"] and "coordinator's DLQ" in line["message"]
    assert "maxReceiveCount" in line["message"]
