"""The coordinator's message handler: each object event goes to the fold or to the meeting.

* ``processing/{C}/{id}.json`` → read that processing object, fold its results not yet in the archive
  (:class:`~runtime.coordinator.folding.FoldBatcher`); a claim's event waits, within bounds, for its
  record's, so one read answers both (:mod:`runtime.coordinator.processing_reads`). A failed write
  retries the message. A result the fold refuses (a revision newer than the archive's, or one that did
  not target C) dead-letters the message with the reason, like a poison message: the refusal is final,
  and the DLQ alarm and the ``ResultsRefused`` alarm bring it to an operator.
* ``archive/{id}.json`` → reconcile the change's meeting (:mod:`runtime.notify.meetings`) when meetings
  are configured. A Graph or contact-list failure retries only this message and emits
  ``MeetingFailure``; emails never wait for it (processors do not call Graph).
* ``delivery/{C}/{id}.json`` → fold that delivery object's counts into the archive's ``delivery`` field
  (:mod:`runtime.coordinator.delivery_fold`), batched per change. A failed write retries the message.
* ``s3:TestEvent`` → ack. Anything else — another bucket, another prefix, an unsafe key, a body that is
  no object event — is poison: dead-lettered with the reason (security log), nothing touched.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Protocol

from botocore.exceptions import ClientError

from runtime.archive import (
    ArchiveError,
    ArchiveInvalid,
    ArchiveMissing,
    ArchiveStore,
    DeliveryStore,
    ProcessingStore,
    VersionedArchive,
)
from runtime.contract import keys
from runtime.contract.errors import PipelineError
from runtime.contract.metric_names import MetricName
from runtime.contract.names import COORDINATOR_METRICS_DIMENSION_VALUE
from runtime.coordinator.batching import BatchFailed
from runtime.coordinator.delivery_fold import CustomerDeliveryCounts, DeliveryFold
from runtime.coordinator.folding import FoldBatcher, FoldFailed, pending_results
from runtime.coordinator.processing_reads import EventVersion, ProcessingReads, Read
from runtime.notify import Action, MeetingBusy, plan
from runtime.pipeline import Outcome, Result, handle_records
from runtime.telemetry import MetricsFactory, log_context, logger
from runtime.worker import ObjectCreated


class Meetings(Protocol):
    """:class:`runtime.notify.meetings.MeetingCoordinator`, as the handler uses it."""

    def reconcile(self, version: VersionedArchive, owner: str) -> VersionedArchive: ...


class CoordinatorHandler:
    """A :data:`runtime.worker.MessageHandler` for the coordinator's queue."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        archive: ArchiveStore,
        batcher: FoldBatcher,
        metrics: MetricsFactory,
        meetings: Meetings | None = None,
        delivery_fold: DeliveryFold | None = None,
        *,
        max_waiting: int = 0,
    ) -> None:
        self.bucket = bucket
        self.processing = ProcessingStore(s3, bucket, observe_client=False)
        self.archive = archive
        self.batcher = batcher
        self.metrics = metrics
        self.meetings = meetings
        self.delivery_fold = delivery_fold or DeliveryFold(DeliveryStore(s3, bucket), archive, batcher.linger_seconds)
        self.reads = ProcessingReads(self._read_processing, batcher.linger_seconds, max_waiting=max_waiting)
        """A customer's claim and its record cost one read, and an event a read answered costs none
        (:mod:`runtime.coordinator.processing_reads`). ``max_waiting``: how many events may wait past one
        linger for their object's next version, each holding a handler thread, so it depends on the
        worker's concurrency: ``build_handler`` sets it; 0, every event waits one linger."""

    def _read_processing(self, key: str) -> Read:
        try:
            return Read(self.processing.objects.load_optional(key))
        except (ArchiveInvalid, ClientError, OSError) as exc:
            return Read(None, exc)

    def __call__(self, body: str, owner: str, cancelled: threading.Event | None = None) -> list[Result]:
        return handle_records(body, lambda record: _coordinator_kept(self.handle_record(record, owner)))

    def handle_record(self, record: ObjectCreated, owner: str) -> Result:
        if record.bucket != self.bucket:
            return Result(Outcome.POISON, f"event from bucket {record.bucket!r}, expected {self.bucket!r}")
        key = keys.decode_event_key(record.key) if record.key_is_url_encoded else record.key
        try:
            if key.startswith(keys.PROCESSING_PREFIX):
                ref = keys.parse_processing_key(key, encoded=False)
                with log_context(change_id=ref.change_id, customer_code=ref.customer_code):
                    return self.fold(ref, EventVersion.of(record.etag, record.sequencer))
            if key.startswith(keys.ARCHIVE_PREFIX):
                change_id = keys.parse_archive_key(key)
                with log_context(change_id=change_id):
                    return self.meeting(change_id, owner)
            if key.startswith(keys.DELIVERY_PREFIX):
                ref = keys.parse_delivery_key(key, encoded=False)
                with log_context(change_id=ref.change_id, customer_code=ref.customer_code):
                    return self.fold_delivery(ref)
        except keys.InvalidKeyError as exc:
            return Result(Outcome.POISON, f"unsafe key: {exc}")
        return Result(Outcome.POISON, f"key {key!r} is not under archive/, processing/ or delivery/")

    # ---- folding ------------------------------------------------------------------------------

    def fold(self, ref: keys.TriggerRef, event: EventVersion | None = None) -> Result:
        """Fold the results of ``ref``'s processing object. ``event``: the version its event announces; a
        version a read already answered costs no GET, and the events one read answers fold once, by the
        message of the event that read (issue 21; :mod:`runtime.coordinator.processing_reads`)."""
        change_id = ref.change_id
        event = event or EventVersion()
        if self.reads.answered(ref.processing_key, event):
            return Result(Outcome.ALREADY_RECORDED, "this version was read and folded already", change_id=change_id)
        answer = self.reads.submit(ref.processing_key, event)
        if answer.moot:
            return Result(Outcome.ALREADY_RECORDED, "this version was read and folded already", change_id=change_id)
        read = answer.read
        if isinstance(read.error, ArchiveInvalid):
            return Result(Outcome.PERMANENT_ERROR, f"not a valid processing object: {read.error}", change_id=change_id)
        if read.error is not None:
            return Result(Outcome.RETRY, f"cannot read {ref.processing_key}: {read.error}", change_id=change_id)
        doc = read.version.document if read.version is not None else None
        if doc is None:
            return Result(Outcome.ALREADY_RECORDED, "processing object gone", change_id=change_id)
        if (doc.customer_code, doc.change_id) != (ref.customer_code, ref.change_id):
            return Result(
                Outcome.POISON,
                f"{ref.processing_key} names customer {doc.customer_code!r} and change {doc.change_id!r}",
                change_id=change_id,
            )
        if not answer.folds:  # its message stays until the fold is done; a failed fold is retried and re-read
            return Result(
                Outcome.ALREADY_RECORDED,
                "read with another event of this object, whose message folds what it holds",
                change_id=change_id,
            )
        pending = pending_results(doc)
        if not pending or self.batcher.known_folded(pending):
            self.reads.dealt_with(ref.processing_key, read)
            return Result(Outcome.ALREADY_RECORDED, "no result to fold", change_id=change_id)
        try:
            outcome = self.batcher.submit(change_id, pending)
        except ArchiveMissing as exc:
            return Result(Outcome.PERMANENT_ERROR, f"result for a change without archive: {exc}", change_id=change_id)
        except ArchiveInvalid as exc:
            return Result(Outcome.PERMANENT_ERROR, str(exc), change_id=change_id)
        except (FoldFailed, ArchiveError, ClientError, OSError) as exc:
            return Result(Outcome.RETRY, f"fold failed: {exc}", change_id=change_id)
        latest = pending[-1].revision
        refusals = []
        if outcome.refused:
            revisions = ", ".join(str(p.revision) for p in outcome.refused)
            refusals.append(f"result for revision {revisions} newer than the archive's {outcome.archive_revision}")
        if outcome.untargeted:
            revisions = ", ".join(str(p.revision) for p in outcome.untargeted)
            refusals.append(
                f"{ref.processing_key}: result for revision {revisions}, which did not target customer "
                f"{ref.customer_code!r}"
            )
        if refusals:  # a security event (logged by the fold): the message goes to the DLQ with the reason
            return Result(
                Outcome.PERMANENT_ERROR, "; ".join(refusals) + ": refused", change_id=change_id, revision=latest
            )
        self.reads.dealt_with(ref.processing_key, read)
        if outcome.folded:
            return Result(
                Outcome.PROCESSED,
                f"folded revision {', '.join(str(p.revision) for p in outcome.folded)}",
                change_id=change_id,
                revision=latest,
                emails_sent=sum(p.result.sent for p in outcome.folded),
            )
        return Result(Outcome.ALREADY_RECORDED, "already folded", change_id=change_id, revision=latest)

    # ---- delivery counts ----------------------------------------------------------------------

    def fold_delivery(self, ref: keys.TriggerRef) -> Result:
        change_id = ref.change_id
        try:
            version = self.delivery_fold.deliveries.load_optional(ref.customer_code, change_id)
        except ArchiveInvalid as exc:
            return Result(Outcome.PERMANENT_ERROR, str(exc), change_id=change_id)
        except (ClientError, OSError) as exc:
            return Result(Outcome.RETRY, f"cannot read {ref.delivery_key}: {exc}", change_id=change_id)
        if version is None or not version.document.counts:
            return Result(Outcome.ALREADY_RECORDED, "no delivery counts to fold", change_id=change_id)
        item = CustomerDeliveryCounts(ref.customer_code, version.document.counts)
        try:
            outcome = self.delivery_fold.submit(change_id, item)
        except ArchiveMissing:
            return Result(
                Outcome.ALREADY_RECORDED, "no archive for this change: counts not folded", change_id=change_id
            )
        except ArchiveInvalid as exc:
            return Result(Outcome.PERMANENT_ERROR, str(exc), change_id=change_id)
        except (BatchFailed, ArchiveError, ClientError, OSError) as exc:
            return Result(Outcome.RETRY, f"delivery fold failed: {exc}", change_id=change_id)
        mine = [revision for code, revision in outcome.folded if code == ref.customer_code]
        refused = [revision for code, revision in outcome.refused if code == ref.customer_code]
        if refused:
            return Result(
                Outcome.PERMANENT_ERROR,
                f"delivery counts for revision {', '.join(refused)} newer than the archive's: refused",
                change_id=change_id,
            )
        if mine:
            return Result(
                Outcome.PROCESSED, f"delivery counts of revision {', '.join(mine)} folded", change_id=change_id
            )
        return Result(Outcome.ALREADY_RECORDED, "delivery counts already folded", change_id=change_id)

    # ---- meetings -----------------------------------------------------------------------------

    def meeting(self, change_id: str, owner: str) -> Result:
        if self.meetings is None:
            return Result(Outcome.ALREADY_RECORDED, "meetings are not configured", change_id=change_id)
        try:
            version = self.archive.load_optional(change_id)
        except ArchiveInvalid as exc:
            return Result(Outcome.PERMANENT_ERROR, str(exc), change_id=change_id)
        except (ArchiveError, ClientError, OSError) as exc:
            return Result(Outcome.RETRY, f"cannot read the archive: {exc}", change_id=change_id)
        if version is None:
            return Result(Outcome.ALREADY_RECORDED, "archive gone", change_id=change_id)
        action = plan(version.document)
        if action is Action.NONE:
            return Result(Outcome.ALREADY_RECORDED, "meeting in step", change_id=change_id)
        try:
            reconciled = self.meetings.reconcile(version, owner)
        except MeetingBusy as exc:
            # not a failure: another attempt holds the lease; come back when it ends (or is recorded)
            return Result(
                Outcome.RETRY,
                f"meeting busy ({action.value}): {exc}",
                change_id=change_id,
                revision=version.document.revision,
                retry_after=exc.retry_after,
            )
        except (PipelineError, ArchiveError, ClientError, OSError) as exc:
            with self.metrics.batch(COORDINATOR_METRICS_DIMENSION_VALUE) as batch:
                batch.add(MetricName.MEETING_FAILURE)
            return Result(
                Outcome.RETRY,
                f"meeting not reconciled ({action.value}): {type(exc).__name__}: {exc}",
                change_id=change_id,
                revision=version.document.revision,
            )
        with self.metrics.batch(COORDINATOR_METRICS_DIMENSION_VALUE) as batch:
            batch.add(MetricName.MEETING_RECONCILED)
        logger.info("meeting reconciled", extra={"action": action.value})
        return Result(
            Outcome.PROCESSED,
            f"meeting {action.value}",
            change_id=change_id,
            revision=reconciled.document.revision,
        )


COORDINATOR_KEEPS = (
    "message kept: it returns to the queue until the redrive moves it to the coordinator's DLQ "
    "(after the queue's maxReceiveCount receives), to redrive once the cause is fixed"
)
"""What the coordinator's permanent error keeps: it has no trigger, only the message (issue 22)."""


def _coordinator_kept(result: Result) -> Result:
    return replace(result, kept=COORDINATOR_KEEPS) if result.outcome is Outcome.PERMANENT_ERROR else result
