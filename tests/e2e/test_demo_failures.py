"""`make demo` stops every process it started when something fails: an error inside the demo, and a reader
that goes away while an ops command writes to it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.e2e import demo_runs
from tests.e2e.demo_runs import (
    ROOT,
    alive,
    descendants,
    start_demo,
    tagged_processes,
)

pytestmark = pytest.mark.slow
sample_assembly = demo_runs.sample_assembly  # the session's sample assembly (a fixture)
assembly = demo_runs.assembly  # autouse: the demo reads that assembly (--skip-synth)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_reader_closing_while_an_ops_command_writes_leaves_no_process_behind() -> None:
    """The reader goes away once ``health``'s output has begun (its heading and first line read): the ops
    commands (the rest of ``health``, then ``verify``), then the demo, write to a closed pipe. Every child
    the demo started ends."""
    tag = uuid.uuid4().hex
    demo = start_demo(tag)
    children: set[int] = set()
    try:
        assert demo.stdout is not None
        lines = iter(demo.stdout.readline, b"")
        for line in lines:
            children |= descendants(demo.pid)
            if b"python -m runtime health" in line:
                break
        assert next(lines, b""), "the demo ended before health wrote"  # health's first line
        assert len(children) >= 3, children  # the coordinator and both workers were seen running
        demo.stdout.close()
        demo.wait(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode in (1, 141)
    assert alive(children) == set() and tagged_processes(tag) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_an_error_in_the_demo_stops_every_process_it_started(tmp_path: Path) -> None:
    """The submission fails after the workers and the coordinator started (an exception the demo does
    not expect): they are stopped on the way out and the error is reported."""
    (tmp_path / "sitecustomize.py").write_text(
        "import runtime.archive.submit as submit\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('injected submit failure')\n"
        "submit.submit_change = broken\n"
    )
    tag = uuid.uuid4().hex
    # only the demo loads the hook: it gives its children PYTHONPATH=ROOT
    demo = start_demo(tag, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    try:
        out, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 1 and b"injected submit failure" in err, err[-3000:]
    assert b"local AWS emulator on" in out
    assert b"bootstrap gate" not in out  # --no-bootstrap-gate (demo_runs.PROCESS_RUN): no stack was decided
    assert tagged_processes(tag) == []
