"""dashboard-json, restart, logs, and the readable (non --json) output of every ops command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.contract import dashboards, names
from tests.support.aws_platform import Platform
from tests.support.ops_platform import (
    as_json,
    backdate,
    ecs_services,
    ops_env,
    record_processed,
    run,
    s3_event,
)

# ---- dashboard-json --------------------------------------------------------------------------------


def test_dashboard_json_prints_the_deployed_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("TTP_METRICS_NAMESPACE", raising=False)
    result = CliRunner().invoke(app, ["dashboard-json"])
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body == dashboards.overview_dashboard_body(region="eu-west-1")
    titles = [w["properties"].get("title") for w in body["widgets"] if w["type"] == "metric"]
    assert titles[:3] == ["Trigger Creation vs Deletion", "Trigger Age (seconds)", "Archive Update Success/Failure"]
    assert "{CustomMetrics,CustomerCode}" in json.dumps(body)


def test_dashboard_json_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTP_CUSTOMER_QUEUES", json.dumps({"hts": "https://q/hts", "acme": "https://q/acme"}))
    runner = CliRunner()
    one = json.loads(
        runner.invoke(
            app, ["dashboard-json", "--region", "us-east-2", "--customer", "hts", "--namespace", "Ops"]
        ).stdout
    )
    assert one == dashboards.customer_dashboard_body(customer_code="hts", region="us-east-2", namespace="Ops")
    every = json.loads(runner.invoke(app, ["dashboard-json", "--region", "us-east-2", "--all", "--json"]).stdout)
    assert sorted(every) == ["TransientTriggerMonitoring", "ttp-customer-acme", "ttp-customer-hts"]
    listed = json.loads(
        runner.invoke(app, ["dashboard-json", "--region", "us-east-2", "--all", "--customers", "x"]).stdout
    )
    assert sorted(listed) == ["TransientTriggerMonitoring", "ttp-customer-x"]

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    no_region = runner.invoke(app, ["dashboard-json"])
    assert no_region.exit_code == 2 and "--region" in no_region.stderr
    bad = runner.invoke(app, ["dashboard-json", "--region", "us-east-1", "--customer", "Not Valid"])
    assert bad.exit_code == 2 and "invalid customer code" in bad.stderr


# ---- restart, logs ---------------------------------------------------------------------------------


def test_restart_forces_a_new_deployment(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    ecs = ecs_services(light, {"hts": 1})
    before = ecs.describe_services(cluster=names.CLUSTER_NAME, services=[names.service_name("hts")])
    unconfirmed = run(monkeypatch, ops_env(light), "restart", "--customer", "hts")
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    result = run(monkeypatch, ops_env(light), "restart", "--customer", "hts", "--yes", "--json")
    assert result.exit_code == 0
    assert as_json(result)["service"] == "customer-hts-processor"
    after = ecs.describe_services(cluster=names.CLUSTER_NAME, services=[names.service_name("hts")])
    assert after["services"][0]["deployments"][0]["id"] != before["services"][0]["deployments"][0]["id"]


def test_logs_filters_by_change_and_errors(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from runtime.archive.documents import utcnow

    logs = boto3.client("logs", region_name="us-east-1")
    group = names.log_group_name("hts")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(utcnow().timestamp() * 1000)
    lines = [
        '{"level":"INFO","message":"processed","change_id":"CHG-1"}',
        '{"level":"ERROR","message":"send failed","change_id":"CHG-1"}',
        '{"level":"ERROR","message":"send failed","change_id":"CHG-2"}',
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )
    env = ops_env(light)
    result = as_json(run(monkeypatch, env, "logs", "--customer", "hts", "--change-id", "CHG-1", "--errors", "--json"))
    assert [e["message"] for e in result["events"]] == [lines[1]]
    every = run(monkeypatch, env, "logs", "--customer", "hts", "--change-id", "CHG-1")
    assert every.stdout.splitlines() == lines[:2]
    assert run(monkeypatch, env, "logs", "--customer", "hts", "--since", "forever").exit_code == 2


# ---- readable output ---------------------------------------------------------------------------------


def test_readable_output_of_stuck_cleanup_and_dlq_redrive(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform, env = light, ops_env(light)
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    record_processed(platform, "CHG-1", "hts")
    for code in ("hts", "htsnonprod"):
        backdate(platform, f"customers/{code}/CHG-1.json", 20 * 60)
    platform.sqs.send_message(
        QueueUrl=platform.box.customers["htsnonprod"].dlq_url,
        MessageBody=s3_event(platform.bucket, "customers/htsnonprod/CHG-1.json"),
    )

    stuck = run(monkeypatch, env, "stuck")
    assert stuck.exit_code == 1
    assert "already_processed" in stuck.stdout and "in_dlq" in stuck.stdout and "cleanup --customer hts" in stuck.stdout

    cleanup = run(monkeypatch, env, "cleanup", "--dry-run")
    assert cleanup.exit_code == 0 and "would_delete" in cleanup.stdout and "1 would be deleted" in cleanup.stdout

    redrive = run(monkeypatch, env, "dlq", "redrive", "--customer", "htsnonprod")
    assert redrive.exit_code == 0 and "1 moved, 0 with problems" in redrive.stdout

    versions = run(monkeypatch, env, "restore", "CHG-1", "--list")
    assert versions.exit_code == 0 and "delete marker" not in versions.stdout and "yes" in versions.stdout

    quiet = run(monkeypatch, env, "stuck", "--older-than", "2h")
    assert quiet.exit_code == 0 and "no trigger older than 2h00m" in quiet.stdout
