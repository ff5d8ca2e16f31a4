"""Folding the customers' results into the archive's audit trail, many customers per write.

A customer's processor records its result for revision R in ``processing/{C}/{id}.json`` (and never
writes the archive). For each such object the coordinator appends, once, the seeds' audit entry::

    {"modification_type": "processed", "customer_code": C, "revision": R, "user_id": "processor:C",
     "timestamp": <the result's finished_at>, "recipients": n, "emails_sent": s, "rejected": r}

plus ``"superseded": true`` for a revision a newer one stopped before it was done (issue 17 item 4).

**Batching.** :class:`FoldBatcher` collects the results of one change: the first message of a change
opens a batch and lingers ``fold_linger_seconds``; every message of that change handled meanwhile (the
worker handles up to ``max_concurrency`` at once, i.e. a whole receive batch) adds its results and waits.
Then one fold (a segment and a compare-and-swap of the head) records them all, and each message learns its own outcome:
N customers finishing together cost about N / ``max_concurrency`` folds instead of N.

**Segments.** A fold writes its entries to a new segment ``archive/{id}/folds/{seq}`` and lists it in the
change's small head ``archive/{id}/folds/head`` (:mod:`runtime.archive.folds`); the change document is
not rewritten, so the bytes a fold writes do not grow with the customers folded. The segments already
read are kept per change (they never change): a fold reads only the segments listed since. A
compare-and-swap retry that decides the same entries reuses its segment; one that decides others
writes a new segment (the unlisted one means nothing).

**Idempotence.** The mutation skips every (C, R) the archive already has a ``processed`` entry for —
inline (an older fold, or an older processor that recorded it inside the archive itself) or in a listed
segment — so a re-fold writes nothing. The decision is re-taken on every compare-and-swap attempt.

**Never ahead of the archive, never for a customer not targeted.** A result for a revision newer than
the archive's cannot come from a processor (it renders the revision it read, and a revision is never
lowered, not even by ``restore``). A result for (C, R) where revision R did not target customer C
(:meth:`~runtime.archive.documents.ArchiveDocument.targets`) cannot either: C's processor may write its
own processing object under any change id, and folding it would put emails C never sent for this change
into its audit trail. Both are refused, counted (``ResultsRefused``, alarmed), logged as a security
event naming the processing object's key and their message dead-lettered; the other results still fold.

**An earlier submission's results.** A result for a revision below the archive's first ``submitted``
entry belongs to an earlier submission of the same change id whose archive was deleted (``submit``
continues its revision numbering from the bucket's versions): it is no result of this content and is
never folded, but it is no attack either (the customer's processing object keeps its history), so it is
only skipped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime.archive import (
    PROCESSED,
    ArchiveConflict,
    ArchiveDocument,
    ArchiveStore,
    FoldHead,
    ModificationEntry,
    ProcessingDocument,
    ResultsCache,
    RevisionResult,
    Versioned,
    VersionedArchive,
    VersionedHead,
    count_outcomes,
    is_conflict,
    is_missing,
    read_listed,
    utcnow,
)
from runtime.contract import keys
from runtime.contract.metric_names import MetricName
from runtime.contract.names import COORDINATOR_METRICS_DIMENSION_VALUE
from runtime.coordinator.batching import BatchFailed, KeyedBatcher
from runtime.telemetry import MetricsFactory, logger


def processor_user_id(customer_code: str) -> str:
    """The ``user_id`` of a folded ``processed`` entry: the customer's processor did the work."""
    return f"processor:{customer_code}"


@dataclass(frozen=True)
class PendingResult:
    """One customer's result for one revision, read from its processing object."""

    customer_code: str
    change_id: str
    result: RevisionResult

    @property
    def revision(self) -> int:
        return self.result.revision

    def entry(self) -> ModificationEntry:
        r = self.result
        return ModificationEntry(
            timestamp=r.finished_at,
            user_id=processor_user_id(self.customer_code),
            modification_type=PROCESSED,
            customer_code=self.customer_code,
            revision=r.revision,
            recipients=r.recipients,
            emails_sent=r.sent,
            rejected=r.rejected,
            superseded=True if r.superseded else None,
        )


def pending_results(doc: ProcessingDocument) -> list[PendingResult]:
    """Every result a processing object records, oldest revision first."""
    results = sorted(doc.results.values(), key=lambda r: r.revision)
    return [PendingResult(doc.customer_code, doc.change_id, r) for r in results]


@dataclass
class FoldOutcome:
    """What one fold did with each result it was given."""

    folded: list[PendingResult] = field(default_factory=list)
    """Appended by this fold's write."""
    already: list[PendingResult] = field(default_factory=list)
    """Already in the archive (an earlier fold, or an older processor's own entry): nothing written."""
    refused: list[PendingResult] = field(default_factory=list)
    """For a revision newer than the archive's: never folded (a security event)."""
    untargeted: list[PendingResult] = field(default_factory=list)
    """For a customer its revision did not target: never folded (a security event)."""
    earlier: list[PendingResult] = field(default_factory=list)
    """For a revision before the archive's first submission (an earlier submission of this change id,
    whose archive was deleted): never folded, no security event."""
    archive_revision: int = 0
    writes: int = 0

    def only(self, mine: Iterable[PendingResult]) -> FoldOutcome:
        wanted = {id(p) for p in mine}  # the batch holds the very objects each caller submitted
        return FoldOutcome(
            [p for p in self.folded if id(p) in wanted],
            [p for p in self.already if id(p) in wanted],
            [p for p in self.refused if id(p) in wanted],
            [p for p in self.untargeted if id(p) in wanted],
            [p for p in self.earlier if id(p) in wanted],
            self.archive_revision,
            self.writes,
        )


_UNREAD: Any = object()
"""Not read yet (unlike None, which for a head means "there is none")."""


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Folder:
    """One fold writes every given result not yet recorded to a new segment and lists it in the head.

    Per change it keeps (the last ``remember`` changes) the version of the change document it read, the
    head it wrote and the segments it read or wrote. A fold confirms the document with a conditional GET
    (a bodiless 304 while it is unchanged: a newer revision or a restore is never judged on an old
    version) and writes the head ``IfMatch`` the version it wrote last, so a fold costs no read of the
    document's body and no read of the head unless another writer changed them (issue 21)."""

    def __init__(
        self,
        archive: ArchiveStore,
        metrics: MetricsFactory,
        *,
        clock: Callable[[], datetime] = utcnow,
        remember: int = 256,
    ) -> None:
        self.archive = archive
        self.metrics = metrics
        self.clock = clock
        self._documents: OrderedDict[str, VersionedArchive] = OrderedDict()
        self._heads: OrderedDict[str, VersionedHead | None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self._results = ResultsCache(remember)
        """Per change, the segments read or written so far (never stale: a segment is never rewritten)."""

    def _cached(self, cache: OrderedDict[str, Any], change_id: str) -> Any:
        with self._lock:
            return cache.get(change_id, _UNREAD)

    def _keep(self, cache: OrderedDict[str, Any], change_id: str, value: Any) -> None:
        with self._lock:
            if value is _UNREAD:
                cache.pop(change_id, None)
                return
            cache[change_id] = value
            cache.move_to_end(change_id)
            while len(cache) > self._remember:
                cache.popitem(last=False)

    def _document(self, change_id: str) -> VersionedArchive:
        cached = self._cached(self._documents, change_id)
        if cached is _UNREAD:
            current = self.archive.load(change_id)
        else:
            current = self.archive.load_if_changed(change_id, cached.etag) or cached
        self._keep(self._documents, change_id, current)
        return current

    def _mark(self, change_id: str, version: VersionedArchive) -> tuple[VersionedArchive, bool]:
        """Marks the document ``fold_segments`` (one write per change, before its first segment: readers
        look for segments only in a marked document); whether this call wrote the mark."""
        wrote = [False]

        def mark(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None  # the store raises ArchiveMissing first
            wrote[0] = not doc.fold_segments
            if doc.fold_segments:
                return None
            doc.fold_segments = True
            return doc

        marked = self.archive.update(change_id, mark, current=version)
        self._keep(self._documents, change_id, marked)
        return marked, wrote[0]

    def fold(self, change_id: str, pending: list[PendingResult]) -> FoldOutcome:
        """Raises the archive store's errors (missing, invalid, lost CAS too often, S3 failures)."""
        try:
            return self._fold(change_id, pending)
        except Exception:
            self._keep(self._documents, change_id, _UNREAD)
            self._keep(self._heads, change_id, _UNREAD)
            raise

    def _fold(self, change_id: str, pending: list[PendingResult]) -> FoldOutcome:
        version = self._document(change_id)
        doc = version.document
        results = self._results.of(change_id)
        written: list[tuple[int, frozenset[tuple[str, int]]]] = []  # this fold's segments
        segments = self.archive.segments
        backoff = segments.heads.backoff
        # an unmarked document has no head yet (the mark comes before the first segment): no read
        current: VersionedHead | object | None = self._cached(self._heads, change_id) if doc.fold_segments else None
        for attempt in range(backoff.max_attempts):
            if current is _UNREAD:
                current = segments.head(change_id)
            assert current is None or isinstance(current, Versioned)
            head = current.document if current is not None else None
            read_listed(segments, head, results)
            outcome = self._decide(doc, pending, results.recorded(head))
            if not outcome.folded:
                self._keep(self._heads, change_id, current)
                self._report(change_id, outcome, current.etag if current else "")
                return outcome
            if not doc.fold_segments:
                version, wrote = self._mark(change_id, version)
                doc = version.document
                current = None if wrote else _UNREAD  # marked by another coordinator: it may have a head
                continue  # decided again on the document as marked
            entries = [p.entry() for p in sorted(outcome.folded, key=lambda p: (p.revision, p.customer_code))]
            listed = head.segments if head is not None else []
            mine = frozenset((p.customer_code, p.revision) for p in outcome.folded)
            if written and written[-1][1] == mine and written[-1][0] not in listed:
                seq = written[-1][0]  # a retry deciding the same entries lists the segment it wrote
            else:
                highest = max([0, *listed, *results.segments, *(w[0] for w in written)])
                seq = segments.create(change_id, highest + 1, entries)
                results.segments[seq] = entries
                written.append((seq, mine))
            new_head = FoldHead(
                change_id=change_id,
                segments=[*listed, seq],
                outcomes=count_outcomes(entries, head.outcomes if head is not None else None),
                last_folded_at=self.clock(),
            )
            try:
                written_head = segments.put_head(new_head, current)
            except ClientError as exc:
                if not (is_conflict(exc) or (current is not None and is_missing(exc))):
                    raise
                backoff.pause(attempt)
                current = _UNREAD
                continue
            self._keep(self._heads, change_id, written_head)
            self._report(change_id, outcome, written_head.etag)
            return outcome
        raise ArchiveConflict(f"{keys.fold_head_key(change_id)}: lost compare-and-swap {backoff.max_attempts} times")

    @staticmethod
    def _decide(doc: ArchiveDocument, pending: list[PendingResult], recorded: set[Any]) -> FoldOutcome:
        outcome = FoldOutcome(archive_revision=doc.revision)
        first, notified = doc.first_submitted_revision(), doc.notified_customers()
        seen: set[tuple[str, int]] = set()
        for item in pending:
            key = (item.customer_code, item.revision)
            # twice in this batch (its claim's and its record's events), in a listed segment, or inline
            if key in seen or key in recorded or doc.is_processed(item.customer_code, item.revision):
                outcome.already.append(item)
            elif item.revision > doc.revision:
                outcome.refused.append(item)
            elif first is not None and item.revision < first and item.customer_code in notified:
                outcome.earlier.append(item)
            elif not doc.targets(item.customer_code, item.revision):
                outcome.untargeted.append(item)
            else:
                seen.add(key)
                outcome.folded.append(item)
        return outcome

    def _report(self, change_id: str, outcome: FoldOutcome, etag: str) -> None:
        """The metrics and log lines of one fold: what was folded, refused (a security event) or skipped."""
        if outcome.folded:
            outcome.writes = 1
            now = self.clock()
            with self.metrics.batch(COORDINATOR_METRICS_DIMENSION_VALUE) as batch:
                batch.add(MetricName.RESULTS_FOLDED, len(outcome.folded))
                for item in outcome.folded:
                    batch.add(MetricName.FOLD_LAG, max(0.0, (now - _as_utc(item.result.finished_at)).total_seconds()))
            logger.info(
                "results folded into the archive",
                extra={
                    "change_id": change_id,
                    "folded": [f"{p.customer_code}@{p.revision}" for p in outcome.folded],
                    "etag": etag,
                },
            )

        def about(item: PendingResult) -> dict[str, object]:
            return {
                "change_id": change_id,
                "customer": item.customer_code,
                "revision": item.revision,
                "key": keys.processing_key(item.customer_code, change_id),
                "archive_revision": outcome.archive_revision,
            }

        refusals = [
            *((item, "refused a result for a revision newer than the archive's") for item in outcome.refused),
            *((item, "refused a result for a customer its revision did not target") for item in outcome.untargeted),
        ]
        if refusals:
            with self.metrics.batch(COORDINATOR_METRICS_DIMENSION_VALUE) as batch:
                batch.add(MetricName.RESULTS_REFUSED, len(refusals))
        for item, message in refusals:
            logger.error(message, extra={**about(item), "security": True})
        for item in outcome.earlier:
            logger.info(
                "skipped a result of an earlier submission of this change id (its archive was deleted)",
                extra=about(item),
            )


FOLD_MAX_LINGERS = 4
"""A fold's batch stays open at most this many lingers while results keep arriving (2 s at the default
0.5 s linger): a fold costs a segment, a head and a conditional GET, whatever it holds (issue 21)."""
FOLD_MAX_ITEMS = 16
"""A fold's batch is written at once when it holds this many results: each waits in a handler thread,
and the next batch and the processing objects' reads need threads too (the coordinator's
``max_concurrency`` is 32 by default; :func:`runtime.coordinator.composition.build_handler` passes half)."""
FOLD_BUSY_SHARE = 8
"""A linger that brought at least ``max_items / FOLD_BUSY_SHARE`` results (2 of 16: 4 a second at the
default linger, where a fold's three requests cost 0.75 per customer) means many are arriving: the batch
stays open for another linger. Fewer end it (a lone result waits one linger)."""


class FoldFailed(BatchFailed):
    """The batch this result was in could not be written; the message is retried."""


class FoldBatcher:
    """Collects the results of one change for ``linger_seconds``, then folds them with one write.

    Thread-safe; the first caller of a change is the batch's leader (it lingers, then writes), the
    others wait for the leader's outcome. Every caller gets the outcome of its own results. One write
    per change at a time: while the previous batch of a change is being written, the next one stays
    open and keeps collecting, so the coordinator's own writes never race each other (no 412s among
    them) and batches grow with the load instead of the writes (:class:`~runtime.coordinator.batching.KeyedBatcher`).
    """

    def __init__(
        self,
        folder: Folder,
        linger_seconds: float,
        *,
        sleep: Callable[[float], None] | None = None,
        remember: int = 10_000,
        max_lingers: int = FOLD_MAX_LINGERS,
        max_items: int = FOLD_MAX_ITEMS,
    ) -> None:
        self.folder = folder
        self.linger_seconds = linger_seconds
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._remember = remember
        self.writes = 0
        self.batches = 0
        self._batcher: KeyedBatcher[str, PendingResult, FoldOutcome] = KeyedBatcher(
            self._fold,
            linger_seconds,
            sleep=sleep,
            failure=FoldFailed,
            max_lingers=max_lingers,
            max_items=max_items,
            busy_items=max(1, max_items // FOLD_BUSY_SHARE),
        )

    def known_folded(self, pending: Iterable[PendingResult]) -> bool:
        """True when this process has seen every one of these results in the archive already.

        Saves the archive GET for the many processing-object events that carry no new result
        (lease claims and progress checkpoints re-announce the old results). Bounded, per process.
        """
        with self._lock:
            return all((p.change_id, p.customer_code, p.revision) in self._known for p in pending)

    def _remember_folded(self, items: Iterable[PendingResult]) -> None:
        with self._lock:
            for p in items:
                self._known[(p.change_id, p.customer_code, p.revision)] = None
                self._known.move_to_end((p.change_id, p.customer_code, p.revision))
            while len(self._known) > self._remember:
                self._known.popitem(last=False)

    def _fold(self, change_id: str, items: list[PendingResult]) -> FoldOutcome:
        outcome = self.folder.fold(change_id, items)
        with self._lock:
            self.batches += 1
            self.writes += outcome.writes
        self._remember_folded([*outcome.folded, *outcome.already, *outcome.earlier])
        return outcome

    def submit(self, change_id: str, pending: list[PendingResult]) -> FoldOutcome:
        return self._batcher.submit(change_id, pending).only(pending)
