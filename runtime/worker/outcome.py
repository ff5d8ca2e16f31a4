"""What a message handler tells the worker about each record it handled: the generic outcome type.

The worker knows nothing of what a record means. It asks each handled record for its :class:`Fate`
(delete, retry, dead-letter), for how long to wait before a retry, and to log itself; the handlers'
own result types (the processor's and the coordinator's ``Result``) satisfy :class:`Handled`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from runtime.telemetry import logger


class Fate(enum.Enum):
    """What happens to the queue message."""

    ACK = "ack"  # delete the message
    RETRY = "retry"  # return it to the queue after a backoff
    DEAD_LETTER = "dead_letter"  # let the redrive policy move it to the DLQ


class Handled(Protocol):
    """One record's outcome, as the worker uses it."""

    @property
    def fate(self) -> Fate: ...

    @property
    def retry_after(self) -> float | None:
        """For a retry: when the message should come back (seconds); None: the worker's backoff."""
        ...

    def log(self, message_fate: Fate) -> None:
        """Log this outcome; ``message_fate`` is the fate of the whole message (:func:`overall_fate`)."""
        ...


@dataclass(frozen=True)
class HandlerFailed:
    """The handler raised instead of returning outcomes: a bug must not lose the message, so it retries."""

    reason: str
    retry_after: float | None = None

    @property
    def fate(self) -> Fate:
        return Fate.RETRY

    def log(self, message_fate: Fate) -> None:
        fields = {"outcome": "retry", "fate": message_fate.value, "reason": self.reason}
        logger.warning("transient failure: message returns to the queue", extra=fields)


def overall_fate(results: Iterable[Handled]) -> Fate:
    """The message's fate from its records' outcomes: any retry retries it, else any dead letter wins."""
    fates = {r.fate for r in results}
    if Fate.RETRY in fates:
        return Fate.RETRY
    if Fate.DEAD_LETTER in fates:
        return Fate.DEAD_LETTER
    return Fate.ACK


def retry_after(results: Iterable[Handled]) -> float | None:
    """The latest ``retry_after`` the retried records ask for (None: the exponential backoff)."""
    retried = [r for r in results if r.fate is Fate.RETRY]
    asked = [r.retry_after for r in retried if r.retry_after is not None]
    if not asked or len(asked) != len(retried):
        return None
    return max(asked)
