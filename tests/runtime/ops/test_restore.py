"""restore CHANGE_ID --before TIME: bucket versioning, compare-and-swap, nothing recorded later is silently lost."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from runtime.archive.documents import utcnow
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.ops.errors import OpsError
from runtime.ops.restore import MAX_PLANS, list_versions, restore
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    as_json,
    backdate,
    clients,
    ops_env,
    put_raw,
    record_processed,
    run,
)

KEY = "archive/CHG-1.json"
HOUR = 3600


def types(doc: dict[str, Any]) -> list[str]:
    return [f"{m['modification_type']}:{m.get('customer_code') or ''}" for m in doc["modifications"]]


def etag(platform: Platform) -> str:
    return platform.s3.head_object(Bucket=platform.bucket, Key=KEY)["ETag"]


def test_restores_a_corrupted_archive(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    record_processed(platform, "CHG-1", "hts")
    good = list_versions(platform.s3, platform.bucket, "CHG-1")[0]
    backdate(platform, KEY, HOUR)
    put_raw(platform, KEY, b'{"change_id": "CHG-1", "title": ')  # someone broke it just now

    result = run(monkeypatch, ops_env(platform), "restore", "CHG-1", "--before", "30m", "--user", "alice", "--json")
    plan = as_json(result)
    assert result.exit_code == 0, result.stderr
    assert plan["written"] is True and plan["current_state"] == "invalid"
    assert plan["source"]["version_id"] == good.version_id
    doc = platform.archive()
    assert doc["title"] == "Change CHG-1" and doc["revision"] == 1
    assert types(doc) == ["submitted:", "processed:hts", "restored:"]
    entry = doc["modifications"][-1]
    assert entry["user_id"] == "alice" and entry["restored_version_id"] == good.version_id
    assert entry["replaced_state"] == "invalid" and entry["dropped"] == []
    assert len(list_versions(platform.s3, platform.bucket, "CHG-1")) == 4  # nothing deleted: it can be undone

    verified = as_json(run(monkeypatch, ops_env(platform), "verify", "CHG-1", "--json"))
    assert {c["customer"]: c["state"] for c in verified["customers"]} == {"hts": "processed", "htsnonprod": "pending"}


def test_restores_a_deleted_archive_with_if_none_match(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, KEY, HOUR)
    platform.s3.delete_object(Bucket=platform.bucket, Key=KEY)
    s3 = Faulty(platform.s3)
    conditions: list[dict[str, Any]] = []
    s3.fail("put_object", lambda **kw: conditions.append({k: kw.get(k) for k in ("IfMatch", "IfNoneMatch")}))

    plan = restore(clients(platform, s3=s3), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    assert plan.written and plan.current_state == "deleted"
    assert conditions == [{"IfMatch": None, "IfNoneMatch": "*"}]
    assert types(platform.archive()) == ["submitted:", "restored:"]


def test_carries_processing_entries_forward(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    backdate(platform, KEY, HOUR)
    record_processed(platform, "CHG-1", "hts")  # recorded after the version we go back to
    record_processed(platform, "CHG-1", "htsnonprod")
    before = etag(platform)
    s3 = Faulty(platform.s3)
    conditions: list[Any] = []
    s3.fail("put_object", lambda **kw: conditions.append(kw.get("IfMatch")))

    plan = restore(clients(platform, s3=s3), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    assert plan.written and plan.dropped == []
    assert [e["customer_code"] for e in plan.carried_forward] == ["hts", "htsnonprod"]
    assert conditions == [before]  # compare-and-swap against the version we read
    assert types(platform.archive()) == ["submitted:", "processed:hts", "processed:htsnonprod", "restored:"]


def test_refuses_to_lose_later_entries_unless_forced(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, KEY, HOUR)
    platform.submit("CHG-1", ["hts"], title="A wrong edit")  # revision 2
    record_processed(platform, "CHG-1", "hts")  # hts was notified of revision 2
    before = etag(platform)

    refused = run(monkeypatch, ops_env(platform), "restore", "CHG-1", "--before", "30m", "--json")
    plan = as_json(refused)
    assert refused.exit_code == 1 and plan["written"] is False and "--force" in plan["refused"]
    assert [(e["modification_type"], e["revision"]) for e in plan["dropped"]] == [("submitted", 2)]
    assert etag(platform) == before  # nothing written

    dry = as_json(
        run(monkeypatch, ops_env(platform), "restore", "CHG-1", "--before", "30m", "--force", "--dry-run", "--json")
    )
    assert dry["written"] is False and etag(platform) == before

    forced = run(monkeypatch, ops_env(platform), "restore", "CHG-1", "--before", "30m", "--force")
    assert forced.exit_code == 0, forced.stdout
    doc = platform.archive()
    assert doc["title"] == "Change CHG-1"  # the content of revision 1 ...
    assert doc["revision"] == 2  # ... but the revision never goes back: hts's record of revision 2 stays valid
    assert types(doc) == ["submitted:", "processed:hts", "restored:"]
    assert [(d["modification_type"], d["revision"]) for d in doc["modifications"][-1]["dropped"]] == [("submitted", 2)]


def test_errors_say_what_to_do(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    env = ops_env(platform)
    none = run(monkeypatch, env, "restore", "CHG-1", "--before", "1h")
    assert none.exit_code == 3 and "has no versions" in none.stderr

    put_raw(platform, KEY, b"garbage")
    backdate(platform, KEY, HOUR)
    put_raw(platform, KEY, '{"change_id": "CHG-1", "title": "T", "customers": ["hts"]}')
    too_early = run(monkeypatch, env, "restore", "CHG-1", "--before", "2h")
    assert too_early.exit_code == 3 and "choose a later --before" in too_early.stderr
    invalid = run(monkeypatch, env, "restore", "CHG-1", "--before", "30m")
    assert invalid.exit_code == 3 and "is not a valid change document" in invalid.stderr
    current = run(monkeypatch, env, "restore", "CHG-1", "--before", "2099-01-01")
    assert current.exit_code == 1 and "already the current one" in current.stderr
    assert run(monkeypatch, env, "restore", "CHG-1").exit_code == 2
    bad_time = run(monkeypatch, env, "restore", "CHG-1", "--before", "last week")
    assert bad_time.exit_code == 2 and "ISO 8601" in bad_time.stderr

    listed = run(monkeypatch, env, "restore", "CHG-1", "--list", "--json")
    versions = as_json(listed)
    assert listed.exit_code == 0
    assert [(v["is_latest"], v["valid"]) for v in versions] == [(True, True), (False, False)]


def test_writes_that_keep_conflicting_stop_the_restore_after_a_bounded_number_of_plans(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, KEY, HOUR)
    put_raw(platform, KEY, b"{}")
    s3 = Faulty(platform.s3).fail("put_object", client_error("PreconditionFailed", 412), times=MAX_PLANS)
    with pytest.raises(OpsError, match=f"changed while restoring, {MAX_PLANS} times in a row"):
        restore(clients(platform, s3=s3), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    assert s3.calls["put_object"] == MAX_PLANS
    assert platform.s3.get_object(Bucket=platform.bucket, Key=KEY)["Body"].read() == b"{}"


def _after_first_listing(platform: Platform, write: Any) -> None:
    """Run ``write`` once, right after ``restore`` has listed the archive's versions (what it plans
    from) and before it writes: a resubmission or a fold landing in the middle of the restore."""
    done: list[bool] = []

    def handler(**_kwargs: Any) -> None:
        if not done:
            done.append(True)
            write()

    platform.s3.meta.events.register("after-call.s3.ListObjectVersions", handler)


def _resubmit(platform: Platform) -> None:
    """A resubmission through a client of its own (another writer, another process)."""
    other = boto3.client("s3", region_name=platform.box.region)
    doc = {"change_id": "CHG-1", "title": "Revision 2", "customers": ["hts"]}
    submit_change(ArchiveStore(other, platform.bucket), TriggerStore(other, platform.bucket), doc, user_id="bob")


def test_a_resubmission_after_the_listing_is_never_rolled_back(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, KEY, HOUR)
    record_processed(platform, "CHG-1", "hts")
    _after_first_listing(platform, lambda: _resubmit(platform))

    with pytest.raises(OpsError) as raised:
        restore(clients(platform), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    message = str(raised.value)
    assert "changed while restoring" in message and "nothing was written" in message
    assert "submitted" in message and "revision 2" in message and "run restore again" in message
    doc = platform.archive()
    assert doc["revision"] == 2 and doc["title"] == "Revision 2"  # never rolled back to revision 1
    assert types(doc)[-1] == "submitted:"
    trigger = platform.s3.get_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json")["Body"].read()
    assert json.loads(trigger)["revision"] == 2  # its processing finds revision 2 and mails it


def test_a_forced_restore_stops_rather_than_drop_a_resubmission_it_did_not_plan(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, KEY, HOUR)
    record_processed(platform, "CHG-1", "hts")
    _after_first_listing(platform, lambda: _resubmit(platform))

    with pytest.raises(OpsError, match="changed while restoring"):
        restore(clients(platform), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops", force=True)
    assert platform.archive()["revision"] == 2 and platform.archive()["title"] == "Revision 2"


def test_a_fold_after_the_listing_is_carried_forward_by_a_new_plan(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    backdate(platform, KEY, HOUR)
    record_processed(platform, "CHG-1", "hts")
    _after_first_listing(platform, lambda: record_processed(platform, "CHG-1", "htsnonprod"))

    plan = restore(clients(platform), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    assert plan.written
    assert [e["customer_code"] for e in plan.carried_forward] == ["hts", "htsnonprod"]
    assert types(platform.archive()) == ["submitted:", "processed:hts", "processed:htsnonprod", "restored:"]


def test_carries_the_folded_delivery_counts_forward(light: Platform) -> None:
    from runtime.archive.documents import ArchiveDocument, DeliveryCounts

    platform = light
    platform.submit("CHG-1", ["hts"])
    backdate(platform, KEY, HOUR)

    def fold(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.delivery = {"hts": {"1": DeliveryCounts(sequence=4, recipients=2, delivered=1, bounced=1)}}
        return doc

    ArchiveStore(platform.s3, platform.bucket).update("CHG-1", fold)  # folded after the version we go back to
    plan = restore(clients(platform), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    assert plan.written
    assert platform.archive()["delivery"]["hts"]["1"]["bounced"] == 1
