"""Whether a delivery event's email was really sent: the (customer, change, revision) its tags name.

The tags of an SES event are whatever the sending account put on the email, and every customer's SES
account can send. So a customer account could report on a change that never targeted it, or on a
change id that does not exist yet (whose archive would later show that report). An event is recorded
only when the bucket shows the email was sent (DESIGN.md §9):

1. ``archive/{id}.json`` exists, and the event's revision is not newer than the archive's;
2. the revision's ``submitted`` entry lists the customer (a revision without one, e.g. of a submission
   withdrawn before the change id was submitted again, targeted nobody here);
3. the revision is shown sent to that customer: its ``processed`` entry in the archive, else the
   customer's ``processing/{C}/{id}.json`` — the revision's result, or the in-flight ``progress`` of
   that revision with at least one recipient sent (not only rejected).

A failure of 1 or 2, or a result (or ``processed`` entry) that records no email sent, is final
(:data:`REFUSED`). A targeted customer whose processing object does not show the revision sent yet is
:data:`NOT_YET`: SES publishes seconds after the send, possibly before the processor's next checkpoint,
so the event is retried (the worker's backoff) and dead-lettered only after the queue's
``maxReceiveCount`` receives.

**Cost and cache.** Confirming a (customer, change, revision) costs one archive GET, plus one
processing-object GET until the coordinator has folded the result. That it was sent never changes once
shown (revisions continue across a withdrawal, DESIGN.md §9), so confirmations are cached
(:attr:`SentCheck.cache_size`, least recently used first out): the delivery, bounce and complaint of
every recipient of that email then cost no read. Concurrent events of one triple share one check.
Refusals and ``NOT_YET`` are never cached: the next receive looks again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from runtime.archive.documents import SUBMITTED, ArchiveDocument
from runtime.archive.processing_store import ProcessingStore
from runtime.archive.store import ArchiveStore
from runtime.contract import keys

Decision = Literal["sent", "refused", "not_yet"]
SENT: Decision = "sent"
REFUSED: Decision = "refused"
NOT_YET: Decision = "not_yet"

DEFAULT_CACHE_SIZE = 10_000
"""Confirmed (customer, change, revision) triples kept: one per customer and revision sent, ~200 bytes each."""


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str = ""


_CONFIRMED = Verdict(SENT)


def targeted_customers(doc: ArchiveDocument, revision: int) -> list[str] | None:
    """The customers the ``submitted`` entry of ``revision`` lists; None when the archive has no such entry.

    An entry without ``customers`` (never written so, but a hand-edited archive may lack it) targeted the
    document's customers."""
    entries = [m for m in doc.modifications if m.modification_type == SUBMITTED and m.revision == revision]
    if not entries:
        return None
    return sorted({code for e in entries for code in (doc.customers if e.customers is None else e.customers)})


class SentCheck:
    """Decides :class:`Verdict` per (customer, change, revision); thread-safe.

    Raises what the stores raise: :class:`~runtime.archive.errors.ArchiveInvalid` for an archive or
    processing object that is not valid (nothing can be decided), ``ClientError`` / ``OSError`` when S3
    cannot be read (retry)."""

    def __init__(
        self, archive: ArchiveStore, processing: ProcessingStore, *, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self.archive = archive
        self.processing = processing
        self.cache_size = cache_size
        self._confirmed: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._pending: dict[tuple[str, str, int], Future[Verdict]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_bucket(cls, s3: Any, bucket: str) -> SentCheck:
        return cls(ArchiveStore(s3, bucket), ProcessingStore(s3, bucket))

    def check(self, code: str, change_id: str, revision: int) -> Verdict:
        key = (code, change_id, revision)
        with self._lock:
            if key in self._confirmed:
                self._confirmed.move_to_end(key)
                return _CONFIRMED
            pending = self._pending.get(key)
            leader = pending is None
            if pending is None:
                pending = self._pending[key] = Future()
        if not leader:
            return pending.result()
        try:
            verdict = self._decide(code, change_id, revision)
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            if verdict.decision == SENT:
                self._confirmed[key] = None
                while len(self._confirmed) > self.cache_size:
                    self._confirmed.popitem(last=False)
        pending.set_result(verdict)
        return verdict

    def _decide(self, code: str, change_id: str, revision: int) -> Verdict:
        archive_key = keys.archive_key(change_id)
        found = self.archive.load_optional(change_id)
        if found is None:
            missing = f"no archive {archive_key}: change {change_id} does not exist (not yet submitted, or withdrawn)"
            return Verdict(REFUSED, missing)
        doc = found.document
        if revision > doc.revision:
            return Verdict(REFUSED, f"revision {revision} is newer than the archive's revision {doc.revision}")
        targets = targeted_customers(doc, revision)
        if targets is None:
            return Verdict(REFUSED, f"revision {revision} has no submitted entry in {archive_key}")
        if code not in targets:
            return Verdict(
                REFUSED,
                f"customer {code} was not targeted by revision {revision} of {change_id} (it targeted {targets})",
            )
        folded = doc.processed_entry(code, revision)
        if folded is not None:
            if folded.emails_sent == 0:
                return Verdict(REFUSED, f"the archive's result of revision {revision} for {code} records no email sent")
            return _CONFIRMED
        versioned = self.processing.load_optional(code, change_id)
        processing_key = keys.processing_key(code, change_id)
        if versioned is not None:
            result = versioned.document.result_for(revision)
            if result is not None:
                if result.sent == 0:
                    return Verdict(
                        REFUSED, f"{processing_key}: the result of revision {revision} records no email sent"
                    )
                return _CONFIRMED
            progress = versioned.document.progress
            if progress is not None and progress.revision == revision and progress.done > len(progress.rejected):
                return _CONFIRMED
        return Verdict(
            NOT_YET,
            f"revision {revision} is not yet shown as sent in {processing_key} "
            "(the event may precede the processor's checkpoint)",
        )
