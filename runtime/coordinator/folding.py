"""Folding the customers' results into the archive's audit trail, many customers per write.

A customer's processor records its result for revision R in ``processing/{C}/{id}.json`` (and never
writes the archive). For each such object the coordinator appends, once, the seeds' audit entry::

    {"modification_type": "processed", "customer_code": C, "revision": R, "user_id": "processor:C",
     "timestamp": <the result's finished_at>, "recipients": n, "emails_sent": s, "rejected": r}

plus ``"superseded": true`` for a revision a newer one stopped before it was done (issue 17 item 4).

**Batching.** :class:`FoldBatcher` collects the results of one change: the first message of a change
opens a batch and lingers ``fold_linger_seconds``; every message of that change handled meanwhile (the
worker handles up to ``max_concurrency`` at once, i.e. a whole receive batch) adds its results and waits.
Then one compare-and-swap write of the archive folds them all, and each message learns its own outcome:
N customers finishing together cost about N / ``max_concurrency`` archive writes instead of N.

**Segments.** A fold writes its entries to a new segment ``archive/{id}/folds/{seq}`` and lists it in the
archive's small head (:mod:`runtime.archive.folds`), so neither the bytes it writes nor the document grow
with the customers folded. The segments already read are kept per change (they never change): a fold
reads only the segments listed since. A compare-and-swap retry that decides the same entries reuses its
segment; one that decides others writes a new segment (the unlisted one means nothing).

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
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runtime.archive import (
    PROCESSED,
    ArchiveDocument,
    ArchiveStore,
    FoldHead,
    ModificationEntry,
    ProcessingDocument,
    ResultsCache,
    RevisionResult,
    VersionedArchive,
    count_outcomes,
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


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Unconfirmed(Exception):
    """A decision other than "fold" was about to be taken on the version this process last wrote, which
    nobody confirmed is still current: it is taken again on a fresh read."""


class Folder:
    """One compare-and-swap write of the archive folds every given result not yet recorded.

    The version each fold writes is kept (per change, the last ``remember`` changes) and is the next
    fold's first compare-and-swap attempt, without a GET (issue 21): the ``IfMatch`` of the write is what
    confirms it is still current, and a 412 re-reads. Only a decision to fold is taken on it: any other
    (already recorded, refused, an earlier submission's) is taken again on a fresh read, so a newer
    revision or a restore that happened meanwhile is never judged on the old version."""

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
        self._written: OrderedDict[str, VersionedArchive] = OrderedDict()
        self._results = ResultsCache(remember)
        """Per change, the segments read or written so far (never stale: a segment is never rewritten)."""
        self._remember = remember
        self._lock = threading.Lock()

    def _last_written(self, change_id: str) -> VersionedArchive | None:
        with self._lock:
            return self._written.get(change_id)

    def _keep(self, change_id: str, version: VersionedArchive | None) -> None:
        with self._lock:
            if version is None:
                self._written.pop(change_id, None)
                return
            self._written[change_id] = version
            self._written.move_to_end(change_id)
            while len(self._written) > self._remember:
                self._written.popitem(last=False)

    def fold(self, change_id: str, pending: list[PendingResult]) -> FoldOutcome:
        """Raises the archive store's errors (missing, invalid, lost CAS too often, S3 failures)."""
        cached = self._last_written(change_id)
        if cached is not None:
            try:
                return self._fold(change_id, pending, cached)
            except _Unconfirmed:
                pass
            except Exception:
                self._keep(change_id, None)
                raise
        return self._fold(change_id, pending, None)

    def _fold(self, change_id: str, pending: list[PendingResult], cached: VersionedArchive | None) -> FoldOutcome:
        outcome = FoldOutcome()
        first_call = [cached is not None]
        results = self._results.of(change_id)
        written: list[tuple[int, frozenset[tuple[str, int]]]] = []  # this fold's segment, if one was written

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None  # the store raises ArchiveMissing first
            on_cached, first_call[0] = first_call[0], False
            outcome.folded, outcome.already, outcome.refused, outcome.untargeted, outcome.earlier = [], [], [], [], []
            outcome.archive_revision = doc.revision
            first, notified = doc.first_submitted_revision(), doc.notified_customers()
            recorded = self.archive.results(doc, results).recorded(doc.folds)
            seen: set[tuple[str, int]] = set()
            for item in pending:
                key = (item.customer_code, item.revision)
                if key in seen:  # the same result twice in this batch (its claim's and its record's events)
                    outcome.already.append(item)
                elif on_cached and (item.revision > doc.revision or not doc.targets(item.customer_code, item.revision)):
                    raise _Unconfirmed
                elif key in recorded or doc.is_processed(item.customer_code, item.revision):
                    if on_cached:
                        raise _Unconfirmed
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
            if on_cached and outcome.earlier:
                raise _Unconfirmed
            if not outcome.folded:
                return None
            entries = [p.entry() for p in sorted(outcome.folded, key=lambda p: (p.revision, p.customer_code))]
            head = doc.folds or FoldHead()
            mine = frozenset((p.customer_code, p.revision) for p in outcome.folded)
            if written and written[-1][1] == mine and written[-1][0] not in head.segments:
                seq = written[-1][0]  # a compare-and-swap retry deciding the same entries: the same segment
            else:
                highest = max([0, *head.segments, *results.segments, *(w[0] for w in written)])
                seq = self.archive.segments.create(change_id, highest + 1, entries)
                results.segments[seq] = entries
                written.append((seq, mine))
            doc.folds = FoldHead(
                segments=[*head.segments, seq],
                outcomes=count_outcomes(entries, head.outcomes),
                last_folded_at=self.clock(),
            )
            return doc

        try:
            written = self.archive.update(change_id, mutate, current=cached)
        except _Unconfirmed:
            raise
        except Exception:
            self._keep(change_id, None)
            raise
        self._keep(change_id, written)
        self._report(change_id, outcome, written.etag)
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
        refusals = [
            *((item, "refused a result for a revision newer than the archive's") for item in outcome.refused),
            *((item, "refused a result for a customer its revision did not target") for item in outcome.untargeted),
        ]
        if refusals:
            with self.metrics.batch(COORDINATOR_METRICS_DIMENSION_VALUE) as batch:
                batch.add(MetricName.RESULTS_REFUSED, len(refusals))
        for item, message in refusals:
            logger.error(
                message,
                extra={
                    "change_id": change_id,
                    "customer": item.customer_code,
                    "revision": item.revision,
                    "key": keys.processing_key(item.customer_code, change_id),
                    "archive_revision": outcome.archive_revision,
                    "security": True,
                },
            )
        for item in outcome.earlier:
            logger.info(
                "skipped a result of an earlier submission of this change id (its archive was deleted)",
                extra={
                    "change_id": change_id,
                    "customer": item.customer_code,
                    "revision": item.revision,
                    "key": keys.processing_key(item.customer_code, change_id),
                    "archive_revision": outcome.archive_revision,
                },
            )


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
        sleep: Callable[[float], None] = time.sleep,
        remember: int = 10_000,
    ) -> None:
        self.folder = folder
        self.linger_seconds = linger_seconds
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._remember = remember
        self.writes = 0
        self.batches = 0
        self._batcher: KeyedBatcher[str, PendingResult, FoldOutcome] = KeyedBatcher(
            self._fold, linger_seconds, sleep=sleep, failure=FoldFailed
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
