"""The image's service commands run without the ops CLI's packages, which the image does not install.

Each process below starts ``python -m runtime COMMAND`` with typer, rich and pygments made unimportable,
as in the image (runtime/requirements.txt), after importing everything the three services import
while they run; a bad setting must still end as one ``error:`` line naming it, exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import services

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_OPS_CLI = """
import importlib.abc, runpy, sys

BLOCKED = {"typer", "rich", "pygments", "markdown_it", "shellingham"}

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None

sys.meta_path.insert(0, NotInTheImage())
import runtime.coordinator.composition, runtime.pipeline, runtime.sweeper, runtime.services
assert not BLOCKED & set(sys.modules), sorted(BLOCKED & set(sys.modules))
sys.argv = ["runtime", *sys.argv[1:]]
runpy.run_module("runtime", run_name="__main__", alter_sys=True)
"""

SERVICE_CASES = [
    (["worker"], "TTP_MAX_CONCURRENCY", "many"),
    (["coordinator"], "TTP_FOLD_LINGER_SECONDS", "soon"),
    (["sweep"], "TTP_CUSTOMER_QUEUES", "hts=https://sqs/queue"),
    (["sweep", "--json"], "TTP_LOG_LEVEL", "loud"),
]


@pytest.mark.parametrize(
    ("argv", "variable", "value"), SERVICE_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_service_commands_start_without_typer_or_rich(argv: list[str], variable: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTP_")}
    env.update({variable: value, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"})
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPS_CLI, *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stderr.startswith("error: ") and variable in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-2000:]


def test_other_command_lines_go_to_the_cli() -> None:
    assert services.is_service_command(["worker"]) and services.is_service_command(["sweep", "--json"])
    for argv in (["worker", "--help"], ["health"], ["sweep", "--verbose"], [], ["dlq", "list"]):
        assert not services.is_service_command(argv), argv
    with pytest.raises(ValueError, match="not a service command"):
        services.run(["health"])
