"""A process that hosts the emulator parses botocore's data files once for all its sessions
(``devtools/botocore_data.py``). In a fresh interpreter: this test process shares them already
(``tests/conftest.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import botocore.session
from devtools.emulator import LocalAws

LocalAws()  # constructed, not started: what every emulator host does first
first, second = (botocore.session.Session().get_component("data_loader") for _ in range(2))
assert first is not second
same = first.load_data("endpoints") is second.load_data("endpoints")
same_model = first.load_service_model("sqs", "service-2") is second.load_service_model("sqs", "service-2")
print(same, same_model)
"""


def test_an_emulator_host_parses_each_botocore_file_once_for_every_session() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "True"]
