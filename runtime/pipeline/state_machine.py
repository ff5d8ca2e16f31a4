"""Processing one trigger: the state machine of docs/design.md §2 (v2).

The processor reads the archive once and never writes it; its lease, progress and result live in the
customer's own processing object ``processing/{C}/{id}.json`` (:mod:`runtime.archive.processing`).
A trigger is deleted only after that object durably records the customer's result, and a message is
acknowledged only when the trigger is gone or the work is recorded.

    2 HEAD trigger ─ 404 ───────────────────────────────────► ack (duplicate)
    3 GET archive (concurrently with 2) ─ missing/invalid ──► DLQ (trigger kept)
    4 already recorded for revision R (processing object, or a `processed` entry in the archive) ────┐
    5 claim: create the processing object (IfNoneMatch, no GET), else CAS
        ─ live lease of another receive of this message ──► retry after the lease's remaining time
        ─ live lease of another message ──────────────────► ack (duplicate; the holder's message is in flight)
    6 emails of revision R, rendered from the archive read in 3; progress checkpointed in the
      background (≤ 2 emails sent but not yet durable); the lease kept alive ─ failure ─► retry
      a newer revision's claim took over ─► record what was sent as superseded ─► ack
    7 record the result of R (CAS; lease cleared) ◄──────────────────────────────────────────────────┘
    8 DELETE trigger IfMatch its ETag ── 412 ─► a newer trigger replaced it: leave it
    9 ack

**A newer revision takes over at once, but sends only after the older one stopped** (issue 17 item 4).
Its claim records the older holder it displaced (:class:`~runtime.archive.processing.DisplacedHolder`).
Every holder asks, right before each ``SendEmail``, whether its lease is still its own: one GET
``IfNoneMatch`` the ETag it knows, a bodiless 304 while nothing changed. A displaced holder stops,
records what it sent as a ``superseded`` result and removes its entry; the newer revision waits for
that, or for the displaced lease's end on the storage clock (a holder never starts a send that late),
so no recipient's newest email is a superseded revision's.

The change coordinator folds the recorded results into the archive and owns the meeting.
:func:`Processor.process` is used by the worker and by the manual ``process`` command alike. Our own
failures are classified by their ``retryable`` attribute (:func:`failure_outcome`); steps 0-1 are in
:mod:`runtime.pipeline.routing`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from runtime.archive import (
    ArchiveDocument,
    ArchiveError,
    ArchiveStore,
    DeleteOutcome,
    ProcessingStore,
    TriggerInfo,
    TriggerStore,
    VersionedArchive,
    VersionedProcessing,
    utcnow,
)
from runtime.contract import keys
from runtime.contract.errors import PipelineError
from runtime.contract.metric_names import MetricName
from runtime.notify import SendInterrupted, render_email
from runtime.pipeline.errors import LeaseHeld, LeaseLost, Superseded
from runtime.pipeline.lease import LeaseKeeper, SendGate, lease_problem
from runtime.pipeline.records import ProcessingRecords, SameMessage, recorded_at_or_after
from runtime.pipeline.result import Outcome, Result, failure_outcome
from runtime.pipeline.sending import Mailer, normalise_recipients, resume_progress, submitted_at
from runtime.telemetry import MetricBatch, MetricsFactory, logger

DISPLACED_POLL_SECONDS = 0.25
"""How often a newer revision re-reads (``IfNoneMatch``) whether the holders it displaced have stopped."""


@dataclass(frozen=True)
class _Sent:
    """What step 6 leaves for step 7: the stopped keeper and the recipients; or ``ended``, the result
    that ends processing instead."""

    keeper: LeaseKeeper | None = None
    recipients: list[str] = field(default_factory=list)
    ended: Result | None = None


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
        store: ProcessingStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        record_deadline_seconds: float | None = None,
    ) -> None:
        self.customer_code = keys.validate_customer_code(customer_code)
        self.archive = archive
        self.triggers = triggers
        self.mailer = mailer
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        self.clock = clock
        """The local clock: for metrics (trigger age) and, with the storage clock, the times of record
        (:meth:`time_of_record`); leases are judged on the storage clock only."""
        self.store = store or ProcessingStore(archive.objects.s3, archive.bucket)
        self.record_deadline_seconds = record_deadline_seconds or float(lease_seconds)
        self.records = ProcessingRecords(
            self.store, self.customer_code, lease_seconds, self.time_of_record, self.record_deadline_seconds
        )
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="archive-read")  # threads start lazily

    # ---- public -------------------------------------------------------------------------------

    def time_of_record(self, *floors: datetime | None) -> datetime:
        """A time to record (a result's ``started_at`` / ``finished_at``): never earlier than ``floors``.

        The storage clock is a lower bound with whole seconds (S3's ``Date``), so alone it dated a
        result before the submission it follows; the local clock can lag S3. The latest of both and
        of the events this one follows is a time no reader sees running backwards (issue 17 item 5)."""
        return max([self.clock(), self.store.clock.now(), *(f for f in floors if f is not None)])

    def process(
        self,
        ref: keys.TriggerRef,
        owner: str,
        cancelled: threading.Event | None = None,
        *,
        trigger: TriggerInfo | None = None,
    ) -> Result:
        """Run steps 2-8 for one trigger of this processor's customer. Never raises for expected failures.

        ``owner`` must be unique per receive of a message (the worker's is ``sqs:{message id}:{receive id}``).
        ``trigger``: the trigger as its S3 event describes it (ETag, creation time); step 2's HEAD is then
        skipped (:meth:`_process`)."""
        if ref.customer_code != self.customer_code:
            return Result(
                Outcome.POISON, f"trigger of customer {ref.customer_code!r} on {self.customer_code!r}'s processor"
            )
        started = time.monotonic()
        with self.metrics.batch(self.customer_code) as batch:
            try:
                result = self._process(ref, owner, cancelled, batch, trigger)
                if (
                    trigger is not None
                    and result.outcome is Outcome.ALREADY_RECORDED
                    and result.trigger_delete is DeleteOutcome.ALREADY_GONE
                ):  # no HEAD told us: a duplicate event of a trigger whose work was recorded and deleted
                    result = Result(
                        Outcome.TRIGGER_GONE,
                        f"trigger already deleted: processed before ({result.reason})",
                        ref.change_id,
                        revision=result.revision,
                        trigger_delete=result.trigger_delete,
                    )
            except KeyboardInterrupt:  # Ctrl-C of a manual run: the claim may have landed; end our lease
                self._release_lease(ref.change_id, owner, None)
                raise
            if result.outcome in (Outcome.PROCESSED, Outcome.ALREADY_RECORDED):
                batch.add(MetricName.PROCESSING_SUCCESS)
                batch.add(MetricName.PROCESSING_DURATION, time.monotonic() - started)
            elif result.outcome in (Outcome.TRIGGER_GONE, Outcome.LEASE_HELD):
                batch.add(MetricName.DUPLICATE_EVENTS)
            elif result.outcome in (Outcome.RETRY, Outcome.PERMANENT_ERROR):
                batch.add(MetricName.PROCESSING_FAILURE)
            if result.emails_sent:
                batch.add(MetricName.EMAILS_SENT, result.emails_sent)
            if result.rejected:
                batch.add(MetricName.EMAILS_REJECTED, len(result.rejected))
        return result

    # ---- steps --------------------------------------------------------------------------------

    def _process(
        self,
        ref: keys.TriggerRef,
        owner: str,
        cancelled: threading.Event | None,
        batch: MetricBatch,
        evented: TriggerInfo | None = None,
    ) -> Result:
        change_id = ref.change_id
        gone = Result(Outcome.TRIGGER_GONE, "trigger already deleted: processed before", change_id)
        trigger: TriggerInfo | None
        if evented is not None:
            # 2 from the event: its ETag and time are what a HEAD would return for the trigger that fired
            # it (a newer trigger has another ETag: the DELETE IfMatch leaves it). A trigger deleted since
            # then was recorded first (only recorded work deletes a trigger), so step 4 finds the result.
            trigger = evented
            try:
                loaded: VersionedArchive | ArchiveError = self.archive.load_customer_view(change_id, self.customer_code)
            except ArchiveError as exc:
                loaded = exc
        else:
            # 2 + 3: HEAD the trigger and GET the archive (read-only) concurrently: one round trip
            archive_read = self._pool.submit(self.archive.load_customer_view, change_id, self.customer_code)
            try:
                trigger = self.triggers.head(ref)
            finally:
                try:
                    loaded = archive_read.result()
                except ArchiveError as exc:  # missing or invalid: not retryable
                    loaded = exc
        if trigger is None:
            return gone
        refused = self._refusal(loaded, change_id)
        if refused is not None:
            # a failure is reported only for a trigger that is still there (a duplicate event is acked)
            return gone if evented is not None and self.triggers.head(ref) is None else refused
        assert not isinstance(loaded, ArchiveError)  # _refusal refused it
        document = loaded.document
        revision = document.revision

        # 4. the archive may record this revision itself (a `processed` entry): nothing left but the clean-up
        if document.is_processed(self.customer_code, revision):
            result = Result(
                Outcome.ALREADY_RECORDED, "archive already records this revision", change_id, revision=revision
            )
            return self._delete_trigger(trigger, result, batch)

        # 5. claim (step 4 for the processing object happens inside: a recorded revision is not claimed);
        # the recipients are listed meanwhile; the lease keeper still checks before the first send (a newer
        # revision may claim right after ours: docs/design.md: a superseded revision sends nothing new)
        listing = self._pool.submit(self.mailer.subscribers, document.topic)
        try:
            version = self._claim(change_id, owner, revision, submitted_at(document, revision))
        except SameMessage as exc:
            return Result(Outcome.RETRY, str(exc), change_id, revision=revision, retry_after=exc.remaining)
        except LeaseHeld as exc:
            return Result(Outcome.LEASE_HELD, str(exc), change_id, revision=revision)
        except ArchiveError as exc:
            return Result(failure_outcome(exc), str(exc), change_id, revision=revision)
        except Exception as exc:  # an S3 error left after botocore's retries
            return Result(Outcome.RETRY, f"could not claim: {type(exc).__name__}: {exc}", change_id, revision=revision)
        recorded = recorded_at_or_after(version.document, revision)
        lease = version.document.lease
        if recorded is not None:
            result = Result(
                Outcome.ALREADY_RECORDED,
                f"processing object records revision {recorded}",
                change_id,
                revision=revision,
            )
            return self._delete_trigger(trigger, result, batch)
        if lease is None or lease.owner != owner or lease.revision != revision:  # defensive: never send unclaimed
            return Result(Outcome.RETRY, "claim did not take the lease", change_id, revision=revision)

        # 6. side effects: the emails of revision R, rendered from the archive read in step 3 (never re-read)
        sent = self._side_effects(document, version, owner, cancelled, listing)
        if sent.ended is not None:
            return sent.ended
        assert sent.keeper is not None  # step 6 ended without a result: its keeper holds the final progress
        return self._record_and_clean_up(sent.keeper, sent.recipients, owner, change_id, revision, trigger, batch)

    def _refusal(self, loaded: VersionedArchive | ArchiveError, change_id: str) -> Result | None:
        """Step 3's refusals: no valid archive, or a change that does not list this customer."""
        if isinstance(loaded, ArchiveError):
            return Result(failure_outcome(loaded), str(loaded), change_id)
        if self.customer_code not in loaded.document.customers:
            return Result(
                Outcome.PERMANENT_ERROR,
                f"change {change_id} does not list customer {self.customer_code!r} in its customers",
                change_id,
                revision=loaded.document.revision,
            )
        return None

    def _record_and_clean_up(
        self,
        keeper: LeaseKeeper,
        recipients: list[str],
        owner: str,
        change_id: str,
        revision: int,
        trigger: TriggerInfo,
        batch: MetricBatch,
    ) -> Result:
        """Steps 7 and 8 once the emails are sent: record the result, then delete the trigger."""
        # 7. record the result (it carries the final progress); a lost record means a resend
        try:
            self.records.record(keeper, owner, revision, recipients, batch)
        except KeyboardInterrupt:  # the record may have landed (then no lease is ours); else keep every email sent
            self._save_progress(keeper, release=True)
            raise
        except Exception as exc:  # ArchiveError, or an S3 error left after botocore's retries: keep the progress
            self._save_progress(keeper, release=True)
            return Result(
                Outcome.RETRY,
                f"could not record result: {exc}",
                change_id,
                revision=revision,
                emails_sent=keeper.sent,
                rejected=list(keeper.progress.rejected),
            )
        result = Result(
            Outcome.PROCESSED,
            "",
            change_id,
            revision=revision,
            emails_sent=keeper.sent,
            recipients=recipients,
            rejected=list(keeper.progress.rejected),
        )
        # 8. delete the trigger we read, not a newer one
        return self._delete_trigger(trigger, result, batch)

    def _side_effects(
        self,
        document: ArchiveDocument,
        version: VersionedProcessing,
        owner: str,
        cancelled: threading.Event | None,
        listing: Future[list[str]] | None = None,
    ) -> _Sent:
        """Step 6: the stopped lease keeper (with the final progress) and the recipients, or the result
        that ends processing (:attr:`_Sent.ended`)."""
        change_id, revision = document.change_id, document.revision
        keeper: LeaseKeeper | None = None
        recipients: list[str] = []
        try:
            listed = listing.result() if listing is not None else self.mailer.subscribers(document.topic)
            recipients = normalise_recipients(listed)
            progress = resume_progress(version.document.progress, revision, recipients)
            remaining = progress.remaining(recipients)
            message = render_email(document, self.customer_code)
            keeper = LeaseKeeper(
                self.store,
                self.customer_code,
                self.lease_seconds,
                version,
                owner,
                progress,
                to_send=len(remaining),
            ).start()
            self._await_displaced(keeper, owner, cancelled)
            gate = SendGate(cancelled, keeper)
            self.mailer.send(remaining, message, document.topic, on_done=keeper.on_done, cancelled=gate)
            keeper.stop()
            if keeper.error is not None:
                raise keeper.error
        except KeyboardInterrupt:  # Ctrl-C of a manual run: checkpoint every email sent, end the lease now
            self._save_progress(keeper, release=True)
            raise
        except Superseded as exc:
            assert keeper is not None  # raised only by the keeper or while waiting, after it started
            return _Sent(ended=self._stand_down(keeper, owner, document, recipients, exc))
        except SendInterrupted as exc:  # the drain, or the check before a send said stop
            stop = keeper.stop_reason if keeper is not None else None
            if keeper is not None and isinstance(stop, Superseded):
                return _Sent(ended=self._stand_down(keeper, owner, document, recipients, stop))
            if isinstance(stop, LeaseLost):  # checkpoint what was sent while the lease may still be ours
                return _Sent(ended=self._retry_later(stop, keeper, owner, change_id, revision))
            return _Sent(ended=self._retry_later(exc, keeper, owner, change_id, revision))
        except LeaseLost as exc:
            if keeper is not None:
                keeper.stop()
            return _Sent(ended=Result(Outcome.RETRY, f"lease lost: {exc}", change_id, revision=revision))
        except ArchiveError as exc:  # a progress checkpoint could not be written: always retried
            return _Sent(ended=self._retry_later(exc, keeper, owner, change_id, revision))
        except PipelineError as exc:
            if failure_outcome(exc) is Outcome.PERMANENT_ERROR:  # the customer's SES setup
                self._release_lease(change_id, owner, keeper)
                return _Sent(
                    ended=Result(Outcome.PERMANENT_ERROR, f"email configuration: {exc}", change_id, revision=revision)
                )
            return _Sent(ended=self._retry_later(exc, keeper, owner, change_id, revision))
        except Exception as exc:  # unexpected: keep trigger and lease, retry later
            return _Sent(ended=self._retry_later(exc, keeper, owner, change_id, revision, traceback=True))
        return _Sent(keeper, recipients)

    def _claim(
        self, change_id: str, owner: str, revision: int, submitted: datetime | None = None
    ) -> VersionedProcessing:
        """Step 5 (:meth:`ProcessingRecords.claim`)."""
        return self.records.claim(change_id, owner, revision, submitted)

    def _await_displaced(self, keeper: LeaseKeeper, owner: str, cancelled: threading.Event | None) -> None:
        """Before the first send: wait until every holder our claim (or an earlier one) displaced has
        stopped, or its lease has ended on the storage clock, so that none of its emails lands after
        ours. Bounded by those leases (at most one lease); our own lease is kept alive meanwhile."""
        code, change_id = self.customer_code, keeper.version.document.change_id
        doc, etag = keeper.version.document, keeper.version.etag
        announced = False
        while True:
            problem = lease_problem(doc, owner, keeper.revision)
            if problem is not None:  # a still newer revision took over while we waited
                raise problem
            pending = doc.displaced_live(self.store.clock.now())
            if not pending:
                return
            if not announced:
                announced = True
                logger.info(
                    "waiting for the holders of an older revision to stop before sending",
                    extra={"displaced": [f"{d.owner}@{d.revision} until {d.expires_at.isoformat()}" for d in pending]},
                )
            if keeper.error is not None:
                raise keeper.error
            if cancelled is not None:
                if cancelled.wait(DISPLACED_POLL_SECONDS):
                    raise SendInterrupted("shutdown while waiting for an older revision's holder to stop")
            else:
                time.sleep(DISPLACED_POLL_SECONDS)
            seen = self.store.load_if_changed(code, change_id, etag)
            if seen is not None:
                doc, etag = seen.document, seen.etag

    def _stand_down(
        self,
        keeper: LeaseKeeper,
        owner: str,
        document: ArchiveDocument,
        recipients: list[str],
        reason: PipelineError,
    ) -> Result:
        """A newer revision took over: record what this revision sent as a ``superseded`` result and
        remove our displaced entry in one write (that is the newer revision's signal to start), then ack.

        The trigger is the newer revision's now; it stays. If the write fails, the newer revision
        waits for our lease to end instead, and this revision's sends are missing from the trail."""
        keeper.stop()
        change_id, revision, progress = document.change_id, document.revision, keeper.progress
        self.records.record_superseded(keeper, owner, change_id, revision, recipients)
        logger.info(
            "superseded by a newer revision: stopped sending",
            extra={"change_id": change_id, "revision": revision, "emails_sent": keeper.sent, "reason": str(reason)},
        )
        return Result(
            Outcome.SUPERSEDED,
            str(reason),
            change_id,
            revision=revision,
            emails_sent=keeper.sent,
            recipients=recipients,
            rejected=list(progress.rejected),
        )

    def _release_lease(self, change_id: str, owner: str, keeper: LeaseKeeper | None) -> None:
        """End ``owner``'s lease now, keeping the progress (a conditional write; nothing to do when the
        lease is another owner's, or already ended)."""

        self._save_progress(keeper)
        self.records.release(change_id, owner)

    def _retry_later(
        self,
        exc: Exception,
        keeper: LeaseKeeper | None,
        owner: str,
        change_id: str,
        revision: int,
        *,
        traceback: bool = False,
    ) -> Result:
        """A side effect failed: save the progress, keep trigger and lease, return the message to the queue.

        Called inside the ``except`` block, so ``traceback`` logs the exception being handled. This
        receive stops working, so the lease ends now (with the progress, in one write): a redelivery
        of the message resumes at once instead of waiting for the lease to run out."""
        if keeper is None:
            self._release_lease(change_id, owner, None)
        else:
            self._save_progress(keeper, release=True)
        if traceback:
            logger.exception("side effects failed")
        sent = keeper.sent if keeper else 0
        return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc}", change_id, revision=revision, emails_sent=sent)

    def _save_progress(self, keeper: LeaseKeeper | None, *, release: bool = False) -> None:
        if keeper is None:
            return
        keeper.stop()
        try:
            keeper.flush(release=release)
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
