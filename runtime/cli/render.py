"""How results look: rich tables for people on stdout, or one JSON document with ``--json``; progress
bars only on an interactive stderr, so stdout stays machine-readable in every case."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runtime.ops.durations import human_duration
from runtime.ops.progress import Tracker

T = TypeVar("T")

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def console() -> Console:
    """The terminal's width, or ``COLUMNS`` when set (a pipe that says how wide), else 160: tables wrap
    their columns to fit it, as the aws and cdk CLIs do (issue 22)."""
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None
    if width is None and not sys.stdout.isatty():
        width = 160
    return Console(width=width, highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes and enums to JSON-friendly values (``json.dumps(default=…)`` helper)."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and hasattr(value, "name") and not isinstance(value, (str, int, float)):
        return value.value
    return value


def table(title: str, columns: Iterable[str], **options: Any) -> Table:
    """A rich table titled ``title`` with these column headers (``options``: rich's own, e.g. ``show_lines``)."""
    made = Table(title=title, **options)
    for column in columns:
        made.add_column(column)
    return made


def untrusted(text: str) -> str:
    """Text someone else chose (an object key) made safe for a rich console: control and other
    non-printable characters (terminal escapes, bidi overrides) shown as Python escapes, rich markup
    shown as text. ``--json`` output carries the same text verbatim."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return escape(shown)


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False)


def emit(payload: Any) -> None:
    """The one JSON document of ``--json``."""
    typer.echo(dumps(payload))


def age(seconds: float | None) -> str:
    return "-" if seconds is None else human_duration(seconds)


def tracker() -> Tracker:
    """A progress bar on stderr while a procedure works through its items (none when not a terminal)."""
    stderr = stderr_console()

    def track(items: Iterable[T], total: int | None, description: str, /) -> Iterable[T]:
        if not stderr.is_terminal:
            return items
        from rich.progress import track as rich_track

        return rich_track(items, description=description, total=total, console=stderr, transient=True)

    return track


@contextlib.contextmanager
def progress_bar(description: str, *, total: int) -> Iterator[Callable[[], None] | None]:
    """A progress bar on stderr, advanced by calling what it yields (None when not a terminal)."""
    stderr = stderr_console()
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import Progress

    progress = Progress(console=stderr, transient=True)
    progress.start()
    task = progress.add_task(description, total=total)
    try:
        yield lambda: progress.advance(task)
    finally:
        progress.stop()
