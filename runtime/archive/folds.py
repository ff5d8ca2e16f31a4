"""The segmented archive: folded results live in immutable segments, listed by a small head object.

Each fold of the change coordinator writes its batch's ``processed`` entries to a new object
``archive/{id}/folds/{seq}`` (``IfNoneMatch="*"``: two coordinators can never write the same segment),
then lists ``seq`` in the change's head ``archive/{id}/folds/head`` by compare-and-swap. The change
document ``archive/{id}.json`` is not written by a fold: its size (the change, its customers) is no
longer multiplied by the number of folds, and the bytes a fold writes are its own entries plus a head
of segment numbers (issue 21).

Meaning: a change's folded results are the ``processed`` entries inline in its document (the older
format, kept as they are) plus the entries of every segment its head lists, from the change's first
``submitted`` revision on (an earlier submission of the same change id, whose document was deleted, left
its segments behind). A segment the head does not list (a fold whose head write lost) means nothing.
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

from runtime.archive.cas import Backoff, is_conflict, is_missing
from runtime.archive.documents import (
    PROCESSED,
    ArchiveDocument,
    FoldHead,
    ModificationEntry,
    _Document,
    parse_json,
)
from runtime.archive.errors import ArchiveConflict, ArchiveInvalid
from runtime.archive.versioned import Versioned, VersionedJson
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


VersionedHead = Versioned[FoldHead]


def _parse_head(body: bytes) -> FoldHead:
    return FoldHead.model_validate_json(body)


def _dump_head(head: FoldHead) -> bytes:
    return head.model_dump_json(by_alias=False, exclude_none=True).encode()


class FoldSegments:
    """Reads and creates fold segments and their heads in the bucket of ``s3``."""

    def __init__(self, s3: Any, bucket: str, backoff: Backoff | None = None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.heads: VersionedJson[FoldHead] = VersionedJson(
            s3, bucket, kind="fold head", parse=_parse_head, dump=_dump_head, backoff=backoff or Backoff()
        )

    def head(self, change_id: str) -> VersionedHead | None:
        """``archive/{id}/folds/head`` (None: nothing was folded into segments yet)."""

        def problem(head: FoldHead) -> str | None:
            return None if head.change_id == change_id else f"the fold head of {head.change_id!r}"

        return self.heads.load_optional(keys.fold_head_key(change_id), problem)

    def put_head(self, head: FoldHead, current: VersionedHead | None) -> VersionedHead:
        """Conditional on ``current`` (``IfMatch`` its ETag, or ``IfNoneMatch`` when there was none); a
        conflict raises the ``ClientError`` (the caller re-reads and decides again)."""
        condition = {"IfMatch": current.etag} if current is not None else {"IfNoneMatch": "*"}
        response = self.s3.put_object(
            Bucket=self.bucket,
            Key=keys.fold_head_key(head.change_id),
            Body=_dump_head(head),
            ContentType="application/json",
            **condition,
        )
        return Versioned(head, response["ETag"], self.heads.clock.observe_response(response, write=True))

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


def read_folded(
    segments: FoldSegments, change_id: str, known: FoldedResults | None = None
) -> tuple[FoldHead | None, FoldedResults]:
    """THE read of a change's folded results: its head, and the segments it lists that ``known`` has not
    read yet, read into ``known`` (a new :class:`FoldedResults` when None)."""
    results = known if known is not None else FoldedResults(change_id)
    version = segments.head(change_id)
    head = version.document if version is not None else None
    read_listed(segments, head, results)
    return head, results


def read_listed(segments: FoldSegments, head: FoldHead | None, results: FoldedResults) -> None:
    """Reads the segments ``head`` lists that ``results`` lacks."""
    if head is not None:
        for seq in sorted(set(head.segments)):
            if seq not in results.segments:
                results.segments[seq] = segments.read(head.change_id, seq)


def with_results(doc: ArchiveDocument, head: FoldHead | None, results: FoldedResults) -> ArchiveDocument:
    """A copy of ``doc`` whose audit trail holds its listed segments' entries too (in time order), for
    readers: ``is_processed``, ``processed_entry``, the views. Never written back. Entries of revisions
    before the document's first submission are an earlier submission's and are left out."""
    first = doc.first_submitted_revision()
    folded = [e for e in results.entries(head) if first is None or e.revision is None or e.revision >= first]
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
