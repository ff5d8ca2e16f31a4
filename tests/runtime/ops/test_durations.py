"""Durations and times as operators type them: parse_duration and parse_time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtime.ops.durations import parse_duration, parse_time

MIN20 = 20 * 60


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (" 15M ", 900)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "15x", "m", "-5m", "15 minutes", "1h-3m"])
def test_parse_duration_rejects_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"use a number with a unit .*e\.g\. 90s, 15m"):
        parse_duration(text)


def test_parse_time_iso_date_and_relative() -> None:
    ref = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert parse_time("2025-01-01T10:00:00Z") == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
    assert parse_time("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_time("2025-01-01T10:00:00+02:00") == datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    assert parse_time("2h", reference=ref) == datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")
