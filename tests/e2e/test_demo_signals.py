"""`make demo` stops every process it started when an operator stops it: Ctrl-C while starting or running,
and a SIGKILL of the demo itself."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e import demo_runs
from tests.e2e.demo_runs import (
    PROCESS_RUN,
    ROOT,
    alive,
    demo_command,
    demo_env,
    descendants,
    start_demo,
    tagged_processes,
    wait_for,
)

pytestmark = pytest.mark.slow
sample_assembly = demo_runs.sample_assembly  # the session's sample assembly (a fixture)
assembly = demo_runs.assembly  # autouse: the demo reads that assembly (--skip-synth)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
@pytest.mark.parametrize("running", [2, 4], ids=["while-starting", "all-running"])
def test_ctrl_c_stops_every_process_the_demo_started(running: int) -> None:
    tag = uuid.uuid4().hex
    demo = subprocess.Popen(
        demo_command(*PROCESS_RUN),
        cwd=ROOT,
        env=demo_env(TTP_DEMO_TEST_TAG=tag),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # the demo and its first child (Ctrl-C lands while it starts the others), or all of them:
        # the coordinator and both workers
        assert wait_for(lambda: len(tagged_processes(tag)) >= running, 60), tagged_processes(tag)
        demo.send_signal(signal.SIGINT)
        out = demo.communicate(timeout=60)[0].decode()
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, out[-3000:]
    assert "interrupted; every process the demo started was stopped" in out
    assert tagged_processes(tag) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_children_end_when_the_demo_is_killed_outright() -> None:
    """SIGKILL (or the OOM killer) gives the demo no chance to clean up: its children are told by the
    kernel (parent-death signal SIGTERM) and drain and exit on their own instead of retrying a dead
    emulator forever."""
    tag = uuid.uuid4().hex
    demo = start_demo(tag)
    try:
        assert wait_for(lambda: len(tagged_processes(tag)) >= 4, 60), tagged_processes(tag)
        children = descendants(demo.pid)
        demo.kill()
        demo.wait(timeout=10)
    finally:
        if demo.poll() is None:
            demo.kill()
    ended = wait_for(lambda: not alive(children) and tagged_processes(tag) == [], 45)
    survivors = alive(children) | set(tagged_processes(tag))
    for pid in survivors:  # do not leave them running after a failure
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert ended, survivors
