"""Issue 11 item 9: with ``--json`` every command prints exactly one JSON document on stdout.

The commands are enumerated from the typer app, so a new command with ``--json`` is covered without
touching this file (its arguments are derived from their names; an unknown required one fails here
with the name to add). EMF metric lines and log lines of these commands go to stderr; the long-running
services (``worker``, ``coordinator``) keep printing them on stdout, where the ECS log driver and
CloudWatch's EMF extraction read them.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.contract import names
from runtime.contract.metric_names import MetricName
from runtime.telemetry.log import logger
from runtime.telemetry.metrics import MetricsFactory
from tests.support.aws_platform import Platform
from tests.support.cli_commands import leaf_commands
from tests.support.ops_platform import ecs_services, ops_env

CHANGE = "CHG-1"
CUSTOMER = "hts"


def json_commands() -> list[tuple[list[str], Any]]:
    """Every (sub)command of the app that has a ``--json`` option, with its click command."""
    return [(path, c) for path, c in leaf_commands() if any("--json" in getattr(p, "opts", []) for p in c.params)]


class _ProcessStdout(io.TextIOBase):
    """What a log handler bound to the process's stdout writes to (here: whatever ``sys.stdout`` is,
    so ``CliRunner`` captures the log lines that a real run would print on stdout)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def logs_on_stdout() -> Iterator[None]:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(_ProcessStdout())
    try:
        yield
    finally:
        handler.setStream(previous)


def arguments(path: list[str], command: Any, document: Path) -> list[str]:
    """The command line for ``path``: its required parameters (by name), the flags it needs to act
    without a prompt, and ``--json``."""
    values = {"customer": CUSTOMER, "change_id": CHANGE, "document": str(document)}
    args = list(path)
    for param in command.params:
        if param.name == "as_json":
            continue
        if param.name == "yes":  # confirmations: the JSON run is non-interactive
            args.append(param.opts[0])
            continue
        if not param.required:
            continue
        assert param.name in values, f"{' '.join(path)}: give a value for its required {param.name!r} in this test"
        value = values[param.name]
        args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    if path == ["restore"]:  # without --before or --list it refuses (exit 2): list the versions
        args.append("--list")
    return [*args, "--json"]


def test_every_json_command_is_found() -> None:
    listed = {" ".join(path) for path, _ in json_commands()}
    assert {"submit", "process", "health", "verify", "sweep", "dlq list", "dlq redrive"} <= listed
    assert "worker" not in listed and "coordinator" not in listed


def test_every_command_with_json_prints_exactly_one_json_document(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logs_on_stdout: None
) -> None:
    platform.submit(CHANGE, [CUSTOMER, "htsnonprod"])
    ecs_services(platform, {CUSTOMER: 1})
    logs = boto3.client("logs", region_name=platform.box.region)
    for code in platform.box.customers:
        logs.create_log_group(logGroupName=names.log_group_name(code))
    spec = platform.box.customers[CUSTOMER].spec
    env = ops_env(
        platform,
        TTP_CUSTOMER_CODE=CUSTOMER,
        TTP_SENDER_ROLE_ARN=spec.sender_role_arn,
        TTP_SENDER_EXTERNAL_ID=spec.ext_id,
        TTP_FROM_ADDRESS=spec.sender,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    document = tmp_path / "change.json"
    document.write_text(json.dumps({"change_id": "CHG-2", "title": "Second", "customers": [CUSTOMER]}))

    failures = []
    commands = json_commands()
    for path, command in commands:
        args = arguments(path, command, document)
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        try:
            json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            failures.append(f"{' '.join(args)} (exit {result.exit_code}): {exc}\n{result.stdout}\n{result.stderr}")
    assert not failures, "\n\n".join(failures)
    assert len(commands) >= 13


class _FakeService:
    """Stands in for the built worker / coordinator: emits one EMF line and one log line, then ends."""

    def install_signal_handlers(self) -> None:
        pass

    def run(self) -> None:
        with MetricsFactory("CustomMetrics").batch(CUSTOMER) as batch:
            batch.add(MetricName.EMAILS_SENT)
        logger.info("service line")


@pytest.mark.parametrize("service", ["worker", "coordinator"])
def test_services_keep_their_metric_and_log_lines_on_stdout(
    service: str, monkeypatch: pytest.MonkeyPatch, logs_on_stdout: None
) -> None:
    """In ECS the services' stdout is CloudWatch Logs, which turns the EMF lines into metrics."""
    import runtime.coordinator
    import runtime.pipeline

    monkeypatch.setattr(runtime.pipeline, "build_worker", lambda settings: _FakeService())
    monkeypatch.setattr(runtime.coordinator, "build_coordinator", lambda settings: _FakeService())
    env = {
        "TTP_CUSTOMER_CODE": CUSTOMER,
        "TTP_BUCKET_NAME": "bucket",
        "TTP_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111111111111/q",
        "TTP_SENDER_ROLE_ARN": "arn:aws:iam::333333333333:role/ttp-ses-sender-hts",
        "TTP_SENDER_EXTERNAL_ID": "ext-123",
        "TTP_FROM_ADDRESS": "changes@hts.example.com",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, [service], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert '"EmailsSent"' in result.stdout and "service line" in result.stdout
    assert "EmailsSent" not in result.stderr and "service line" not in result.stderr


def test_one_shot_commands_put_their_log_lines_on_stderr_and_restore_them(
    light: Platform, monkeypatch: pytest.MonkeyPatch, logs_on_stdout: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log line of a one-shot command (here ``sweep``'s progress goes through the logger when a
    trigger cannot be read) lands on stderr; after the command, the process's streams are as before."""
    import runtime.sweeper

    def logging_sweep(*args: Any, **kwargs: Any) -> Any:
        logger.warning("one-shot line")
        return real_sweep(*args, **kwargs)

    real_sweep = runtime.sweeper.run_sweep
    monkeypatch.setattr("runtime.cli.repair_commands.run_sweep", logging_sweep)
    for name, value in ops_env(light).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["sweep", "--json"], catch_exceptions=False)
    json.loads(result.stdout)
    assert "one-shot line" in result.stderr and "one-shot line" not in result.stdout
    _FakeService().run()  # outside a command: stdout again
    out = capsys.readouterr().out
    assert "EmailsSent" in out and "service line" in out
