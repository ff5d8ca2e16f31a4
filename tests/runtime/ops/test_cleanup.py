"""cleanup against the in-process emulator: only recorded triggers are deleted, IfMatch their ETag."""

from __future__ import annotations

import pytest

from runtime.archive.documents import utcnow
from runtime.archive.triggers import TriggerInfo, TriggerStore
from runtime.ops.cleanup import cleanup, iter_cleanup
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    as_json,
    clients,
    leave_trigger_after_processing,
    ops_env,
    record_processed,
    run,
)

MIN20 = 20 * 60


def test_cleanup_deletes_only_recorded_triggers(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    leave_trigger_after_processing(platform, "hts", "CHG-1")  # recorded in processing/hts/CHG-1.json only
    archive_before = platform.archive("CHG-1")

    dry = run(monkeypatch, env, "cleanup", "--dry-run", "--json")
    payload = as_json(dry)
    assert dry.exit_code == 0
    assert (payload["would_delete"], payload["deleted"], payload["kept"]) == (1, 0, 1)
    assert platform.trigger_exists("hts") and platform.trigger_exists("htsnonprod")

    real = as_json(run(monkeypatch, env, "cleanup", "--json"))
    actions = {(i["customer"], i["action"]) for i in real["items"]}
    assert actions == {("hts", "deleted"), ("htsnonprod", "kept")}
    assert not platform.trigger_exists("hts") and platform.trigger_exists("htsnonprod")
    assert platform.archive("CHG-1") == archive_before  # cleanup never writes the archive
    assert platform.processing("hts")["results"]["1"]["sent"] == 2  # the record it relied on


def test_cleanup_never_deletes_a_trigger_replaced_after_listing(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    record_processed(platform, "CHG-1", "hts")
    real = next(TriggerStore(platform.s3, platform.bucket).list("hts"))
    stale = TriggerInfo(real.ref, '"0123456789abcdef0123456789abcdef"', real.last_modified)
    [item] = list(iter_cleanup(platform.s3, platform.bucket, [stale], dry_run=False, reference=utcnow()))
    assert item.action == "replaced"
    assert platform.trigger_exists("hts")


def test_cleanup_reports_failed_delete_and_exits_1(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    record_processed(platform, "CHG-1", "hts")
    faulty = Faulty(platform.s3).fail("delete_object", client_error("AccessDenied", 403))
    report = cleanup(clients(platform, s3=faulty), platform.bucket)
    assert [i.action for i in report.items] == ["failed"]
    assert report.failed and platform.trigger_exists("hts")
