"""Processing one trigger: the state machine of DESIGN.md §2.

The rule that fixes the seeds: a trigger is deleted only after the archive records the customer's
result, and a message is acknowledged only when the trigger is gone or the work is recorded.

    2 HEAD trigger ─ 404 ─────────────────────────────────► ack (duplicate)
    3 GET archive ── missing/invalid ─────────────────────► DLQ (trigger kept)
    4 already processed for this revision ──┐
    5 claim lease (CAS) ── live lease of another message ─► ack (duplicate; the holder's message is in flight)
    6 emails (+ meeting), progress checkpointed in the lease ── failure ─► retry (trigger + lease stay)
    7 record `processed` (CAS, re-applied on 412) ◄────────┘
    8 DELETE trigger IfMatch its ETag ── 412 ─► a newer trigger replaced it: leave it
    9 ack

:func:`Processor.process` is used by the worker and by the manual ``process`` command alike, so both
leave the same archive record and share the same idempotency. Our own failures are classified by
their ``retryable`` attribute (:func:`failure_outcome`); steps 0-1 are in :mod:`runtime.pipeline.routing`.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from runtime.archive.documents import PROCESSED, ArchiveDocument, ModificationEntry, ProcessingLease, utcnow
from runtime.archive.errors import ArchiveConflict, ArchiveError
from runtime.archive.store import ArchiveStore, VersionedArchive
from runtime.archive.triggers import DeleteOutcome, TriggerInfo, TriggerStore
from runtime.contract import keys
from runtime.contract.errors import PipelineError
from runtime.contract.metric_names import MetricName
from runtime.notify.rendering import RenderedEmail, render_email
from runtime.pipeline.errors import LeaseHeld, LeaseLost
from runtime.telemetry.log import logger
from runtime.telemetry.metrics import MetricBatch, MetricsFactory


class Fate(enum.Enum):
    """What happens to the queue message."""

    ACK = "ack"  # delete the message
    RETRY = "retry"  # return it to the queue after a backoff
    DEAD_LETTER = "dead_letter"  # let the redrive policy move it to the DLQ


class Outcome(enum.Enum):
    PROCESSED = ("processed", Fate.ACK)
    ALREADY_RECORDED = ("already_recorded", Fate.ACK)
    TRIGGER_GONE = ("trigger_gone", Fate.ACK)
    LEASE_HELD = ("lease_held", Fate.ACK)
    TEST_EVENT = ("test_event", Fate.ACK)
    RETRY = ("retry", Fate.RETRY)
    PERMANENT_ERROR = ("permanent_error", Fate.DEAD_LETTER)
    POISON = ("poison", Fate.DEAD_LETTER)

    def __init__(self, label: str, fate: Fate) -> None:
        self.label = label
        self.fate = fate


@dataclass
class Result:
    outcome: Outcome
    reason: str = ""
    change_id: str | None = None
    revision: int | None = None
    emails_sent: int = 0
    recipients: list[str] = field(default_factory=list)
    trigger_delete: DeleteOutcome | None = None

    @property
    def fate(self) -> Fate:
        return self.outcome.fate


class Mailer(Protocol):
    """What the processor needs from email: the recipients of a topic, and a way to send."""

    def subscribers(self, topic: str) -> list[str]: ...

    def send(
        self,
        recipients: list[str],
        message: RenderedEmail,
        topic: str,
        *,
        already_sent: set[str],
        on_sent: Callable[[str], None],
        cancelled: threading.Event | None,
    ) -> list[str]: ...


class MeetingCoordinator(Protocol):
    """Creates, updates or cancels the change's one meeting (DESIGN.md §5); see runtime.notify.meetings.

    Any exception it raises returns the message to the queue (trigger and lease stay)."""

    def reconcile(self, version: VersionedArchive, owner: str) -> VersionedArchive: ...


def failure_outcome(exc: PipelineError) -> Outcome:
    """The one classification of our own failures: retryable ones retry, the others dead-letter."""
    return Outcome.RETRY if exc.retryable else Outcome.PERMANENT_ERROR


def overall_fate(results: list[Result]) -> Fate:
    """The message's fate from its records' results: any retry retries it, else any dead letter wins."""
    fates = {r.fate for r in results}
    if Fate.RETRY in fates:
        return Fate.RETRY
    if Fate.DEAD_LETTER in fates:
        return Fate.DEAD_LETTER
    return Fate.ACK


class _Checkpointer:
    """Records sent recipients in the lease every few emails or seconds, and extends the lease.

    The only window in which an email can be sent twice is between SES accepting it and the next
    checkpoint (or the final record): at most ``every_emails`` emails or ``every_seconds`` of sending.
    """

    def __init__(
        self,
        processor: Processor,
        version: VersionedArchive,
        owner: str,
        every_emails: int = 10,
        every_seconds: float = 2.0,
    ) -> None:
        self._processor = processor
        self.version = version  # the last version we wrote: saves a GET when it is still current
        self._change_id = version.document.change_id
        self._owner = owner
        self._every_emails = every_emails
        self._every_seconds = every_seconds
        self._pending: list[str] = []
        self._last = time.monotonic()

    @property
    def pending(self) -> list[str]:
        return list(self._pending)

    def on_sent(self, address: str) -> None:
        self._pending.append(address.lower())
        if len(self._pending) >= self._every_emails or time.monotonic() - self._last >= self._every_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, owner, processor = list(self._pending), self._owner, self._processor
        code = processor.customer_code

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            lease = doc.leases.get(code)
            if lease is None or lease.owner != owner:
                raise LeaseLost(
                    f"lease of {code} on {doc.change_id} now belongs to {lease.owner if lease else 'nobody'}"
                )
            known = set(lease.emails_sent)
            lease.emails_sent = lease.emails_sent + [a for a in pending if a not in known]
            lease.expires_at = processor.clock() + timedelta(seconds=processor.lease_seconds)
            doc.leases = {**doc.leases, code: lease}
            return doc

        self.version = processor.archive.update(self._change_id, mutate, current=self.version)
        self._pending.clear()
        self._last = time.monotonic()


class Processor:
    def __init__(
        self,
        customer_code: str,
        archive: ArchiveStore,
        triggers: TriggerStore,
        mailer: Mailer,
        metrics: MetricsFactory,
        *,
        lease_seconds: int,
        meetings: MeetingCoordinator | None = None,
        clock: Callable[[], datetime] = utcnow,
        record_deadline_seconds: float | None = None,
        checkpoint_every_emails: int = 10,
    ) -> None:
        self.customer_code = keys.validate_customer_code(customer_code)
        self.archive = archive
        self.triggers = triggers
        self.mailer = mailer
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        self.meetings = meetings
        self.clock = clock
        self.record_deadline_seconds = record_deadline_seconds or float(lease_seconds)
        self.checkpoint_every_emails = checkpoint_every_emails

    # ---- public -------------------------------------------------------------------------------

    def process(self, ref: keys.TriggerRef, owner: str, cancelled: threading.Event | None = None) -> Result:
        """Run steps 2-8 for one trigger of this processor's customer. Never raises for expected failures."""
        if ref.customer_code != self.customer_code:
            return Result(
                Outcome.POISON, f"trigger of customer {ref.customer_code!r} on {self.customer_code!r}'s processor"
            )
        started = time.monotonic()
        with self.metrics.batch(self.customer_code) as batch:
            result = self._process(ref, owner, cancelled, batch)
            if result.outcome in (Outcome.PROCESSED, Outcome.ALREADY_RECORDED):
                batch.add(MetricName.PROCESSING_SUCCESS)
                batch.add(MetricName.PROCESSING_DURATION, time.monotonic() - started)
            elif result.outcome in (Outcome.TRIGGER_GONE, Outcome.LEASE_HELD):
                batch.add(MetricName.DUPLICATE_EVENTS)
            elif result.outcome in (Outcome.RETRY, Outcome.PERMANENT_ERROR):
                batch.add(MetricName.PROCESSING_FAILURE)
            if result.emails_sent:
                batch.add(MetricName.EMAILS_SENT, result.emails_sent)
        return result

    # ---- steps --------------------------------------------------------------------------------

    def _process(
        self, ref: keys.TriggerRef, owner: str, cancelled: threading.Event | None, batch: MetricBatch
    ) -> Result:
        change_id = ref.change_id
        # 2. the trigger must still exist; its ETag guards the final delete
        trigger = self.triggers.head(ref)
        if trigger is None:
            return Result(Outcome.TRIGGER_GONE, "trigger already deleted: processed before", change_id)

        # 3. the archive is the only source of truth
        try:
            version = self.archive.load(change_id)
        except ArchiveError as exc:  # missing or invalid: not retryable
            return Result(failure_outcome(exc), str(exc), change_id)
        document = version.document
        if self.customer_code not in document.customers:
            return Result(
                Outcome.PERMANENT_ERROR,
                f"change {change_id} does not list customer {self.customer_code!r} in its customers",
                change_id,
                document.revision,
            )
        revision = document.revision

        # 4. already recorded for this revision: only the clean-up is missing
        if document.is_processed(self.customer_code, revision):
            result = Result(Outcome.ALREADY_RECORDED, "archive already records this revision", change_id, revision)
            return self._delete_trigger(trigger, result, batch)

        # 5. claim
        try:
            version = self._claim(change_id, owner, version, batch)
        except LeaseHeld as exc:
            return Result(Outcome.LEASE_HELD, str(exc), change_id, revision)
        except ArchiveError as exc:
            return Result(failure_outcome(exc), str(exc), change_id, revision)
        if version.document.is_processed(self.customer_code, revision):
            result = Result(Outcome.ALREADY_RECORDED, "recorded by another processor meanwhile", change_id, revision)
            return self._delete_trigger(trigger, result, batch)
        revision = version.document.revision

        # 6. side effects
        checkpoint = _Checkpointer(self, version, owner, every_emails=self.checkpoint_every_emails)
        outcome = self._side_effects(version, owner, checkpoint, cancelled)
        if isinstance(outcome, Result):
            return outcome
        recipients, sent = outcome

        # 7. record the result (it carries the unflushed progress too); a lost record means a resend
        try:
            self._record(checkpoint, owner, revision, recipients, batch)
        except Exception as exc:  # ArchiveError, or an S3 error left after botocore's retries: keep the progress
            self._save_progress(checkpoint)
            return Result(Outcome.RETRY, f"could not record result: {exc}", change_id, revision, len(sent), sent)
        result = Result(Outcome.PROCESSED, "", change_id, revision, len(sent), sent)
        # 8. delete the trigger we read, not a newer one
        return self._delete_trigger(trigger, result, batch)

    def _side_effects(
        self, version: VersionedArchive, owner: str, checkpoint: _Checkpointer, cancelled: threading.Event | None
    ) -> Result | tuple[int, list[str]]:
        """Step 6: the meeting first (any failure of it is retried, see :class:`MeetingCoordinator`), then
        the emails, whose failures are classified by ``retryable``. Returns (recipients, sent), or the
        result that ends processing."""
        change_id, revision = version.document.change_id, version.document.revision
        lease = version.document.leases[self.customer_code]
        try:
            if self.meetings is not None:
                version = checkpoint.version = self.meetings.reconcile(version, owner)
        except Exception as exc:
            return self._retry_later(exc, checkpoint, change_id, revision, traceback=not isinstance(exc, ArchiveError))
        try:
            recipients = self.mailer.subscribers(version.document.topic)
            message = render_email(version.document, self.customer_code)
            sent = self.mailer.send(
                recipients,
                message,
                version.document.topic,
                already_sent=set(lease.emails_sent),
                on_sent=checkpoint.on_sent,
                cancelled=cancelled,
            )
        except ArchiveError as exc:  # a progress checkpoint could not be written: always retried
            return self._retry_later(exc, checkpoint, change_id, revision)
        except PipelineError as exc:
            if failure_outcome(exc) is Outcome.PERMANENT_ERROR:  # the customer's SES setup
                self._release_lease(change_id, owner, checkpoint)
                return Result(Outcome.PERMANENT_ERROR, f"email configuration: {exc}", change_id, revision)
            return self._retry_later(exc, checkpoint, change_id, revision)
        except Exception as exc:  # unexpected: keep trigger and lease, retry later
            return self._retry_later(exc, checkpoint, change_id, revision, traceback=True)
        return len(recipients), sent

    def _claim(self, change_id: str, owner: str, version: VersionedArchive, batch: MetricBatch) -> VersionedArchive:
        code, now = self.customer_code, self.clock()

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            if doc.is_processed(code, doc.revision):
                return None
            lease = doc.leases.get(code)
            if lease is not None and lease.owner != owner and lease.is_live(now) and lease.revision >= doc.revision:
                raise LeaseHeld(f"{lease.owner} holds the lease until {lease.expires_at.isoformat()}")
            resumed = lease.emails_sent if lease is not None and lease.revision == doc.revision else []
            doc.leases = {
                **doc.leases,
                code: ProcessingLease(
                    owner=owner,
                    revision=doc.revision,
                    expires_at=now + timedelta(seconds=self.lease_seconds),
                    emails_sent=resumed,
                ),
            }
            return doc

        return self.archive.update(change_id, mutate, current=version, metrics=batch)

    def _record(
        self, checkpoint: _Checkpointer, owner: str, revision: int, recipients: int, batch: MetricBatch
    ) -> VersionedArchive:
        code, change_id, unflushed = self.customer_code, checkpoint.version.document.change_id, checkpoint.pending

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            if doc.is_processed(code, revision):
                return None
            leases = dict(doc.leases)
            lease = leases.get(code)
            done = set(unflushed)
            if lease is not None and lease.owner == owner:
                done.update(lease.emails_sent)
                del leases[code]
            doc.leases = leases
            doc.modifications = [
                *doc.modifications,
                ModificationEntry(
                    user_id=f"processor:{code}",
                    modification_type=PROCESSED,
                    customer_code=code,
                    revision=revision,
                    recipients=recipients,
                    emails_sent=len(done),
                ),
            ]
            return doc

        deadline = time.monotonic() + self.record_deadline_seconds
        current: VersionedArchive | None = checkpoint.version
        while True:
            try:
                return self.archive.update(change_id, mutate, current=current, metrics=batch)
            except ArchiveConflict:
                if time.monotonic() >= deadline:
                    raise
                logger.warning("archive still contended while recording; retrying")
                current = None

    def _release_lease(self, change_id: str, owner: str, checkpoint: _Checkpointer) -> None:
        code = self.customer_code

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            lease = doc.leases.get(code)
            if lease is None or lease.owner != owner:
                return None
            lease.expires_at = self.clock()
            doc.leases = {**doc.leases, code: lease}
            return doc

        self._save_progress(checkpoint)
        try:
            self.archive.update(change_id, mutate)
        except Exception:  # the lease expires on its own
            logger.warning("could not release lease; it will expire")

    def _retry_later(
        self, exc: Exception, checkpoint: _Checkpointer, change_id: str, revision: int, *, traceback: bool = False
    ) -> Result:
        """A side effect failed: save the progress, keep trigger and lease, return the message to the queue.

        Called inside the ``except`` block, so ``traceback`` logs the exception being handled."""
        self._save_progress(checkpoint)
        if traceback:
            logger.exception("side effects failed")
        return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc}", change_id, revision)

    def _save_progress(self, checkpoint: _Checkpointer) -> None:
        try:
            checkpoint.flush()
        except Exception as exc:
            logger.warning("could not checkpoint sent emails", extra={"error": str(exc)})

    def _delete_trigger(self, trigger: TriggerInfo, result: Result, batch: MetricBatch) -> Result:
        outcome, detail = self.triggers.delete_if_unchanged(trigger)
        result.trigger_delete = outcome
        if outcome is DeleteOutcome.DELETED:
            batch.add(MetricName.TRIGGER_DELETION_RATE)
            batch.add(MetricName.TRIGGER_AGE, max(0.0, (self.clock() - trigger.last_modified).total_seconds()))
        elif outcome is DeleteOutcome.FAILED:
            batch.add(MetricName.TRIGGER_DELETE_FAILURE)
            logger.warning("trigger delete failed; the sweeper will remove it", extra={"error": detail})
        elif outcome is DeleteOutcome.REPLACED:
            logger.info("trigger was replaced by a newer submission; leaving it for its own event")
        return result
