"""The README's first command: the local pipeline run must succeed and report what happened; piped into
a reader that stops early it leaves no process behind."""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e import demo_runs
from tests.e2e.demo_runs import (
    PROCESS_RUN,
    ROOT,
    demo_command,
    demo_env,
    tagged_processes,
)

pytestmark = pytest.mark.slow
sample_assembly = demo_runs.sample_assembly  # the session's sample assembly (a fixture)
assembly = demo_runs.assembly  # autouse: the demo reads that assembly (--skip-synth)


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
    # the processors protected their tasks through ECS_AGENT_URI, each call decided as their task role
    one_line = re.sub(r"\s+", " ", out)  # the console wraps at 120 columns
    [protection] = re.findall(r"(\d+) of them the ECS agent's task-protection calls as a task role", one_line)
    assert int(protection) >= 4, out  # hts and htsnonprod: at least one protect and one release each
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


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_demo_piped_into_head_leaves_no_process_behind() -> None:
    tag = uuid.uuid4().hex
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shlex.join(demo_command(*PROCESS_RUN))} | head -n 2"],
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
