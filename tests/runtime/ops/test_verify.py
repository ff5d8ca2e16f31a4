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
    put_processing,
    put_raw,
    record_processed,
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
    assert missing.exit_code == 3 and "archive/CHG-NONE.json does not exist" in missing.stderr
    assert missing.stderr.startswith("error: ") and missing.stdout == ""  # like every other command (issue 22)
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


def test_verify_shows_delivery_counts_and_each_recipients_last_event(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from runtime.archive.delivery import RecipientEvent, RecipientStatus
    from runtime.archive.delivery_store import DeliveryStore

    platform = light
    env = ops_env(platform)
    platform.submit("CHG-D", ["hts", "htsnonprod"])
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)

    def status(kind: str, minute: int, **extra: str) -> RecipientStatus:
        return RecipientStatus.model_validate(
            {"status": kind, "event_time": at + timedelta(minutes=minute), "message_id": "m-1", "revision": 1, **extra}
        )

    DeliveryStore(platform.s3, platform.bucket).record(
        "hts",
        "CHG-D",
        [
            RecipientEvent("a@x.example", status("delivered", 1)),
            RecipientEvent("b@x.example", status("bounced", 2, bounce_type="permanent", bounce_subtype="NoEmail")),
            RecipientEvent("c@x.example", status("bounced", 2, bounce_type="transient", bounce_subtype="MailboxFull")),
            RecipientEvent("d@x.example", status("complained", 3)),
            RecipientEvent("e@x.example", status("delayed", 4)),
            RecipientEvent("f@x.example", status("unsubscribed", 5)),
        ],
    )
    report = as_json(run(monkeypatch, env, "verify", "CHG-D", "--json"))
    rows = {c["customer"]: c for c in report["customers"]}
    counts = rows["hts"]["delivery"]["counts"]
    assert (counts["delivered"], counts["bounced"], counts["bounced_permanent"], counts["bounced_transient"]) == (
        1,
        2,
        1,
        1,
    )
    assert (counts["complained"], counts["delayed"], counts["unsubscribed"]) == (1, 1, 1)
    assert rows["hts"]["delivery"]["source"] == "delivery" and rows["hts"]["delivery"]["folded"] is False
    assert rows["htsnonprod"]["delivery"]["counts"] is None and report["recipients"] is None

    text = run(monkeypatch, env, "verify", "CHG-D")
    assert "1 delivered, 2 bounced (1 permanent, 1 transient), 1 complained, 1 delayed, 1 unsubscribed" in text.stdout
    assert "no delivery events yet" in text.stdout

    listed = as_json(run(monkeypatch, env, "verify", "CHG-D", "--recipients", "--json"))
    last = {r["address"]: r for r in listed["recipients"]}
    assert sorted(last) == ["a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example", "f@x.example"]
    assert (last["b@x.example"]["status"], last["b@x.example"]["bounce_type"]) == ("bounced", "permanent")
    shown = run(monkeypatch, env, "verify", "CHG-D", "--recipients")
    assert "bounced (transient, MailboxFull)" in shown.stdout and "complained" in shown.stdout


def test_verify_reads_the_folded_counts_when_the_delivery_object_is_gone(light: Platform) -> None:
    from runtime.archive.documents import DeliveryCounts

    platform = light
    platform.submit("CHG-F", ["hts"])

    def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.delivery = {"hts": {"1": DeliveryCounts(sequence=2, recipients=2, delivered=1, complained=1)}}
        return doc

    ArchiveStore(platform.s3, platform.bucket).update("CHG-F", mutate)
    report = verify(clients(platform), platform.bucket, "CHG-F")
    view = report.customers[0].delivery
    assert view is not None and view.source == "archive" and view.folded
    assert view.counts is not None and (view.counts["delivered"], view.counts["complained"]) == (1, 1)


def test_verify_never_shows_a_result_its_revision_did_not_target_as_the_changes(light: Platform) -> None:
    """Issue 17, item 1: htsnonprod is listed but revision 1 notified only hts; htsnonprod's processor
    records a result of 5,000 emails anyway. The coordinator refuses to fold it; verify must not count
    it either: no result for htsnonprod, and a finding naming its processing object."""
    platform = light
    doc = {"change_id": "CHG-T", "title": "t", "customers": ["hts", "htsnonprod"]}
    store, triggers = ArchiveStore(platform.s3, platform.bucket), TriggerStore(platform.s3, platform.bucket)
    submit_change(store, triggers, doc, user_id="tester", customers=["hts"])
    key = put_processing(platform, "CHG-T", "htsnonprod", results={1: (5000, 0, 5000)})
    report = verify(clients(platform), platform.bucket, "CHG-T")
    rows = {c.customer: c for c in report.customers}
    assert rows["htsnonprod"].state == "not_triggered" and rows["htsnonprod"].sent is None
    assert report.not_folded == []
    assert any(key in finding and "did not target" in finding for finding in report.findings)
    assert not report.complete


def test_a_meeting_asked_for_and_never_scheduled_is_a_finding(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17: every customer processed and folded, but the meeting the change asks for was never
    scheduled (no ``meeting_metadata``, no ``meeting_scheduled``): not COMPLETE, a finding, exit 1."""
    from runtime.archive.documents import MeetingMetadata

    platform = light
    meeting = {"start_time": "2026-03-01T10:00:00Z", "end_time": "2026-03-01T11:00:00Z", "subject": "CAB"}
    doc = {"change_id": "CHG-M", "title": "With a meeting", "customers": ["hts"], "meeting": meeting}
    store, triggers = ArchiveStore(platform.s3, platform.bucket), TriggerStore(platform.s3, platform.bucket)
    submit_change(store, triggers, doc, user_id="tester")
    record_processed(platform, "CHG-M", "hts")
    platform.s3.delete_object(Bucket=platform.bucket, Key="customers/hts/CHG-M.json")
    env = ops_env(platform)

    result = run(monkeypatch, env, "verify", "CHG-M", "--json")
    report = as_json(result)
    assert result.exit_code == 1 and report["complete"] is False
    assert report["pending"] == [] and report["not_folded"] == []
    assert any("meeting" in f and "not scheduled" in f and "revision 1" in f for f in report["findings"])
    table = run(monkeypatch, env, "verify", "CHG-M")
    assert "COMPLETE" not in table.stdout and "not scheduled" in table.stdout

    def scheduled(current: ArchiveDocument | None) -> ArchiveDocument | None:
        assert current is not None
        current.meeting_metadata = MeetingMetadata(meeting_id="AAMk-1", revision=current.revision)
        return current

    store.update("CHG-M", scheduled)
    done = run(monkeypatch, env, "verify", "CHG-M")
    assert done.exit_code == 0 and "COMPLETE" in done.stdout
