"""Folding customers' results into the archive: batched, idempotent, v1-compatible, never ahead."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from runtime.archive.documents import ArchiveDocument, ModificationEntry
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import keys
from runtime.contract.names import COORDINATOR_METRICS_DIMENSION_VALUE
from runtime.pipeline import Outcome
from runtime.telemetry.log import logger
from runtime.worker import Worker
from tests.runtime.coordinator.conftest import S3Counter, make_handler, processed, result, s3_event, write_processing
from tests.support.aws_platform import Platform

MANY = 50


def test_results_of_50_customers_fold_in_far_fewer_archive_writes(platform: Platform, change_id: str) -> None:
    """Through the real worker (one receive batch = up to 10 messages, handled at once): N results → ≪ N writes."""
    codes = [f"fan{i:02d}" for i in range(MANY)]
    platform.submit(change_id, customers=codes)
    sqs = boto3.client("sqs", region_name=platform.box.region)
    queue_url = sqs.create_queue(QueueName=f"coordinator-{change_id}")["QueueUrl"]
    for code in codes:
        write_processing(platform, code, change_id, result(1, sent=2, rejected=1))
        body = s3_event(platform.bucket, keys.processing_key(code, change_id))
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=0.3)
    worker = Worker(sqs, queue_url, handler, max_concurrency=10, receive_wait_seconds=0, visibility_timeout=30)
    worker.run(until=lambda: worker.handled >= MANY)

    entries = processed(platform, change_id)
    assert sorted(e["customer_code"] for e in entries) == codes  # each exactly once
    assert all(e["revision"] == 1 and e["emails_sent"] == 2 and e["rejected"] == 1 for e in entries)
    assert all(e["recipients"] == 3 and e["user_id"] == f"processor:{e['customer_code']}" for e in entries)
    print(f"\n{MANY} customers' results -> {counter.archive_puts} archive writes")  # the report's figure
    assert counter.archive_puts <= MANY // 5  # 50 results: at most 10 writes (measured: 5)
    assert handler.batcher.writes == counter.archive_puts - 1  # and the document's mark, once
    assert platform.metric_total("ResultsFolded", COORDINATOR_METRICS_DIMENSION_VALUE) == MANY
    assert platform.metric_total("ArchiveUpdateSuccess") == 0  # the processors' metric, not the coordinator's
    lags = [v for blob in platform.metrics() for v in blob.get("FoldLag", [])]
    assert len(lags) == MANY and all(1.5 <= lag < 60 for lag in lags)


def test_concurrent_results_of_one_change_share_one_write(platform: Platform, change_id: str) -> None:
    codes = [f"bat{i}" for i in range(8)]
    platform.submit(change_id, customers=codes)
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=0.3)
    outcomes: dict[str, Outcome] = {}
    for code in codes:
        write_processing(platform, code, change_id, result(1))

    def fold(code: str) -> None:
        [res] = handler(s3_event(platform.bucket, keys.processing_key(code, change_id)), f"sqs:{code}", None)
        outcomes[code] = res.outcome

    threads = [threading.Thread(target=fold, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(outcomes.values()) == {Outcome.PROCESSED} and len(outcomes) == len(codes)
    assert counter.archive_puts == 2  # the document's mark (once per change) and one head
    assert len(processed(platform, change_id)) == len(codes)


def test_refolding_writes_nothing(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    write_processing(platform, "hts", change_id, result(1))
    body = s3_event(platform.bucket, keys.processing_key("hts", change_id))
    [first] = make_handler(platform)(body, "sqs:1", None)
    assert first.outcome is Outcome.PROCESSED
    before = platform.archive(change_id)

    counter = S3Counter(platform.s3)  # a fresh handler: no memory of the first fold
    [again] = make_handler(platform, s3=counter)(body, "sqs:2", None)
    assert again.outcome is Outcome.ALREADY_RECORDED
    assert counter.archive_puts == 0 and platform.archive(change_id) == before

    counter = S3Counter(platform.s3)  # the same handler remembers: not even the archive is read again
    handler = make_handler(platform, s3=counter)
    handler(body, "sqs:3", None)
    gets = counter.archive_gets
    [third] = handler(body, "sqs:4", None)
    assert third.outcome is Outcome.ALREADY_RECORDED and counter.archive_gets == gets and counter.archive_puts == 0


def test_a_second_revisions_result_folds_beside_the_first(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    handler = make_handler(platform)
    body = s3_event(platform.bucket, keys.processing_key("hts", change_id))
    write_processing(platform, "hts", change_id, result(1))
    handler(body, "sqs:1", None)
    platform.submit(change_id, customers=["hts"], summary="revision 2")
    write_processing(platform, "hts", change_id, result(1), result(2, sent=5))
    [res] = handler(body, "sqs:2", None)
    assert res.outcome is Outcome.PROCESSED and res.reason == "folded revision 2"
    assert [(e["revision"], e["emails_sent"]) for e in processed(platform, change_id)] == [(1, 3), (2, 5)]


def test_v1_archive_with_its_own_processed_entry_counts_as_folded(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts", "htsnonprod"])

    def v1_processor_recorded(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.modifications = [
            *doc.modifications,
            ModificationEntry(
                user_id="processor:hts", modification_type="processed", customer_code="hts", revision=1, emails_sent=7
            ),
        ]
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(change_id, v1_processor_recorded)
    write_processing(platform, "hts", change_id, result(1, sent=3))
    counter = S3Counter(platform.s3)
    [res] = make_handler(platform, s3=counter)(
        s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None
    )
    assert res.outcome is Outcome.ALREADY_RECORDED and counter.archive_puts == 0
    [entry] = processed(platform, change_id)
    assert entry["emails_sent"] == 7  # the v1 entry stays as it was


def test_result_for_a_revision_newer_than_the_archive_is_refused(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    write_processing(platform, "hts", change_id, result(1), result(5))
    [res] = make_handler(platform)(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None)
    assert res.outcome is Outcome.PERMANENT_ERROR and "newer than the archive's 1" in res.reason
    assert [e["revision"] for e in processed(platform, change_id)] == [1]  # the legitimate one still folds


def test_result_without_an_archive_goes_to_the_dlq_and_a_vanished_object_is_acked(
    platform: Platform, change_id: str
) -> None:
    handler = make_handler(platform)
    write_processing(platform, "hts", change_id, result(1))
    body = s3_event(platform.bucket, keys.processing_key("hts", change_id))
    [orphan] = handler(body, "sqs:1", None)
    assert orphan.outcome is Outcome.PERMANENT_ERROR
    platform.s3.delete_object(Bucket=platform.bucket, Key=keys.processing_key("hts", change_id))
    [gone] = handler(body, "sqs:2", None)
    assert gone.outcome is Outcome.ALREADY_RECORDED


def test_processing_object_without_results_needs_no_archive_read(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=["hts"])
    write_processing(platform, "hts", change_id)  # a lease claim or a checkpoint: no result yet
    counter = S3Counter(platform.s3)
    [res] = make_handler(platform, s3=counter)(
        s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None
    )
    assert res.outcome is Outcome.ALREADY_RECORDED and counter.archive_gets == 0


def test_a_lost_compare_and_swap_is_reapplied_on_the_new_version(platform: Platform, change_id: str) -> None:
    """A submission landing between the fold's read and write: both kept (a fold never writes the document)."""
    platform.submit(change_id, customers=["hts"])
    write_processing(platform, "hts", change_id, result(1))
    raced = False

    class Racing(S3Counter):
        def put_object(self, **kwargs: object) -> object:
            nonlocal raced
            if not raced and str(kwargs.get("Key", "")).startswith("archive/"):
                raced = True
                platform.submit(change_id, customers=["hts"], summary="submitted meanwhile")
            return super().put_object(**kwargs)

    counter = Racing(platform.s3)
    [res] = make_handler(platform, s3=counter)(
        s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None
    )
    # the document's mark lost to the submission and was applied again on it, then the fold's head
    assert res.outcome is Outcome.PROCESSED and counter.archive_puts == 3
    doc = platform.archive(change_id)
    assert doc["revision"] == 2 and doc["summary"] == "submitted meanwhile"
    assert [e["revision"] for e in processed(platform, change_id)] == [1]
    assert json.dumps(doc["modifications"]).count('"processed"') == 1


def test_a_fold_rewrites_unknown_numbers_byte_for_byte(platform: Platform, change_id: str) -> None:
    """Issue 11, item 10: the coordinator's rewrite of the archive keeps numbers it does not know as they
    were written (a long decimal, a number beyond a double, NaN from another writer), not ``null``."""
    platform.submit(change_id, customers=["hts"])
    key = keys.archive_key(change_id)
    stored = json.loads(platform.s3.get_object(Bucket=platform.bucket, Key=key)["Body"].read())
    body = json.dumps(stored)[:-1] + ', "pi": 3.14159265358979323846264338327950288, "huge": 1e400, "odd": NaN}'
    platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=body.encode())
    write_processing(platform, "hts", change_id, result(1))
    [res] = make_handler(platform)(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None)
    assert res.outcome is Outcome.PROCESSED
    rewritten = platform.s3.get_object(Bucket=platform.bucket, Key=key)["Body"].read()
    assert b'"pi": 3.14159265358979323846264338327950288' in rewritten
    assert b'"huge": 1e400' in rewritten and b'"odd": NaN' in rewritten
    assert len(processed(platform, change_id)) == 1


# ---- issue 17, item 1: a result is folded only for a customer its revision targeted ------------------


@contextmanager
def log_lines() -> Iterator[list[dict[str, Any]]]:
    """The JSON log lines written while the block runs."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))


def test_a_result_for_a_customer_the_change_does_not_list_is_refused_and_never_written(
    platform: Platform, change_id: str
) -> None:
    """The issue's reproduction: CHG lists only htsnonprod; hts's processor writes its own processing
    object for CHG claiming 5,000 emails. Refused (DLQ), counted, a security log naming the key."""
    platform.submit(change_id, customers=["htsnonprod"])
    before = platform.s3.get_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))["ETag"]
    write_processing(platform, "hts", change_id, result(1, sent=5000))
    key = keys.processing_key("hts", change_id)
    with log_lines() as lines:
        [res] = make_handler(platform)(s3_event(platform.bucket, key), "sqs:1", None)
    assert res.outcome is Outcome.PERMANENT_ERROR and key in res.reason and "did not target" in res.reason
    assert platform.s3.get_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))["ETag"] == before
    assert processed(platform, change_id) == []
    assert platform.metric_total("ResultsRefused", COORDINATOR_METRICS_DIMENSION_VALUE) == 1
    assert platform.metric_total("ResultsFolded", COORDINATOR_METRICS_DIMENSION_VALUE) == 0
    [security] = [line for line in lines if line.get("security")]
    assert security["level"] == "ERROR" and security["key"] == key and security["revision"] == 1


def test_a_result_for_a_listed_customer_the_revision_did_not_notify_is_refused(
    platform: Platform, change_id: str
) -> None:
    """``submit --customers hts`` of a change listing both: htsnonprod was never sent a trigger."""
    doc = {"change_id": change_id, "title": "t", "customers": ["hts", "htsnonprod"]}
    submit_change(
        ArchiveStore(platform.s3, platform.bucket),
        TriggerStore(platform.s3, platform.bucket),
        doc,
        user_id="u",
        customers=["hts"],
    )
    write_processing(platform, "htsnonprod", change_id, result(1, sent=5000))
    write_processing(platform, "hts", change_id, result(1, sent=2))
    handler = make_handler(platform)
    [refused] = handler(s3_event(platform.bucket, keys.processing_key("htsnonprod", change_id)), "sqs:1", None)
    [folded] = handler(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:2", None)
    assert refused.outcome is Outcome.PERMANENT_ERROR and folded.outcome is Outcome.PROCESSED
    assert [(e["customer_code"], e["emails_sent"]) for e in processed(platform, change_id)] == [("hts", 2)]


def test_a_trigger_of_an_earlier_revision_processed_at_the_newest_one_still_folds(
    platform: Platform, change_id: str
) -> None:
    """Revision 1 notified both, revision 2 only hts: htsnonprod's revision-1 trigger, handled after
    revision 2 was written, sends revision 2 (a processor renders the revision it reads). Those emails
    were sent for a revision htsnonprod was notified of: they fold, no security event."""
    doc = {"change_id": change_id, "title": "t", "customers": ["hts", "htsnonprod"]}
    store, triggers = ArchiveStore(platform.s3, platform.bucket), TriggerStore(platform.s3, platform.bucket)
    submit_change(store, triggers, doc, user_id="u")
    submit_change(store, triggers, {**doc, "summary": "2"}, user_id="u", customers=["hts"])
    write_processing(platform, "htsnonprod", change_id, result(2, sent=4))
    [res] = make_handler(platform)(
        s3_event(platform.bucket, keys.processing_key("htsnonprod", change_id)), "sqs:1", None
    )
    assert res.outcome is Outcome.PROCESSED
    assert [(e["customer_code"], e["revision"]) for e in processed(platform, change_id)] == [("htsnonprod", 2)]


def test_a_customer_dropped_by_the_current_revision_cannot_fold_a_result_for_it(
    platform: Platform, change_id: str
) -> None:
    store, triggers = ArchiveStore(platform.s3, platform.bucket), TriggerStore(platform.s3, platform.bucket)
    submit_change(
        store, triggers, {"change_id": change_id, "title": "t", "customers": ["hts", "htsnonprod"]}, user_id="u"
    )
    submit_change(store, triggers, {"change_id": change_id, "title": "t", "customers": ["hts"]}, user_id="u")
    write_processing(platform, "htsnonprod", change_id, result(1, sent=1), result(2, sent=5000))
    [res] = make_handler(platform)(
        s3_event(platform.bucket, keys.processing_key("htsnonprod", change_id)), "sqs:1", None
    )
    assert res.outcome is Outcome.PERMANENT_ERROR and "revision 2" in res.reason
    assert [(e["customer_code"], e["revision"]) for e in processed(platform, change_id)] == [("htsnonprod", 1)]


def test_a_v1_archive_without_submitted_entries_folds_only_for_its_listed_customers(
    platform: Platform, change_id: str
) -> None:
    """An archive written before ``submit`` recorded who each revision notified: its current revision
    targeted the customers it lists."""
    v1 = ArchiveDocument(change_id=change_id, title="v1", customers=["hts"], revision=2)
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.archive_key(change_id), Body=v1.to_json_bytes())
    write_processing(platform, "hts", change_id, result(2, sent=3))
    write_processing(platform, "htsnonprod", change_id, result(2, sent=5000))
    handler = make_handler(platform)
    [listed] = handler(s3_event(platform.bucket, keys.processing_key("hts", change_id)), "sqs:1", None)
    [unlisted] = handler(s3_event(platform.bucket, keys.processing_key("htsnonprod", change_id)), "sqs:2", None)
    assert listed.outcome is Outcome.PROCESSED and unlisted.outcome is Outcome.PERMANENT_ERROR
    assert [(e["customer_code"], e["revision"]) for e in processed(platform, change_id)] == [("hts", 2)]


def test_a_change_of_n_customers_reads_each_processing_object_once(platform: Platform, change_id: str) -> None:
    """Each customer's processor writes its processing object twice (the claim, then the record a moment
    later) and S3 announces both: the coordinator reads each object once, not once per event (issue 21
    measured 2 GETs per customer, the claim's finding no result)."""
    codes = [f"once{i:02d}" for i in range(20)]
    platform.submit(change_id, customers=codes)
    counter = S3Counter(platform.s3)
    handler = make_handler(platform, s3=counter, linger=1.0)
    outcomes: list[Outcome] = []

    def on_event(code: str) -> None:
        outcomes.extend(
            r.outcome for r in handler(s3_event(platform.bucket, keys.processing_key(code, change_id)), "o")
        )

    threads = []
    for code in codes:
        write_processing(platform, code, change_id)  # the claim: no result yet
        threads.append(threading.Thread(target=on_event, args=(code,)))
        threads[-1].start()
        write_processing(platform, code, change_id, result(1))  # the record
        threads.append(threading.Thread(target=on_event, args=(code,)))
        threads[-1].start()
    for thread in threads:
        thread.join(30)

    assert len(outcomes) == 2 * len(codes) and Outcome.RETRY not in outcomes
    assert sorted(e["customer_code"] for e in processed(platform, change_id)) == codes
    assert counter.processing_gets == len(codes)
