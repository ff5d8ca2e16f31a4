"""The README's first command: the local pipeline run must succeed and report what happened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_the_sample_platform_end_to_end() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--skip-synth", "--changes", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "meeting_scheduled" in out  # the change with a meeting got exactly its Graph meeting
    assert "triggers left under customers/" in out and "HEALTHY" in out and "COMPLETE" in out
    assert "exit codes: {'hts': 0, 'htsnonprod': 0}" in out
    assert "&lt;" not in out and "Rotate <KMS> keys" in out  # subjects are plain text, not HTML-escaped
