"""Issue 21: a fold does not re-read the archive the coordinator itself wrote last, and loses nothing.

The version a fold writes is the next fold's first compare-and-swap attempt (its ``IfMatch`` confirms
it is current); another writer in between makes that write fail with 412 and the fold re-reads. A
decision other than "fold" (already recorded, refused, not targeted) is never taken on that version.
"""

from __future__ import annotations

import json

from runtime.archive.store import ArchiveStore
from runtime.contract import keys
from runtime.coordinator.folding import Folder, PendingResult
from runtime.pipeline import Outcome
from runtime.telemetry.metrics import MetricsFactory
from tests.runtime.coordinator.conftest import S3Counter, make_handler, processed, result, write_processing
from tests.support.aws_platform import Platform


def folder(platform: Platform, counter: S3Counter) -> Folder:
    return Folder(
        ArchiveStore(counter, platform.bucket, sleep=lambda _s: None),
        MetricsFactory("CustomMetrics", platform.metrics_stream),
    )


def pending(code: str, change_id: str, revision: int = 1) -> PendingResult:
    return PendingResult(code, change_id, result(revision))


def test_consecutive_folds_of_a_change_read_its_archive_once(platform: Platform, change_id: str) -> None:
    codes = [f"rd{i}" for i in range(4)]
    platform.submit(change_id, customers=codes)
    counter = S3Counter(platform.s3)
    fold = folder(platform, counter)
    for code in codes:
        assert [p.customer_code for p in fold.fold(change_id, [pending(code, change_id)]).folded] == [code]
    # the first fold reads the document and marks it (no head can exist before the mark); each later one
    # confirms the document with a conditional GET (304, no body) and writes the head it wrote last, unread
    assert counter.archive_gets == len(codes) and counter.archive_puts == 1 + len(codes)
    assert counter.segment_puts == len(codes) and counter.segment_gets == 0
    assert sorted(e["customer_code"] for e in processed(platform, change_id)) == codes


def test_a_fold_after_another_writer_changed_the_archive_keeps_both_writes(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["lw1", "lw2"])
    counter = S3Counter(platform.s3)
    fold = folder(platform, counter)
    fold.fold(change_id, [pending("lw1", change_id)])
    platform.submit(change_id, customers=["lw1", "lw2"], title="second revision")  # another writer: revision 2
    outcome = fold.fold(change_id, [pending("lw2", change_id)])
    assert [p.customer_code for p in outcome.folded] == ["lw2"]
    doc = platform.archive(change_id)
    assert doc["revision"] == 2 and doc["title"] == "second revision"
    assert sorted((e["customer_code"], e["revision"]) for e in processed(platform, change_id)) == [
        ("lw1", 1),
        ("lw2", 1),
    ]
    assert [m["revision"] for m in doc["modifications"] if m["modification_type"] == "submitted"] == [1, 2]


def test_a_result_of_a_revision_newer_than_the_last_written_version_is_folded_not_refused(
    platform: Platform, change_id: str
) -> None:
    platform.submit(change_id, customers=["nw1", "nw2"])
    fold = folder(platform, S3Counter(platform.s3))
    fold.fold(change_id, [pending("nw1", change_id)])
    platform.submit(change_id, customers=["nw1", "nw2"], title="second revision")
    outcome = fold.fold(change_id, [pending("nw2", change_id, revision=2)])
    assert [p.customer_code for p in outcome.folded] == ["nw2"] and not outcome.refused
    assert ("nw2", 2) in [(e["customer_code"], e["revision"]) for e in processed(platform, change_id)]


def test_a_result_already_folded_by_another_coordinator_is_not_folded_twice(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["tw1", "tw2"])
    mine, other = folder(platform, S3Counter(platform.s3)), folder(platform, S3Counter(platform.s3))
    mine.fold(change_id, [pending("tw1", change_id)])
    other.fold(change_id, [pending("tw2", change_id)])  # unknown to `mine`, whose last version is older
    outcome = mine.fold(change_id, [pending("tw2", change_id)])
    assert outcome.already and not outcome.folded
    assert sorted(e["customer_code"] for e in processed(platform, change_id)) == ["tw1", "tw2"]


def processing_event(platform: Platform, code: str, change_id: str, etag: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": platform.bucket},
            "object": {"key": keys.processing_key(code, change_id), "eTag": etag},
        },
    }
    return json.dumps({"Records": [record]})


def etag_of(platform: Platform, key: str) -> str:
    return str(platform.s3.head_object(Bucket=platform.bucket, Key=key)["ETag"]).strip('"')


def test_an_event_of_a_version_already_read_and_folded_costs_no_read(platform: Platform, change_id: str) -> None:
    """The claim's event read the object after the record landed; the record's own event reads nothing."""
    platform.submit(change_id, customers=["ev1"])
    key = keys.processing_key("ev1", change_id)
    write_processing(platform, "ev1", change_id)  # the claim (no result yet)
    claim_etag = etag_of(platform, key)
    write_processing(platform, "ev1", change_id, result(1))  # the record, before the coordinator reads
    record_etag = etag_of(platform, key)
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter)
    [first] = handler(processing_event(platform, "ev1", change_id, claim_etag), "sqs:m1", None)
    [second] = handler(processing_event(platform, "ev1", change_id, record_etag), "sqs:m2", None)
    assert first.outcome is Outcome.PROCESSED and second.outcome is Outcome.ALREADY_RECORDED
    assert counter.processing_gets == 1
    assert [e["customer_code"] for e in processed(platform, change_id)] == ["ev1"]


def test_an_event_of_a_version_whose_fold_failed_is_read_again(platform: Platform, change_id: str) -> None:
    """A version is remembered only once its results are folded: a failed fold's redelivery reads it."""
    key = keys.processing_key("ev2", change_id)
    write_processing(platform, "ev2", change_id, result(1))  # a result, but no archive yet
    etag = etag_of(platform, key)
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter)
    [failed] = handler(processing_event(platform, "ev2", change_id, etag), "sqs:m1", None)
    assert failed.outcome is Outcome.PERMANENT_ERROR
    platform.submit(change_id, customers=["ev2"])
    [again] = handler(processing_event(platform, "ev2", change_id, etag), "sqs:m1b", None)
    assert again.outcome is Outcome.PROCESSED and counter.processing_gets == 2
