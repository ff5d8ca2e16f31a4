"""The segmented archive: folded results live in immutable segments the archive document lists.

Each fold of the change coordinator writes its batch's ``processed`` entries to a new object
``archive/{id}/folds/{seq}`` (``IfNoneMatch="*"``: two coordinators can never write the same segment),
then lists ``seq`` in the archive's small :class:`~runtime.archive.documents.FoldHead` by compare-and-swap.
A fold thus costs one segment of its own entries and a head that does not grow with the customers
folded, where it used to rewrite the whole, growing document (issue 21).

Meaning: a change's folded results are the ``processed`` entries inline in its document (the older
format, and anything ``restore`` carried forward) plus the entries of every segment its head lists. A
segment the head does not list (a fold whose head write lost, or an earlier submission's) means nothing.
Segments are never rewritten, so what was read of one stays true (:class:`FoldedResults` keeps it).

Every reader of the results goes through :func:`read_folded` / :func:`with_results`
(``ArchiveStore.load_results``); the processors do not: they need only the change, and their own
processing object tells them what they recorded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive.cas import is_conflict, is_missing
from runtime.archive.documents import (
    PROCESSED,
    ArchiveDocument,
    FoldHead,
    ModificationEntry,
    _Document,
    parse_json,
)
from runtime.archive.errors import ArchiveConflict, ArchiveInvalid
from runtime.contract import keys
from runtime.contract.errors import describe_validation_error

SUPERSEDED = "superseded"
MAX_SEGMENT_ATTEMPTS = 25
"""Creations of a fold's segment before giving up (each conflict moves past the highest segment listed)."""


class FoldSegment(_Document):
    """``archive/{change_id}/folds/{seq}``: the ``processed`` entries one fold appended."""

    change_id: str
    seq: int
    entries: list[ModificationEntry]


def segment_key(change_id: str, seq: int) -> str:
    return keys.fold_segment_key(change_id, seq)


def result_key(entry: ModificationEntry) -> tuple[str | None, int | None]:
    return (entry.customer_code, entry.revision)


@dataclass
class FoldedResults:
    """The segments of one change read so far, by number (immutable once written, so never re-read)."""

    change_id: str
    segments: dict[int, list[ModificationEntry]] = field(default_factory=dict)

    def entries(self, head: FoldHead | None) -> list[ModificationEntry]:
        """The entries of the segments ``head`` lists, in segment order (each must have been read)."""
        if head is None:
            return []
        return [entry for seq in sorted(set(head.segments)) for entry in self.segments[seq]]

    def recorded(self, head: FoldHead | None) -> set[tuple[str | None, int | None]]:
        return {result_key(e) for e in self.entries(head)}


class ResultsCache:
    """The :class:`FoldedResults` of the last ``size`` changes a long-lived reader saw (the coordinator):
    a segment is read once per process, never on every fold or delivery event. Thread-safe."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._results: OrderedDict[str, FoldedResults] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, change_id: str) -> FoldedResults:
        with self._lock:
            results = self._results.get(change_id)
            if results is None:
                results = self._results[change_id] = FoldedResults(change_id)
            self._results.move_to_end(change_id)
            while len(self._results) > self.size:
                self._results.popitem(last=False)
            return results


class FoldSegments:
    """Reads and creates fold segments in the bucket of ``s3``."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def read(self, change_id: str, seq: int) -> list[ModificationEntry]:
        key = segment_key(change_id, seq)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                raise ArchiveInvalid(
                    f"{keys.archive_key(change_id)} lists fold segment {seq} but {key} does not exist: "
                    "restore the segment from its versions, or `restore` an archive version that does not list it"
                ) from None
            raise
        try:
            segment = FoldSegment.model_validate(parse_json(body))
        except (ValueError, ValidationError) as exc:
            detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ArchiveInvalid(f"{key} is not a valid fold segment: {detail}") from None
        if (segment.change_id, segment.seq) != (change_id, seq):
            raise ArchiveInvalid(f"{key} holds segment {segment.seq} of {segment.change_id!r}")
        return segment.entries

    def create(self, change_id: str, first_seq: int, entries: list[ModificationEntry]) -> int:
        """Writes ``entries`` as a new segment numbered ``first_seq`` or, when that one exists (another
        coordinator's, or an unlisted leftover), past the highest existing one; returns its number."""
        seq = first_seq
        for _ in range(MAX_SEGMENT_ATTEMPTS):
            body = _encode_segment(FoldSegment(change_id=change_id, seq=seq, entries=entries))
            try:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=segment_key(change_id, seq),
                    Body=body,
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if not is_conflict(exc):
                    raise
                seq = max(seq, self.highest(change_id)) + 1
                continue
            return seq
        raise ArchiveConflict(
            f"{keys.fold_segment_prefix(change_id)}: could not create a segment {MAX_SEGMENT_ATTEMPTS} times in a row"
        )

    def highest(self, change_id: str) -> int:
        """The highest segment number in the bucket (0: none), from one listing per 1,000 segments."""
        prefix = keys.fold_segment_prefix(change_id)
        found = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                tail = item["Key"][len(prefix) :]
                if tail.isdigit():
                    found = max(found, int(tail))
        return found


def _encode_segment(segment: FoldSegment) -> bytes:
    return segment.model_dump_json(by_alias=False, exclude_none=True).encode()


def read_folded(segments: FoldSegments, doc: ArchiveDocument, known: FoldedResults | None = None) -> FoldedResults:
    """THE read of a change's folded results: the segments ``doc``'s head lists that ``known`` has not read
    yet are read into it (a new :class:`FoldedResults` when None) and it is returned."""
    results = known if known is not None else FoldedResults(doc.change_id)
    if doc.folds is not None:
        for seq in sorted(set(doc.folds.segments)):
            if seq not in results.segments:
                results.segments[seq] = segments.read(doc.change_id, seq)
    return results


def with_results(doc: ArchiveDocument, results: FoldedResults) -> ArchiveDocument:
    """A copy of ``doc`` whose audit trail holds its segments' entries too (in time order), for readers:
    ``is_processed``, ``processed_entry``, the views. Never written back: the head stays the document."""
    folded = results.entries(doc.folds)
    if not folded:
        return doc
    inline = {result_key(m) for m in doc.modifications if m.modification_type == PROCESSED}
    merged = [*doc.modifications, *(e for e in folded if result_key(e) not in inline)]
    return doc.model_copy(update={"modifications": sorted(merged, key=lambda m: m.timestamp)})


def count_outcomes(entries: Iterable[ModificationEntry], into: dict[str, int] | None = None) -> dict[str, int]:
    """The head's ``outcomes``: entries per outcome (``processed``, and ``superseded`` among them)."""
    counts = dict(into or {})
    for entry in entries:
        counts[PROCESSED] = counts.get(PROCESSED, 0) + 1
        if entry.superseded:
            counts[SUPERSEDED] = counts.get(SUPERSEDED, 0) + 1
    return counts


def merged_head(first: FoldHead | None, second: FoldHead | None, results: FoldedResults) -> FoldHead | None:
    """The head listing both heads' segments (``restore``: a segment records emails that were sent, so
    it is carried forward like an inline ``processed`` entry); counts recomputed from the segments."""
    if first is None and second is None:
        return None
    segments = sorted({*(first.segments if first else []), *(second.segments if second else [])})
    head = FoldHead(segments=segments)
    head.outcomes = count_outcomes(results.entries(head))
    times = [h.last_folded_at for h in (first, second) if h is not None and h.last_folded_at is not None]
    head.last_folded_at = max(times) if times else None
    return head
