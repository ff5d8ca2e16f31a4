"""The three commands the image runs — ``worker``, ``coordinator``, ``sweep`` — without the ops CLI.

Why a module of its own: the image installs ``runtime/requirements.txt``, which holds neither typer nor
rich (nor pygments): about 15 MB of site-packages that only the ops CLI needs. ``python -m runtime``
(``runtime/__main__.py``) starts these three commands here and gives every other command, and every
other argument, to the CLI (``runtime.cli``, the ``ops`` extra). The CLI's commands of the same names
call these functions, so a service behaves the same whichever way it was started.

A bad setting ends as in the CLI: one ``error: …`` line on stderr naming the variable, exit 2. The
sweeper prints its report as one JSON document (``ttp sweep`` draws the same report as a table).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runtime.contract.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from runtime.contract.settings import ConfigurationError, CoordinatorSettings, OpsSettings, WorkerSettings, load

if TYPE_CHECKING:
    from runtime.ops.sweep import SweepReport

SERVICE_COMMANDS: frozenset[tuple[str, ...]] = frozenset(
    {("worker",), ("coordinator",), ("sweep",), ("sweep", "--json")}
)
"""The exact command lines the image's tasks run (``cdk_constructs``); anything else goes to the CLI."""


def is_service_command(argv: Sequence[str]) -> bool:
    return tuple(argv) in SERVICE_COMMANDS


def run(argv: Sequence[str]) -> int:
    """Run one service command line (:data:`SERVICE_COMMANDS`) and return its exit code."""
    if not is_service_command(argv):
        raise ValueError(f"{' '.join(argv)!r} is not a service command: run it with the ops CLI (ttp)")
    try:
        if argv[0] == "worker":
            worker()
        elif argv[0] == "coordinator":
            coordinator()
        else:
            return sweep()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def worker() -> None:
    """Long-poll this customer's queue and process triggers until SIGTERM. Raises ``ConfigurationError``."""
    from runtime.pipeline.composition import build_worker
    from runtime.telemetry.log import logger

    settings = load(WorkerSettings)
    logger.append_keys(customer_code=settings.customer_code)
    built = build_worker(settings)  # validates the meeting settings too
    built.install_signal_handlers()
    built.run()


def coordinator() -> None:
    """Run the change coordinator until SIGTERM. Raises ``ConfigurationError``."""
    from runtime.coordinator.composition import build_coordinator
    from runtime.telemetry.log import logger

    settings = load(CoordinatorSettings)
    logger.append_keys(service="coordinator")
    built = build_coordinator(settings)  # validates the meeting settings too
    built.install_signal_handlers()
    built.run()


def sweep() -> int:
    """One sweeper pass: the report as one JSON document on stdout, EMF metrics and logs on stderr.

    Raises ``ConfigurationError``; returns :func:`sweep_exit_code`."""
    from runtime.ops.sweep import run_sweep

    report = run_sweep(load(OpsSettings), metrics_stream=sys.stderr)
    print(json.dumps(sweep_document(report), indent=2))
    return sweep_exit_code(report)


def sweep_document(report: SweepReport) -> dict[str, Any]:
    """The sweep report as JSON-ready data (``sweep --json`` of the CLI prints the same)."""
    return json.loads(json.dumps({"ok": report.ok, **asdict(report)}, default=_iso_datetime))  # type: ignore[no-any-return]


def sweep_exit_code(report: SweepReport) -> int:
    """0 when the pass completed, 1 when some AWS call failed on the way, 3 when the triggers could not
    be listed at all."""
    if report.failed:
        return EXIT_FAILED
    return EXIT_ATTENTION if report.needs_attention else EXIT_OK


def _iso_datetime(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
