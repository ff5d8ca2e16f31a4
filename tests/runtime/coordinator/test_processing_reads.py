"""Issue 21: the coordinator reads a customer's processing object once for its claim and its record.

A processor writes its claim, sends for 1-2 s (the fan-out benchmark), then writes its record; S3
announces both. Read one linger after the claim's event, the object held no result: 0.57 GETs per
customer at N = 1,000 found nothing. The claim's event now waits, within bounds, for the object's next
version; and the claim's event must never make a record be missed.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

from runtime.archive.documents import utcnow
from runtime.archive.processing import ProcessingDocument, ProcessingLease
from runtime.archive.versioned import Versioned
from runtime.contract import keys
from runtime.coordinator.processing_reads import (
    RECORD_WAIT_LINGERS,
    Answer,
    EventVersion,
    ProcessingReads,
    Read,
    sequenced_before,
)
from runtime.pipeline import Outcome, Result
from tests.runtime.coordinator.conftest import (
    S3Counter,
    make_handler,
    processed,
    result,
    s3_event,
    write_processing,
)
from tests.support.aws_platform import Platform

LINGER = 0.25
WAIT = RECORD_WAIT_LINGERS * LINGER
WAITING = 16  # build_handler's at the default max_concurrency of 32


def write_claim(platform: Platform, code: str, change_id: str, revision: int = 1) -> str:
    """What a processor's claim (step 5) leaves: a live lease, no result of its revision; its ETag."""
    lease = ProcessingLease(owner=f"worker:{code}", revision=revision, expires_at=utcnow() + timedelta(minutes=5))
    doc = ProcessingDocument(customer_code=code, change_id=change_id, lease=lease)
    answer = platform.s3.put_object(
        Bucket=platform.bucket,
        Key=keys.processing_key(code, change_id),
        Body=json.dumps(doc.to_json_dict()).encode(),
        ContentType="application/json",
    )
    return str(answer["ETag"]).strip('"')


def write_record(platform: Platform, code: str, change_id: str, revision: int = 1) -> str:
    write_processing(platform, code, change_id, result(revision))
    head = platform.s3.head_object(Bucket=platform.bucket, Key=keys.processing_key(code, change_id))
    return str(head["ETag"]).strip('"')


def event(platform: Platform, code: str, change_id: str, etag: str, sequencer: str | None = None) -> str:
    obj: dict[str, Any] = {"key": keys.processing_key(code, change_id), "eTag": etag}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": platform.bucket}, "object": obj},
    }
    return json.dumps({"Records": [record]})


class _InThread:
    """A handler call on a thread of its own (the worker handles each message in one)."""

    def __init__(self, handler: Any, body: str) -> None:
        self.results: list[Result] = []
        self.took = 0.0

        def run() -> None:
            started = time.monotonic()
            self.results = handler(body, "sqs:claim", None)
            self.took = time.monotonic() - started

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> list[Result]:
        self.thread.join(30)
        return self.results


def test_a_claims_event_then_its_records_event_within_the_wait_cost_one_read_and_one_fold(
    platform: Platform, change_id: str
) -> None:
    platform.submit(change_id, customers=["cr1"])
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=LINGER, max_waiting=WAITING)
    submitted: list[int] = []
    submit = handler.batcher.submit
    handler.batcher.submit = lambda cid, pending: submitted.append(len(pending)) or submit(cid, pending)  # type: ignore[method-assign]
    claim = _InThread(handler, event(platform, "cr1", change_id, write_claim(platform, "cr1", change_id)))
    time.sleep(2.5 * LINGER)  # the processor sends its emails: past one linger, within the wait
    record_etag = write_record(platform, "cr1", change_id)
    started = time.monotonic()
    [record] = handler(event(platform, "cr1", change_id, record_etag), "sqs:record", None)
    record_took = time.monotonic() - started
    [claimed] = claim.join()

    assert counter.processing_gets == 1  # before: 2, the claim's read one linger after its event found no result
    assert sorted(r.outcome.value for r in (claimed, record)) == sorted(
        [Outcome.PROCESSED.value, Outcome.ALREADY_RECORDED.value]
    )
    assert [e["customer_code"] for e in processed(platform, change_id)] == ["cr1"]
    assert submitted == [1]  # one event's message folds what the shared read found
    assert record_took < WAIT  # the record's event ended the claim's wait: it did not wait it out


def test_a_claims_event_whose_records_event_is_lost_folds_the_record_at_the_end_of_the_wait(
    platform: Platform, change_id: str
) -> None:
    """The claim's event never makes a record be missed: read at the end of its wait, it finds the record
    written meanwhile (before, read one linger after the claim, it found none and was acknowledged)."""
    platform.submit(change_id, customers=["cr2"])
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=LINGER, max_waiting=WAITING)
    claim = _InThread(handler, event(platform, "cr2", change_id, write_claim(platform, "cr2", change_id)))
    time.sleep(2.5 * LINGER)
    write_record(platform, "cr2", change_id)  # its event is lost
    [claimed] = claim.join()

    assert claimed.outcome is Outcome.PROCESSED and counter.processing_gets == 1
    assert [e["customer_code"] for e in processed(platform, change_id)] == ["cr2"]
    assert claim.took < WAIT + 10 * LINGER  # bounded: the wait, the read and the fold's linger


def test_after_a_read_found_a_claim_in_progress_the_records_event_waits_one_linger(
    platform: Platform, change_id: str
) -> None:
    """A processor slower than the wait: the claim is read at the wait's end; its record's event is then
    expected and read after one linger, not kept waiting for a next version."""
    platform.submit(change_id, customers=["cr3"])
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=LINGER, max_waiting=WAITING)
    [claimed] = handler(event(platform, "cr3", change_id, write_claim(platform, "cr3", change_id)), "sqs:c", None)
    assert claimed.outcome is Outcome.ALREADY_RECORDED and counter.processing_gets == 1
    started = time.monotonic()
    [record] = handler(event(platform, "cr3", change_id, write_record(platform, "cr3", change_id)), "sqs:r", None)
    assert record.outcome is Outcome.PROCESSED and counter.processing_gets == 2
    assert time.monotonic() - started < WAIT  # one linger and the fold's, not the wait


def test_an_older_event_after_a_newer_version_was_read_and_folded_costs_no_read(
    platform: Platform, change_id: str
) -> None:
    """S3 delivers events out of order: the claim's event after the record's was read and folded."""
    platform.submit(change_id, customers=["cr4"])
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter)
    claim_etag = write_claim(platform, "cr4", change_id)
    record_etag = write_record(platform, "cr4", change_id)
    [record] = handler(event(platform, "cr4", change_id, record_etag, "0062F1A3C2B1D4E502"), "sqs:r", None)
    assert record.outcome is Outcome.PROCESSED and counter.processing_gets == 1
    [late] = handler(event(platform, "cr4", change_id, claim_etag, "0062F1A3C2B1D4E501"), "sqs:c", None)
    assert late.outcome is Outcome.ALREADY_RECORDED
    assert counter.processing_gets == 1  # before: 2 (its ETag is not the version read)
    # a sequencer that cannot be compared (another length) or a later one is read
    handler(event(platform, "cr4", change_id, claim_etag, "62F1A3C2B1D4E501"), "sqs:c2", None)
    handler(event(platform, "cr4", change_id, "0" * 32, "0062F1A3C2B1D4E503"), "sqs:n", None)
    assert counter.processing_gets == 3
    assert [e["customer_code"] for e in processed(platform, change_id)] == ["cr4"]


# ---- the waits themselves, with a fake read ------------------------------------------------------


def _version(lease: bool) -> Versioned[ProcessingDocument]:
    doc = ProcessingDocument(customer_code="u1", change_id="CHG-U")
    if lease:
        doc.lease = ProcessingLease(owner="w", revision=1, expires_at=utcnow() + timedelta(minutes=5))
    return Versioned(document=doc, etag='"v"', storage_now=utcnow())


class _FakeReads:
    def __init__(self, lease: bool = True) -> None:
        self.keys: list[str] = []
        self.lease = lease

    def __call__(self, key: str) -> Read:
        self.keys.append(key)
        return Read(_version(self.lease))


def _timed(reads: ProcessingReads, key: str, version: EventVersion) -> tuple[float, bool]:
    started = time.monotonic()
    answer = reads.submit(key, version)
    return time.monotonic() - started, answer.folds


def test_an_event_without_etag_or_beyond_the_waiting_bound_waits_one_linger() -> None:
    linger = 0.1
    fake = _FakeReads()
    reads = ProcessingReads(fake, linger, max_lingers=20, max_waiting=1)
    waiting = threading.Thread(target=reads.submit, args=("k1", EventVersion("e1")))
    waiting.start()  # the one allowed past its first linger
    time.sleep(1.5 * linger)
    took_beyond, _ = _timed(reads, "k2", EventVersion("e2"))
    took_unknown, _ = _timed(reads, "k3", EventVersion())
    assert took_beyond < 5 * linger and took_unknown < 5 * linger  # the waiting one takes 20 lingers
    reads.submit("k1", EventVersion("e1-record"))  # ends k1's wait at once
    waiting.join(5)
    assert not waiting.is_alive() and fake.keys == ["k2", "k3", "k1"]
    assert reads.ended == {"bound": 1, "one linger": 1, "next version": 1}


def test_a_duplicate_of_the_waiting_event_shares_its_read_without_ending_the_wait() -> None:
    linger = 0.05
    fake = _FakeReads()
    reads = ProcessingReads(fake, linger, max_lingers=8, max_waiting=1)
    first = _InThreadReads(reads, "k", EventVersion("claim"))
    time.sleep(1.5 * linger)
    took, folds = _timed(reads, "k", EventVersion("claim"))  # the same version again: SQS redelivered it
    first.thread.join(5)
    assert not folds and first.folds and fake.keys == ["k"]
    assert took > 4 * linger  # it waited with the first for the object's next version


class _InThreadReads:
    def __init__(self, reads: ProcessingReads, key: str, version: EventVersion) -> None:
        self.folds = False
        self.answer: Answer | None = None

        def run() -> None:
            self.answer = reads.submit(key, version)
            self.folds = self.answer.folds

        self.thread = threading.Thread(target=run)
        self.thread.start()


def test_sequencers_are_compared_only_at_equal_length() -> None:
    assert sequenced_before("0A01", "0A02") and not sequenced_before("0A02", "0A01")
    assert sequenced_before("0a01", "0A02")  # hexadecimal digits in either case
    assert not sequenced_before("A01", "0A02") and not sequenced_before(None, "0A02")
    assert not sequenced_before("0A01", "0A01")


def test_the_deployed_coordinator_lets_half_of_its_threads_wait(platform: Platform) -> None:
    """A fold batch holds up to half of ``max_concurrency``, the waits up to the other half (at N = 200 in
    the fan-out benchmark a quarter left 114 of 200 claims read after one linger: 1.24 GETs per customer)."""
    import boto3

    from runtime.contract.settings import CoordinatorSettings, MeetingSettings, load
    from runtime.coordinator.composition import build_handler

    settings = load(CoordinatorSettings, bucket_name=platform.bucket, queue_url="https://sqs.example/q")
    session = boto3.session.Session(region_name=platform.box.region)
    handler = build_handler(settings, session, meeting_settings=MeetingSettings())
    assert handler.reads.max_waiting == settings.max_concurrency // 2 > 0
    assert handler.reads.max_lingers == RECORD_WAIT_LINGERS


def test_an_event_answered_while_it_waits_costs_no_read() -> None:
    """The record's event came just after its claim's wait ended (the claim's read, which found the record,
    still folding): once that read is dealt with, the record's event is moot, without a read of its own."""
    linger = 0.05
    fake = _FakeReads()
    reads = ProcessingReads(fake, linger, max_lingers=40, max_waiting=4)
    record = _InThreadReads(reads, "k", EventVersion("rec"))
    time.sleep(2 * linger)
    reads.dealt_with("k", Read(Versioned(document=_version(False).document, etag='"rec"', storage_now=utcnow())))
    record.thread.join(5)
    assert fake.keys == []  # before: read at the end of its wait (40 lingers)
    assert record.answer is not None and record.answer.moot and not record.answer.folds


def test_a_records_event_during_its_claims_read_is_answered_by_it(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["cr5"])
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=LINGER, max_waiting=WAITING)
    key = keys.processing_key("cr5", change_id)
    read = handler.reads._read

    def gated(read_key: str) -> Read:  # the claim's read waits until the record's event waits
        deadline = time.monotonic() + 10
        while read_key not in handler.reads._open and time.monotonic() < deadline:
            time.sleep(0.01)
        return read(read_key)

    handler.reads._read = gated
    write_claim(platform, "cr5", change_id)
    claim = _InThread(handler, s3_event(platform.bucket, key))  # no ETag: read after one linger
    time.sleep(LINGER / 2)
    record_etag = write_record(platform, "cr5", change_id)
    time.sleep(LINGER)  # the claim's wait is over, its read waits at the gate
    [record] = handler(event(platform, "cr5", change_id, record_etag), "sqs:record", None)
    [claimed] = claim.join()
    assert claimed.outcome is Outcome.PROCESSED and record.outcome is Outcome.ALREADY_RECORDED
    assert counter.processing_gets == 1  # before: 2, the record's event read at the end of its wait
    assert [e["customer_code"] for e in processed(platform, change_id)] == ["cr5"]
