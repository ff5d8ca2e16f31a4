"""The demo's subprocesses (:mod:`devtools.demo`): each service as ``python -m runtime ...`` with its log,
stopped with SIGTERM (the drain) and SIGKILL after a timeout, and the registry that stops every one of them
however the demo ends (Ctrl-C and SIGTERM are held while a child is being registered).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devtools.processes import terminate_with

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """``python -m runtime worker`` of one customer (or, with ``command="coordinator"``, the coordinator)."""

    def __init__(
        self, code: str, env: dict[str, str], logdir: Path, command: str = "worker", argv: list[str] | None = None
    ) -> None:
        self.code = code
        self.log_path = logdir / f"{command}-{code}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "runtime", command],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them with SIGTERM (drain)
            preexec_fn=terminate_with(os.getpid()),
        )

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait for the drain; SIGKILL if it does not end within ``timeout``. Idempotent."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        finally:
            self._log.close()

    def handled(self) -> list[dict[str, Any]]:
        return self.logged("message handled")

    def logged(self, message: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("message") == message:
                lines.append(entry)
        return lines


class Processes:
    """Every subprocess the demo started; :meth:`stop_all` stops those still running, however the demo ends.

    Used as a context manager: on the way out (normal end, an exception, Ctrl-C, SIGTERM, a closed stdout)
    each process still running gets SIGTERM, and SIGKILL if it has not ended ``timeout`` seconds later.
    """

    def __init__(self) -> None:
        self.started: list[Worker] = []

    def start(
        self, code: str, env: dict[str, str], logdir: Path, command: str = "worker", argv: list[str] | None = None
    ) -> Worker:
        # A Ctrl-C (or SIGTERM) that lands inside Popen would leave a started child unregistered, hence
        # orphaned: it is held until the child is registered, then raised.
        with interrupts_deferred():
            worker = Worker(code, env, logdir, command, argv)
            self.started.append(worker)
        return worker

    def stop_all(self, timeout: float = 15) -> None:
        running = [w for w in self.started if w.proc.poll() is None]
        for worker in running:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.started:
            worker.stop(timeout)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        # a second Ctrl-C (or a SIGTERM) while the processes drain must not leave them behind
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_deferring = False
_pending: list[int] = []


def interrupted(signum: int, _frame: object) -> None:
    if _deferring:
        _pending.append(signum)
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM (with :func:`interrupted` installed) are held; raised after it.

    Only in the main thread, where the handlers run: the scheduler's thread (the sweeper's runs) must not
    take over an interrupt meant for the main thread (it would end that thread, and the demo would go on).
    The scheduler is stopped before the processes are (see :func:`run`)."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _pending:
        raise KeyboardInterrupt(signal.Signals(_pending.pop()).name)
