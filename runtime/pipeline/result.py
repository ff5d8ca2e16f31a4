"""The outcome of handling one record of a change: the processor's and the change coordinator's.

:class:`Result` is what both handlers return to the worker for each record; it satisfies the worker's
generic :class:`~runtime.worker.outcome.Handled` (its fate, when to come back, how it is logged).
"""

from __future__ import annotations

import enum
from dataclasses import KW_ONLY, dataclass, field

from runtime.archive import DeleteOutcome
from runtime.contract.errors import PipelineError
from runtime.telemetry import log_context, logger
from runtime.worker import Fate

__all__ = ["Outcome", "Result", "failure_outcome"]


class Outcome(enum.Enum):
    PROCESSED = ("processed", Fate.ACK)
    ALREADY_RECORDED = ("already_recorded", Fate.ACK)
    TRIGGER_GONE = ("trigger_gone", Fate.ACK)
    LEASE_HELD = ("lease_held", Fate.ACK)
    SUPERSEDED = ("superseded", Fate.ACK)  # a newer revision took over; what was sent is recorded
    TEST_EVENT = ("test_event", Fate.ACK)
    RETRY = ("retry", Fate.RETRY)
    PERMANENT_ERROR = ("permanent_error", Fate.DEAD_LETTER)
    POISON = ("poison", Fate.DEAD_LETTER)

    def __init__(self, label: str, fate: Fate) -> None:
        self.label = label
        self.fate = fate


@dataclass
class Result:
    """One record's outcome. Beyond ``outcome``, ``reason`` and ``change_id``, every field is named."""

    outcome: Outcome
    reason: str = ""
    change_id: str | None = None
    _: KW_ONLY
    revision: int | None = None
    emails_sent: int = 0
    recipients: list[str] = field(default_factory=list)
    trigger_delete: DeleteOutcome | None = None
    retry_after: float | None = None
    """For RETRY: when the message should come back (seconds), e.g. when a lease held by another
    receive of the same message ends; None: the worker's exponential backoff."""
    rejected: list[str] = field(default_factory=list)
    kept: str = "trigger kept, message to the DLQ"
    """What a permanent error keeps, as its ERROR line says: the processor keeps the trigger for a
    redrive; the change coordinator, which has no trigger, keeps only the message
    (:data:`runtime.coordinator.handler.COORDINATOR_KEEPS`)."""

    @property
    def fate(self) -> Fate:
        return self.outcome.fate

    def log(self, message_fate: Fate) -> None:
        """One log line per record: poison and permanent errors as errors, retries as warnings."""
        fields = {
            "outcome": self.outcome.label,
            "fate": message_fate.value,
            "reason": self.reason,
            "revision": self.revision,
            "emails_sent": self.emails_sent,
            "trigger_delete": self.trigger_delete.value if self.trigger_delete else None,
        }
        with log_context(change_id=self.change_id):
            if self.outcome is Outcome.POISON:
                logger.error("poison message: refused, it will reach the DLQ", extra={**fields, "security": True})
            elif self.outcome is Outcome.PERMANENT_ERROR:
                logger.error(f"permanent error: {self.kept}", extra=fields)
            elif self.outcome is Outcome.RETRY:
                logger.warning("transient failure: message returns to the queue", extra=fields)
            else:
                logger.info("message handled", extra=fields)


def failure_outcome(exc: PipelineError) -> Outcome:
    """The one classification of our own failures: retryable ones retry, the others dead-letter."""
    return Outcome.RETRY if exc.retryable else Outcome.PERMANENT_ERROR
