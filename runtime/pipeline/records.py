"""The processor's writes of its processing object (docs/design.md §2): the claim (step 5), the record of the
result (step 7), the superseded record of a holder that stood down, and the release of a lease.

The lease keeper's checkpoints are in :mod:`runtime.pipeline.lease`; the state machine that decides
when each write happens is :mod:`runtime.pipeline.state_machine`. Every write is a compare-and-swap
``mutate`` on :class:`~runtime.archive.ProcessingStore`, judged on the storage clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from runtime.archive import (
    ArchiveConflict,
    DisplacedHolder,
    ProcessingDocument,
    ProcessingLease,
    ProcessingStore,
    RevisionResult,
    SendProgress,
    VersionedProcessing,
)
from runtime.pipeline.errors import LeaseHeld
from runtime.pipeline.lease import LeaseKeeper
from runtime.telemetry import MetricBatch, logger

__all__ = ["ProcessingRecords", "SameMessage", "message_id_of", "recorded_at_or_after"]


def message_id_of(owner: str) -> str | None:
    """The SQS message id in a worker's owner ``sqs:{message id}:{receive id}`` (None for a manual run)."""
    parts = owner.split(":")
    if len(parts) >= 2 and parts[0] == "sqs" and parts[1]:
        return parts[1]
    return None


class SameMessage(LeaseHeld):
    """Another receive of the same SQS message holds the lease: come back when it ends."""

    def __init__(self, message: str, remaining: float) -> None:
        super().__init__(message)
        self.remaining = remaining


class ProcessingRecords:
    """The processing object's writes of customer ``customer_code``'s processor (see the module docstring)."""

    def __init__(
        self,
        store: ProcessingStore,
        customer_code: str,
        lease_seconds: float,
        time_of_record: Callable[..., datetime],
        record_deadline_seconds: float,
    ) -> None:
        self.store = store
        self.customer_code = customer_code
        self.lease_seconds = lease_seconds
        self.time_of_record = time_of_record
        self.record_deadline_seconds = record_deadline_seconds

    def result_of(
        self,
        revision: int,
        recipients: int,
        progress: SendProgress,
        started: datetime | None,
        *,
        superseded: bool = False,
    ) -> RevisionResult:
        """The result of ``revision`` from its final (or last checkpointed) progress, finished now."""
        return RevisionResult(
            revision=revision,
            recipients=recipients,
            sent=max(0, progress.done - len(progress.rejected)),
            rejected=len(progress.rejected),
            started_at=started,
            finished_at=self.time_of_record(started),
            **({"superseded": True} if superseded else {}),  # a revision that was not superseded says nothing
        )

    def checkpointed(self, revision: int, progress: SendProgress, started: datetime | None) -> RevisionResult:
        """The superseded result of a holder that cannot answer any more, from its last checkpoint: what
        it sent at least (a crash may have sent up to ``MAX_UNRECORDED_EMAILS`` more)."""
        return self.result_of(revision, progress.recipients, progress, started, superseded=True)

    def settled(
        self, doc: ProcessingDocument, owner: str, storage_now: datetime
    ) -> tuple[list[DisplacedHolder] | None, dict[str, RevisionResult]]:
        """The displaced entries and results once ``owner``'s entry is dropped (its answer) and every
        entry whose lease ended, with a superseded result from the checkpoint of each holder that never
        answered."""
        results = dict(doc.results)
        for silent in doc.displaced_silent(owner, storage_now):
            if silent.progress is not None and silent.progress.revision == silent.revision:
                results[str(silent.revision)] = self.checkpointed(silent.revision, silent.progress, silent.started_at)
        return doc.without_displaced(owner, storage_now), results

    def claim(
        self, change_id: str, owner: str, revision: int, submitted: datetime | None = None
    ) -> VersionedProcessing:
        """Step 5: one PUT (``IfNoneMatch``) for a new processing object; else read and CAS. Expiry is
        judged on the storage time of the answer that read the object; ``acquired_at`` (the result's
        ``started_at``) is a time of record, never before ``submitted`` (the revision's submission)."""
        code, message_id, clock = self.customer_code, message_id_of(owner), self.store.clock

        def mutate(version: VersionedProcessing | None) -> ProcessingDocument | None:
            now = version.storage_now if version is not None else clock.now()
            doc = version.document if version else ProcessingDocument(customer_code=code, change_id=change_id)
            if recorded_at_or_after(doc, revision) is not None:
                return None
            lease = doc.lease
            if lease is not None and lease.owner != owner and lease.is_live(now) and lease.revision >= revision:
                remaining = (lease.expires_at - now).total_seconds()
                held = f"{lease.owner} holds the lease of revision {lease.revision} for {remaining:.0f} s more"
                if message_id is not None and lease.message_id == message_id:
                    raise SameMessage(held, remaining)
                raise LeaseHeld(held)
            progress = doc.progress if doc.progress is not None and doc.progress.revision == revision else None
            kept, results = self.settled(doc, owner, now)
            displaced = kept or []
            if lease is not None and lease.owner != owner and lease.revision < revision:
                old = doc.progress if doc.progress is not None and doc.progress.revision == lease.revision else None
                if lease.is_live(now):
                    # an older revision's holder may be inside a SendEmail: ours wait until it stopped
                    holder = DisplacedHolder(
                        owner=lease.owner,
                        revision=lease.revision,
                        expires_at=lease.expires_at,
                        started_at=lease.acquired_at,
                        progress=old,
                    )
                    displaced = [*(d for d in displaced if d.owner != lease.owner), holder]
                elif old is not None and not doc.is_recorded(lease.revision):  # stopped (released, or died)
                    results[str(lease.revision)] = self.checkpointed(lease.revision, old, lease.acquired_at)
            new_lease = ProcessingLease(
                owner=owner,
                message_id=message_id,
                revision=revision,
                expires_at=now + timedelta(seconds=self.lease_seconds),
                acquired_at=self.time_of_record(now, submitted),
            )
            return doc.model_copy(
                update={"lease": new_lease, "progress": progress, "displaced": displaced or None, "results": results}
            )

        # revision 1 is the common case and its object is new: create without a GET (one PUT)
        return self.store.update(code, change_id, mutate, assume_absent=revision == 1)

    def record(
        self, keeper: LeaseKeeper, owner: str, revision: int, recipients: list[str], batch: MetricBatch
    ) -> VersionedProcessing:
        """Step 7: the durable record of the customer's result (``ArchiveUpdateSuccess``/``Failure``)."""
        code, change_id, progress = self.customer_code, keeper.version.document.change_id, keeper.progress
        started = keeper.started_at

        def mutate(version: VersionedProcessing | None) -> ProcessingDocument | None:
            assert version is not None
            doc = version.document
            if doc.is_recorded(revision):
                return None
            result = self.result_of(revision, len(recipients), progress, started)
            # done: no longer displaced (a newer revision waiting for us may start); ended entries dropped
            displaced, results = self.settled(doc, owner, max(version.storage_now, self.store.clock.now()))
            recorded = doc.with_result(result)
            recorded = recorded.model_copy(update={"displaced": displaced, "results": {**results, **recorded.results}})
            if doc.lease is not None and doc.lease.owner != owner:  # someone else's lease (a newer revision) stays
                recorded = recorded.model_copy(update={"lease": doc.lease})
            return recorded

        deadline = time.monotonic() + self.record_deadline_seconds
        current: VersionedProcessing | None = keeper.version
        while True:
            try:
                return self.store.update(code, change_id, mutate, create=False, current=current, metrics=batch)
            except ArchiveConflict:
                if time.monotonic() >= deadline:
                    raise
                logger.warning("processing object still contended while recording; retrying")
                current = None

    def record_superseded(
        self, keeper: LeaseKeeper, owner: str, change_id: str, revision: int, recipients: list[str]
    ) -> None:
        """Record what ``revision`` sent as a ``superseded`` result and remove our displaced entry in one
        write (the newer revision's signal to start). A failed write is logged: the newer revision then
        waits for our lease to end, and this revision's sends are missing from the trail."""
        code, progress = self.customer_code, keeper.progress

        def mutate(version: VersionedProcessing | None) -> ProcessingDocument | None:
            assert version is not None
            doc = version.document
            displaced, results = self.settled(doc, owner, max(version.storage_now, self.store.clock.now()))
            updates: dict[str, object] = {"displaced": displaced, "results": results}
            if not doc.is_recorded(revision):
                updates["results"] = {
                    **results,
                    str(revision): self.result_of(
                        revision, len(recipients), progress, keeper.started_at, superseded=True
                    ),
                }
            if doc.progress is not None and doc.progress.revision == revision:
                updates["progress"] = None
            if doc.lease is not None and doc.lease.owner == owner:
                updates["lease"] = None
            return doc.model_copy(update=updates)

        try:
            self.store.update(code, change_id, mutate, create=False, current=keeper.version)
        except Exception as exc:
            logger.warning(
                "could not record the superseded revision's sends; the newer revision waits for our lease to end",
                extra={"error": str(exc)},
            )

    def release(self, change_id: str, owner: str) -> None:
        """End ``owner``'s lease now, keeping the progress (a conditional write; nothing to do when the
        lease is another owner's, or already ended)."""

        def mutate(version: VersionedProcessing | None) -> ProcessingDocument | None:
            lease = version.document.lease if version else None
            if version is None or lease is None or lease.owner != owner or not lease.is_live(version.storage_now):
                return None
            return version.document.model_copy(
                update={"lease": lease.model_copy(update={"expires_at": version.storage_now})}
            )

        try:
            self.store.update(self.customer_code, change_id, mutate, create=False)
        except Exception:  # the lease expires on its own
            logger.warning("could not release lease; it will expire")


def recorded_at_or_after(doc: ProcessingDocument, revision: int) -> int | None:
    """The newest recorded revision ≥ ``revision`` (a newer one supersedes this message's), or None."""
    done = [int(r) for r in doc.results if r.isdigit() and int(r) >= revision]
    return max(done) if done else None
