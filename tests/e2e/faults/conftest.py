"""Fixtures of the fault-injection tests; the helpers are in ``tests.support.fault_injection``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.emulator import FAKE_CREDENTIALS
from tests.support.fault_injection import WorkerProcess


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def reaper() -> Iterator[list[WorkerProcess]]:
    """Workers a test started; any still running at the end are killed (by their own pid)."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)


@pytest.fixture
def say(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a figure of the run even while pytest captures output (the issue asks for them printed)."""

    def emit(text: str) -> None:
        with capsys.disabled():
            print(f"\n  {text}", flush=True)

    return emit
