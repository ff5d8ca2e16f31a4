"""Every failure ends the same way: one ``error: …`` line on stderr that says what to do, and the exit
code that classifies it. AWS errors get a hint per error code (``runtime.aws.describe_failure``, shared
with the image's commands); ``runtime.ops`` exceptions map by kind.

:class:`FailingCleanly` is the one place that applies this: the typer app's group class, so every
command, and every command added later, gets it without a decorator of its own."""

from __future__ import annotations

from typing import Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from runtime import aws
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_USAGE
from runtime.ops.errors import NothingToDo, OpsError, OpsUsageError


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def exit_code_of(exc: OpsError) -> int:
    if isinstance(exc, OpsUsageError):
        return EXIT_USAGE
    if isinstance(exc, NothingToDo):
        return EXIT_ATTENTION
    return EXIT_FAILED


class FailingCleanly(TyperGroup):
    """The app's group: an ``OpsError`` or an AWS failure (unreachable endpoint, timeout, no
    credentials, a missing bucket or queue, access denied) that escapes a command becomes one
    ``error:`` line and its exit code instead of a traceback. Anything else is a bug and keeps its
    traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpsError as exc:
            fail(str(exc), exit_code_of(exc))
        except Exception as exc:
            described = aws.describe_failure(exc)
            if described is None:
                raise
            fail(described)
