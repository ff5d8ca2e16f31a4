"""health against the in-process emulator, including the unhealthy cases."""

from __future__ import annotations

import pytest

from runtime.archive.triggers import TriggerStore
from runtime.contract.keys import TriggerRef
from runtime.ops.health import health
from tests.support.aws_platform import Platform
from tests.support.ops_platform import (
    as_json,
    backdate,
    clients,
    ecs_services,
    ops_env,
    put_unsafe_triggers,
    queues,
    record_processed,
    run,
    s3_event,
)

MIN20 = 20 * 60


def test_health_of_a_quiet_platform_is_healthy(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    ecs_services(platform, {"hts": 1, "htsnonprod": 1, "customer-a": 1})
    platform.submit("CHG-1", ["hts"])
    record_processed(platform, "CHG-1", "hts")
    platform.s3.delete_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json")
    result = run(monkeypatch, ops_env(platform), "health", "--json")
    report = as_json(result)
    assert result.exit_code == 0, report["findings"]
    assert report["healthy"] is True
    assert report["cluster_status"] == "ACTIVE"
    rows = {c["customer"]: c for c in report["customers"]}
    assert set(rows) == {"hts", "htsnonprod", "customer-a"}
    assert rows["hts"]["ecs_running"] == 1 and rows["hts"]["ecs_desired"] == 1
    assert rows["hts"]["queue"]["dlq_url"].endswith("customer-hts-changes-dlq")
    assert [f for f in report["findings"] if f["severity"] == "critical"] == []


def test_health_reports_every_unhealthy_case_and_exits_1(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    ecs_services(platform, {"hts": 1, "htsnonprod": 1, "customer-a": 0})
    box = platform.box.customers
    # hts: a message in its DLQ
    body = s3_event(platform.bucket, "customers/hts/X.json")
    platform.sqs.send_message(QueueUrl=box["hts"].dlq_url, MessageBody=body)
    # htsnonprod: a trigger older than the 15-minute threshold
    platform.submit("CHG-OLD", ["htsnonprod"])
    backdate(platform, "customers/htsnonprod/CHG-OLD.json", MIN20)
    # customer-a: 51 messages waiting and no task running
    for batch in range(6):
        entries = [{"Id": str(i), "MessageBody": "{}"} for i in range(10 if batch < 5 else 1)]
        platform.sqs.send_message_batch(QueueUrl=box["customer-a"].queue_url, Entries=entries)

    result = run(monkeypatch, ops_env(platform), "health", "--json")
    report = as_json(result)
    assert result.exit_code == 1
    assert report["healthy"] is False
    critical = {(f["customer"], f["check"]) for f in report["findings"] if f["severity"] == "critical"}
    assert critical == {("hts", "dlq"), ("htsnonprod", "triggers"), ("customer-a", "queue"), ("customer-a", "ecs")}
    rows = {c["customer"]: c for c in report["customers"]}
    assert rows["htsnonprod"]["triggers_over_threshold"] == 1
    assert rows["htsnonprod"]["oldest_trigger_age_seconds"] >= MIN20
    assert rows["customer-a"]["queue"]["visible"] == 51
    assert rows["customer-a"]["ecs_running"] == 0
    assert rows["hts"]["queue"]["dlq_visible"] == 1

    human = run(monkeypatch, ops_env(platform), "health")
    assert human.exit_code == 1
    assert "UNHEALTHY (4 critical)" in human.stdout
    assert "message(s) in the DLQ" in human.stdout


def test_health_threshold_option_and_warning_level(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, "customers/hts/CHG-1.json", 11 * 60)
    result = run(monkeypatch, ops_env(platform), "health", "--skip-ecs", "--json", "--customer", "hts")
    report = as_json(result)
    assert result.exit_code == 0  # 11 minutes: a warning (10 of 15), not critical
    assert [(f["severity"], f["check"]) for f in report["findings"]] == [("warning", "triggers")]
    assert [c["customer"] for c in report["customers"]] == ["hts"]
    strict = run(monkeypatch, ops_env(platform), "health", "--skip-ecs", "--json", "--older-than", "5m")
    assert strict.exit_code == 1


def test_health_missing_cluster_is_critical_unless_skipped(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    result = run(monkeypatch, ops_env(platform), "health", "--json")
    report = as_json(result)
    assert result.exit_code == 1
    assert report["cluster_status"] == "MISSING"
    assert run(monkeypatch, ops_env(platform), "health", "--json", "--skip-ecs").exit_code == 0


def test_health_triggers_of_unconfigured_customer_warn(light: Platform) -> None:
    platform = light
    TriggerStore(platform.s3, platform.bucket).put(TriggerRef("ghost", "CHG-1"), 1)
    report = health(clients(platform), platform.bucket, queues(platform), cluster=None)
    assert report.unconfigured_triggers == {"ghost": 1}
    assert any(f.customer == "ghost" and f.severity == "warning" for f in report.findings)


def test_health_config_and_argument_errors_exit_2(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    bad = run(monkeypatch, ops_env(platform, TTP_CUSTOMER_QUEUES='{"Bad Code": "x"}'), "health")
    assert bad.exit_code == 2 and "TTP_CUSTOMER_QUEUES" in bad.stderr
    unknown = run(monkeypatch, ops_env(platform), "health", "--customer", "nobody")
    assert unknown.exit_code == 2
    assert "not in TTP_CUSTOMER_QUEUES (configured: customer-a, hts, htsnonprod)" in unknown.stderr
    duration = run(monkeypatch, ops_env(platform), "health", "--older-than", "soon")
    assert duration.exit_code == 2 and "--older-than" in duration.stderr


def test_health_lists_every_object_that_is_not_a_valid_trigger(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    unsafe = put_unsafe_triggers(platform)

    report = health(clients(platform), platform.bucket, queues(platform), cluster=None)
    assert sorted(o.key for o in report.invalid_triggers) == sorted(unsafe)
    assert {c.customer: c.triggers for c in report.customers}["hts"] == 1  # the valid one, counted as before
    [finding] = [f for f in report.findings if f.check == "invalid_trigger_key"]
    assert finding.severity == "warning" and "cleanup --remove-invalid" in finding.message

    listed = as_json(run(monkeypatch, ops_env(platform), "health", "--skip-ecs", "--no-cloudwatch", "--json"))
    assert sorted(o["key"] for o in listed["invalid_triggers"]) == sorted(unsafe)  # verbatim

    shown = run(monkeypatch, ops_env(platform), "health", "--skip-ecs", "--no-cloudwatch").stdout
    assert "\x1b" not in shown and "\\x1b[2J" in shown  # the escape is shown, not played
    assert "CHG 1 [bold red]boom[/].json" in shown  # markup shown as text, not applied
    assert "customers/hts/../archive/CHG-3.json" in shown and "customers/Not A Code/CHG-4.json" in shown
