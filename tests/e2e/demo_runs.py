"""What the tests of `make demo` (tests/e2e/test_demo*.py) share: the session's sample assembly, the
demo's command and environment, and finding the processes a demo started (by tag, through /proc).

Apart from the tests so that the demo's slow process tests sit in several modules, which xdist runs on
different workers (``--dist loadscope``), instead of one module holding ~4 minutes of them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import deployed as dp

ROOT = Path(__file__).resolve().parents[2]
sample_assembly = dp.sample_assembly  # synthesized once per session


ASSEMBLY: list[Path] = []  # the sample app as `make demo` synthesizes it (demo context, python app.py)


@pytest.fixture(scope="module", autouse=True)
def assembly(sample_assembly: Path) -> Path:
    """The session's sample assembly (tests/support/deployed.py: ``devtools.demo.synthesize`` with the demo's
    context, once for every xdist worker): the demo only reads it (``--skip-synth``)."""
    ASSEMBLY[:] = [sample_assembly]
    return sample_assembly


PROCESS_RUN = ("--changes", "1", "--no-bootstrap-gate")
"""How the tests of the demo's process handling (a signal, a closed reader, an error) run it: one change and
no bootstrap gate, which decides the stacks before they are created and starts no process of its own (its
engine is the enforcement's, started either way). test_demo's full run keeps the gate, as `make demo` runs
it; a denied stack is tested in tests/test_local_deploy.py. ~3.5 CPU s less per run (the gate's thousands
of decisions)."""


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "devtools.demo", "--skip-synth", "--assembly", str(ASSEMBLY[0]), *args]


def demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTP_", "AWS_"))}
    if "TTP_DEMO_TEST_TAG" in extra:
        # The services get their task definitions' environment only, not the tag: they are found by their
        # output, which goes to the demo's log directory under this TMPDIR (see tagged_processes).
        logs = Path(tempfile.gettempdir()) / f"ttp-demo-test-{extra['TTP_DEMO_TEST_TAG']}"
        logs.mkdir(exist_ok=True)
        env["TMPDIR"] = str(logs)
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


def tagged_processes(tag: str) -> list[int]:
    """The processes whose environment carries ``tag`` (the demo, and the ops commands it gives its own
    environment), and those writing into the log directory of a demo started with that tag (the services,
    which get their task definitions' environment: :func:`demo_env`)."""
    needle = f"TTP_DEMO_TEST_TAG={tag}".encode()
    logs = str(Path(tempfile.gettempdir()) / f"ttp-demo-test-{tag}") + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            output = os.readlink(entry / "fd" / "1")
        except OSError:
            continue
        if needle in environ.split(b"\0") or output.startswith(logs):
            found.append(int(entry.name))
    return found


def wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def descendants(root: int) -> set[int]:
    """The processes below ``root`` now (by the parent pid in ``/proc/{pid}/stat``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def start_demo(tag: str, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        demo_command(*PROCESS_RUN),
        cwd=ROOT,
        env=demo_env(TTP_DEMO_TEST_TAG=tag, PYTHONUNBUFFERED="1", **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
