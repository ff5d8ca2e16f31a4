"""What a sweeper pass reports and where it logs: :class:`SweepReport` (per customer, per action) and
:data:`Log`, by default the shared telemetry logger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.telemetry import logger

__all__ = ["CustomerSweep", "Log", "SweepAction", "SweepReport", "telemetry_log"]

Log = Callable[[str, str, dict[str, Any]], None]
"""Where the sweeper says what it did: ``(level, message, fields)``; level ``info``, ``warning``,
``error`` or ``exception`` (inside an ``except`` block: the traceback too)."""


def telemetry_log(level: str, message: str, extra: dict[str, Any]) -> None:
    """The sweeper's lines on the shared telemetry logger (:mod:`runtime.telemetry.log`), the processor's
    and the coordinator's shape, marked ``component: sweeper``."""
    fields = {"component": "sweeper", **{k: v for k, v in extra.items() if v is not None}}
    write = {"info": logger.info, "warning": logger.warning, "error": logger.error, "exception": logger.exception}
    write.get(level, logger.error)(message, extra=fields)


@dataclass
class SweepAction:
    customer: str
    change_id: str
    key: str
    age_seconds: float
    action: str  # deleted | redriven | exhausted | waiting | in_progress | not_redrivable | error | replaced
    # | recreated
    detail: str = ""
    attempt: int | None = None


@dataclass
class CustomerSweep:
    customer: str
    triggers: int = 0
    orphaned: int = 0
    oldest_age_seconds: float = 0.0
    deleted: int = 0
    redriven: int = 0
    exhausted: int = 0
    recreated: int = 0
    errors: int = 0


@dataclass
class SweepReport:
    started_at: datetime
    threshold_seconds: int
    max_redrive_attempts: int
    customers: list[CustomerSweep] = field(default_factory=list)
    actions: list[SweepAction] = field(default_factory=list)
    unconfigured_triggers: dict[str, int] = field(default_factory=dict)
    archives_checked: int = 0
    """Archives read this pass to find missing triggers (modified within the window, past the grace)."""
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    """The pass was asked to stop (SIGTERM) and ended at a trigger boundary: what it did is in the
    report, the customers it did not reach are not (no metrics for them: missing data)."""

    @property
    def ok(self) -> bool:
        return not self.errors and not any(c.errors for c in self.customers)

    @property
    def failed(self) -> bool:
        """The pass could not start: the triggers could not be listed at all."""
        return bool(self.errors) and not self.customers

    @property
    def needs_attention(self) -> bool:
        """The pass completed, but some AWS call failed on the way."""
        return not self.ok
