"""The typer application every command module registers on (``runtime.cli`` does the registering, in
the order ``--help`` lists them), the console-script entry point, and how every command fails.

Every failure ends the same way: one ``error: …`` line on stderr that says what to do, and the exit
code that classifies it. AWS errors get a hint per error code (``runtime.aws.describe_failure``, shared
with the image's commands); ``runtime.ops`` exceptions map by kind. :class:`FailingCleanly`, the app's
group class, is the one place that applies this, so every command, and every command added later, gets
it without a decorator of its own. (Here and not in ``runtime.cli.errors``, which re-exports it: this
module imports no other module of the CLI.)"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from runtime import aws
from runtime.contract.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_USAGE
from runtime.ops.errors import NothingToDo, OpsError, OpsUsageError
from runtime.telemetry import drop_metrics, logs_to_stderr, metrics_to_stderr, restore_log_stream


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

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except OpsError as exc:
            fail(str(exc), exit_code_of(exc))
        except Exception as exc:
            described = aws.describe_failure(exc)
            if described is None:
                raise
            fail(described)


HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
"""``-h`` as well as ``--help``; every subcommand's context inherits it from the app's."""

app = typer.Typer(
    cls=FailingCleanly,
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    help="Transient Trigger Pipeline runtime and operations.",
)


def package_version() -> str:
    """The installed package's version; from a checkout that is not installed, its pyproject.toml's."""
    from importlib import metadata

    try:
        return metadata.version("transient-trigger-pipeline")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown (not installed, no pyproject.toml)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ttp {package_version()}")
        raise typer.Exit()


QUIET_COMMANDS = frozenset({"submit", "process"})
"""Commands a person runs to see a result: their EMF metric lines are printed only with ``--debug``."""

SERVICE_COMMANDS = frozenset({"worker", "coordinator"})
"""Long-running services: in ECS their stdout is CloudWatch Logs, where EMF lines become metrics."""


@app.callback()
def _streams(
    context: typer.Context,
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Also print submit's and process's EMF metric lines (on stderr)."
    ),
) -> None:
    # One-shot commands print their output alone on stdout (one JSON document with --json): their
    # EMF metric lines and log lines go to stderr, which CloudWatch Logs receives as well.
    if context.invoked_subcommand in SERVICE_COMMANDS:
        return
    metrics_to_stderr(True)
    drop_metrics(context.invoked_subcommand in QUIET_COMMANDS and not debug)
    previous = logs_to_stderr()

    def restore() -> None:
        metrics_to_stderr(False)
        drop_metrics(False)
        restore_log_stream(previous)

    context.call_on_close(restore)


def main() -> None:
    app()
