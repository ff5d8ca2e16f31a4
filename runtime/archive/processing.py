"""``processing/{customer_code}/{change_id}.json``: one customer's processing of one change (docs/design.md §1).

Only that customer's processor writes it, by compare-and-swap, so customers never contend with each
other and no processor can touch another customer's work. It holds:

* the **lease** — who works on which revision, until when (``expires_at`` is on the storage's clock:
  S3's ``Date`` of the answer that read the object, never the reader's local clock);
* the **progress** of the revision being sent — a cursor over the sorted recipient list (how many are
  done and the last one done), so a checkpoint costs the same few bytes for 10 or 100,000 recipients;
* the **result** of every revision processed (recipients, sent, rejected, timestamps), which the change
  coordinator folds into the archive's audit trail as ``processed`` entries; a revision a newer one
  took over records what it did send, marked ``superseded``;
* the holders a newer revision's claim **displaced**, until each acknowledges that it stopped: the
  newer revision sends only then, or once their lease has ended (issue 17 item 4).

Fields added later (``superseded``, ``displaced``) are optional: an object written before reads as
"not superseded", "nobody displaced".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from pydantic import Field

from runtime.archive.documents import CustomerCodeField, _Document, utcnow


class ProcessingLease(_Document):
    """A claim on one revision (step 5). ``owner`` is unique per *receive* of a message."""

    owner: str = Field(min_length=1)
    message_id: str | None = None
    """The SQS message whose receive holds the lease: another receive of the same message waits for the
    lease to end (it must not ack: that would delete the holder's message); another message acks."""
    revision: int = Field(ge=0)
    expires_at: datetime
    acquired_at: datetime = Field(default_factory=utcnow)

    def is_live(self, storage_now: datetime) -> bool:
        return self.expires_at > storage_now


def recipients_digest(recipients: Iterable[str]) -> str:
    """Identifies a recipient list: a resumed send continues the cursor only over the same list."""
    return hashlib.sha256("\n".join(recipients).encode()).hexdigest()


class SendProgress(_Document):
    """Where the sending of one revision stands: a cursor over the sorted, lower-cased recipients."""

    revision: int = Field(ge=0)
    recipients: int = Field(ge=0)
    recipients_digest: str
    done: int = Field(0, ge=0)
    """Recipients dealt with (sent, or rejected for good), in sorted order."""
    done_through: str | None = None
    """The last recipient dealt with: on a changed list, every address up to it counts as done."""
    rejected: list[str] = Field(default_factory=list)
    """Recipients SES refused for good (never counted as sent)."""

    def remaining(self, recipients: list[str]) -> list[str]:
        """The recipients of ``recipients`` (sorted) still to send to."""
        if recipients_digest(recipients) == self.recipients_digest:
            return recipients[self.done :]
        if self.done_through is None:
            return recipients
        return [r for r in recipients if r > self.done_through]


class RevisionResult(_Document):
    """What processing one revision achieved (step 7)."""

    revision: int = Field(ge=0)
    recipients: int = Field(ge=0)
    sent: int = Field(ge=0)
    rejected: int = Field(0, ge=0)
    started_at: datetime | None = None
    finished_at: datetime = Field(default_factory=utcnow)
    superseded: bool | None = None
    """True: a newer revision's claim stopped this one before it was done; ``sent`` is what it sent
    until then (the other recipients get the newer revision only). Absent: it ran to its end."""


class DisplacedHolder(_Document):
    """The holder of an older revision's live lease, taken over by a newer revision's claim.

    It may still be inside a ``SendEmail``. The newer revision sends nothing until the holder has
    removed this entry (it stopped and recorded what it sent) or ``expires_at``, its lease's end on
    the storage clock, has passed: after that the holder starts no send."""

    owner: str = Field(min_length=1)
    revision: int = Field(ge=0)
    expires_at: datetime
    started_at: datetime | None = None
    """The displaced lease's ``acquired_at``."""
    progress: SendProgress | None = None
    """Its last checkpoint when it was displaced: if it never answers, what it sent at least."""

    def is_live(self, storage_now: datetime) -> bool:
        return self.expires_at > storage_now


class ProcessingDocument(_Document):
    customer_code: CustomerCodeField
    change_id: str = Field(min_length=1)
    lease: ProcessingLease | None = None
    progress: SendProgress | None = None
    results: dict[str, RevisionResult] = Field(default_factory=dict)
    """Keyed by the revision as a string (JSON object keys are strings)."""
    displaced: list[DisplacedHolder] | None = None
    """Holders of older revisions a claim took over that have not acknowledged yet (see
    :class:`DisplacedHolder`); kept across leases, so whoever holds the lease next still waits.
    None when there are none (not written)."""

    def displaced_live(self, storage_now: datetime) -> list[DisplacedHolder]:
        return [d for d in self.displaced or [] if d.is_live(storage_now)]

    def is_displaced(self, owner: str) -> bool:
        return any(d.owner == owner for d in self.displaced or [])

    def without_displaced(self, owner: str, storage_now: datetime) -> list[DisplacedHolder] | None:
        """The displaced holders still to wait for once ``owner`` has acknowledged (ended ones dropped)."""
        kept = [d for d in self.displaced_live(storage_now) if d.owner != owner]
        return kept or None

    def displaced_silent(self, owner: str | None, storage_now: datetime) -> list[DisplacedHolder]:
        """Displaced holders (other than ``owner``) whose lease ended without an answer: their
        revision has no result, they will never write one."""
        return [
            d
            for d in self.displaced or []
            if d.owner != owner and not d.is_live(storage_now) and not self.is_recorded(d.revision)
        ]

    def result_for(self, revision: int) -> RevisionResult | None:
        return self.results.get(str(revision))

    def is_recorded(self, revision: int) -> bool:
        return str(revision) in self.results

    def with_result(self, result: RevisionResult) -> ProcessingDocument:
        """A copy with ``result`` recorded, the lease cleared and the progress of that revision dropped."""
        progress = self.progress if self.progress is not None and self.progress.revision != result.revision else None
        return self.model_copy(
            update={"results": {**self.results, str(result.revision): result}, "lease": None, "progress": progress}
        )
