"""The sweeper against the emulator: metrics for every customer, clean-up, bounded re-drives, no archive writes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from runtime.archive.documents import ArchiveDocument, ProcessingLease, utcnow
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract.keys import TriggerRef, fold_segment_key, parse_trigger_key
from runtime.contract.settings import OpsSettings
from runtime.ops.triggers_view import LAST_REDRIVE_TAG, REDRIVE_ATTEMPTS_TAG
from runtime.pipeline import Outcome, decide
from runtime.sweeper import Sweeper, SweepReport
from runtime.sweeper.fanout import list_archives
from runtime.telemetry.metrics import MetricsFactory
from runtime.worker import parse_message_body
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    as_json,
    backdate,
    depth,
    drain,
    ops_env,
    put_processing,
    put_raw,
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
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("component") == "sweeper"]  # the shared logger's JSON lines
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


# ---- fan-out repair: a submission whose trigger write failed after its archive write ------------------


def partial_submit(platform: Platform, change_id: str, customers: list[str], failing: str, **fields: Any) -> None:
    """``submit`` for ``customers`` whose trigger PUT for ``failing`` fails (after the archive write)."""
    s3 = Faulty(platform.s3).fail(
        "put_object",
        _fail_writing(f"customers/{failing}/{change_id}.json", client_error("InternalError", 500)),
        times=1000,
    )
    doc = {"change_id": change_id, "title": f"Change {change_id}", "customers": customers, **fields}
    with pytest.raises(ClientError):
        submit_change(ArchiveStore(s3, platform.bucket), TriggerStore(s3, platform.bucket), doc, user_id="tester")
    assert not platform.trigger_exists(failing, change_id)


def _fail_writing(key: str, exc: BaseException) -> Any:
    def fault(**kwargs: Any) -> None:
        if kwargs.get("Key") == key:
            raise exc

    return fault


def trigger_body(platform: Platform, code: str, change_id: str) -> dict[str, Any]:
    body = platform.s3.get_object(Bucket=platform.bucket, Key=f"customers/{code}/{change_id}.json")["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_recreates_the_trigger_a_partial_submit_did_not_write(light: Platform) -> None:
    platform = light
    partial_submit(platform, "CHG-1", ["hts", "htsnonprod", "customer-a"], failing="htsnonprod")
    backdate(platform, "archive/CHG-1.json", 10 * MIN)
    hts_etag = platform.s3.head_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json")["ETag"]
    logs = Logs()

    report = sweep(platform, logs=logs)

    # the failed PUT stopped the submission: customer-a's trigger was never attempted either.
    # Both are written as submit writes them: same key, same body
    for code in ("htsnonprod", "customer-a"):
        assert trigger_body(platform, code, "CHG-1") == {"change_id": "CHG-1", "customer_code": code, "revision": 1}
        assert platform.metric_total("TriggersRecreated", code) == 1
    assert sorted((a.customer, a.change_id, a.action) for a in report.actions) == [
        ("customer-a", "CHG-1", "recreated"),
        ("htsnonprod", "CHG-1", "recreated"),
    ]
    assert platform.metric_total("TriggersRecreated", "hts") == 0
    assert platform.s3.head_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json")["ETag"] == hts_etag
    assert next(m for m in report.customers if m.customer == "htsnonprod").recreated == 1
    assert report.ok
    logged = [extra for _l, _m, extra in logs.lines if extra.get("action") == "recreated"]
    assert sorted(extra["key"] for extra in logged) == [
        "customers/customer-a/CHG-1.json",
        "customers/htsnonprod/CHG-1.json",
    ]
    assert {extra["revision"] for extra in logged} == {1}

    again = sweep(platform)  # the trigger is there now: nothing more
    assert again.actions == [] and sum(c.recreated for c in again.customers) == 0


def test_a_recreated_trigger_is_processed_by_the_worker(platform: Platform) -> None:
    partial_submit(platform, "CHG-1", ["hts", "htsnonprod"], failing="htsnonprod")
    backdate(platform, "archive/CHG-1.json", 10 * MIN)
    sweep(platform)
    result = platform.processor("htsnonprod").process(TriggerRef("htsnonprod", "CHG-1"), "sqs:recreated")
    assert result.outcome is Outcome.PROCESSED and len(platform.emails("htsnonprod")) == 2
    assert platform.result("htsnonprod", 1) is not None
    assert sweep(platform).actions == []  # recorded now: never re-created again


def test_recreates_for_a_cancelled_revision_too_it_mails_the_cancellation(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    for code in ("hts", "htsnonprod"):
        record_processed(platform, "CHG-1", code)
        platform.s3.delete_object(Bucket=platform.bucket, Key=f"customers/{code}/CHG-1.json")
    partial_submit(platform, "CHG-1", ["hts", "htsnonprod"], failing="hts", status="cancelled")
    backdate(platform, "archive/CHG-1.json", 10 * MIN)

    report = sweep(platform)
    assert sorted((a.customer, a.action) for a in report.actions) == [("hts", "recreated"), ("htsnonprod", "recreated")]
    assert trigger_body(platform, "hts", "CHG-1")["revision"] == 2


def test_does_not_recreate_what_has_no_work_left_or_is_not_due(light: Platform) -> None:
    platform = light
    # folded: the archive records the result
    partial_submit(platform, "CHG-FOLDED", ["hts", "htsnonprod"], failing="htsnonprod")
    record_processed(platform, "CHG-FOLDED", "htsnonprod")
    # recorded in the processing object, not folded yet
    partial_submit(platform, "CHG-RECORDED", ["hts", "htsnonprod"], failing="htsnonprod")
    put_processing(platform, "CHG-RECORDED", "htsnonprod", results={1: (2, 0, 2)})
    # processing under way (a live lease) — e.g. a manual `process`
    partial_submit(platform, "CHG-LEASED", ["hts", "htsnonprod"], failing="htsnonprod")
    put_processing(platform, "CHG-LEASED", "htsnonprod", lease=(1, timedelta(minutes=5)))
    # superseded: revision 2 no longer targets htsnonprod
    partial_submit(platform, "CHG-SUPERSEDED", ["hts", "htsnonprod"], failing="htsnonprod")
    _submit_for(platform, "CHG-SUPERSEDED", ["hts", "htsnonprod"], targets=["hts"])
    # never targeted: the submission named only hts although the document lists both
    _submit_for(platform, "CHG-SUBSET", ["hts", "htsnonprod"], targets=["hts"])
    # too fresh: the submitter may still be writing its triggers
    partial_submit(platform, "CHG-FRESH", ["hts", "htsnonprod"], failing="htsnonprod")
    # too old: outside the window, not even read
    partial_submit(platform, "CHG-ANCIENT", ["hts", "htsnonprod"], failing="htsnonprod")
    for change_id in ("CHG-FOLDED", "CHG-RECORDED", "CHG-LEASED", "CHG-SUPERSEDED", "CHG-SUBSET"):
        backdate(platform, f"archive/{change_id}.json", 10 * MIN)
    backdate(platform, "archive/CHG-ANCIENT.json", 2 * 24 * 60 * MIN)
    s3 = Faulty(platform.s3)
    reads: list[str] = []
    s3.fail("get_object", lambda **kw: reads.append(kw["Key"]), times=1000)

    report = sweep(platform, s3=s3)

    assert [a for a in report.actions if a.action == "recreated"] == []
    for change_id in ("CHG-FOLDED", "CHG-RECORDED", "CHG-LEASED", "CHG-SUPERSEDED", "CHG-SUBSET", "CHG-FRESH"):
        assert not platform.trigger_exists("htsnonprod", change_id), change_id
    assert platform.metric_total("TriggersRecreated") == 0
    assert "archive/CHG-ANCIENT.json" not in reads and "archive/CHG-FRESH.json" not in reads
    # a folded result needs no processing read; the others are read once
    assert "processing/htsnonprod/CHG-FOLDED.json" not in reads
    assert reads.count("processing/htsnonprod/CHG-RECORDED.json") == 1
    assert report.ok


def _submit_for(platform: Platform, change_id: str, listed: list[str], *, targets: list[str]) -> None:
    doc = {"change_id": change_id, "title": f"Change {change_id}", "customers": listed}
    store = ArchiveStore(platform.s3, platform.bucket)
    submit_change(store, TriggerStore(platform.s3, platform.bucket), doc, user_id="tester", customers=targets)


def test_a_trigger_written_meanwhile_is_never_overwritten(light: Platform) -> None:
    platform = light
    partial_submit(platform, "CHG-1", ["hts", "htsnonprod"], failing="htsnonprod")
    backdate(platform, "archive/CHG-1.json", 10 * MIN)
    key = "customers/htsnonprod/CHG-1.json"

    def submitter_writes_it_first(**kwargs: Any) -> None:
        if kwargs.get("Key") == key:
            platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=b'{"written": "by the submitter"}')

    s3 = Faulty(platform.s3).fail("put_object", submitter_writes_it_first)
    report = sweep(platform, s3=s3)
    assert trigger_body(platform, "htsnonprod", "CHG-1") == {"written": "by the submitter"}
    assert [a.action for a in report.actions] == ["replaced"] and report.ok
    assert platform.metric_total("TriggersRecreated") == 0


def test_an_unreadable_archive_does_not_stop_the_repair_of_others(light: Platform) -> None:
    platform = light
    for change_id in ("CHG-A", "CHG-B"):
        partial_submit(platform, change_id, ["hts", "htsnonprod"], failing="htsnonprod")
        backdate(platform, f"archive/{change_id}.json", 10 * MIN)
    for change_id in ("CHG-A", "CHG-B"):  # no triggers at all: only the repair reads these archives
        platform.s3.delete_object(Bucket=platform.bucket, Key=f"customers/hts/{change_id}.json")
    s3 = Faulty(platform.s3).fail(
        "get_object", _fail_reading("archive/CHG-A.json", client_error("SlowDown", 503)), 1000
    )
    logs = Logs()

    report = sweep(platform, s3=s3, logs=logs)
    assert {(a.customer, a.change_id) for a in report.actions if a.action == "recreated"} == {
        ("hts", "CHG-B"),
        ("htsnonprod", "CHG-B"),
    }
    assert not report.ok and any("archive/CHG-A.json" in e for e in report.errors)
    assert any(extra.get("key") == "archive/CHG-A.json" for level, _m, extra in logs.lines if level == "exception")
    assert {c.customer for c in report.customers} == {"hts", "htsnonprod", "customer-a"}  # metrics still emitted


class ListingCounter:
    """Wraps an S3 client; records the prefix of every ``list_objects_v2`` pagination."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.prefixes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def get_paginator(self, name: str) -> Any:
        real = self._target.get_paginator(name)
        prefixes = self.prefixes

        class Paginator:
            def paginate(self, **kwargs: Any) -> Any:
                prefixes.append(kwargs.get("Prefix", ""))
                return real.paginate(**kwargs)

        return Paginator()


def test_the_repair_reads_each_due_archive_once_and_nothing_for_folded_changes(light: Platform) -> None:
    """The cost stated in the sweeper's docstring: with N changes whose results are all folded (no
    triggers left), a pass lists ``archive/`` once, reads each due archive once and no processing object."""
    platform = light
    changes = [f"CHG-{n}" for n in range(12)]
    for change_id in changes:
        platform.submit(change_id, ["hts", "htsnonprod"])
        for code in ("hts", "htsnonprod"):
            record_processed(platform, change_id, code)
            platform.s3.delete_object(Bucket=platform.bucket, Key=f"customers/{code}/{change_id}.json")
        backdate(platform, f"archive/{change_id}.json", 10 * MIN)
    s3 = Faulty(platform.s3)
    reads: list[str] = []
    s3.fail("get_object", lambda **kw: reads.append(kw["Key"]), times=1000)
    counting = ListingCounter(s3)

    report = sweep(platform, s3=counting)
    assert report.ok and report.archives_checked == len(changes)
    assert counting.prefixes == ["customers/", "archive/"]
    assert sorted(reads) == sorted(f"archive/{c}.json" for c in changes)  # once each, no processing/ read
    assert s3.calls.get("put_object", 0) == 0


def test_a_pass_checks_at_most_the_most_recent_archives(light: Platform) -> None:
    platform = light
    partial_submit(platform, "CHG-OLDER", ["hts", "htsnonprod"], failing="htsnonprod")
    partial_submit(platform, "CHG-NEWER", ["hts", "htsnonprod"], failing="htsnonprod")
    backdate(platform, "archive/CHG-OLDER.json", 20 * MIN)
    backdate(platform, "archive/CHG-NEWER.json", 10 * MIN)
    config = OpsSettings(bucket_name=platform.bucket, customer_queues=queues(platform))
    metrics = MetricsFactory("CustomMetrics", platform.metrics_stream)
    sweeper = Sweeper(platform.s3, platform.sqs, config, metrics, log=Logs(), max_archives_checked_per_pass=1)

    first = sweeper.run()
    assert first.archives_checked == 1
    assert [(a.change_id, a.action) for a in first.actions] == [("CHG-NEWER", "recreated")]
    assert not platform.trigger_exists("htsnonprod", "CHG-OLDER")


def test_an_archive_rewritten_since_the_listing_waits_for_the_next_pass(light: Platform) -> None:
    platform = light
    partial_submit(platform, "CHG-1", ["hts", "htsnonprod"], failing="htsnonprod")
    backdate(platform, "archive/CHG-1.json", 10 * MIN)
    rewritten: list[str] = []

    def rewrite_before_the_read(**kwargs: Any) -> None:
        if kwargs.get("Key") == "archive/CHG-1.json" and not rewritten:  # e.g. the coordinator folds a result
            record_processed(platform, "CHG-1", "hts")
            rewritten.append(kwargs["Key"])

    s3 = Faulty(platform.s3).fail("get_object", rewrite_before_the_read, times=1000)
    first = sweep(platform, s3=s3)
    assert rewritten and first.actions == [] and not platform.trigger_exists("htsnonprod")

    backdate(platform, "archive/CHG-1.json", 10 * MIN)
    second = sweep(platform)
    assert [(a.customer, a.action) for a in second.actions] == [("htsnonprod", "recreated")]


def test_an_unusable_processing_object_is_reported_not_guessed(light: Platform) -> None:
    platform = light
    partial_submit(platform, "CHG-INVALID", ["hts", "htsnonprod"], failing="htsnonprod")
    put_raw(platform, "processing/htsnonprod/CHG-INVALID.json", b"{not json")
    partial_submit(platform, "CHG-DENIED", ["hts", "htsnonprod"], failing="htsnonprod")
    for change_id in ("CHG-INVALID", "CHG-DENIED"):
        backdate(platform, f"archive/{change_id}.json", 10 * MIN)
    denied = _fail_reading("processing/htsnonprod/CHG-DENIED.json", client_error("AccessDenied", 403))
    s3 = Faulty(platform.s3).fail("get_object", denied, times=1000)

    report = sweep(platform, s3=s3)
    assert sorted((a.change_id, a.action) for a in report.actions) == [
        ("CHG-DENIED", "error"),
        ("CHG-INVALID", "not_recreated"),
    ]
    assert not platform.trigger_exists("htsnonprod", "CHG-INVALID")
    assert not platform.trigger_exists("htsnonprod", "CHG-DENIED")
    assert platform.metric_total("SweepErrors", "htsnonprod") == 1


def test_only_configured_customers_get_their_trigger_back(light: Platform) -> None:
    platform = light
    partial_submit(platform, "CHG-1", ["hts", "htsnonprod"], failing="hts")
    backdate(platform, "archive/CHG-1.json", 10 * MIN)
    config = OpsSettings(bucket_name=platform.bucket, customer_queues={"hts": queues(platform)["hts"]})
    metrics = MetricsFactory("CustomMetrics", platform.metrics_stream)

    report = Sweeper(platform.s3, platform.sqs, config, metrics, log=Logs()).run()
    assert [(a.customer, a.action) for a in report.actions] == [("hts", "recreated")]
    assert not platform.trigger_exists("htsnonprod")  # offboarded here: no queue would take its event


def test_the_archive_listing_skips_the_fold_segments(light: Platform) -> None:
    """A change folded for many customers keeps its results in ``archive/{id}/folds/``, one object per
    fold: a pass's listing of ``archive/`` must stay one request per 1,000 *changes*, not per 1,000 of
    their segments (1,001 segments here: two pages, and 1,002 keys parsed, without the delimiter)."""
    platform = light
    platform.submit("CHG-SEGMENTED", ["hts", "htsnonprod"])
    for seq in range(1, 1002):
        platform.s3.put_object(Bucket=platform.bucket, Key=fold_segment_key("CHG-SEGMENTED", seq), Body=b"{}")
    pages: list[int] = []

    class PageCounter:
        def __init__(self, target: Any) -> None:
            self._target = target

        def __getattr__(self, name: str) -> Any:
            return getattr(self._target, name)

        def get_paginator(self, name: str) -> Any:
            real = self._target.get_paginator(name)

            class Paginator:
                def paginate(self, **kwargs: Any) -> Any:
                    for page in real.paginate(**kwargs):
                        pages.append(len(page.get("Contents", [])))
                        yield page

            return Paginator()

    listed = list_archives(PageCounter(platform.s3), platform.bucket)
    assert [a.key for a in listed] == ["archive/CHG-SEGMENTED.json"]
    assert pages == [1]
