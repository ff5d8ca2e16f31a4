"""The typer application every command module registers on (``runtime.cli`` does the registering, in
the order ``--help`` lists them), and the console-script entry point."""

from __future__ import annotations

import typer

from runtime.cli.errors import FailingCleanly
from runtime.telemetry.log import logs_to_stderr, restore_log_stream
from runtime.telemetry.metrics import metrics_to_stderr

app = typer.Typer(
    cls=FailingCleanly,
    no_args_is_help=True,
    add_completion=False,
    help="Transient Trigger Pipeline runtime and operations.",
)

SERVICE_COMMANDS = frozenset({"worker", "coordinator"})
"""Long-running services: in ECS their stdout is CloudWatch Logs, where EMF lines become metrics."""


@app.callback()
def _streams(context: typer.Context) -> None:
    # One-shot commands print their output alone on stdout (one JSON document with --json): their
    # EMF metric lines and log lines go to stderr, which CloudWatch Logs receives as well.
    if context.invoked_subcommand in SERVICE_COMMANDS:
        return
    metrics_to_stderr(True)
    previous = logs_to_stderr()

    def restore() -> None:
        metrics_to_stderr(False)
        restore_log_stream(previous)

    context.call_on_close(restore)


def main() -> None:
    app()
