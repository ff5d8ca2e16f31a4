"""What the processor's sending step needs besides the state machine: the mailer it sends through, the
recipients in the cursor's order, the progress to resume from, and when a revision was submitted.

Apart from :mod:`runtime.pipeline.state_machine` so that the state machine reads as its steps; these are
the small pure pieces and the one protocol they rest on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from runtime.archive import SUBMITTED, ArchiveDocument, SendProgress, recipients_digest
from runtime.notify import RenderedEmail, StopSignal

RecipientDone = Callable[[str, "str | None"], None]
"""Called after each recipient is dealt with: ``(address, None)`` when SES accepted the email,
``(address, reason)`` when SES rejected that recipient for good. It may block (back-pressure)."""


class Mailer(Protocol):
    """What the processor needs from email: the recipients of a topic, and a way to send."""

    def subscribers(self, topic: str) -> list[str]: ...

    def send(
        self,
        recipients: list[str],
        message: RenderedEmail,
        topic: str,
        *,
        on_done: RecipientDone,
        cancelled: StopSignal | None,
    ) -> list[str]:
        """Send to each of ``recipients`` in order, asking ``cancelled`` right before each send (stop
        when it is set); returns the addresses SES accepted."""
        ...


def normalise_recipients(addresses: list[str]) -> list[str]:
    """The cursor's order: lower-cased, de-duplicated, sorted."""
    return sorted({a.strip().lower() for a in addresses if a.strip()})


def submitted_at(document: ArchiveDocument, revision: int) -> datetime | None:
    """When ``revision`` was submitted (its ``submitted`` entry), the floor of its times of record."""
    times = [m.timestamp for m in document.modifications if m.modification_type == SUBMITTED and m.revision == revision]
    return max(times) if times else None


def resume_progress(progress: SendProgress | None, revision: int, recipients: list[str]) -> SendProgress:
    """The progress to continue from: the checkpoint of this revision over these recipients, if any."""
    digest = recipients_digest(recipients)
    if progress is None or progress.revision != revision:
        return SendProgress(revision=revision, recipients=len(recipients), recipients_digest=digest, done=0)
    if progress.recipients_digest == digest:
        return progress
    # the list changed since the checkpoint: everything up to the cursor counts as done
    done = len(recipients) - len(progress.remaining(recipients))
    return progress.model_copy(update={"recipients": len(recipients), "recipients_digest": digest, "done": done})
