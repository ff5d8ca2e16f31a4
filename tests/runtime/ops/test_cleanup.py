"""cleanup against the in-process emulator: only recorded triggers are deleted, IfMatch their ETag."""

from __future__ import annotations

import pytest

from runtime.archive.documents import utcnow
from runtime.archive.triggers import TriggerInfo, TriggerStore
from runtime.ops.cleanup import cleanup, iter_cleanup
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    UNSAFE_TRIGGER_KEYS,
    as_json,
    clients,
    leave_trigger_after_processing,
    ops_env,
    put_unsafe_triggers,
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


def test_cleanup_lists_invalid_trigger_keys_and_removes_one_only_when_asked(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = light
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts"])
    record_processed(platform, "CHG-1", "hts")
    unsafe = put_unsafe_triggers(platform)
    escape_key = "customers/hts/CHG-2.json\x1b[2J"

    listed = run(monkeypatch, env, "cleanup", "--json")
    payload = as_json(listed)
    assert listed.exit_code == 1  # they need a decision
    assert [(i["change_id"], i["action"]) for i in payload["items"]] == [("CHG-1", "deleted")]
    assert sorted(o["key"] for o in payload["invalid"]) == sorted(unsafe)  # verbatim
    assert {o["action"] for o in payload["invalid"]} == {"kept"}
    assert {o["diagnosis"] for o in payload["invalid"]} == {"invalid_trigger_key"}
    assert all(exists(platform, key) for key in unsafe)  # never removed silently

    shown = run(monkeypatch, env, "cleanup", "--dry-run").stdout
    assert "\x1b" not in shown and "\\x1b[2J" in shown and "[bold red]boom[/]" in shown

    dry = as_json(run(monkeypatch, env, "cleanup", "--dry-run", "--remove-invalid", escape_key, "--json"))
    assert {o["key"]: o["action"] for o in dry["invalid"]}[escape_key] == "would_remove"
    assert exists(platform, escape_key)

    removed = run(monkeypatch, env, "cleanup", "--remove-invalid", escape_key, "--json")
    actions = {o["key"]: o["action"] for o in as_json(removed)["invalid"]}
    assert actions.pop(escape_key) == "removed" and set(actions.values()) == {"kept"}
    assert not exists(platform, escape_key)
    assert all(exists(platform, key) for key in unsafe if key != escape_key)


def test_cleanup_removes_only_objects_it_lists_as_invalid(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts"])
    put_unsafe_triggers(platform)

    valid = run(monkeypatch, env, "cleanup", "--remove-invalid", "customers/hts/CHG-1.json")
    assert valid.exit_code == 2 and "--remove-invalid" in valid.stderr and "valid trigger" in valid.stderr
    missing = run(monkeypatch, env, "cleanup", "--remove-invalid", "customers/hts/nothing here.json")
    assert missing.exit_code == 2 and "not an object" in missing.stderr
    assert platform.trigger_exists("hts") and all(exists(platform, key) for key in UNSAFE_TRIGGER_KEYS)


def exists(platform: Platform, key: str) -> bool:
    listed = platform.s3.list_objects_v2(Bucket=platform.bucket, Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))
