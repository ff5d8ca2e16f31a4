"""Issue 22: ``health`` shows the change coordinator's last fold beside its queue and DLQ (table and
``--json``), read from the archive: the newest archive document whose audit trail ends with a fold."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.aws_platform import Platform
from tests.support.ops_platform import as_json, backdate, ops_env, put_processing, run

HEALTH = ("health", "--skip-ecs", "--no-cloudwatch")


def last_modified(platform: Platform, change_id: str) -> datetime:
    key = f"archive/{change_id}" if change_id.endswith("/head") else f"archive/{change_id}.json"
    head = platform.s3.head_object(Bucket=platform.bucket, Key=key)
    when: datetime = head["LastModified"]
    return when


def test_health_shows_when_the_coordinator_last_folded_and_into_which_change(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    light.submit("CHG-OLD", ["hts"])
    put_processing(light, "CHG-OLD", "hts", results={1: (2, 0, 2)})
    light.fold("CHG-OLD", ["hts"])  # the coordinator folds hts's result
    backdate(light, "archive/CHG-OLD.json", 3600)
    backdate(light, "archive/CHG-OLD/folds/head", 3600)  # the fold's own write (the segmented archive)
    light.submit("CHG-FOLDED", ["hts"])
    put_processing(light, "CHG-FOLDED", "hts", results={1: (1, 0, 1)})
    light.fold("CHG-FOLDED", ["hts"])
    backdate(light, "archive/CHG-FOLDED.json", 600)
    backdate(light, "archive/CHG-FOLDED/folds/head", 600)
    light.submit("CHG-NEW", ["hts"])  # newest archive write, by submit: not a fold
    folded_at = last_modified(light, "CHG-FOLDED/folds/head")

    report = as_json(run(monkeypatch, ops_env(light), *HEALTH, "--json"))
    fold = report["coordinator_last_fold"]
    assert fold["change_id"] == "CHG-FOLDED"
    assert datetime.fromisoformat(fold["at"]) == folded_at
    assert 590 <= fold["age_seconds"] <= 900
    # only the document newer than the newest fold head is read (CHG-NEW: a submission, not a fold)
    assert fold["archives"] == 3 and fold["archives_read"] == 1 and fold["source"] == "fold head"

    table = run(monkeypatch, ops_env(light), *HEALTH)
    [row] = [line for line in table.stdout.splitlines() if "coordinator" in line and "last fold" not in line]
    assert "CHG-FOLDED" in row and "10m" in row, table.stdout
    assert "last fold" in table.stdout


def test_before_any_fold_health_says_none(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    light.submit("CHG-1", ["hts"])
    report = as_json(run(monkeypatch, ops_env(light), *HEALTH, "--json"))
    assert report["coordinator_last_fold"]["at"] is None
    assert report["coordinator_last_fold"]["archives"] == 1
    table = run(monkeypatch, ops_env(light), *HEALTH)
    [row] = [line for line in table.stdout.splitlines() if "coordinator" in line and "last fold" not in line]
    assert "none" in row, table.stdout
