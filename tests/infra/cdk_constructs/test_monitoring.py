"""Monitoring from one definition table: every alarm and every dashboard graph comes from
``runtime.contract.monitoring``; a broken or missing definition fails here."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from cdk_constructs import customer_alarms
from cdk_constructs.coordinator_alarms import CoordinatorAlarms, CoordinatorAlarmsProps
from cdk_constructs.customer_alarms import CustomerAlarms, CustomerAlarmsProps
from runtime.contract.dashboards import customer_dashboard_body, overview_dashboard_body
from runtime.contract.metric_names import MetricName
from runtime.contract.monitoring import (
    COORDINATOR_ALARMS,
    COORDINATOR_RUNBOOK_PREFIX,
    CUSTOMER_ALARMS,
    CUSTOMER_RUNBOOK_PREFIX,
    NOT_ALARMED,
    RUNBOOK,
    AlarmSpec,
    Target,
    coordinator_target,
    customer_target,
    stats_of,
    unclassified_metrics,
)
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, AlarmThresholds
from tests.support.synth import app_without_validation

ROOT = Path(__file__).resolve().parents[3]
ENV = {"account": "111111111111", "region": "eu-west-1"}


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    ("specs", "prefix"),
    [(CUSTOMER_ALARMS, CUSTOMER_RUNBOOK_PREFIX), (COORDINATOR_ALARMS, COORDINATOR_RUNBOOK_PREFIX)],
    ids=["customer", "coordinator"],
)
def test_every_alarm_has_a_description_and_a_runbook_section(specs: tuple[AlarmSpec, ...], prefix: str) -> None:
    anchors = _anchors((ROOT / RUNBOOK).read_text())
    assert len({spec.name for spec in specs}) == len(specs), "alarm names repeat"
    for spec in specs:
        description = spec.describe(DEFAULT_THRESHOLDS)
        assert description and "{" not in description, spec.name
        assert prefix + spec.family in anchors, f"{RUNBOOK} has no section for alarm {spec.family!r}"


def test_the_runbook_check_finds_a_missing_section() -> None:
    assert "alarm-trigger-age" in _anchors("## Alarms\n### Alarm: trigger-age\ntext")
    assert "alarm-trigger-age" not in _anchors("## Alarms\n### Alarm: trigger age is old\n")


def test_every_emitted_metric_is_alarmed_or_says_why() -> None:
    assert unclassified_metrics() == set()
    assert all(NOT_ALARMED.values())


def test_dropping_an_alarm_leaves_its_metric_unclassified() -> None:
    without = tuple(spec for spec in COORDINATOR_ALARMS if spec.family != "results-refused")
    assert unclassified_metrics(CUSTOMER_ALARMS + without) == {MetricName.RESULTS_REFUSED}


def test_every_threshold_is_read_by_an_alarm() -> None:
    read = {
        value
        for spec in CUSTOMER_ALARMS + COORDINATOR_ALARMS
        for value in (spec.threshold, spec.evaluation_periods, *re.findall(r"\{(\w+)", spec.description))
    }
    assert {f.name for f in dataclasses.fields(AlarmThresholds)} - read == set()


def test_a_threshold_field_that_does_not_exist_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(CUSTOMER_ALARMS[0], threshold="trigger_age_critical_minutes")
    monkeypatch.setattr(customer_alarms, "CUSTOMER_ALARMS", (broken, *CUSTOMER_ALARMS[1:]))
    with pytest.raises(ValueError, match=r"trigger-age-critical.*'trigger_age_critical_minutes' is not a field"):
        CustomerAlarms(Stack(app_without_validation(), "S", env=ENV), "Alarms", CustomerAlarmsProps("acme"))


def _rows(body: dict[str, Any]) -> list[list[Any]]:
    return [row for w in body["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]]


def _draws(body: dict[str, Any], target: Target, specs: tuple[AlarmSpec, ...]) -> list[str]:
    """The alarms one of whose metrics has no row of ``target`` on the dashboard ``body``."""
    shown = {json.dumps([str(part) for part in row if not isinstance(part, dict)]) for row in _rows(body)}
    missing = []
    for spec in specs:
        for stat in stats_of(spec.signal):
            namespace, dimensions = target.dimensions(stat.source)
            row = [namespace, stat.metric, *(p for item in dimensions.items() for p in item)]
            if json.dumps([str(p) for p in row]) not in shown:
                missing.append(f"{spec.name}: {stat.metric}")
    return missing


def test_the_customer_dashboard_draws_every_metric_of_its_alarms() -> None:
    body = customer_dashboard_body(customer_code="hts", region="eu-west-1")
    assert _draws(body, customer_target("hts"), CUSTOMER_ALARMS) == []


def test_the_overview_draws_every_metric_of_the_coordinator_alarms() -> None:
    body = overview_dashboard_body(region="eu-west-1")
    assert _draws(body, coordinator_target(), COORDINATOR_ALARMS) == []


def test_a_metric_missing_from_the_dashboard_is_found() -> None:
    body = customer_dashboard_body(customer_code="hts", region="eu-west-1")
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            widget["properties"]["metrics"] = [r for r in widget["properties"]["metrics"] if "CPUUtilization" not in r]
    assert _draws(body, customer_target("hts"), CUSTOMER_ALARMS) == ["cpu-warning: CPUUtilization"]


def test_every_metric_the_runtime_emits_has_a_graph() -> None:
    text = json.dumps(
        [overview_dashboard_body(region="eu-west-1"), customer_dashboard_body(customer_code="hts", region="eu-west-1")]
    )
    drawn = {m for m in MetricName if f'"{m}"' in text or f'MetricName=\\"{m}\\"' in text}
    assert set(MetricName) - drawn == set()


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def test_alarms_are_the_table_rows_with_the_given_thresholds() -> None:
    """Names, thresholds, periods and descriptions come from the table and the thresholds passed."""
    stack = Stack(app_without_validation(), "S", env=ENV)
    custom = dataclasses.replace(
        DEFAULT_THRESHOLDS, queue_depth_warning=33, tasks_down_minutes=7, bounce_rate_critical_percent=4
    )
    CustomerAlarms(stack, "Alarms", CustomerAlarmsProps("acme", thresholds=custom))
    CoordinatorAlarms(stack, "Coordinator", CoordinatorAlarmsProps(thresholds=custom))
    alarms = _alarms(Template.from_stack(stack))
    expected = {f"ttp-acme-{s.name}": ("acme", s) for s in CUSTOMER_ALARMS} | {
        f"ttp-change-coordinator-{s.name}": ("change coordinator", s) for s in COORDINATOR_ALARMS
    }
    assert set(alarms) == set(expected)
    for name, (subject, spec) in expected.items():
        props = alarms[name]
        assert props["Threshold"] == spec.threshold_value(custom), name
        assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == spec.periods(custom), name
        assert props["AlarmDescription"] == f"[{spec.severity}] {subject}: {spec.describe(custom)}", name
    assert alarms["ttp-acme-queue-depth-warning"]["AlarmDescription"].endswith(
        "More than 33 messages wait in the queue"
    )
    assert "for 7 minutes while messages wait" in alarms["ttp-acme-tasks-down-critical"]["AlarmDescription"]
    assert "reviews an account at 4%" in alarms["ttp-acme-bounce-rate-warning"]["AlarmDescription"]


def test_a_runbook_url_links_every_alarm_to_its_runbook_section() -> None:
    stack = Stack(app_without_validation(), "S", env=ENV)
    url = "https://git.example/ttp/blob/main/docs/runbook.md"
    CustomerAlarms(stack, "Alarms", CustomerAlarmsProps("acme", runbook_url=url))
    CoordinatorAlarms(stack, "Coordinator", CoordinatorAlarmsProps(runbook_url=url))
    anchors = _anchors((ROOT / RUNBOOK).read_text())
    alarms = _alarms(Template.from_stack(stack))
    assert len(alarms) == len(CUSTOMER_ALARMS) + len(COORDINATOR_ALARMS)
    for name, props in alarms.items():
        _, link = props["AlarmDescription"].split(" Runbook: ")
        assert link.startswith(url + "#") and link.split("#")[1] in anchors, name
        assert len(props["AlarmDescription"]) <= 1024, name  # CloudWatch's limit
    assert alarms["ttp-acme-dlq-messages-critical"]["AlarmDescription"].endswith(f"{url}#alarm-dlq-messages")
    assert alarms["ttp-change-coordinator-dlq-messages-critical"]["AlarmDescription"].endswith(
        f"{url}#coordinator-alarm-dlq-messages"
    )
