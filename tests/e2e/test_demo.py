"""The README's first command: the local pipeline run must succeed and report what happened, and it
must stop every process it started however it ends."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.support import deployed as dp

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
sample_assembly = dp.sample_assembly  # synthesized once per session


ASSEMBLY: list[Path] = []  # the sample app as `make demo` synthesizes it (demo context, python app.py)


@pytest.fixture(scope="module", autouse=True)
def assembly(sample_assembly: Path) -> Path:
    """The session's sample assembly (tests/support/deployed.py: ``devtools.demo.synthesize`` with the demo's
    context, once for every xdist worker): the demo only reads it (``--skip-synth``)."""
    ASSEMBLY[:] = [sample_assembly]
    return sample_assembly


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


def test_demo_runs_the_sample_platform_end_to_end() -> None:
    result = subprocess.run(
        demo_command("--changes", "3"),
        cwd=ROOT,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    # every change processed by every customer it lists, folded into the archive by the coordinator
    assert "CHG-2026-0001 revision 1: processed by hts, htsnonprod (every listed customer)" in out, out
    assert "CHG-2026-0002 revision 1: processed by hts, htsnonprod (every listed customer)" in out, out
    assert "CHG-2026-0003 revision 1: processed by htsnonprod (every listed customer)" in out, out
    # the coordinator's folds: 5 results (2 + 2 + 1), never more writes than results, at least one per change
    [(results, writes)] = re.findall(r"(\d+) results folded in (\d+) archive writes", out)
    assert int(results) == 5 and 3 <= int(writes) <= 5, out
    assert "processor:hts" in out and "processor:htsnonprod" in out  # the folded entries name the processor
    # the change with a meeting got exactly one Graph meeting, created by the coordinator
    assert out.count("meeting_scheduled") == 1
    assert re.search(r"│ CHG-2026-0002 +│ \S+… +│ 0 +│ 1 +│", out), out  # the meeting table's one row
    assert "by coordinator" not in out and "│ coordinator " in out
    assert "triggers left under customers/" in out and "HEALTHY" in out and "COMPLETE" in out
    # issue 18: every request of the services was decided by the policy engine from the synthesized
    # policies, and none was denied (a denial also makes the demo exit 1)
    [(allowed, denied)] = re.findall(
        r"policy engine \(@cloud-copilot/iam-simulate\): (\d+) requests allowed, (\d+) denied", out
    )
    assert int(allowed) > 100 and int(denied) == 0, out
    assert "recorded and folded" in out  # verify reads both the processing objects and the archive
    assert "exit codes: {'hts': 0, 'htsnonprod': 0}" in out
    assert "coordinator stopped with SIGTERM, exit code: 0" in out
    assert "&lt;" not in out and "Rotate <KMS> keys" in out  # subjects are plain text, not HTML-escaped
    # issue 13: the SES event simulator published the mailbox simulator's outcomes, tagged with the change
    assert "SES events published for the emails sent" in out, out
    for row in (
        r"│ hts +│ bounce@simulator\.amazonses\.com +│ 2 +│ Send, Bounce \(Permanent/General\) +│",
        r"│ hts +│ complaint@simulator\.amazonses\.com +│ 2 +│ Send, Delivery, Complaint +│",
        r"│ htsnonprod +│ suppressionlist@simulator\.amazonses\.com +│ 3 +│ Send, Bounce \(Permanent/Suppressed\) +│",
        r"│ htsnonprod +│ ooto@simulator\.amazonses\.com +│ 3 +│ Send, Delivery +│",
    ):
        assert re.search(row, out), row
    assert re.search(r"2 Bounce/Permanent/General, 3 Bounce/Permanent/Suppressed, 2 Complaint", out), out
    # every event names its change in mail.tags: hts 5 emails (11 events), htsnonprod 4 (8 events)
    assert "events per change (from mail.tags): CHG-2026-0001 r1: 19, CHG-2026-0002 r1: 19, CHG-2026-0003 r1: 8" in out
    # the coordinator's delivery-event consumer records them; verify shows the bounce and the complaint
    assert "the coordinator consumed every delivery event" in out and "(none dead-lettered)" in out, out
    assert re.search(r"│ hts +│ 3 delivered, 1 bounced \(1 permanent, 0 transient\), 1 complained", out), out
    assert re.search(r"│ htsnonprod +│ 3 delivered, 1 bounced \(1 permanent, 0 transient\), 0 complained", out), out


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


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
@pytest.mark.parametrize("running", [2, 4], ids=["while-starting", "all-running"])
def test_ctrl_c_stops_every_process_the_demo_started(running: int) -> None:
    tag = uuid.uuid4().hex
    demo = subprocess.Popen(
        demo_command("--changes", "1"),
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
def test_demo_piped_into_head_leaves_no_process_behind() -> None:
    tag = uuid.uuid4().hex
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shlex.join(demo_command('--changes', '1'))} | head -n 2"],
        cwd=ROOT,
        env=demo_env(TTP_DEMO_TEST_TAG=tag, PYTHONUNBUFFERED="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(result.stdout.splitlines()) == 2
    # the demo's exit code (pipefail): rich exits 1 on a broken pipe, a bare write 141; never 0 nor 120
    assert result.returncode in (1, 141), result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr[-3000:]
    assert tagged_processes(tag) == []


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
        demo_command("--changes", "1"),
        cwd=ROOT,
        env=demo_env(TTP_DEMO_TEST_TAG=tag, PYTHONUNBUFFERED="1", **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_reader_closing_while_an_ops_command_writes_leaves_no_process_behind() -> None:
    """The reader goes away in the middle of ``health``'s output (line 120 of about 160): the ops command,
    then the demo, write to a closed pipe. Every child the demo started ends."""
    tag = uuid.uuid4().hex
    demo = start_demo(tag)
    children: set[int] = set()
    try:
        assert demo.stdout is not None
        for _ in range(120):
            if not demo.stdout.readline():
                break
            children |= descendants(demo.pid)
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
