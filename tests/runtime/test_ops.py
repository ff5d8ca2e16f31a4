"""health, verify, stuck and cleanup against the in-process emulator, including the unhealthy cases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

from runtime.archive.documents import ArchiveDocument, ProcessingLease, utcnow
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerInfo, TriggerStore
from runtime.contract.keys import TriggerRef
from runtime.ops import core as ops
from runtime.pipeline.state_machine import Outcome
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    as_json,
    backdate,
    clients,
    depth,
    ecs_services,
    light_platform,
    ops_env,
    put_raw,
    queues,
    record_processed,
    run,
    s3_event,
)

MIN20 = 20 * 60


@pytest.fixture
def light(aws_credentials: None) -> Iterator[Platform]:
    with mock_aws():
        yield light_platform()


def leave_trigger_after_processing(platform: Platform, code: str, change_id: str) -> None:
    """Process for real, but the trigger delete fails: the archive records it, the trigger stays."""
    faulty = Faulty(platform.s3).fail("delete_object", client_error("InternalError", 500))
    result = platform.processor(code, s3=faulty).process(TriggerRef(code, change_id), "sqs:m")
    assert result.outcome is Outcome.PROCESSED and platform.trigger_exists(code, change_id)


def set_lease(platform: Platform, change_id: str, code: str, expires_in: timedelta) -> None:
    def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        lease = ProcessingLease(owner="sqs:other", revision=doc.revision, expires_at=utcnow() + expires_in)
        doc.leases = {**doc.leases, code: lease}
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(change_id, mutate)


# ---- durations and times -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (" 15M ", 900)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert ops.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "15x", "m", "-5m", "15 minutes", "1h-3m"])
def test_parse_duration_rejects_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"use a number with a unit .*e\.g\. 90s, 15m"):
        ops.parse_duration(text)


def test_parse_time_iso_date_and_relative() -> None:
    ref = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert ops.parse_time("2025-01-01T10:00:00Z") == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
    assert ops.parse_time("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)
    assert ops.parse_time("2025-01-01T10:00:00+02:00") == datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    assert ops.parse_time("2h", reference=ref) == datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        ops.parse_time("yesterday")


# ---- health --------------------------------------------------------------------------------------


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
    report = ops.health(clients(platform), platform.bucket, queues(platform), cluster=None)
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


def test_aws_errors_say_what_to_do(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    result = run(monkeypatch, ops_env(platform, TTP_BUCKET_NAME="no-such-bucket-here"), "cleanup")
    assert result.exit_code == 3
    assert "NoSuchBucket" in result.stderr and "check TTP_BUCKET_NAME" in result.stderr


# ---- verify --------------------------------------------------------------------------------------


def test_verify_follows_a_change_to_completion(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    platform.processor("hts").process(TriggerRef("hts", "CHG-1"), "sqs:m1")
    set_lease(platform, "CHG-1", "htsnonprod", timedelta(minutes=5))

    result = run(monkeypatch, env, "verify", "CHG-1", "--json")
    report = as_json(result)
    assert result.exit_code == 1
    assert report["complete"] is False and report["pending"] == ["htsnonprod"]
    rows = {c["customer"]: c for c in report["customers"]}
    assert rows["hts"]["state"] == "processed" and rows["hts"]["processed_revisions"] == [1]
    assert rows["hts"]["emails_sent"] == 2 and rows["hts"]["trigger"] is None
    assert rows["htsnonprod"]["state"] == "processing"
    assert rows["htsnonprod"]["lease"]["owner"] == "sqs:other" and rows["htsnonprod"]["lease"]["live"] is True
    assert rows["htsnonprod"]["trigger"]["key"] == "customers/htsnonprod/CHG-1.json"
    assert [m["modification_type"] for m in report["modifications"]] == ["submitted", "processed"]

    set_lease(platform, "CHG-1", "htsnonprod", timedelta(minutes=-1))  # expired: the message retries
    platform.processor("htsnonprod").process(TriggerRef("htsnonprod", "CHG-1"), "sqs:m2")
    done = run(monkeypatch, env, "verify", "CHG-1")
    assert done.exit_code == 0, done.stdout
    assert "COMPLETE" in done.stdout

    doc = {"change_id": "CHG-1", "title": "Change CHG-1", "customers": ["hts", "htsnonprod"]}
    store, triggers = ArchiveStore(platform.s3, platform.bucket), TriggerStore(platform.s3, platform.bucket)
    submit_change(store, triggers, doc, user_id="tester", customers=["hts"])  # revision 2, only hts notified
    again = as_json(run(monkeypatch, env, "verify", "CHG-1", "--json"))
    rows = {c["customer"]: c for c in again["customers"]}
    assert again["revision"] == 2
    assert rows["hts"]["state"] == "pending" and rows["hts"]["processed_revisions"] == [1]
    assert rows["htsnonprod"]["state"] == "not_triggered"


def test_verify_missing_and_invalid_archive_exit_3(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    env = ops_env(platform)
    missing = run(monkeypatch, env, "verify", "CHG-NONE")
    assert missing.exit_code == 3 and "archive/CHG-NONE.json does not exist" in missing.stdout
    put_raw(platform, "archive/CHG-BAD.json", '{"change_id": "CHG-BAD"}')
    TriggerStore(platform.s3, platform.bucket).put(TriggerRef("hts", "CHG-BAD"), 1)
    invalid = as_json(run(monkeypatch, env, "verify", "CHG-BAD", "--json"))
    assert "title" in invalid["error"] and invalid["other_triggers"][0]["customer"] == "hts"
    assert run(monkeypatch, env, "verify", "../etc").exit_code == 2


def test_verify_meeting_metadata_is_shown(light: Platform) -> None:
    platform = light
    platform.submit("CHG-M", ["hts"])

    def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.meeting_metadata = {"meeting_id": "AAMk-1", "join_url": "https://teams/x"}  # type: ignore[assignment]
        return doc

    ArchiveStore(platform.s3, platform.bucket).update("CHG-M", mutate)
    report = ops.verify(clients(platform), platform.bucket, "CHG-M")
    assert report.meeting_metadata is not None and report.meeting_metadata["meeting_id"] == "AAMk-1"


# ---- stuck ---------------------------------------------------------------------------------------


def test_stuck_diagnoses_each_situation_without_consuming(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    box, triggers = platform.box.customers, TriggerStore(platform.s3, platform.bucket)
    platform.submit("CHG-PROC", ["hts"])
    record_processed(platform, "CHG-PROC", "hts")
    platform.submit("CHG-DLQ", ["hts"])
    platform.sqs.send_message(
        QueueUrl=box["hts"].dlq_url, MessageBody=s3_event(platform.bucket, "customers/hts/CHG-DLQ.json")
    )
    triggers.put(TriggerRef("hts", "CHG-MISS"), 1)
    put_raw(platform, "archive/CHG-BAD.json", "{not json")
    triggers.put(TriggerRef("hts", "CHG-BAD"), 1)
    platform.submit("CHG-LIVE", ["htsnonprod"])
    set_lease(platform, "CHG-LIVE", "htsnonprod", timedelta(minutes=5))
    platform.submit("CHG-EXP", ["htsnonprod"])
    set_lease(platform, "CHG-EXP", "htsnonprod", timedelta(minutes=-5))
    platform.submit("CHG-Q", ["htsnonprod"])
    platform.sqs.send_message(
        QueueUrl=box["htsnonprod"].queue_url, MessageBody=s3_event(platform.bucket, "customers/htsnonprod/CHG-Q.json")
    )
    platform.submit("CHG-LOST", ["customer-a"])
    triggers.put(TriggerRef("customer-a", "CHG-PROC"), 1)  # the archive lists only hts
    platform.submit("CHG-EXH", ["customer-a"])
    platform.s3.put_object_tagging(
        Bucket=platform.bucket,
        Key="customers/customer-a/CHG-EXH.json",
        Tagging={"TagSet": [{"Key": ops.REDRIVE_ATTEMPTS_TAG, "Value": "3"}]},
    )
    for info in list(triggers.list()):
        backdate(platform, info.ref.key, MIN20)
    platform.submit("CHG-YOUNG", ["customer-a"])  # 0 minutes old: not stuck

    report = ops.stuck(
        clients(platform), platform.bucket, queues(platform), older_than=timedelta(minutes=15), max_redrive_attempts=3
    )
    found = {(t.customer, t.change_id): t.diagnosis for t in report.triggers}
    assert found == {
        ("hts", "CHG-PROC"): "already_processed",
        ("hts", "CHG-DLQ"): "in_dlq",
        ("hts", "CHG-MISS"): "archive_missing",
        ("hts", "CHG-BAD"): "archive_invalid",
        ("htsnonprod", "CHG-LIVE"): "lease_live",
        ("htsnonprod", "CHG-EXP"): "lease_expired",
        ("htsnonprod", "CHG-Q"): "queued",
        ("customer-a", "CHG-LOST"): "not_delivered",
        ("customer-a", "CHG-PROC"): "not_listed",
        ("customer-a", "CHG-EXH"): "redrive_exhausted",
    }
    by_id = {(t.customer, t.change_id): t for t in report.triggers}
    assert "cleanup --customer hts" in by_id["hts", "CHG-PROC"].resolution
    assert "dlq redrive --customer hts" in by_id["hts", "CHG-DLQ"].resolution
    assert any("received" in d for d in by_id["hts", "CHG-DLQ"].details)
    assert by_id["customer-a", "CHG-EXH"].redrive_attempts == 3
    # nothing was consumed: the DLQ message and the queued message are still there, visible
    assert depth(platform, box["hts"].dlq_url) == (1, 0)
    assert depth(platform, box["htsnonprod"].queue_url) == (1, 0)
    queued = platform.sqs.receive_message(QueueUrl=box["htsnonprod"].queue_url, AttributeNames=["All"])["Messages"][0]
    assert queued["Attributes"]["ApproximateReceiveCount"] == "1"  # stuck never received from the source queue

    cli = run(monkeypatch, ops_env(platform), "stuck", "--older-than", "15m", "--customer", "hts", "--json")
    assert cli.exit_code == 1
    assert {t["change_id"] for t in as_json(cli)["triggers"]} == {"CHG-PROC", "CHG-DLQ", "CHG-MISS", "CHG-BAD"}
    assert run(monkeypatch, ops_env(platform), "stuck", "--older-than", "1h").exit_code == 0


def test_stuck_reports_a_deleted_archive_with_history(light: Platform) -> None:
    platform = light
    platform.submit("CHG-DEL", ["hts"])
    platform.s3.delete_object(Bucket=platform.bucket, Key="archive/CHG-DEL.json")
    report = ops.stuck(clients(platform), platform.bucket, queues(platform), older_than=timedelta(0))
    [item] = report.triggers
    assert item.diagnosis == "archive_missing"
    assert any("earlier versions" in d for d in item.details) and "restore CHG-DEL" in item.resolution


# ---- cleanup -------------------------------------------------------------------------------------


def test_cleanup_deletes_only_recorded_triggers(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    leave_trigger_after_processing(platform, "hts", "CHG-1")

    dry = run(monkeypatch, env, "cleanup", "--dry-run", "--json")
    payload = as_json(dry)
    assert dry.exit_code == 0
    assert (payload["would_delete"], payload["deleted"], payload["kept"]) == (1, 0, 1)
    assert platform.trigger_exists("hts") and platform.trigger_exists("htsnonprod")

    real = as_json(run(monkeypatch, env, "cleanup", "--json"))
    actions = {(i["customer"], i["action"]) for i in real["items"]}
    assert actions == {("hts", "deleted"), ("htsnonprod", "kept")}
    assert not platform.trigger_exists("hts") and platform.trigger_exists("htsnonprod")
    assert platform.processed_entries("CHG-1")[0]["customer_code"] == "hts"  # archive untouched


def test_cleanup_never_deletes_a_trigger_replaced_after_listing(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    record_processed(platform, "CHG-1", "hts")
    real = next(TriggerStore(platform.s3, platform.bucket).list("hts"))
    stale = TriggerInfo(real.ref, '"0123456789abcdef0123456789abcdef"', real.last_modified)
    [item] = list(ops.iter_cleanup(platform.s3, platform.bucket, [stale], dry_run=False, reference=utcnow()))
    assert item.action == "replaced"
    assert platform.trigger_exists("hts")


def test_cleanup_reports_failed_delete_and_exits_1(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    record_processed(platform, "CHG-1", "hts")
    faulty = Faulty(platform.s3).fail("delete_object", client_error("AccessDenied", 403))
    report = ops.cleanup(clients(platform, s3=faulty), platform.bucket)
    assert [i.action for i in report.items] == ["failed"]
    assert report.failed and platform.trigger_exists("hts")
