"""Whether a delivery event's email was really sent: the (customer, change, revision) its tags name.

The tags of an SES event are whatever the sending account put on the email, and every customer's SES
account can send. So a customer account could report on a change that never targeted it, or on a
change id that does not exist yet (whose archive would later show that report). An event is recorded
only when the bucket shows the email was sent (docs/design.md, "Decisions"):

1. ``archive/{id}.json`` exists, and the event's revision is not newer than the archive's;
2. the revision targeted the customer (:func:`untargeted`: a submission up to it sent the customer a
   trigger and the current revision still lists it; a revision before the archive's first submission
   belongs to a withdrawn earlier submission of the same change id);
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
shown (revisions continue across a withdrawal, docs/design.md, "Decisions"), so confirmations are cached
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

from runtime.archive import ArchiveDocument, ArchiveStore, ProcessingStore
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


def untargeted(doc: ArchiveDocument, code: str, revision: int) -> str | None:
    """Why ``revision`` of ``doc`` cannot have sent emails to ``code``; None when it can.

    The rule the results' fold applies (it calls ``ArchiveDocument.targets``, issue 17 item 1): a submission at
    or before the revision sent the customer a trigger — a trigger is processed at the newest revision,
    which may be a later one that did not name the customer — and the current revision still lists the
    customer (the processor refuses a change that does not). A revision before the archive's first
    ``submitted`` entry belongs to an earlier submission of the same change id (withdrawn, its archive
    deleted; revisions continue from the bucket's versions). An archive without ``submitted`` entries
    (an older one, or written by hand) targeted the customers it lists."""
    if revision > doc.revision:
        return f"revision {revision} is newer than the archive's revision {doc.revision}"
    first = doc.first_submitted_revision()
    if first is not None and revision < first:
        return (
            f"revision {revision} precedes the archive's first submitted revision {first}: "
            "it belongs to an earlier submission of this change id"
        )
    if not doc.targets(code, revision):
        return (
            f"customer {code} was not targeted by revision {revision} of {doc.change_id}: "
            f"no submission up to it sent {code} a trigger, or the document does not list it ({doc.customers})"
        )
    return None


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
        refusal = untargeted(doc, code, revision)
        if refusal is not None:
            return Verdict(REFUSED, refusal)
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
