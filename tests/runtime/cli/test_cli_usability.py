"""Issue 22, CLI: what a new user types first (``--version``, ``-h``, completion) and errors that name
what to check (the log group, the cluster and its variable, where a missing variable comes from)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.cli.exit_codes import EXIT_FAILED, EXIT_USAGE
from tests.support.aws_platform import Platform
from tests.support.cli_commands import leaf_commands
from tests.support.ops_platform import ops_env, run


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"ttp \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize("path", [[], ["dlq"], *[p for p, _ in leaf_commands()]], ids=lambda p: " ".join(p) or "app")
def test_dash_h_is_help_on_the_app_and_every_command(path: list[str]) -> None:
    short = CliRunner().invoke(app, [*path, "-h"])
    long = CliRunner().invoke(app, [*path, "--help"])
    assert short.exit_code == 0 and long.exit_code == 0, short.output
    assert short.stdout == long.stdout and "Usage:" in short.stdout


def test_shell_completion_is_offered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_a_missing_variable_names_it_and_where_an_operator_gets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TTP_BUCKET_NAME", "TTP_CUSTOMER_QUEUES", "TTP_CUSTOMER_CODES"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["health"])
    assert result.exit_code == EXIT_USAGE
    assert "TTP_BUCKET_NAME" in result.stderr
    assert "the sweeper task has them all" not in result.stderr
    assert "describe-task-definition" in result.stderr and "make emulator" in result.stderr
    # with the bucket set, the customers' variables: either the codes or the full queue map
    monkeypatch.setenv("TTP_BUCKET_NAME", "ttp-metadata-local")
    result = CliRunner().invoke(app, ["health"])
    assert result.exit_code == EXIT_USAGE
    assert "TTP_CUSTOMER_CODES" in result.stderr and "TTP_CUSTOMER_QUEUES" in result.stderr
    assert "describe-task-definition" in result.stderr and "make emulator" in result.stderr


def test_logs_names_the_log_group_it_looked_for(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(monkeypatch, ops_env(light), "logs", "--customer", "hts")
    assert result.exit_code == EXIT_FAILED
    assert "log group" in result.stderr and "does not exist" in result.stderr
    from runtime.contract import names

    assert names.log_group_name("hts") in result.stderr


def test_restart_names_the_cluster_and_the_variable_that_set_it(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(monkeypatch, ops_env(light, TTP_CLUSTER_NAME="no-such-cluster"), "restart", "-c", "hts", "--yes")
    assert result.exit_code == EXIT_FAILED
    assert "no-such-cluster" in result.stderr and "TTP_CLUSTER_NAME" in result.stderr


def _sweep_on_a_terminal(*args: str) -> tuple[str, str]:
    """``python -m runtime sweep ARGS`` with stdout on a pseudo-terminal and no settings: what it printed
    on the terminal and on stderr (the refusal tells which path ran: the CLI's names where to get them)."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTP_")}
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "runtime", "sweep", *args],
            env={**env, "PYTHONPATH": str(root)},
            cwd=root,
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    return shown.decode(), done.stderr


def test_python_m_runtime_sweep_on_a_terminal_is_the_clis_table_command() -> None:
    """The image's task runs ``sweep`` with stdout to CloudWatch Logs (no terminal): JSON. A person at a
    terminal gets the CLI's ``sweep`` (a table; JSON with ``--json``), as its help says."""
    _, stderr = _sweep_on_a_terminal()
    assert "TTP_BUCKET_NAME" in stderr and "make emulator" in stderr  # the CLI's command ran
    from runtime import services

    assert services.is_service_command(["sweep"], terminal=False)
    assert not services.is_service_command(["sweep"], terminal=True)
    assert services.is_service_command(["sweep", "--json"], terminal=True)


def test_submit_prints_its_result_and_metric_lines_only_with_debug(
    light: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    import json
    from pathlib import Path

    document = Path(str(tmp_path)) / "change.json"
    document.write_text(json.dumps({"change_id": "CHG-QUIET", "title": "Patch", "customers": ["hts"]}))
    quiet = run(monkeypatch, ops_env(light), "submit", str(document))
    assert quiet.exit_code == 0, quiet.output
    assert "CHG-QUIET" in quiet.stdout
    assert "_aws" not in quiet.stderr and "CloudWatchMetrics" not in quiet.stderr
    document.write_text(json.dumps({"change_id": "CHG-LOUD", "title": "Patch", "customers": ["hts"]}))
    loud = run(monkeypatch, ops_env(light), "--debug", "submit", str(document))
    assert loud.exit_code == 0, loud.output
    assert "_aws" in loud.stderr


@pytest.mark.parametrize("queue", ["coordinator", "delivery-events"])
def test_dlq_list_and_redrive_reach_the_coordinators_and_the_delivery_events_queues(
    light: Platform, monkeypatch: pytest.MonkeyPatch, queue: str
) -> None:
    """Their messages are S3 events of archive/, processing/, delivery/ objects or SES events, not
    triggers: listed without a "poison" problem and moved back without --force."""
    import json

    from runtime.contract import names
    from tests.support.ops_platform import as_json

    name = {"coordinator": names.COORDINATOR_QUEUE_NAME, "delivery-events": names.DELIVERY_EVENTS_QUEUE_NAME}[queue]
    sqs = light.sqs
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})},
    )["QueueUrl"]
    body = json.dumps({"Records": [{"s3": {"bucket": {"name": light.bucket}, "object": {"key": "processing/x"}}}]})
    sqs.send_message(QueueUrl=dlq_url, MessageBody=body)
    listed = run(monkeypatch, ops_env(light), "dlq", "list", "--customer", queue, "--json")
    assert listed.exit_code == 1, listed.output
    listing = as_json(listed)
    assert listing["dlq_url"] == dlq_url and [m["parse_error"] for m in listing["messages"]] == [None]
    moved = run(monkeypatch, ops_env(light), "dlq", "redrive", "--customer", queue, "--json")
    assert moved.exit_code == 0, moved.output
    assert as_json(moved)["moved"] == 1
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == body


TABLE_COMMANDS = [
    ["health", "--skip-ecs", "--no-cloudwatch"],
    ["verify", "CHG-WIDE"],
    ["stuck"],
    ["dlq", "list", "--customer", "hts"],
    ["sweep"],
]


@pytest.mark.parametrize("command", TABLE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_tables_fit_100_columns(light: Platform, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    """With COLUMNS=100 (a 100-column terminal, or a pipe that says so) no line is longer: the tables
    wrap their columns, as the aws and cdk CLIs do."""
    light.submit("CHG-WIDE", ["hts", "htsnonprod"])
    result = run(monkeypatch, ops_env(light, COLUMNS="100"), *command)
    assert result.stdout.strip(), result.output
    longest = max(len(line) for line in result.stdout.splitlines())
    assert longest <= 100, result.stdout


def test_health_shows_the_coordinators_and_the_delivery_events_queues(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from runtime.contract import names
    from tests.support.ops_platform import as_json

    sqs = light.sqs
    dlq_url = sqs.create_queue(QueueName=names.COORDINATOR_DLQ_NAME)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(
        QueueName=names.COORDINATOR_QUEUE_NAME,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})},
    )
    sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
    result = run(monkeypatch, ops_env(light), "health", "--skip-ecs", "--no-cloudwatch", "--json")
    queues = as_json(result)["platform_queues"]
    assert queues["coordinator"]["dlq_visible"] == 1 and queues["coordinator"]["dlq_url"] == dlq_url
    assert names.DELIVERY_EVENTS_QUEUE_NAME in queues["delivery-events"]["error"]  # not deployed here: says so
    table = run(monkeypatch, ops_env(light), "health", "--skip-ecs", "--no-cloudwatch")
    assert "Platform queues" in table.stdout and "coordinator" in table.stdout
    assert table.exit_code == 1  # a message in the coordinator's DLQ needs attention
