"""Every row of docs/design.md §2 (v2) against moto: processing object, trigger presence, message fate, emails.

The processor never writes the archive: its lease, progress and result are in ``processing/hts/CHG-1.json``.
The archive's ``processed`` entries are the change coordinator's job (folded from these objects)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest

from runtime.archive.documents import utcnow
from runtime.archive.triggers import DeleteOutcome
from runtime.contract.keys import TriggerRef
from runtime.pipeline import Outcome, decide
from runtime.worker import Fate, overall_fate
from tests.support.aws_platform import Faulty, Platform, client_error

HTS = TriggerRef("hts", "CHG-1")
HTS_RECIPIENTS = {"ops@hts.example.com", "lead@hts.example.com"}


def s3_event(key: str, bucket: str = "ttp-metadata-local") -> str:
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


def recipients(platform: Platform, code: str) -> list[str]:
    return [m["to"][0].lower() for m in platform.emails(code)]


def test_happy_path_records_then_deletes_trigger(platform: Platform) -> None:
    platform.submit()
    result = platform.processor("hts").process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PROCESSED and result.fate is Fate.ACK
    assert result.trigger_delete is DeleteOutcome.DELETED
    assert sorted(recipients(platform, "hts")) == sorted(HTS_RECIPIENTS)
    result_1 = platform.result("hts", 1)
    assert result_1 is not None and result_1["recipients"] == 2 and result_1["sent"] == 2
    assert result_1["rejected"] == 0 and result_1["started_at"] and result_1["finished_at"]
    processing = platform.processing("hts")
    assert processing is not None and processing.get("lease") is None and processing.get("progress") is None
    assert platform.processed_entries() == []  # the archive is never written by the processor
    assert not platform.trigger_exists("hts")
    assert platform.trigger_exists("htsnonprod")  # the other customer's trigger is untouched
    assert platform.metric_total("TriggerDeletionRate", "hts") == 1
    assert platform.metric_total("EmailsSent", "hts") == 2
    assert platform.metric_total("ProcessingSuccess", "hts") == 1


def test_duplicate_delivery_sends_nothing_twice(platform: Platform) -> None:
    platform.submit()
    processor = platform.processor("hts")
    assert processor.process(HTS, "sqs:m1").outcome is Outcome.PROCESSED
    second = processor.process(HTS, "sqs:m2")
    assert second.outcome is Outcome.TRIGGER_GONE and second.fate is Fate.ACK
    assert len(platform.emails("hts")) == 2
    assert list((platform.processing("hts") or {})["results"]) == ["1"]
    assert platform.metric_total("DuplicateEvents", "hts") == 1


def test_missing_trigger_is_acked_without_writing_anything(platform: Platform) -> None:
    s3 = Faulty(platform.s3)
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1")
    assert result.outcome is Outcome.TRIGGER_GONE and result.fate is Fate.ACK
    # the archive GET runs concurrently with the trigger HEAD (read-only); nothing is written
    assert "put_object" not in s3.calls and "delete_object" not in s3.calls


def test_missing_archive_keeps_trigger_and_dead_letters(platform: Platform) -> None:
    platform.s3.put_object(Bucket=platform.bucket, Key="customers/hts/CHG-9.json", Body=b"{}")
    result = platform.processor("hts").process(TriggerRef("hts", "CHG-9"), "sqs:m1")
    assert result.outcome is Outcome.PERMANENT_ERROR and result.fate is Fate.DEAD_LETTER
    assert "does not exist" in result.reason
    assert platform.trigger_exists("hts", "CHG-9")
    assert platform.emails("hts") == []


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"not json", "Invalid JSON"),
        (json.dumps({"change_id": "CHG-1", "customers": ["hts"]}).encode(), "title"),
        (json.dumps({"change_id": "OTHER", "title": "x", "customers": ["hts"]}).encode(), "OTHER"),
    ],
)
def test_invalid_archive_keeps_trigger_and_dead_letters(platform: Platform, body: bytes, needle: str) -> None:
    platform.s3.put_object(Bucket=platform.bucket, Key="archive/CHG-1.json", Body=body)
    platform.s3.put_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json", Body=b"{}")
    result = platform.processor("hts").process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PERMANENT_ERROR
    assert needle in result.reason
    assert platform.trigger_exists("hts")
    stored = platform.s3.get_object(Bucket=platform.bucket, Key="archive/CHG-1.json")["Body"].read()
    assert stored == body  # nothing overwritten


def test_customer_not_in_change_is_refused(platform: Platform) -> None:
    platform.submit(customers=["htsnonprod"])
    platform.s3.put_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json", Body=b"{}")
    result = platform.processor("hts").process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PERMANENT_ERROR and "does not list customer" in result.reason
    assert platform.emails("hts") == []


@pytest.mark.parametrize(
    "key, why",
    [
        ("customers/htsnonprod/CHG-1.json", "queue of 'hts'"),
        ("customers/hts/..%2F..%2Farchive%2FCHG-1.json", "not of the form"),
        ("customers/hts/..%2Ehidden.json", "invalid change id"),
        ("customers%2Fhts%2F..%2Fhtsnonprod%2FCHG-1.json", "not of the form"),
        ("archive/CHG-1.json", "not under"),
        ("customers/hts/CHG-1.txt", "does not end"),
        ("customers/HTS/CHG-1.json", "invalid customer code"),
    ],
)
def test_misrouted_or_unsafe_key_is_poison_and_touches_nothing(platform: Platform, key: str, why: str) -> None:
    platform.submit()
    before = platform.archive()
    s3 = Faulty(platform.s3)
    [result] = decide(s3_event(key), platform.bucket, platform.processor("hts", s3=s3), "sqs:m1")
    assert result.outcome is Outcome.POISON and result.fate is Fate.DEAD_LETTER
    assert why in result.reason
    assert s3.calls == {}
    assert platform.archive() == before
    assert platform.trigger_exists("hts") and platform.trigger_exists("htsnonprod")


def test_event_from_another_bucket_is_poison(platform: Platform) -> None:
    platform.submit()
    [result] = decide(
        s3_event("customers/hts/CHG-1.json", "evil-bucket"), platform.bucket, platform.processor("hts"), "m"
    )
    assert result.outcome is Outcome.POISON and "evil-bucket" in result.reason


def test_url_encoded_event_key_is_decoded(platform: Platform) -> None:
    platform.submit(change_id="CHG.2026_01-a")
    [result] = decide(s3_event("customers%2Fhts%2FCHG.2026_01-a.json"), platform.bucket, platform.processor("hts"), "m")
    assert result.outcome is Outcome.PROCESSED


def test_s3_test_event_is_acked(platform: Platform) -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": platform.bucket})
    results = decide(body, platform.bucket, platform.processor("hts"), "m")
    assert [r.outcome for r in results] == [Outcome.TEST_EVENT]
    assert overall_fate(results) is Fate.ACK


def test_unparseable_message_is_poison(platform: Platform) -> None:
    [result] = decide("{{{", platform.bucket, platform.processor("hts"), "m")
    assert result.outcome is Outcome.POISON and result.fate is Fate.DEAD_LETTER


def test_already_processed_revision_only_cleans_up(platform: Platform) -> None:
    platform.submit()
    platform.processor("hts").process(HTS, "sqs:m1")
    platform.s3.put_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json", Body=b"{}")  # stray trigger
    result = platform.processor("hts").process(HTS, "sqs:m2")
    assert result.outcome is Outcome.ALREADY_RECORDED and result.fate is Fate.ACK
    assert not platform.trigger_exists("hts")
    assert len(platform.emails("hts")) == 2
    assert list((platform.processing("hts") or {})["results"]) == ["1"]


def test_live_lease_of_another_message_acks_the_duplicate(platform: Platform) -> None:
    platform.submit()
    first = platform.processor("hts")
    gate, release = threading.Event(), threading.Event()

    class SlowMailer:
        def __init__(self, inner):  # type: ignore[no-untyped-def]
            self.inner = inner

        def subscribers(self, topic):  # type: ignore[no-untyped-def]
            gate.set()
            release.wait(10)
            return self.inner.subscribers(topic)

        def send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return self.inner.send(*args, **kwargs)

    first.mailer = SlowMailer(first.mailer)
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(r=first.process(HTS, "sqs:holder")))
    thread.start()
    assert gate.wait(10)
    duplicate = platform.processor("hts").process(HTS, "sqs:duplicate")
    release.set()
    thread.join(10)
    assert duplicate.outcome is Outcome.LEASE_HELD and duplicate.fate is Fate.ACK
    assert outcome["r"].outcome is Outcome.PROCESSED  # type: ignore[attr-defined]
    assert len(platform.emails("hts")) == 2


def test_expired_lease_is_taken_over(platform: Platform) -> None:
    platform.submit()
    past = (utcnow() - timedelta(minutes=30)).isoformat()
    put_processing(
        platform, {"lease": {"owner": "sqs:dead:r1", "message_id": "dead", "revision": 1, "expires_at": past}}
    )
    result = platform.processor("hts").process(HTS, "sqs:m2:r1")
    assert result.outcome is Outcome.PROCESSED
    assert (platform.processing("hts") or {}).get("lease") is None


def test_redelivery_of_the_same_message_resumes_without_resending(platform: Platform) -> None:
    platform.submit()
    ses = Faulty(platform.ses("hts"))
    ses_proc = platform.processor("hts", ses=ses)
    # first recipient goes out, then SES fails hard on the second
    ses.fail("send_email", lambda **_: None).fail("send_email", client_error("AccountSuspendedException", 400))
    first = ses_proc.process(HTS, "sqs:same:r1")
    assert first.outcome is Outcome.RETRY and first.fate is Fate.RETRY
    assert platform.trigger_exists("hts")
    processing = platform.processing("hts") or {}
    assert processing["lease"]["owner"] == "sqs:same:r1" and processing["lease"]["message_id"] == "same"
    assert processing["progress"]["done"] == 1 and processing["progress"]["done_through"] == sorted(HTS_RECIPIENTS)[0]
    assert datetime.fromisoformat(processing["lease"]["expires_at"]) <= utcnow()  # this receive gave up: released
    second = platform.processor("hts").process(HTS, "sqs:same:r2")  # the redelivery resumes at once
    assert second.outcome is Outcome.PROCESSED and second.emails_sent == 1
    sent = recipients(platform, "hts")
    assert sorted(sent) == sorted(HTS_RECIPIENTS)  # each exactly once
    assert (platform.result("hts") or {})["sent"] == 2


def test_processing_object_conflicts_are_reapplied_and_lose_nothing(platform: Platform) -> None:
    platform.submit()
    s3 = Faulty(platform.s3)
    extra = {"note": 0}

    def concurrent_writer(**kwargs: object) -> None:
        if not str(kwargs.get("Key", "")).startswith("processing/"):
            return
        doc = platform.processing("hts") or {"customer_code": "hts", "change_id": "CHG-1"}
        extra["note"] += 1
        doc[f"other_{extra['note']}"] = extra["note"]  # someone else's field, e.g. a tool's annotation
        put_processing(platform, doc)

    s3.fail("put_object", concurrent_writer, times=3)  # each of our next 3 writes races another writer
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PROCESSED
    processing = platform.processing("hts") or {}
    assert list(processing["results"]) == ["1"]
    assert all(processing.get(f"other_{n}") == n for n in (1, 2, 3))  # every concurrent write survived
    assert platform.metric_total("ArchiveUpdateSuccess", "hts") == 1  # the durable record of the result


def test_ses_throttling_is_retried_then_succeeds(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.notify.ses as emails_module

    monkeypatch.setattr(emails_module.time, "sleep", lambda _s: None)
    platform.submit()
    ses = Faulty(platform.ses("hts")).fail("send_email", client_error("TooManyRequestsException", 429), times=3)
    result = platform.processor("hts", ses=ses).process(HTS, "sqs:m1")
    assert ses.calls["send_email"] == 5
    assert result.outcome is Outcome.PROCESSED
    assert sorted(recipients(platform, "hts")) == sorted(HTS_RECIPIENTS)


def test_ses_throttling_that_persists_returns_the_message(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.notify.ses as emails_module

    monkeypatch.setattr(emails_module.time, "sleep", lambda _s: None)
    monkeypatch.setattr(emails_module.random, "uniform", lambda _a, _b: 0.0)
    platform.submit()
    ses = Faulty(platform.ses("hts")).fail("send_email", client_error("TooManyRequestsException", 429), times=50)
    result = platform.processor("hts", ses=ses).process(HTS, "sqs:m1")
    assert result.outcome is Outcome.RETRY and result.fate is Fate.RETRY
    assert "throttling" in result.reason
    assert platform.trigger_exists("hts")
    processing = platform.processing("hts") or {}
    assert processing.get("results", {}) == {} and processing["lease"]["owner"] == "sqs:m1"


def test_ses_configuration_error_dead_letters_and_releases_lease(platform: Platform) -> None:
    platform.submit(topic="no-such-topic")
    result = platform.processor("hts").process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PERMANENT_ERROR and "no-such-topic" in result.reason
    assert platform.trigger_exists("hts")
    lease = (platform.processing("hts") or {})["lease"]
    assert datetime.fromisoformat(lease["expires_at"]) <= utcnow()  # released: expired on the storage clock


def test_replaced_trigger_is_left_for_its_own_event(platform: Platform) -> None:
    platform.submit()
    s3 = Faulty(platform.s3)
    # a new submission lands between our HEAD and our DELETE
    s3.fail("delete_object", lambda **_: platform.submit(), times=1)
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PROCESSED and result.trigger_delete is DeleteOutcome.REPLACED
    assert platform.trigger_exists("hts")
    assert platform.archive()["revision"] == 2
    follow_up = platform.processor("hts").process(HTS, "sqs:m2")
    assert follow_up.outcome is Outcome.PROCESSED and follow_up.revision == 2
    assert not platform.trigger_exists("hts")
    assert sorted((platform.processing("hts") or {})["results"]) == ["1", "2"]


def test_trigger_delete_failure_is_a_warning_not_a_retry(platform: Platform) -> None:
    platform.submit()
    s3 = Faulty(platform.s3).fail("delete_object", client_error("InternalError", 500), times=1)
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PROCESSED and result.fate is Fate.ACK
    assert result.trigger_delete is DeleteOutcome.FAILED
    assert platform.metric_total("TriggerDeleteFailure", "hts") == 1
    assert platform.result("hts") is not None


def test_record_failure_keeps_trigger_and_retries(platform: Platform) -> None:
    platform.submit()
    s3 = Faulty(platform.s3)
    proc = platform.processor("hts", s3=s3, record_deadline_seconds=0.01)
    proc.store._backoff.max_attempts = 2

    def fail_record(**kwargs: object) -> None:
        if b'"results":{"1"' in kwargs["Body"]:  # type: ignore[operator]
            raise client_error("PreconditionFailed", 412)  # every attempt to record conflicts

    s3.fail("put_object", fail_record, times=100)
    result = proc.process(HTS, "sqs:m1")
    assert result.outcome is Outcome.RETRY
    assert platform.trigger_exists("hts")
    assert platform.metric_total("ArchiveUpdateFailure", "hts") >= 1
    progress = (platform.processing("hts") or {})["progress"]
    assert progress["done"] == 2  # progress saved when recording failed
    again = platform.processor("hts").process(HTS, "sqs:m1")
    assert again.outcome is Outcome.PROCESSED and again.emails_sent == 0
    assert len(platform.emails("hts")) == 2


def test_unknown_fields_survive_processing(platform: Platform) -> None:
    platform.submit(approverGroup="ccoe", extra={"nested": [1, 2]}, implementationStart="2026-12-01T10:00:00Z")
    platform.processor("hts").process(HTS, "sqs:m1")
    doc = platform.archive()
    assert doc["approverGroup"] == "ccoe" and doc["extra"] == {"nested": [1, 2]}
    assert doc["implementation_start"].startswith("2026-12-01T10:00:00")


def test_new_revision_is_processed_again(platform: Platform) -> None:
    platform.submit()
    platform.processor("hts").process(HTS, "sqs:m1")
    platform.submit(title="Change CHG-1, rescheduled")
    result = platform.processor("hts").process(HTS, "sqs:m2")
    assert result.outcome is Outcome.PROCESSED and result.revision == 2
    assert len(platform.emails("hts")) == 4
    assert "rescheduled" in platform.emails("hts")[-1]["subject"]


def put_processing(platform: Platform, fields: dict[str, object], code: str = "hts") -> None:
    """Write ``processing/{code}/CHG-1.json`` directly (as another process would have)."""
    doc = {"customer_code": code, "change_id": "CHG-1", **fields}
    platform.s3.put_object(Bucket=platform.bucket, Key=f"processing/{code}/CHG-1.json", Body=json.dumps(doc).encode())


@pytest.mark.parametrize(
    "meeting, outcome",
    [
        ({"start_time": "2026-12-01T10:00:00", "end_time": "2026-12-01T11:00:00Z"}, Outcome.PROCESSED),
        ({"start_time": "2026-12-01T11:00:00Z", "end_time": "2026-12-01T10:00:00"}, Outcome.PERMANENT_ERROR),
    ],
    ids=["naive-read-as-utc", "ends-before-it-starts"],
)
def test_a_stored_naive_time_beside_an_aware_one(platform: Platform, meeting: dict[str, str], outcome: Outcome) -> None:
    """Issue 11, item 4: a document another writer stored with a naive and an aware time. The naive one
    is UTC: the change is processed; if that makes the meeting end before it starts, the archive is
    invalid and the message is dead-lettered (never a raw ``TypeError`` retried forever)."""
    platform.submit()
    stored = platform.archive()
    stored["meeting"] = meeting
    platform.s3.put_object(Bucket=platform.bucket, Key="archive/CHG-1.json", Body=json.dumps(stored).encode())
    result = platform.processor("hts").process(HTS, "sqs:m1")
    assert result.outcome is outcome, result.reason
    if outcome is Outcome.PERMANENT_ERROR:
        assert "meeting.end_time" in result.reason and platform.trigger_exists("hts")
        assert overall_fate([result]) is Fate.DEAD_LETTER
