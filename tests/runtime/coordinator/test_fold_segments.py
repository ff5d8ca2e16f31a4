"""The segmented archive (issue 21): each fold writes its entries to a new segment that the change's small
fold head lists; the change document is not rewritten by a fold; every reader sees the results."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from runtime.archive import ArchiveStore, FoldSegment
from runtime.archive.documents import utcnow
from runtime.contract import keys
from runtime.coordinator.folding import Folder, PendingResult
from runtime.ops.clients import OpsClients
from runtime.ops.last_fold import last_fold
from runtime.ops.restore import restore
from runtime.ops.verify import verify
from runtime.telemetry.metrics import MetricsFactory
from tests.runtime.coordinator.conftest import result, write_processing
from tests.support.aws_platform import Platform

CODES = ["hts", "htsnonprod"]


def folder(platform: Platform, s3: Any = None) -> Folder:
    store = ArchiveStore(s3 or platform.s3, platform.bucket, sleep=lambda _s: None)
    return Folder(store, MetricsFactory("CustomMetrics", platform.metrics_stream))


def pending(change_id: str, code: str, revision: int = 1) -> PendingResult:
    return PendingResult(code, change_id, result(revision))


def stored(platform: Platform, change_id: str) -> dict[str, Any]:
    """The archive document as stored (no segment read)."""
    body = platform.s3.get_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))["Body"].read()
    data: dict[str, Any] = json.loads(body)
    return data


def head(platform: Platform, change_id: str) -> dict[str, Any]:
    body = platform.s3.get_object(Bucket=platform.bucket, Key=keys.fold_head_key(change_id))["Body"].read()
    data: dict[str, Any] = json.loads(body)
    return data


def results(platform: Platform, change_id: str) -> list[tuple[str | None, int | None]]:
    loaded = ArchiveStore(platform.s3, platform.bucket).load_results(change_id)
    assert loaded is not None
    return sorted(
        (m.customer_code, m.revision) for m in loaded.document.modifications if m.modification_type == "processed"
    )


def segment_keys(platform: Platform, change_id: str) -> list[str]:
    listed = platform.s3.list_objects_v2(Bucket=platform.bucket, Prefix=keys.fold_segment_prefix(change_id))
    return [item["Key"] for item in listed.get("Contents", []) if not item["Key"].endswith("/head")]


def test_a_fold_writes_its_entries_to_a_segment_and_a_small_head_never_the_document(
    platform: Platform, change_id: str
) -> None:
    """40 folds of one customer each: the document is never rewritten (each fold used to rewrite it with
    every entry folded so far), and the head grows by a segment number per fold, not by an entry."""
    codes = [f"c{i:02d}" for i in range(40)]
    platform.submit(change_id, customers=codes)
    submitted = stored(platform, change_id)
    fold = folder(platform)
    sizes = []
    for code in codes:
        assert [p.customer_code for p in fold.fold(change_id, [pending(change_id, code)]).folded] == [code]
        sizes.append(len(json.dumps(head(platform, change_id))))
    assert stored(platform, change_id) == {**submitted, "fold_segments": True}  # marked once, before the first
    written = head(platform, change_id)
    assert written["segments"] == list(range(1, 41)) and written["outcomes"] == {"processed": 40}
    assert (sizes[-1] - sizes[0]) / 39 < 12  # a segment number; an entry is ~250 bytes
    assert len(segment_keys(platform, change_id)) == 40
    assert results(platform, change_id) == [(code, 1) for code in codes]
    # a re-fold reads the segments and writes nothing
    again = folder(platform).fold(change_id, [pending(change_id, "c07")])
    assert [p.customer_code for p in again.already] == ["c07"] and again.writes == 0


def test_two_coordinators_folding_into_the_same_segment_number_lose_nothing(platform: Platform, change_id: str) -> None:
    """Coordinator A writes segment 1; before A lists it, coordinator B folds another customer: B's
    creation of segment 1 conflicts (IfNoneMatch), B writes segment 2 and lists it; A's head write then
    loses its compare-and-swap, re-reads, and lists its own segment 1 beside B's 2. Both results are folded."""
    platform.submit(change_id, customers=CODES)
    b = folder(platform)
    raced: list[Any] = []

    class RaceOnHead:
        def __init__(self, target: Any) -> None:
            self._target = target

        def put_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"] == keys.fold_head_key(change_id) and not raced:
                raced.append(b.fold(change_id, [pending(change_id, "htsnonprod")]))
            return self._target.put_object(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._target, name)

    a = folder(platform, s3=RaceOnHead(platform.s3))
    outcome = a.fold(change_id, [pending(change_id, "hts")])
    assert [p.customer_code for p in outcome.folded] == ["hts"]
    assert [p.customer_code for p in raced[0].folded] == ["htsnonprod"]
    assert sorted(head(platform, change_id)["segments"]) == [1, 2]
    segments = {
        key: FoldSegment.model_validate_json(platform.s3.get_object(Bucket=platform.bucket, Key=key)["Body"].read())
        for key in segment_keys(platform, change_id)
    }
    assert {key.rsplit("/", 1)[1]: [e.customer_code for e in s.entries] for key, s in segments.items()} == {
        "00000001": ["hts"],
        "00000002": ["htsnonprod"],
    }
    assert results(platform, change_id) == [("hts", 1), ("htsnonprod", 1)]


def test_a_document_of_the_older_format_still_reads_and_its_next_fold_writes_a_segment(
    platform: Platform, change_id: str
) -> None:
    """A stored v2 document with its ``processed`` entries inline and no head: a result it records is not
    folded again; a new result goes to a segment, and readers see both."""
    platform.submit(change_id, customers=CODES)
    doc = stored(platform, change_id)
    doc["modifications"].append(
        {
            "timestamp": "2026-12-01T10:00:00Z",
            "user_id": "processor:hts",
            "modification_type": "processed",
            "customer_code": "hts",
            "revision": 1,
            "recipients": 2,
            "emails_sent": 2,
            "rejected": 0,
        }
    )
    platform.s3.put_object(Bucket=platform.bucket, Key=keys.archive_key(change_id), Body=json.dumps(doc).encode())
    assert results(platform, change_id) == [("hts", 1)]
    outcome = folder(platform).fold(change_id, [pending(change_id, "hts"), pending(change_id, "htsnonprod")])
    assert [p.customer_code for p in outcome.already] == ["hts"]
    assert [p.customer_code for p in outcome.folded] == ["htsnonprod"]
    assert head(platform, change_id)["segments"] == [1]
    assert [m["modification_type"] for m in stored(platform, change_id)["modifications"]] == ["submitted", "processed"]
    assert results(platform, change_id) == [("hts", 1), ("htsnonprod", 1)]
    report = verify(OpsClients(s3=platform.s3, sqs=platform.sqs), platform.bucket, change_id)
    assert {c.customer: c.state for c in report.customers} == {"hts": "processed", "htsnonprod": "processed"}


def test_verify_and_the_last_fold_view_read_the_segments(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=CODES)
    folder(platform).fold(change_id, [pending(change_id, code) for code in CODES])
    report = verify(OpsClients(s3=platform.s3, sqs=platform.sqs), platform.bucket, change_id)
    assert {c.customer: c.state for c in report.customers} == {"hts": "processed", "htsnonprod": "processed"}
    assert [m["customer_code"] for m in report.modifications if m["modification_type"] == "processed"] == CODES
    seen = last_fold(platform.s3, platform.bucket, utcnow())
    ours = platform.s3.head_object(Bucket=platform.bucket, Key=keys.fold_head_key(change_id))["LastModified"]
    assert seen.error is None and seen.source == "fold head" and seen.at == ours  # (a tie to the second: any)
    assert seen.age_seconds is not None and seen.age_seconds < 60


def test_a_restore_keeps_the_results_folded_after_the_restored_version(platform: Platform, change_id: str) -> None:
    """Restoring a document version from before both folds and a later submission: the folded results
    (emails were sent) are not the document's and stay, and the plan lists none of them as unfolded."""
    platform.submit(change_id, customers=CODES)
    time.sleep(1.1)  # listings give LastModified to the second
    between = utcnow()
    time.sleep(1.1)
    platform.submit(change_id, customers=CODES, summary="revision 2")
    fold = folder(platform)
    for code, revision in (("hts", 2), ("htsnonprod", 1)):
        write_processing(platform, code, change_id, result(revision))  # what the folds read the results from
        fold.fold(change_id, [pending(change_id, code, revision)])
    plan = restore(
        OpsClients(s3=platform.s3, sqs=platform.sqs), platform.bucket, change_id, between, user="ops", force=True
    )
    assert plan.written and [e["modification_type"] for e in plan.dropped] == ["submitted"]
    doc = stored(platform, change_id)
    assert doc["revision"] == 2 and doc["modifications"][-1]["modification_type"] == "restored"
    assert head(platform, change_id)["segments"] == [1, 2]
    assert results(platform, change_id) == [("hts", 2), ("htsnonprod", 1)]
    assert plan.unfolded_results == []
    # the next fold after the restore folds nothing twice
    assert folder(platform).fold(change_id, [pending(change_id, "htsnonprod")]).writes == 0


def test_the_processor_reads_the_change_but_never_a_segment(platform: Platform, change_id: str) -> None:
    platform.submit(change_id, customers=CODES)
    folder(platform).fold(change_id, [pending(change_id, "htsnonprod", 1)])
    platform.submit(change_id, customers=CODES, summary="revision 2")
    gets: list[str] = []

    class Reads:
        def __init__(self, target: Any) -> None:
            self._target = target

        def get_object(self, **kwargs: Any) -> Any:
            gets.append(kwargs["Key"])
            return self._target.get_object(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._target, name)

    from runtime.contract.keys import TriggerRef

    outcome = platform.processor("hts", s3=Reads(platform.s3)).process(TriggerRef("hts", change_id), "sqs:m1")
    assert outcome.fate.value == "ack", outcome
    assert keys.archive_key(change_id) in gets
    assert not [k for k in gets if k.startswith(keys.fold_segment_prefix(change_id))]


def test_a_fold_segment_key_is_no_archive_key_and_no_route_matches_it() -> None:
    key = keys.fold_segment_key("CHG-1", 3)
    assert key == "archive/CHG-1/folds/00000003"
    assert not key.endswith(keys.SUFFIX)  # the routes are archive/*.json: no event for a segment
    with pytest.raises(keys.InvalidKeyError):  # the listings of archive/ skip it
        keys.parse_archive_key(key)
