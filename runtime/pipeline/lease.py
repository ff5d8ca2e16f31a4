"""Step 6's lease keeper: checkpoints a holder's progress, keeps its lease alive, and tells the sender
when to stop (docs/design.md §2; issue 17 item 4).

It depends on a narrow :class:`LeaseStore` (the storage clock, a conditional re-read, a compare-and-swap
update of the processing object), never on the processor, so the processor's module imports it and not
the other way round.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from runtime.archive import ArchiveMissing, ProcessingDocument, SendProgress, VersionedProcessing
from runtime.contract.errors import PipelineError
from runtime.pipeline.errors import LeaseLost, Superseded
from runtime.telemetry import logger

__all__ = ["MAX_UNRECORDED_EMAILS", "LeaseKeeper", "LeaseStore", "SendGate", "lease_problem"]

MAX_UNRECORDED_EMAILS = 2
"""Back-pressure of the background checkpoints: never more emails sent but not yet durable."""
LEASE_END_MARGIN_SECONDS = 2.0
"""A holder starts no ``SendEmail`` this close to its lease's end (at most a sixth of a short lease):
S3's ``Date`` has whole seconds, so the holder's storage time may lag the newer revision's by one."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class LeaseStore(Protocol):
    """What the keeper needs of the processing store."""

    @property
    def clock(self) -> Clock: ...

    def load_if_changed(self, code: str, change_id: str, etag: str) -> VersionedProcessing | None: ...

    def update(
        self,
        code: str,
        change_id: str,
        mutate: Callable[[VersionedProcessing | None], ProcessingDocument | None],
        *,
        create: bool = ...,
        current: VersionedProcessing | None = ...,
    ) -> VersionedProcessing: ...


def lease_problem(doc: ProcessingDocument, owner: str, revision: int) -> PipelineError | None:
    """Why ``owner`` (working on ``revision``) may no longer send, or None while the lease is its own.

    :class:`Superseded` when a newer revision took over (its claim displaced us, it holds the lease, or
    it is recorded already); :class:`LeaseLost` when another receive took the same revision over."""
    lease = doc.lease
    if lease is not None and lease.owner == owner:
        return None
    newer = doc.is_displaced(owner) or (lease is not None and lease.revision > revision)
    if newer or any(r.isdigit() and int(r) > revision for r in doc.results):
        holder = f"{lease.owner}, revision {lease.revision}" if lease is not None else "a newer revision"
        return Superseded(f"revision {revision} was superseded ({holder})")
    return LeaseLost(f"lease now belongs to {lease.owner if lease else 'nobody'}")


class _Alarms:
    """One thread per process that wakes the keepers whose lease is due for an extension.

    A keeper's writer thread is needed only once a checkpoint or an extension is due; most triggers
    (a few recipients, sent well within a third of the lease) need neither, and a writer thread per
    trigger cost about 1 % of the worker's CPU (issue 21). So a keeper starts its writer on demand:
    the sender's :meth:`LeaseKeeper.on_done` when a checkpoint is needed, this thread when the lease
    needs extending (a slow SES call, waiting for a displaced holder). Entries of stopped keepers are
    dropped when they come due; a cancelled entry keeps no reference to its keeper."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, list[LeaseKeeper | None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, at: float, keeper: LeaseKeeper) -> list[LeaseKeeper | None]:
        """Wake ``keeper`` at ``at`` (``time.monotonic``); clear the returned entry to cancel."""
        entry: list[LeaseKeeper | None] = [keeper]
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-alarms", daemon=True)
                self._thread.start()
            heapq.heappush(self._due, (at, next(self._seq), entry))
            self._cond.notify()
        return entry

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, entry = heapq.heappop(self._due)
            keeper = entry[0]
            if keeper is not None:
                keeper._start_writer()


_alarms = _Alarms()


def _reset_alarms_after_fork() -> None:
    """A forked child has no alarm thread, and the parent's lock may have been held at the fork."""
    global _alarms
    _alarms = _Alarms()


os.register_at_fork(after_in_child=_reset_alarms_after_fork)


class LeaseKeeper:
    """Step 6's background writer: checkpoints the progress and extends the lease.

    The sender calls :meth:`on_done` after each recipient; it returns once at most
    ``MAX_UNRECORDED_EMAILS - 1`` emails are sent but not yet durable, so the sender never has more
    than ``MAX_UNRECORDED_EMAILS`` of them (the duplicate window under SIGKILL). The writer thread
    writes the latest progress (a cursor: O(1) bytes) whenever it moved, and at least every third of
    the lease even when it did not (slow SES calls), which extends the lease on the storage clock.
    The writer thread starts only when the first checkpoint or extension is due (:class:`_Alarms`)."""

    def __init__(
        self,
        store: LeaseStore,
        customer_code: str,
        lease_seconds: float,
        version: VersionedProcessing,
        owner: str,
        progress: SendProgress,
        to_send: int,
    ) -> None:
        self._store = store
        self._code = customer_code
        self._lease_seconds = lease_seconds
        self.revision = progress.revision
        lease = version.document.lease
        self.started_at = lease.acquired_at if lease is not None else None
        self.stop_reason: PipelineError | None = None
        """Why the sender must stop (:meth:`must_stop`): superseded, or the lease lost or ending."""
        self._known_etag = version.etag
        self._end_margin = timedelta(seconds=min(LEASE_END_MARGIN_SECONDS, lease_seconds / 6))
        self._left = to_send
        """Recipients not dealt with yet: no checkpoint is needed for what the record (step 7) will cover."""
        self.version = version
        self._owner = owner
        self.progress = progress
        self._cond = threading.Condition()
        self._done_seq = 0
        self._durable_seq = 0
        self._stop = False
        self.error: BaseException | None = None
        self.sent = 0
        self._extend_every = max(0.05, lease_seconds / 3)
        self._last_durable = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._alarm: list[LeaseKeeper | None] = [None]

    # -- the sender's side --
    def start(self) -> LeaseKeeper:
        """Keep the lease from now on: the writer thread starts when the first extension comes due (a third
        of the lease from the claim), or earlier when :meth:`on_done` needs a checkpoint."""
        self._alarm = _alarms.add(self._last_durable + self._extend_every, self)
        return self

    def _start_writer(self) -> None:
        with self._cond:
            if not self._stop and self._thread.ident is None:
                self._thread.start()

    def on_done(self, address: str, rejected: str | None) -> None:
        with self._cond:
            progress = self.progress
            updates: dict[str, object] = {"done": progress.done + 1, "done_through": address.lower()}
            if rejected is not None:
                updates["rejected"] = [*progress.rejected, address.lower()]
            else:
                self.sent += 1
            self.progress = progress.model_copy(update=updates)
            self._done_seq += 1
            self._left = max(0, self._left - 1)
            if self._checkpoint_needed():
                self._start_writer()
            self._cond.notify_all()
            while self._left > 0 and self._done_seq - self._durable_seq >= MAX_UNRECORDED_EMAILS and self.error is None:
                if time.monotonic() - self._last_durable > self._lease_seconds:
                    # no checkpoint landed for a whole lease (S3 unreachable): the lease may be gone
                    self.error = LeaseLost("no checkpoint could be written for a whole lease; stopping")
                    break
                self._cond.wait(0.5)
            if isinstance(self.error, (LeaseLost, Superseded)):
                raise self.error

    def must_stop(self) -> bool:
        """Asked right before each ``SendEmail``: is the lease no longer ours, or about to end?

        One GET ``IfNoneMatch`` the last ETag we know (a bodiless 304 while nothing changed), so a
        newer revision's claim stops the sender at its next email, not at its next checkpoint. A read
        that fails lets the send go: the checkpoints' back-pressure and the newer revision's wait
        still hold. Sets :attr:`stop_reason`.

        Also before the first email and after a checkpoint of ours: our write proved the lease ours only
        when it landed, and a newer revision may claim right after it (docs/design.md, "A superseded
        revision sends nothing new": it stops before its next send). Issue 21 tried skipping these reads."""
        with self._cond:
            if self.stop_reason is None and isinstance(self.error, (LeaseLost, Superseded)):
                self.stop_reason = self.error
            if self.stop_reason is not None:
                return True
            lease, etag, change_id = self.version.document.lease, self._known_etag, self.version.document.change_id
        if lease is None or self._store.clock.now() >= lease.expires_at - self._end_margin:
            return self._stop_for(LeaseLost("the lease ends before another email could be sent; stopping"))
        try:
            seen = self._store.load_if_changed(self._code, change_id, etag)
        except ArchiveMissing:
            return self._stop_for(LeaseLost("the processing object is gone"))
        except Exception as exc:
            logger.warning("could not check the lease before a send; sending", extra={"error": str(exc)})
            return False
        if seen is None:
            return False
        with self._cond:
            self._known_etag = seen.etag
        problem = lease_problem(seen.document, self._owner, self.revision)
        return problem is not None and self._stop_for(problem)

    def _stop_for(self, reason: PipelineError) -> bool:
        with self._cond:
            self.stop_reason = self.stop_reason or reason
        return True

    def stop(self) -> None:
        """Stop the writer; the final progress goes into the record (step 7) or :meth:`flush`."""
        with self._cond:
            self._stop = True
            self._alarm[0] = None
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def flush(self, *, release: bool = False) -> None:
        """Write the current progress once more (the side effects failed: keep what was sent); with
        ``release``, in the same write end the lease now (this receive stops working: a redelivery of
        the message must not wait for the lease to run out)."""
        with self._cond:
            seq, progress = self._done_seq, self.progress
        if seq != self._durable_seq or release:
            self._write(progress, seq, release=release)

    # -- the writer thread --
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._checkpoint_needed():
                    remaining = self._extend_every - (time.monotonic() - self._last_durable)
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._stop:
                    return
                seq, progress = self._done_seq, self.progress
            try:
                self._write(progress, seq)
            except (LeaseLost, Superseded) as exc:
                with self._cond:
                    self.error = exc
                    self._cond.notify_all()
                return
            except Exception as exc:  # transient: keep trying; the sender waits (back-pressure)
                logger.warning("could not checkpoint progress; retrying", extra={"error": str(exc)})
                time.sleep(min(1.0, self._extend_every / 4))

    def _checkpoint_needed(self) -> bool:
        """Progress not yet durable, unless all that is left fits in the window: then the record covers it
        (a change with 2 recipients needs no checkpoint at all)."""
        unrecorded = self._done_seq - self._durable_seq
        return unrecorded > 0 and unrecorded + self._left > MAX_UNRECORDED_EMAILS

    def _write(self, progress: SendProgress, seq: int, *, release: bool = False) -> None:
        owner = self._owner

        def mutate(version: VersionedProcessing | None) -> ProcessingDocument | None:
            if version is None:
                raise LeaseLost("the processing object is gone")
            problem = lease_problem(version.document, owner, self.revision)
            lease = version.document.lease
            if problem is not None or lease is None:
                raise problem or LeaseLost("lease now belongs to nobody")
            now = self._store.clock.now()
            # released: 1 s in the past, the resolution of the `Date` header readers judge it by
            expires = now - timedelta(seconds=1) if release else now + timedelta(seconds=self._lease_seconds)
            return version.document.model_copy(
                update={"lease": lease.model_copy(update={"expires_at": expires}), "progress": progress}
            )

        change_id = self.version.document.change_id
        written = self._store.update(self._code, change_id, mutate, create=False, current=self.version)
        with self._cond:
            self.version = written
            self._known_etag = written.etag
            self._durable_seq = max(self._durable_seq, seq)
            self._last_durable = time.monotonic()
            self._cond.notify_all()


class SendGate:
    """The ``cancelled`` the mailer asks before each send: the worker's drain, or :meth:`LeaseKeeper.must_stop`."""

    def __init__(self, cancelled: threading.Event | None, keeper: LeaseKeeper) -> None:
        self._cancelled = cancelled
        self._keeper = keeper

    def is_set(self) -> bool:
        return (self._cancelled is not None and self._cancelled.is_set()) or self._keeper.must_stop()
