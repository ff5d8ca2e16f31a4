"""The procedures with v2 processing objects (``processing/{C}/{id}.json``): a result recorded only there
(not folded yet), only in the archive (v1 or folded), in both; leases and progress from the object; an
invalid object reported as a finding naming its key. The objects are written directly with the model."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest

from runtime.archive import processing as v2
from runtime.archive.documents import utcnow
from runtime.ops.cleanup import cleanup
from runtime.ops.processing_view import ProcessingCache, read_processing
from runtime.ops.restore import restore
from runtime.ops.stuck import stuck
from runtime.ops.verify import verify
from runtime.telemetry.metrics import MetricsFactory
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import (
    as_json,
    backdate,
    clients,
    ops_env,
    put_processing,
    put_raw,
    queues,
    record_processed,
    run,
    set_lease,
)

MIN = 60


def body(platform: Platform, key: str) -> bytes:
    data: bytes = platform.s3.get_object(Bucket=platform.bucket, Key=key)["Body"].read()
    return data


def versions(platform: Platform, key: str) -> int:
    listed = platform.s3.list_object_versions(Bucket=platform.bucket, Prefix=key)
    return len([v for v in listed.get("Versions", []) if v["Key"] == key])


def processing_writes(s3: Faulty) -> list[str]:
    writes: list[str] = []
    s3.fail("put_object", lambda **kw: writes.append(kw["Key"]), times=1000)
    return writes


# ---- cleanup -----------------------------------------------------------------------------------------


def test_cleanup_deletes_only_recorded_triggers_wherever_recorded(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = light
    for change_id in ("CHG-P", "CHG-A", "CHG-B", "CHG-N", "CHG-OLD", "CHG-INV"):
        platform.submit(change_id, ["hts"])
    p_key = put_processing(platform, "CHG-P", "hts", results={1: (2, 0, 2)})  # recorded, not folded yet
    record_processed(platform, "CHG-A", "hts")  # v1 / folded: only in the archive
    put_processing(platform, "CHG-B", "hts", results={1: (2, 0, 2)})
    record_processed(platform, "CHG-B", "hts")  # both
    put_processing(platform, "CHG-N", "hts", lease=(1, timedelta(minutes=-1)), progress=(1, 1, 2, []))  # no result
    platform.submit("CHG-OLD", ["hts"])  # revision 2
    put_processing(platform, "CHG-OLD", "hts", results={1: (2, 0, 2)})  # only revision 1 recorded
    put_raw(platform, "processing/hts/CHG-INV.json", b'{"customer_code": "hts"}')
    p_before = body(platform, p_key)

    dry = as_json(run(monkeypatch, ops_env(platform), "cleanup", "--dry-run", "--json"))
    assert {i["change_id"]: i["action"] for i in dry["items"]} == {
        "CHG-P": "would_delete",
        "CHG-A": "would_delete",
        "CHG-B": "would_delete",
        "CHG-N": "kept",
        "CHG-OLD": "kept",
        "CHG-INV": "kept",
    }
    reasons = {i["change_id"]: i["reason"] for i in dry["items"]}
    assert reasons["CHG-P"] == "processing/hts/CHG-P.json records revision 1 (not folded into the archive yet)"
    assert reasons["CHG-A"] == reasons["CHG-B"] == "archive records revision 1 as processed"
    assert reasons["CHG-OLD"] == "revision 2 not processed yet"
    [finding] = dry["findings"]
    assert finding == "processing/hts/CHG-INV.json is not a valid processing document: changeId: Field required"

    human = run(monkeypatch, ops_env(platform), "cleanup", "--dry-run")
    assert human.exit_code == 1 and "finding: processing/hts/CHG-INV.json is not a valid" in human.stdout

    s3 = Faulty(platform.s3)
    writes = processing_writes(s3)
    report = cleanup(clients(platform, s3=s3), platform.bucket)
    assert {i.change_id for i in report.items if i.action == "deleted"} == {"CHG-P", "CHG-A", "CHG-B"}
    assert report.needs_attention and report.findings == [finding]  # the invalid object: exit 1
    for change_id in ("CHG-N", "CHG-OLD", "CHG-INV"):
        assert platform.trigger_exists("hts", change_id)
    assert writes == []  # neither archive/ nor processing/ written
    assert body(platform, p_key) == p_before
    # one GET per customer and change, and none when the archive already records the result
    assert s3.calls["get_object"] == 6 + 4  # 6 archives + processing of P, N, OLD, INV


# ---- the sweeper -------------------------------------------------------------------------------------


def test_sweeper_deletes_a_trigger_recorded_only_in_the_processing_object(light: Platform) -> None:
    from runtime.contract.settings import OpsSettings
    from runtime.sweeper import Sweeper

    platform = light
    for change_id in ("CHG-P", "CHG-B", "CHG-LIVE", "CHG-EXP", "CHG-INV"):
        platform.submit(change_id, ["hts"])
    p_key = put_processing(platform, "CHG-P", "hts", results={1: (2, 0, 2)})
    put_processing(platform, "CHG-B", "hts", results={1: (2, 0, 2)})
    record_processed(platform, "CHG-B", "hts")  # in both (the archive-only case is in test_sweep.py)
    backdate(platform, "customers/hts/CHG-B.json", 5 * MIN)
    put_processing(platform, "CHG-LIVE", "hts", lease=(1, timedelta(minutes=10)), progress=(1, 1, 2, []))
    put_processing(platform, "CHG-EXP", "hts", lease=(1, timedelta(minutes=-10)), progress=(1, 1, 2, []))
    put_raw(platform, "processing/hts/CHG-INV.json", b"{not json")
    backdate(platform, "customers/hts/CHG-P.json", 5 * MIN)
    for change_id in ("CHG-LIVE", "CHG-EXP", "CHG-INV"):
        backdate(platform, f"customers/hts/{change_id}.json", 20 * MIN)
    archive_before = platform.s3.head_object(Bucket=platform.bucket, Key="archive/CHG-P.json")["ETag"]
    s3 = Faulty(platform.s3)
    writes = processing_writes(s3)
    logged: list[tuple[str, str, dict[str, Any]]] = []

    report = Sweeper(
        s3,
        platform.sqs,
        OpsSettings(bucket_name=platform.bucket, customer_queues=queues(platform)),
        MetricsFactory("CustomMetrics", platform.metrics_stream),
        log=lambda level, message, extra: logged.append((level, message, extra)),
    ).run()
    actions = {a.change_id: (a.action, a.detail) for a in report.actions}
    assert set(actions) == {"CHG-P", "CHG-B", "CHG-LIVE", "CHG-EXP", "CHG-INV"}
    assert actions["CHG-B"] == ("deleted", "archive records revision 1 as processed")
    assert actions["CHG-P"] == (
        "deleted",
        "processing/hts/CHG-P.json records revision 1 (not folded into the archive yet)",
    )
    assert actions["CHG-LIVE"][0] == "in_progress" and "processing/hts/CHG-LIVE.json" in actions["CHG-LIVE"][1]
    assert actions["CHG-EXP"][0] == "redriven"  # an expired lease: processing stopped, the event is re-sent
    assert actions["CHG-INV"][0] == "not_redrivable"
    assert "processing/hts/CHG-INV.json is not a valid processing document" in actions["CHG-INV"][1]
    assert not platform.trigger_exists("hts", "CHG-P") and platform.trigger_exists("hts", "CHG-LIVE")
    assert platform.metric_total("TriggerDeletionRate", "hts") == 2  # metrics unchanged in meaning
    assert platform.metric_total("OrphanedTriggers", "hts") == 3
    assert writes == [] and body(platform, p_key)  # nothing written but tags; the object is still there
    assert platform.s3.head_object(Bucket=platform.bucket, Key="archive/CHG-P.json")["ETag"] == archive_before
    assert ("info", "deleted a trigger whose result is recorded") in [(lv, m) for lv, m, _ in logged]


# ---- stuck -------------------------------------------------------------------------------------------


def test_stuck_diagnoses_from_the_processing_object(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    for change_id in ("CHG-P", "CHG-B", "CHG-INV", "CHG-LIVE", "CHG-EXP", "CHG-V1"):
        platform.submit(change_id, ["hts"])
    put_processing(platform, "CHG-P", "hts", results={1: (39, 1, 40)})
    put_processing(platform, "CHG-B", "hts", results={1: (2, 0, 2)})
    record_processed(platform, "CHG-B", "hts")
    put_raw(platform, "processing/hts/CHG-INV.json", b'{"customer_code": "hts", "change_id": "CHG-OTHER"}')
    put_processing(platform, "CHG-LIVE", "hts", lease=(1, timedelta(minutes=5)), progress=(1, 17, 40, ["x@y.z"]))
    put_processing(platform, "CHG-EXP", "hts", lease=(1, timedelta(minutes=-5)), progress=(1, 3, 40, []))
    set_lease(platform, "CHG-V1", "hts", timedelta(minutes=5))  # a v1 lease inside the archive
    for change_id in ("CHG-P", "CHG-B", "CHG-INV", "CHG-LIVE", "CHG-EXP", "CHG-V1"):
        backdate(platform, f"customers/hts/{change_id}.json", 20 * MIN)

    report = stuck(clients(platform), platform.bucket, queues(platform), older_than=timedelta(minutes=15))
    by_id = {t.change_id: t for t in report.triggers}
    assert {k: t.diagnosis for k, t in by_id.items()} == {
        "CHG-P": "recorded_not_folded",
        "CHG-B": "already_processed",
        "CHG-INV": "processing_invalid",
        "CHG-LIVE": "lease_live",
        "CHG-EXP": "lease_expired",
        "CHG-V1": "lease_live",
    }
    p = by_id["CHG-P"]
    assert p.explanation.startswith("the customer's processing object records this revision, but the change")
    assert "`cleanup --customer hts`" in p.resolution and "coordinator" in p.resolution
    assert any("sent to 39 of 40 recipient(s), 1 rejected" in d for d in p.details)
    inv = by_id["CHG-INV"]
    assert inv.details == ["processing/hts/CHG-INV.json holds hts/CHG-OTHER, not hts/CHG-INV"]
    assert "list-object-versions --prefix processing/hts/CHG-INV.json" in inv.resolution
    live = by_id["CHG-LIVE"].details
    assert any("lease of sqs:m-2:r-1 for revision 1" in d and "(live)" in d for d in live)
    assert "processing/hts/CHG-LIVE.json: progress of revision 1: 17 of 40 recipient(s) done, 1 rejected" in live
    assert any("(expired)" in d for d in by_id["CHG-EXP"].details)
    assert any(d.startswith("v1 lease in the archive") for d in by_id["CHG-V1"].details)

    cli = run(monkeypatch, ops_env(platform), "stuck", "--older-than", "15m")
    assert cli.exit_code == 1 and "recorded_not_folded" in cli.stdout and "processing_invalid" in cli.stdout


# ---- verify ------------------------------------------------------------------------------------------


def test_verify_shows_each_customer_from_the_processing_object_and_the_archive(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = light
    env = ops_env(platform)
    platform.submit("CHG-1", ["hts", "htsnonprod", "customer-a"])
    put_processing(platform, "CHG-1", "hts", results={1: (39, 1, 40)})  # recorded, not folded yet
    platform.s3.delete_object(Bucket=platform.bucket, Key="customers/hts/CHG-1.json")
    record_processed(platform, "CHG-1", "htsnonprod")  # v1: only in the archive
    platform.s3.delete_object(Bucket=platform.bucket, Key="customers/htsnonprod/CHG-1.json")
    put_processing(platform, "CHG-1", "customer-a", lease=(1, timedelta(minutes=5)), progress=(1, 17, 40, ["x@y.z"]))

    result = run(monkeypatch, env, "verify", "CHG-1", "--json")
    report = as_json(result)
    assert result.exit_code == 1
    assert report["complete"] is False and report["pending"] == ["customer-a"] and report["not_folded"] == ["hts"]
    rows = {c["customer"]: c for c in report["customers"]}
    hts = rows["hts"]
    assert (hts["state"], hts["state_text"], hts["revision"]) == ("recorded_not_folded", "recorded, not folded yet", 1)
    assert (hts["sent"], hts["rejected"], hts["recipients"]) == (39, 1, 40)
    assert hts["recorded_revisions"] == [1] and hts["processed_revisions"] == [] and hts["folded"] is None
    assert hts["processing_key"] == "processing/hts/CHG-1.json" and hts["processing_exists"] is True
    nonprod = rows["htsnonprod"]
    assert (nonprod["state"], nonprod["state_text"]) == ("processed", "recorded and folded")
    assert nonprod["folded"]["modification_type"] == "processed" and nonprod["folded"]["customer_code"] == "htsnonprod"
    assert nonprod["recorded_revisions"] == [] and nonprod["processing_exists"] is False
    a = rows["customer-a"]
    assert (a["state"], a["state_text"]) == ("processing", "in progress")
    assert a["lease"]["owner"] == "sqs:m-2:r-1" and a["lease"]["live"] is True
    assert a["lease"]["source"] == "processing" and a["lease"]["message_id"] == "m-2"
    assert a["progress"] == {"revision": 1, "recipients": 40, "done": 17, "rejected": 1}
    assert a["trigger"]["key"] == "customers/customer-a/CHG-1.json"

    human = run(monkeypatch, env, "verify", "CHG-1")
    assert human.exit_code == 1
    for text in ("recorded, not folded yet", "recorded and folded", "in progress", "17 of 40", "39/1/40"):
        assert text in human.stdout, text
    assert "PENDING" in human.stdout and "customer-a" in human.stdout

    # customer-a records its result, the coordinator folds hts's and customer-a's: complete
    put_processing(platform, "CHG-1", "customer-a", results={1: (40, 0, 40)})
    platform.s3.delete_object(Bucket=platform.bucket, Key="customers/customer-a/CHG-1.json")
    not_folded = run(monkeypatch, env, "verify", "CHG-1")
    assert not_folded.exit_code == 1 and "RECORDED, NOT FOLDED YET" in not_folded.stdout
    record_processed(platform, "CHG-1", "hts")
    record_processed(platform, "CHG-1", "customer-a")
    done = as_json(run(monkeypatch, env, "verify", "CHG-1", "--json"))
    assert done["complete"] is True
    rows = {c["customer"]: c for c in done["customers"]}
    assert {c: r["state"] for c, r in rows.items()} == dict.fromkeys(("hts", "htsnonprod", "customer-a"), "processed")
    assert (rows["hts"]["sent"], rows["hts"]["rejected"]) == (39, 1)  # counts from the processing object
    assert run(monkeypatch, env, "verify", "CHG-1").exit_code == 0


def test_verify_reports_an_invalid_processing_object_and_v1_leases(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    put_raw(platform, "processing/hts/CHG-1.json", b'{"customer_code": "hts", "change_id": "CHG-1", "results": 3}')
    set_lease(platform, "CHG-1", "htsnonprod", timedelta(minutes=5))
    report = verify(clients(platform), platform.bucket, "CHG-1")
    [finding] = report.findings
    assert finding.startswith("processing/hts/CHG-1.json is not a valid processing document: results")
    rows = {c.customer: c for c in report.customers}
    assert rows["hts"].state == "pending" and rows["hts"].processing_error == finding
    v1 = rows["htsnonprod"]
    assert v1.state == "processing" and v1.lease is not None
    assert (v1.lease.source, v1.lease.owner, v1.lease.emails_sent) == ("archive", "sqs:other", 0)
    assert not report.complete and report.needs_attention


def test_verify_says_where_an_archived_lease_came_from(light: Platform) -> None:
    """The CLI prints ``(v1, in the archive, N sent)`` from the lease's origin, which only the v1 reader sets."""
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod"])
    set_lease(platform, "CHG-1", "htsnonprod", timedelta(minutes=5))
    rows = {c.customer: c for c in verify(clients(platform), platform.bucket, "CHG-1").customers}
    lease = rows["htsnonprod"].lease
    assert lease is not None and (lease.origin, lease.emails_sent) == ("v1, in the archive", 0)
    assert rows["hts"].lease is None


# ---- restore -----------------------------------------------------------------------------------------


def test_restore_never_rewrites_processing_objects_and_lists_unfolded_results(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = light
    platform.submit("CHG-1", ["hts", "htsnonprod", "customer-a"])
    backdate(platform, "archive/CHG-1.json", 3600)
    record_processed(platform, "CHG-1", "htsnonprod")  # folded after the version we go back to: carried
    put_processing(platform, "CHG-1", "htsnonprod", results={1: (2, 0, 2)})  # ... and in its processing object
    key = put_processing(platform, "CHG-1", "hts", results={1: (2, 0, 2)}, lease=(1, timedelta(minutes=5)))
    put_raw(platform, "processing/customer-a/CHG-1.json", b"[]")
    put_raw(platform, "archive/CHG-1.json", b"{broken")
    before, count = body(platform, key), versions(platform, key)
    dry = run(monkeypatch, ops_env(platform), "restore", "CHG-1", "--before", "30m", "--dry-run")
    assert dry.exit_code == 0, dry.stdout
    assert "recorded in processing/hts/CHG-1.json only: rev 1 (the coordinator folds it" in dry.stdout
    assert "finding: processing/customer-a/CHG-1.json is not a valid processing document" in dry.stdout
    s3 = Faulty(platform.s3)
    writes = processing_writes(s3)

    plan = restore(clients(platform, s3=s3), platform.bucket, "CHG-1", utcnow() - timedelta(minutes=30), user="ops")
    assert plan.written and [e["customer_code"] for e in plan.carried_forward] == ["htsnonprod"]
    assert plan.unfolded_results == [{"customer_code": "hts", "revision": 1, "key": key}]
    [finding] = plan.findings
    assert finding.startswith("processing/customer-a/CHG-1.json is not a valid processing document")
    assert writes == ["archive/CHG-1.json"]  # only the archive
    assert body(platform, key) == before and versions(platform, key) == count


# ---- reading processing objects ------------------------------------------------------------------------


class StubS3:
    """Answers get_object like S3 (with a ``Date`` header), or raises the given error."""

    def __init__(self, body: bytes = b"", date: str | None = None, error: Exception | None = None) -> None:
        self.body, self.date, self.error, self.calls = body, date, error, 0

    def get_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        headers = {"date": self.date} if self.date else {}
        return {"Body": io.BytesIO(self.body), "ResponseMetadata": {"HTTPHeaders": headers}}


def test_lease_expiry_is_judged_on_the_storage_clock_and_reads_never_raise() -> None:
    from email.utils import format_datetime

    local = utcnow()
    storage = local - timedelta(minutes=10)  # this machine runs 10 minutes fast
    doc = v2.ProcessingDocument(
        customer_code="hts",
        change_id="CHG-1",
        lease=v2.ProcessingLease(owner="o", revision=1, expires_at=storage + timedelta(minutes=5)),
    )
    stub = StubS3(json.dumps(doc.to_json_dict()).encode(), format_datetime(storage, usegmt=True))
    cache = ProcessingCache(stub, "b")
    read = cache.get("hts", "CHG-1")
    assert read.storage_now is not None and read.lease_live(local)  # live on S3's clock, expired on ours
    assert cache.get("hts", "CHG-1") is read and stub.calls == 1  # one GET per customer and change

    assert read_processing(StubS3(error=client_error("NoSuchKey", 404)), "b", "hts", "X").exists is False
    denied = read_processing(StubS3(error=client_error("AccessDenied", 403)), "b", "hts", "X")
    assert denied.error == "processing/hts/X.json cannot be read: AccessDenied"
    assert not denied.lease_live(local) and denied.recorded_revisions() == [] and denied.result_for(1) is None


def deny_processing_reads(s3: Faulty) -> None:
    def deny(**kw: Any) -> None:
        if kw["Key"].startswith("processing/"):
            raise client_error("AccessDenied", 403)

    s3.fail("get_object", deny, times=1000)


def test_an_unreadable_processing_object_is_reported_but_blocks_nothing(light: Platform) -> None:
    from runtime.contract.settings import OpsSettings
    from runtime.sweeper import Sweeper

    platform = light
    platform.submit("CHG-1", ["hts"])
    put_processing(platform, "CHG-1", "hts", lease=(1, timedelta(minutes=-1)))
    backdate(platform, "customers/hts/CHG-1.json", 20 * MIN)
    s3 = Faulty(platform.s3)
    deny_processing_reads(s3)
    logged: list[tuple[str, str, dict[str, Any]]] = []

    report = Sweeper(
        s3,
        platform.sqs,
        OpsSettings(bucket_name=platform.bucket, customer_queues=queues(platform)),
        MetricsFactory("CustomMetrics", platform.metrics_stream),
        log=lambda level, message, extra: logged.append((level, message, extra)),
    ).run()
    assert [(a.change_id, a.action) for a in report.actions] == [("CHG-1", "redriven")]
    assert ("warning", "cannot read a processing object") in [(lv, m) for lv, m, _ in logged]
    assert platform.trigger_exists("hts", "CHG-1")

    found = stuck(clients(platform, s3=s3), platform.bucket, {}, older_than=timedelta(minutes=15))
    [item] = found.triggers
    assert item.diagnosis == "not_delivered"
    assert "processing/hts/CHG-1.json cannot be read: AccessDenied" in item.details

    kept = cleanup(clients(platform, s3=s3), platform.bucket, dry_run=True)
    assert [i.action for i in kept.items] == ["kept"] and kept.findings == [
        "processing/hts/CHG-1.json cannot be read: AccessDenied"
    ]
