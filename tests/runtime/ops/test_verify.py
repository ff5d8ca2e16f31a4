"""verify against the in-process emulator: a change followed to completion, missing and invalid archives."""

from __future__ import annotations

from datetime import timedelta

import pytest

from runtime.archive.documents import ArchiveDocument
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract.keys import TriggerRef
from runtime.ops.verify import verify
from tests.support.aws_platform import Platform
from tests.support.ops_platform import (
    as_json,
    clients,
    ops_env,
    put_raw,
    run,
    set_lease,
)

MIN20 = 20 * 60


def test_verify_follows_a_change_to_completion(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    platform.processor("hts").process(TriggerRef("hts", "CHG-1"), "sqs:m1")
    platform.fold("CHG-1", ["hts"])  # the coordinator folds the result into the archive
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
    platform.fold("CHG-1", ["htsnonprod"])
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
    report = verify(clients(platform), platform.bucket, "CHG-M")
    assert report.meeting_metadata is not None and report.meeting_metadata["meeting_id"] == "AAMk-1"
