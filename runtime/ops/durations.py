"""Times as operators type them (``15m``, ``2h``, ISO 8601) and read them (``2h05m``): one parser and one
formatter, so every option and every message speaks the same units."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from runtime.archive import utcnow


def now() -> datetime:
    return utcnow()


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` → timedelta; anything else raises ValueError."""
    cleaned = (text or "").strip().lower().replace(" ", "")
    if not cleaned or _DURATION_PART.sub("", cleaned) != "":
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit s, m, h, d or w (e.g. 90s, 15m, 2h, 1h30m)"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(cleaned))
    return timedelta(seconds=seconds)


def parse_time(text: str, *, reference: datetime | None = None) -> datetime:
    """An ISO 8601 time (naive = UTC; a bare date = its midnight UTC) or a duration ago (``2h``)."""
    value = (text or "").strip()
    try:
        return (reference or now()) - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use ISO 8601 (2025-01-01T12:00:00Z, 2025-01-01) or a duration ago (30m, 2h, 1d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age_seconds(then: datetime, reference: datetime) -> float:
    return max(0.0, (reference - then).total_seconds())


def human_duration(seconds: float) -> str:
    """``90`` → ``90s``, ``900`` → ``15m``, ``7500`` → ``2h05m``, ``200000`` → ``2d``."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"
