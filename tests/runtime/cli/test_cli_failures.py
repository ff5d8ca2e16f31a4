"""Issue 17: every command that talks to AWS fails the same way when AWS is not there.

An unreachable endpoint, or a bucket that does not exist, ends every command with exactly one
``error: …`` line on stderr naming what failed and what to check, exit 3, and nothing written (before:
`submit` printed a 384-line traceback and exited 1, `sweep` 112 lines). The commands are enumerated
from the typer app, so a new command is covered without touching this file.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from typer.testing import CliRunner

from runtime import aws
from runtime.cli import app
from runtime.contract.exit_codes import EXIT_FAILED
from tests.support.aws_platform import Platform
from tests.support.cli_commands import leaf_commands as all_commands
from tests.support.ops_platform import ops_env

SERVICES = {"worker", "coordinator"}
"""Long-running services: they outlive an outage by design (their receive loop retries), so they are not here."""
NO_AWS = {"dashboard-json"}
"""Prints a dashboard body; calls AWS only with ``--all`` and no ``--customers``."""
DOES_NOT_READ_THE_BUCKET = {"dlq list", "dlq redrive", "restart", "logs"}
"""Commands that a missing bucket cannot fail (they read queues, ECS or CloudWatch Logs only)."""


def leaf_commands() -> list[tuple[list[str], Any]]:
    return [(path, command) for path, command in all_commands() if " ".join(path) not in SERVICES | NO_AWS]


def command_line(path: list[str], command: Any, document: Path) -> list[str]:
    values = {"customer": "hts", "change_id": "CHG-1", "document": str(document)}
    args = list(path)
    for param in command.params:
        if param.name == "yes":
            args.append(param.opts[0])
        elif param.required:
            assert param.name in values, f"{' '.join(path)}: give a value for its required {param.name!r} here"
            value = values[param.name]
            args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    if path == ["restore"]:
        args.append("--list")
    return args


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SENDER_ENV = {
    "TTP_CUSTOMER_CODE": "hts",
    "TTP_SENDER_ROLE_ARN": "arn:aws:iam::333333333333:role/ttp-ses-sender-hts",
    "TTP_SENDER_EXTERNAL_ID": "ext-123",
    "TTP_FROM_ADDRESS": "changes@hts.example.com",
}


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard retry mode as deployed, with 2 attempts and a 1 s connect timeout so the walk stays short."""
    real = aws.client_config

    def short(max_pool_connections: int = 10, max_attempts: int = 5) -> Config:
        return real(max_pool_connections, 2).merge(Config(connect_timeout=1, read_timeout=2))

    monkeypatch.setattr(aws, "client_config", short)


def check(results: dict[str, Any], must_name: tuple[str, ...]) -> list[str]:
    failures = []
    for line, result in results.items():
        lines = result.stderr.splitlines()
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            failures.append(f"{line}: raised {type(result.exception).__name__}: {result.exception}")
        elif result.exit_code != EXIT_FAILED:
            failures.append(f"{line}: exit {result.exit_code}, not 3\n{result.stderr[-2000:]}")
        elif len(lines) != 1 or not lines[0].startswith("error: "):
            failures.append(f"{line}: {len(lines)} stderr lines, not one 'error:' line\n{result.stderr[-2000:]}")
        elif not all(word in lines[0] for word in must_name):
            failures.append(f"{line}: the error line does not name {must_name}: {lines[0]}")
    return failures


def test_every_command_against_an_unreachable_endpoint_fails_with_one_line_and_exit_3(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, quick_retries: None
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    env = {
        "TTP_BUCKET_NAME": "ttp-metadata-local",
        "TTP_CUSTOMER_QUEUES": json.dumps({"hts": f"{endpoint}/123456789012/customer-hts-changes"}),
        **SENDER_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    document = tmp_path / "change.json"
    document.write_text(json.dumps({"change_id": "CHG-1", "title": "T", "customers": ["hts"]}))
    results = {}
    for path, command in leaf_commands():
        args = command_line(path, command, document)
        results[" ".join(args)] = CliRunner().invoke(app, args)
    failures = check(results, ("AWS_ENDPOINT_URL",))
    assert not failures, "\n\n".join(failures)
    assert len(results) >= 12


def test_every_command_against_a_missing_bucket_fails_with_one_line_and_exit_3(
    light: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    before = {o["Key"]: o["ETag"] for o in platform.s3.list_objects_v2(Bucket=platform.bucket).get("Contents", [])}
    for name, value in ops_env(platform, TTP_BUCKET_NAME="no-such-bucket-here", **SENDER_ENV).items():
        monkeypatch.setenv(name, value)
    document = tmp_path / "change.json"
    document.write_text(json.dumps({"change_id": "CHG-2", "title": "T", "customers": ["hts"]}))
    results = {}
    for path, command in leaf_commands():
        if " ".join(path) in DOES_NOT_READ_THE_BUCKET:
            continue
        args = command_line(path, command, document)
        results[" ".join(args)] = CliRunner().invoke(app, args)
    failures = check(results, ("no-such-bucket-here", "TTP_BUCKET_NAME"))
    assert not failures, "\n\n".join(failures)
    after = {o["Key"]: o["ETag"] for o in platform.s3.list_objects_v2(Bucket=platform.bucket).get("Contents", [])}
    assert after == before
    assert [b["Name"] for b in platform.s3.list_buckets()["Buckets"]] == [platform.bucket]


@pytest.fixture
def unreachable_env(aws_credentials: None) -> Iterator[dict[str, str]]:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    yield {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TTP_BUCKET_NAME": "ttp-metadata-local",
        "TTP_CUSTOMER_QUEUES": json.dumps({"hts": f"{endpoint}/123456789012/customer-hts-changes"}),
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "PATH": "/usr/bin:/bin",
    }


@pytest.mark.parametrize("argv", [["sweep"], ["sweep", "--json"]])
def test_the_image_sweep_against_an_unreachable_endpoint_ends_with_one_line_and_exit_3(
    argv: list[str], unreachable_env: dict[str, str]
) -> None:
    """``python -m runtime sweep`` is the image's service command (``runtime.services``, no typer)."""
    done = subprocess.run(
        [sys.executable, "-m", "runtime", *argv], env=unreachable_env, capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.splitlines()
    assert done.returncode == EXIT_FAILED, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "AWS_ENDPOINT_URL" in lines[0], done.stderr[-3000:]
    report = json.loads(done.stdout)  # the scheduled task's record: the pass failed
    assert report["ok"] is False and report["customers"] == []
