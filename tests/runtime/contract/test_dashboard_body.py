"""The dashboards reproduce the runbook and stay inside CloudWatch limits at 200 customers."""

from __future__ import annotations

import json

import pytest

from runtime.contract import names
from runtime.contract.dashboards import (
    DELIVERY_RATE_PERIOD,
    MAX_BODY_BYTES,
    MAX_SEARCHES_PER_WIDGET,
    MAX_WIDGETS,
    SEARCH_BUDGET,
    customer_dashboard_body,
    overview_dashboard_body,
    searches_in_widget,
)
from runtime.contract.metric_names import MetricName
from runtime.contract.monitoring import BOUNCE_RATE, COMPLAINT_RATE

CUSTOMERS_AT_SCALE = 200


@pytest.fixture(scope="module")
def overview() -> dict:
    return overview_dashboard_body(region="us-east-1")


def _expressions(widget: dict) -> list[str]:
    return [item["expression"] for row in widget["properties"]["metrics"] for item in row if isinstance(item, dict)]


def test_runbook_widgets_come_first(overview: dict) -> None:
    metric_widgets = [w for w in overview["widgets"] if w["type"] == "metric"]
    creation, age, archive = metric_widgets[:3]
    assert creation["properties"]["title"] == "Trigger Creation vs Deletion"
    assert creation["properties"]["stat"] == "Sum" and creation["properties"]["period"] == 300
    assert [e.split("MetricName=")[1].split('"')[1] for e in _expressions(creation)] == [
        "TriggerCreationRate",
        "TriggerDeletionRate",
    ]
    assert age["properties"]["title"] == "Trigger Age (seconds)"
    assert [e[:4] for e in _expressions(age)] == ["AVG(", "MAX("]
    assert "'Average'" in _expressions(age)[0] and "'Maximum'" in _expressions(age)[1]
    assert archive["properties"]["title"] == "Archive Update Success/Failure"
    assert all("SUM(SEARCH('{CustomMetrics,CustomerCode}" in e for e in _expressions(archive))


def test_key_metrics_groups(overview: dict) -> None:
    headers = [w["properties"]["markdown"] for w in overview["widgets"] if w["type"] == "text"]
    assert headers[1:] == [
        "## Trigger metrics",
        "## Processing metrics",
        "## Queue metrics",
        "## System health",
        "## Email delivery",
        "## Change coordinator",
    ]
    text = json.dumps(overview)
    for metric in (
        "OrphanedTriggers",
        "ProcessingDuration",
        "EmailsSent",
        "ApproximateAgeOfOldestMessage",
        "RunningTaskCount",
        "CPUUtilization",
        "MemoryUtilization",
        "ProcessingFailure",
    ):
        assert metric in text, metric


def test_overview_stays_within_limits_at_200_customers(overview: dict) -> None:
    assert len(overview["widgets"]) <= MAX_WIDGETS
    assert len(json.dumps(overview).encode()) < MAX_BODY_BYTES
    for widget in overview["widgets"]:
        searches = searches_in_widget(widget)
        assert searches <= MAX_SEARCHES_PER_WIDGET
        assert searches * CUSTOMERS_AT_SCALE <= SEARCH_BUDGET, widget["properties"].get("title")
    # Nothing in the overview names a customer (only the coordinator's own dimension value): it is the
    # same body for any number of customers.
    named = {row[3] for row in _metric_rows(overview) if row[2:3] == ["CustomerCode"]}
    assert named == {names.COORDINATOR_METRICS_DIMENSION_VALUE}


def _metric_rows(body: dict) -> list[list]:
    return [r for w in body["widgets"] if w["type"] == "metric" for r in w["properties"]["metrics"] if len(r) > 1]


def test_widgets_do_not_overlap(overview: dict) -> None:
    cells: set[tuple[int, int]] = set()
    for widget in overview["widgets"]:
        mine = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & mine, widget
        assert widget["x"] + widget["width"] <= 24
        cells |= mine


def test_customer_dashboard_is_scoped_to_its_customer() -> None:
    body = customer_dashboard_body(customer_code="hts", region="us-east-1", alarm_arns=["arn:b", "arn:a"])
    text = json.dumps(body)
    assert "SEARCH(" not in text
    assert '"CustomerCode", "hts"' in text and "customer-hts-changes-dlq" in text
    assert "customer-hts-processor" in text
    assert body["widgets"][-1]["properties"]["alarms"] == ["arn:a", "arn:b"]


def test_customer_dashboard_shows_what_the_sweeper_repaired_and_could_not_sweep() -> None:
    body = customer_dashboard_body(customer_code="hts", region="us-east-1")
    [hygiene] = [w for w in body["widgets"] if w.get("properties", {}).get("title") == "Trigger hygiene"]
    shown = {row[1] for row in hygiene["properties"]["metrics"]}
    assert {MetricName.TRIGGERS_RECREATED, MetricName.SWEEP_ERRORS, MetricName.ORPHANED_TRIGGERS} <= shown


def _widget(body: dict, title: str) -> dict:
    [widget] = [w for w in body["widgets"] if w.get("properties", {}).get("title") == title]
    return widget


def test_overview_shows_delivery_outcomes_and_the_rates_the_alarms_use(overview: dict) -> None:
    counts = json.dumps(_widget(overview, "Emails delivered / bounced")) + json.dumps(
        _widget(overview, "Emails complained")
    )
    for metric in (MetricName.EMAILS_DELIVERED, MetricName.EMAILS_BOUNCED, MetricName.EMAILS_COMPLAINED):
        assert f'MetricName=\\"{metric}\\"' in counts, metric
    bounce = _widget(overview, "Bounce rate (%, hourly)")["properties"]
    complaint = _widget(overview, "Complaint rate (%, hourly)")["properties"]
    assert bounce["period"] == complaint["period"] == DELIVERY_RATE_PERIOD == 3600
    assert _expressions(_widget(overview, "Bounce rate (%, hourly)"))[-1] == (
        "IF(SUM(b_dlv) + SUM(b_bnc) > 0, 100 * SUM(b_bnc) / (SUM(b_dlv) + SUM(b_bnc)), 0)"
    )
    assert _expressions(_widget(overview, "Complaint rate (%, hourly)"))[-1] == (
        "IF(SUM(c_dlv) > 0, 100 * SUM(c_cmp) / SUM(c_dlv), 0)"
    )
    # The searches behind a rate are hourly too, and hidden (only the rate is drawn).
    hidden = [row[0] for row in bounce["metrics"] + complaint["metrics"] if row[0].get("visible") is False]
    assert len(hidden) == 4 and all(", 3600)" in item["expression"] for item in hidden)


def test_customer_dashboard_shows_its_delivery_outcomes_and_rates() -> None:
    body = customer_dashboard_body(customer_code="hts", region="us-east-1", alarm_arns=["arn:a"])
    delivery = _widget(body, "Email delivery")["properties"]
    assert {row[1] for row in delivery["metrics"]} == {
        MetricName.EMAILS_SENT,
        MetricName.EMAILS_DELIVERED,
        MetricName.EMAILS_BOUNCED,
        MetricName.EMAILS_COMPLAINED,
        MetricName.EMAILS_REJECTED,
    }
    assert all(row[2:4] == ["CustomerCode", "hts"] for row in delivery["metrics"])
    rates = _widget(body, "Bounce and complaint rate (%, hourly)")["properties"]
    hidden = {row[1]: row[-1] for row in rates["metrics"] if len(row) > 1}
    assert set(hidden) == {MetricName.EMAILS_DELIVERED, MetricName.EMAILS_BOUNCED, MetricName.EMAILS_COMPLAINED}
    assert all(options["period"] == DELIVERY_RATE_PERIOD and options["visible"] is False for options in hidden.values())
    # The very expressions (and input ids) the customer's bounce and complaint rate alarms evaluate.
    assert [row[0]["expression"] for row in rates["metrics"] if len(row) == 1] == [
        BOUNCE_RATE.expression,
        COMPLAINT_RATE.expression,
    ]
    assert {options["id"] for options in hidden.values()} == {s.id for s in BOUNCE_RATE.using + COMPLAINT_RATE.using}


def test_customer_dashboard_widgets_do_not_overlap() -> None:
    body = customer_dashboard_body(customer_code="hts", region="us-east-1", alarm_arns=["arn:a"])
    test_widgets_do_not_overlap(body)
