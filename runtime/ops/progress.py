"""Long procedures report progress through a callable they are given, so they can show a progress bar
in a terminal without depending on ``rich`` (the CLI passes one; tests and the sweeper pass none)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Tracker(Protocol):
    """Wraps an iterable of work items; yields the same items, showing progress as they are consumed."""

    def __call__(self, items: Iterable[T], total: int | None, description: str, /) -> Iterable[T]: ...


def no_track(items: Iterable[T], total: int | None = None, description: str = "", /) -> Iterable[T]:
    return items
