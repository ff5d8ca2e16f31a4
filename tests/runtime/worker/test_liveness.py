"""The liveness record and its check (what ``python -m runtime healthcheck`` answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import services
from runtime.contract import names
from runtime.contract.exit_codes import EXIT_ATTENTION, EXIT_OK
from runtime.worker import check_liveness, stale_after_seconds, write_liveness

ROOT = Path(__file__).resolve().parents[3]


def test_a_fresh_record_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "live.json"
    write_liveness(path, 80, now=1000.0)
    result = check_liveness(path, now=1079.0)
    assert result.healthy and "alive" in result.reason


def test_a_record_older_than_its_limit_is_stuck(tmp_path: Path) -> None:
    path = tmp_path / "live.json"
    write_liveness(path, 80, now=1000.0)
    result = check_liveness(path, now=1081.0)
    assert not result.healthy
    assert result.reason == "receive loop stuck: last iteration 81s ago (limit 80s)"


def test_a_missing_record_is_unhealthy(tmp_path: Path) -> None:
    result = check_liveness(tmp_path / "absent.json")
    assert not result.healthy and "has not started" in result.reason


@pytest.mark.parametrize("content", ["", "{not json", '{"at": 1}', '["at"]'])
def test_an_unreadable_record_is_unhealthy(tmp_path: Path, content: str) -> None:
    path = tmp_path / "live.json"
    path.write_text(content)
    result = check_liveness(path, now=1.0)
    assert not result.healthy and "unreadable" in result.reason


def test_the_record_is_replaced_whole_and_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "live.json"
    write_liveness(path, 5)
    write_liveness(path, 7)
    assert json.loads(path.read_text())["stale_after"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.json"]


def test_the_limit_is_one_long_poll_plus_the_margin() -> None:
    assert stale_after_seconds(20, 60) == 80


def test_the_healthcheck_command_exits_0_when_fresh_and_1_with_one_line_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "live.json"
    monkeypatch.setattr(names, "LIVENESS_FILE", str(path))
    assert services.run(["healthcheck"]) == EXIT_ATTENTION
    assert capsys.readouterr().err.count("\n") == 1
    write_liveness(path, 80)
    assert services.run(["healthcheck"]) == EXIT_OK
    write_liveness(path, 80, now=0.0)
    assert services.run(["healthcheck"]) == EXIT_ATTENTION
    err = capsys.readouterr().err
    assert err.startswith("receive loop stuck") and err.count("\n") == 1


def test_python_m_runtime_healthcheck_imports_neither_pydantic_nor_boto3() -> None:
    """The health check runs every 30 s in every task with a 5 s timeout: the standard library only."""
    probe = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print(sorted({'pydantic', 'boto3', 'botocore'} & set(sys.modules))))\n"
        "sys.argv = ['runtime', 'healthcheck']\n"
        "runpy.run_module('runtime', run_name='__main__', alter_sys=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode in (EXIT_OK, EXIT_ATTENTION), done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
