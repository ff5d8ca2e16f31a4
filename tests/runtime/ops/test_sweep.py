"""The sweeper against the emulator: metrics for every customer, clean-up, bounded re-drives, no archive writes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from runtime.archive.documents import ArchiveDocument, ProcessingLease, utcnow
from runtime.archive.store import ArchiveStore
from runtime.archive.triggers import TriggerStore
from runtime.contract.keys import TriggerRef, parse_trigger_key
from runtime.contract.settings import OpsSettings
from runtime.ops.sweep import Sweeper, SweepReport
from runtime.ops.triggers_view import LAST_REDRIVE_TAG, REDRIVE_ATTEMPTS_TAG
from runtime.pipeline.envelopes import parse_message_body
from runtime.pipeline.state_machine import Outcome
from runtime.pipeline.worker import decide
from runtime.telemetry.metrics import MetricsFactory
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    as_json,
    backdate,
    depth,
    drain,
    ops_env,
    queues,
    record_processed,
    run,
)

MIN = 60


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, level: str, message: str, extra: dict[str, Any]) -> None:
        self.lines.append((level, message, extra))

    def levels(self, action: str) -> list[str]:
        return [level for level, _m, extra in self.lines if extra.get("action") == action]


def sweep(
    platform: Platform,
    *,
    at: datetime | None = None,
    s3: Any = None,
    sqs: Any = None,
    logs: Logs | None = None,
    **settings: Any,
) -> SweepReport:
    config = OpsSettings(bucket_name=platform.bucket, customer_queues=queues(platform), **settings)
    return Sweeper(
        s3 or platform.s3,
        sqs or platform.sqs,
        config,
        MetricsFactory("CustomMetrics", platform.metrics_stream),
        clock=(lambda: at) if at else utcnow,
        log=logs or Logs(),
    ).run()


def metrics_by_customer(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for blob in platform.metrics():
        grouped.setdefault(blob["CustomerCode"], []).append(blob)
    return grouped


def tags(platform: Platform, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in platform.s3.get_object_tagging(Bucket=platform.bucket, Key=key)["TagSet"]}


def set_lease(platform: Platform, change_id: str, code: str, expires_in: timedelta) -> None:
    def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.leases = {
            **doc.leases,
            code: ProcessingLease(owner="sqs:x", revision=doc.revision, expires_at=utcnow() + expires_in),
        }
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(change_id, mutate)


def test_metrics_for_every_customer_including_zeros(light: Platform) -> None:
    platform = light
    platform.submit("CHG-OLD", ["hts"])
    backdate(platform, "customers/hts/CHG-OLD.json", 20 * MIN)
    platform.submit("CHG-NEW", ["hts"])
    backdate(platform, "customers/hts/CHG-NEW.json", 5 * MIN)

    report = sweep(platform)
    grouped = metrics_by_customer(platform)
    assert set(grouped) == {"hts", "htsnonprod", "customer-a"}
    for code, blobs in grouped.items():
        [blob] = blobs  # one EMF line per customer and pass
        emf = blob["_aws"]["CloudWatchMetrics"][0]
        assert emf["Namespace"] == "CustomMetrics" and emf["Dimensions"] == [["CustomerCode"]]
        units = {m["Name"]: m["Unit"] for m in emf["Metrics"]}
        assert units["OrphanedTriggers"] == "Count" and units["OldestTriggerAge"] == "Seconds"
        if code != "hts":
            assert blob["OrphanedTriggers"] == [0.0] and blob["OldestTriggerAge"] == [0.0], code
    hts = grouped["hts"][0]
    assert hts["OrphanedTriggers"] == [1.0]
    [oldest] = hts["OldestTriggerAge"]
    assert 20 * MIN <= oldest < 21 * MIN
    assert {c.customer: (c.triggers, c.orphaned) for c in report.customers} == {
        "customer-a": (0, 0),
        "hts": (2, 1),
        "htsnonprod": (0, 0),
    }


def test_deletes_recorded_triggers_after_the_grace_period_only(light: Platform) -> None:
    platform = light
    for change_id in ("CHG-DONE", "CHG-FRESH", "CHG-TODO"):
        platform.submit(change_id, ["hts"])
    record_processed(platform, "CHG-DONE", "hts")
    record_processed(platform, "CHG-FRESH", "hts")
    backdate(platform, "customers/hts/CHG-DONE.json", 5 * MIN)
    backdate(platform, "customers/hts/CHG-TODO.json", 5 * MIN)
    # CHG-FRESH is seconds old: the processor's own delete may still be under way

    report = sweep(platform)
    assert not platform.trigger_exists("hts", "CHG-DONE")
    assert platform.trigger_exists("hts", "CHG-FRESH") and platform.trigger_exists("hts", "CHG-TODO")
    assert [(a.change_id, a.action) for a in report.actions] == [("CHG-DONE", "deleted")]
    assert platform.metric_total("TriggerDeletionRate", "hts") == 1
    assert platform.metric_total("OrphanedTriggers", "hts") == 0
    assert [m["modification_type"] for m in platform.archive("CHG-DONE")["modifications"]] == ["submitted", "processed"]


def test_redrives_a_stuck_trigger_a_bounded_number_of_times(light: Platform) -> None:
    platform = light
    key = "customers/hts/CHG-1.json"
    queue = platform.box.customers["hts"].queue_url
    platform.submit("CHG-1", ["hts"])
    backdate(platform, key, 20 * MIN)
    archive_before = platform.s3.head_object(Bucket=platform.bucket, Key="archive/CHG-1.json")["ETag"]
    s3 = Faulty(platform.s3)
    writes: list[str] = []
    s3.fail("put_object", lambda **kw: writes.append(kw["Key"]), times=1000)
    s3.fail("delete_object", lambda **kw: writes.append(kw["Key"]), times=1000)
    logs = Logs()
    t0 = utcnow()

    first = sweep(platform, at=t0, s3=s3, logs=logs)
    assert [(a.action, a.attempt) for a in first.actions] == [("redriven", 1)]
    [message] = drain(platform, queue)
    [record] = parse_message_body(message["Body"])
    assert record.bucket == platform.bucket and record.key_is_url_encoded and record.event_name == "ObjectCreated:Put"
    assert parse_trigger_key(record.key).key == key
    event = json.loads(message["Body"])["Records"][0]
    assert event["eventSource"] == "aws:s3" and event["s3"]["configurationId"] == "ttp-sweeper-redrive"
    assert tags(platform, key) == {REDRIVE_ATTEMPTS_TAG: "1", LAST_REDRIVE_TAG: t0.isoformat()}

    soon = sweep(platform, at=t0 + timedelta(minutes=5), s3=s3, logs=logs)
    assert [a.action for a in soon.actions] == ["waiting"]  # one threshold between attempts
    assert drain(platform, queue) == []

    sent = []
    for n in (2, 3):
        again = sweep(platform, at=t0 + timedelta(minutes=16 * (n - 1)), s3=s3, logs=logs)
        assert [(a.action, a.attempt) for a in again.actions] == [("redriven", n)]
        sent += drain(platform, queue)
    assert len(sent) == 2

    exhausted = sweep(platform, at=t0 + timedelta(minutes=48), s3=s3, logs=logs)
    assert [(a.action, a.attempt) for a in exhausted.actions] == [("exhausted", 3)]
    assert exhausted.customers[1].customer == "hts" and exhausted.customers[1].exhausted == 1
    assert drain(platform, queue) == []
    assert tags(platform, key)[REDRIVE_ATTEMPTS_TAG] == "3"
    assert logs.levels("redriven") == ["warning"] * 3 and logs.levels("exhausted") == ["error"]
    assert platform.trigger_exists("hts", "CHG-1")  # left for the alarms and the operator
    assert platform.metric_total("OrphanedTriggers", "hts") == 5  # 1 in each of the 5 passes

    # the sweeper never wrote archive/ (nor anything else): only tags, and messages
    assert writes == [] and s3.calls.get("put_object", 0) == 0 and s3.calls.get("delete_object", 0) == 0
    assert s3.calls["put_object_tagging"] == 3
    assert platform.s3.head_object(Bucket=platform.bucket, Key="archive/CHG-1.json")["ETag"] == archive_before


def test_redriven_event_is_processed_by_the_worker(platform: Platform) -> None:
    platform.submit("CHG-1", ["hts"])
    backdate(platform, "customers/hts/CHG-1.json", 20 * MIN)
    sweep(platform)
    [message] = drain(platform, platform.box.customers["hts"].queue_url)
    [result] = decide(message["Body"], platform.bucket, platform.processor("hts"), "sqs:redriven")
    assert result.outcome is Outcome.PROCESSED
    assert not platform.trigger_exists("hts", "CHG-1") and len(platform.emails("hts")) == 2
    after = sweep(platform)
    assert after.actions == [] and after.customers[1].orphaned == 0


def test_does_not_redrive_what_processing_cannot_fix(light: Platform) -> None:
    platform = light
    TriggerStore(platform.s3, platform.bucket).put(TriggerRef("hts", "CHG-MISS"), 1)  # no archive
    platform.submit("CHG-LIVE", ["hts"])
    set_lease(platform, "CHG-LIVE", "hts", timedelta(minutes=10))
    for change_id in ("CHG-MISS", "CHG-LIVE"):
        backdate(platform, f"customers/hts/{change_id}.json", 20 * MIN)
    logs = Logs()

    report = sweep(platform, logs=logs)
    assert {(a.change_id, a.action) for a in report.actions} == {
        ("CHG-MISS", "not_redrivable"),
        ("CHG-LIVE", "in_progress"),
    }
    assert depth(platform, platform.box.customers["hts"].queue_url) == (0, 0)
    assert tags(platform, "customers/hts/CHG-MISS.json") == {}
    assert logs.levels("not_redrivable") == ["error"]
    assert platform.metric_total("OrphanedTriggers", "hts") == 2


def test_a_failed_send_consumes_the_attempt_and_other_customers_go_on(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    backdate(platform, "customers/hts/CHG-1.json", 20 * MIN)
    backdate(platform, "customers/htsnonprod/CHG-1.json", 20 * MIN)
    sqs = Faulty(platform.sqs).fail("send_message", client_error("InternalError", 500))

    report = sweep(platform, sqs=sqs)
    assert not report.ok
    assert {(a.customer, a.action) for a in report.actions} == {("hts", "error"), ("htsnonprod", "redriven")}
    assert tags(platform, "customers/hts/CHG-1.json")[REDRIVE_ATTEMPTS_TAG] == "1"  # recorded before sending
    assert set(metrics_by_customer(platform)) == {"hts", "htsnonprod", "customer-a"}


def test_listing_failure_emits_no_metrics_and_reports(light: Platform) -> None:
    platform = light
    s3 = Faulty(platform.s3).fail("get_paginator", client_error("AccessDenied", 403))  # the listing
    report = sweep(platform, s3=s3)
    assert not report.ok and "cannot list" in report.errors[0]
    assert platform.metrics() == []  # missing data: the alarms treat it as breaching


def test_sweep_command_keeps_stdout_for_the_report(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, "customers/hts/CHG-1.json", 20 * MIN)
    result = run(monkeypatch, ops_env(platform), "sweep", "--json")
    assert result.exit_code == 0, result.stderr
    report = as_json(result)  # stdout is exactly one JSON document
    assert report["ok"] is True
    assert [(a["change_id"], a["action"]) for a in report["actions"]] == [("CHG-1", "redriven")]
    emf = [json.loads(line) for line in result.stderr.splitlines() if '"_aws"' in line]
    assert sorted(blob["CustomerCode"] for blob in emf) == ["customer-a", "hts", "htsnonprod"]
    logged = [json.loads(line) for line in result.stderr.splitlines() if '"component": "sweeper"' in line]
    assert logged and logged[0]["level"] == "WARNING" and logged[0]["change_id"] == "CHG-1"

    human = run(monkeypatch, ops_env(platform), "sweep")
    assert human.exit_code == 0 and "waiting" in human.stdout


def _fail_reading(key: str, exc: BaseException) -> Any:
    """A ``get_object`` fault that raises ``exc`` for ``key`` only (other reads go through)."""

    def fault(**kwargs: Any) -> None:
        if kwargs.get("Key") == key:
            raise exc

    return fault


@pytest.mark.parametrize(
    "failure",
    [client_error("SlowDown", 503), TypeError("'NoneType' object is not subscriptable")],
    ids=["s3-503-after-retries", "type-error"],
)
def test_one_unreadable_archive_does_not_blind_the_customer(light: Platform, failure: BaseException) -> None:
    platform = light
    platform.submit("CHG-BAD", ["hts"])
    platform.submit("CHG-OK", ["hts"])
    backdate(platform, "customers/hts/CHG-BAD.json", 30 * MIN)  # the oldest: listed first
    backdate(platform, "customers/hts/CHG-OK.json", 20 * MIN)
    s3 = Faulty(platform.s3).fail("get_object", _fail_reading("archive/CHG-BAD.json", failure), times=1000)
    logs = Logs()

    report = sweep(platform, s3=s3, logs=logs)

    # the metrics come from the listing, whatever the reads did
    hts = metrics_by_customer(platform)["hts"][0]
    assert hts["OrphanedTriggers"] == [2.0]
    [oldest] = hts["OldestTriggerAge"]
    assert 30 * MIN <= oldest < 31 * MIN
    # the other trigger's work went on
    actions = {a.change_id: a for a in report.actions}
    assert actions["CHG-OK"].action == "redriven"
    assert len(drain(platform, platform.box.customers["hts"].queue_url)) == 1
    # the failure is isolated, named by its key, logged and counted
    assert actions["CHG-BAD"].action == "error" and actions["CHG-BAD"].key == "customers/hts/CHG-BAD.json"
    assert type(failure).__name__ in actions["CHG-BAD"].detail
    [summary] = [c for c in report.customers if c.customer == "hts"]
    assert (summary.triggers, summary.orphaned, summary.redriven, summary.errors) == (2, 2, 1, 1)
    assert not report.ok
    logged = [extra for level, _m, extra in logs.lines if level in ("error", "exception") and extra.get("key")]
    assert [extra["key"] for extra in logged] == ["customers/hts/CHG-BAD.json"]
    assert hts["SweepErrors"] == [1.0]
    assert platform.metric_total("SweepErrors", "htsnonprod") == 0
