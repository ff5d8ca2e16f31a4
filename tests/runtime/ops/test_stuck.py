"""stuck against the in-process emulator: one diagnosis per situation, nothing consumed."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from runtime.archive.triggers import TriggerStore
from runtime.contract.keys import TriggerRef
from runtime.ops.stuck import shell_word, stuck
from runtime.ops.triggers_view import REDRIVE_ATTEMPTS_TAG
from tests.support.aws_platform import Platform
from tests.support.ops_platform import (
    UNSAFE_TRIGGER_KEYS,
    as_json,
    backdate,
    clients,
    depth,
    ops_env,
    put_raw,
    put_unsafe_triggers,
    queues,
    record_processed,
    run,
    s3_event,
    set_lease,
)

MIN20 = 20 * 60


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
        Tagging={"TagSet": [{"Key": REDRIVE_ATTEMPTS_TAG, "Value": "3"}]},
    )
    for info in list(triggers.list()):
        backdate(platform, info.ref.key, MIN20)
    platform.submit("CHG-YOUNG", ["customer-a"])  # 0 minutes old: not stuck

    report = stuck(
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
    report = stuck(clients(platform), platform.bucket, queues(platform), older_than=timedelta(0))
    [item] = report.triggers
    assert item.diagnosis == "archive_missing"
    assert any("earlier versions" in d for d in item.details) and "restore CHG-DEL" in item.resolution


def test_stuck_lists_objects_that_are_not_valid_triggers(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    unsafe = put_unsafe_triggers(platform, age_seconds=MIN20)
    put_raw(platform, "customers/hts/young one.json", "{}")  # younger than the threshold: not stuck yet

    report = stuck(clients(platform), platform.bucket, queues(platform), older_than=timedelta(minutes=15))
    found = {t.key: t for t in report.triggers}
    assert sorted(found) == sorted(unsafe)
    assert {t.diagnosis for t in found.values()} == {"invalid_trigger_key"}
    assert found["customers/hts/CHG 1 [bold red]boom[/].json"].customer == "hts"
    assert found["customers/Not A Code/CHG-4.json"].customer is None  # no customer to name
    assert all("cleanup --remove-invalid" in t.resolution for t in found.values())
    assert report.needs_attention

    env = ops_env(platform)
    cli = run(monkeypatch, env, "stuck", "--older-than", "15m", "--customer", "hts", "--json")
    assert cli.exit_code == 1
    assert sorted(t["key"] for t in as_json(cli)["triggers"]) == sorted(k for k in unsafe if "/hts/" in k)

    shown = run(monkeypatch, env, "stuck", "--older-than", "15m").stdout
    assert "\x1b" not in shown and "\\x1b[2J" in shown
    assert "[bold red]boom[/]" in shown and "invalid_trigger_key" in shown


@pytest.mark.parametrize("key", [*UNSAFE_TRIGGER_KEYS, "customers/hts/it's\\here\u202e.json\x07"])
def test_the_resolution_quotes_a_key_so_that_bash_gets_it_back_exactly(key: str) -> None:
    echoed = subprocess.run(["bash", "-c", f"printf %s {shell_word(key)}"], capture_output=True, check=True)
    assert echoed.stdout.decode() == key
