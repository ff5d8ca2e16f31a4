"""CloudWatch Logs retention: the one table of allowed periods and the platform default.

Pure at import (no ``aws_cdk``), so ``stacks.config`` validates ``log_retention_days`` with it;
:func:`retention` turns days into the ``aws_logs.RetentionDays`` member the constructs take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_cdk import aws_logs as logs

RETENTION_DAYS: Mapping[str, int] = {
    "ONE_DAY": 1,
    "THREE_DAYS": 3,
    "FIVE_DAYS": 5,
    "ONE_WEEK": 7,
    "TWO_WEEKS": 14,
    "ONE_MONTH": 30,
    "TWO_MONTHS": 60,
    "THREE_MONTHS": 90,
    "FOUR_MONTHS": 120,
    "FIVE_MONTHS": 150,
    "SIX_MONTHS": 180,
    "ONE_YEAR": 365,
    "THIRTEEN_MONTHS": 400,
    "EIGHTEEN_MONTHS": 545,
    "TWO_YEARS": 731,
    "THREE_YEARS": 1096,
    "FIVE_YEARS": 1827,
    "SIX_YEARS": 2192,
    "SEVEN_YEARS": 2557,
    "EIGHT_YEARS": 2922,
    "NINE_YEARS": 3288,
    "TEN_YEARS": 3653,
}
"""``aws_logs.RetentionDays`` member name -> days: every finite period CloudWatch Logs accepts."""

ALLOWED_DAYS: tuple[int, ...] = tuple(RETENTION_DAYS.values())
"""The retention periods (days) CloudWatch Logs accepts, ascending."""

DEFAULT_LOG_RETENTION_DAYS = 90
"""Retention of every log group of the platform unless configured (``ttp.log_retention_days``)."""


def retention(days: int) -> logs.RetentionDays:
    """The ``aws_logs.RetentionDays`` member of ``days``; ``ValueError`` if CloudWatch Logs does not offer it."""
    from aws_cdk import aws_logs as logs  # imported here: this module stays importable without aws_cdk

    for name, value in RETENTION_DAYS.items():
        if value == days:
            member: logs.RetentionDays = getattr(logs.RetentionDays, name)
            return member
    raise ValueError(f"unsupported log retention {days} days; CloudWatch Logs accepts only {list(ALLOWED_DAYS)}")
