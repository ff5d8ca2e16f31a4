"""The commands the image runs — ``worker``, ``coordinator``, ``sweep`` and the container health check
``healthcheck`` — without the ops CLI.

Why a module of its own: the image installs ``runtime/requirements.txt``, which holds neither typer nor
rich (nor pygments): about 15 MB of site-packages that only the ops CLI needs. ``python -m runtime``
(``runtime/__main__.py``) starts these three commands here and gives every other command, and every
other argument, to the CLI (``runtime.cli``, the ``ops`` extra). The CLI's commands of the same names
call these functions, so a service behaves the same whichever way it was started.

``healthcheck`` (the task definition's container health check of the worker and the coordinator) reads
the receive loop's liveness record (:mod:`runtime.worker.liveness`) with the standard library only:
exit 0 when the loop iterated recently, 1 otherwise, one line saying why. Nothing else is imported
for it (not even pydantic), so it answers well within the health check's timeout.

``sweep`` stops at the next trigger boundary on SIGTERM (ECS stopping the task) or SIGINT: it still
prints its report (``"interrupted": true``) and exits :data:`~runtime.contract.exit_codes.EXIT_INTERRUPTED`
(130), within seconds rather than being killed at the stop timeout.

A bad setting ends as in the CLI: one ``error: …`` line on stderr naming the variable, exit 2. An AWS
call that fails outright (endpoint unreachable, no credentials, no such bucket) ends with one
``error: …`` line naming what failed and what to check, exit 3, as in the CLI. The sweeper prints its
report as one JSON document (``ttp sweep`` draws the same report as a table); a pass that cannot list
the triggers also prints that report, then its one ``error:`` line.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runtime.contract.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from runtime.sweeper import SweepReport

SERVICE_COMMANDS: frozenset[tuple[str, ...]] = frozenset(
    {("worker",), ("coordinator",), ("sweep",), ("sweep", "--json"), ("healthcheck",)}
)
"""The exact command lines the image's tasks run (``cdk_constructs``); anything else goes to the CLI."""


def is_service_command(argv: Sequence[str], *, terminal: bool = False) -> bool:
    """Whether ``argv`` is one of :data:`SERVICE_COMMANDS`. ``terminal``: stdout is a terminal, so a
    person reads it: a bare ``sweep`` is then the CLI's, which draws a table (the sweeper's task, whose
    stdout is CloudWatch Logs, still gets the JSON report)."""
    if terminal and tuple(argv) == ("sweep",):
        return False
    return tuple(argv) in SERVICE_COMMANDS


def run(argv: Sequence[str]) -> int:
    """Run one service command line (:data:`SERVICE_COMMANDS`) and return its exit code."""
    if not is_service_command(argv):
        raise ValueError(f"{' '.join(argv)!r} is not a service command: run it with the ops CLI (ttp)")
    if argv[0] == "healthcheck":
        return healthcheck()
    from runtime.contract.settings import ConfigurationError  # pydantic: not for the health check

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
    except Exception as exc:
        from runtime.aws import describe_failure

        described = describe_failure(exc)  # an AWS call failed outright: one line, not a traceback
        if described is None:
            raise
        print(f"error: {described}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def healthcheck() -> int:
    """The container health check: 0 when the receive loop's liveness record is fresh, else 1."""
    from pathlib import Path

    from runtime.contract.names import LIVENESS_FILE
    from runtime.worker import check_liveness

    liveness = check_liveness(Path(LIVENESS_FILE))
    print(liveness.reason, file=sys.stdout if liveness.healthy else sys.stderr)
    return EXIT_OK if liveness.healthy else EXIT_ATTENTION


def worker() -> None:
    """Long-poll this customer's queue and process triggers until SIGTERM. Raises ``ConfigurationError``."""
    from runtime.contract.settings import WorkerSettings, load
    from runtime.pipeline import build_worker
    from runtime.telemetry import logger

    settings = load(WorkerSettings)
    logger.append_keys(customer_code=settings.customer_code)
    built = build_worker(settings)  # validates the meeting settings too
    built.install_signal_handlers()
    built.run()


def coordinator() -> None:
    """Run the change coordinator until SIGTERM. Raises ``ConfigurationError``."""
    from runtime.contract.settings import CoordinatorSettings, load
    from runtime.coordinator import build_coordinator
    from runtime.telemetry import logger

    settings = load(CoordinatorSettings)
    logger.append_keys(service="coordinator")
    built = build_coordinator(settings)  # validates the meeting settings too
    built.install_signal_handlers()
    built.run()


def sweep() -> int:
    """One sweeper pass: the report as one JSON document on stdout, EMF metrics and logs on stderr.

    SIGTERM or SIGINT ends the pass at the next trigger boundary (see the module docstring). Raises
    ``ConfigurationError``; returns :func:`sweep_exit_code`."""
    from runtime.contract.settings import OpsSettings, load
    from runtime.sweeper import run_sweep
    from runtime.telemetry import logs_to_stderr

    settings = load(OpsSettings)
    logs_to_stderr()  # stdout holds the report only
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()  # the pass sees it before its next trigger; nothing else is safe in a handler

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = run_sweep(settings, metrics_stream=sys.stderr, stop_requested=stop.is_set)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(json.dumps(sweep_document(report), indent=2))
    if report.failed:
        print(f"error: {report.errors[0]}", file=sys.stderr)
    return sweep_exit_code(report)


def sweep_document(report: SweepReport) -> dict[str, Any]:
    """The sweep report as JSON-ready data (``sweep --json`` of the CLI prints the same)."""
    return json.loads(json.dumps({"ok": report.ok, **asdict(report)}, default=_iso_datetime))  # type: ignore[no-any-return]


def sweep_exit_code(report: SweepReport) -> int:
    """0 when the pass completed, 1 when some AWS call failed on the way, 3 when the triggers could not
    be listed at all, 130 when a signal ended the pass early (what it did is kept and reported)."""
    if report.failed:
        return EXIT_FAILED
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ATTENTION if report.needs_attention else EXIT_OK


def _iso_datetime(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
