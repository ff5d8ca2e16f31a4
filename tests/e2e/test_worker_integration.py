"""The worker as a real subprocess against the emulator over HTTP, on the deployed sample assembly: the
queues, the bucket's S3→SQS notifications (across accounts) and each process's environment and task role
are what the stacks deploy (tests/support/deployed.py), not a hand-built layout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest

from devtools import sandbox as sb
from devtools.emulator import LocalAws
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from tests.support import deployed as dp
from tests.support.fault_injection import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
sample_assembly = dp.sample_assembly  # synthesized once per session
deploy_server = dp.deploy_server  # the emulator over HTTP, one per module, in this process
HTS, NONPROD = "333333333333", "444444444444"  # the sample customers' accounts (cdk.json)


def deploy(
    server: LocalAws, assembly: Path, monkeypatch: pytest.MonkeyPatch, contacts: dict[str, tuple[sb.Contact, ...]]
) -> dp.Deployed:
    box = dp.deploy_sample(server, assembly, dp.customer_specs(contacts))
    return dp.use_operator(box, monkeypatch)


class WorkerProcess:
    """``python -m runtime worker`` of one customer, or with ``code=None`` ``python -m runtime coordinator``:
    the command, environment and task role of the deployed service (devtools.local_run), demo-sized waits."""

    def __init__(self, box: dp.Deployed, code: str | None, log: Path, **settings: str) -> None:
        defaults = {"TTP_RECEIVE_WAIT_SECONDS": "1", "TTP_RETRY_BASE_SECONDS": "0", "TTP_DRAIN_SECONDS": "5"}
        if code is None:
            defaults["TTP_FOLD_LINGER_SECONDS"] = "0.5"
        env = box.service_env(code, **{**defaults, **settings})
        if code is None:  # this module runs no Graph: the coordinator without meetings
            env = {k: v for k, v in env.items() if not k.startswith(("TTP_GRAPH_", "TTP_MEETING_"))}
        self.log = log
        self._out = log.open("w")
        command = "worker" if code else "coordinator"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", command], env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT
        )

    def stop(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._out.close()
        return code

    def lines(self) -> list[dict]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def submit(box: dp.Deployed, change_id: str, customers: list[str], **fields: object) -> None:
    s3 = boto3.client("s3")
    doc = {"change_id": change_id, "title": f"Change {change_id}", "customers": customers, **fields}
    submit_change(ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket), doc, user_id="it")


def triggers_left(box: dp.Deployed) -> int:
    return int(boto3.client("s3").list_objects_v2(Bucket=box.bucket, Prefix="customers/").get("KeyCount", 0))


def archive(box: dp.Deployed, change_id: str) -> dict:
    return ArchiveStore(boto3.client("s3"), box.bucket).read_json(change_id)


def processing(box: dp.Deployed, code: str, change_id: str) -> dict:
    """The customer's processing object (the processor never writes the archive; the change coordinator
    folds these results into the archive's ``processed`` entries)."""
    key = f"processing/{code}/{change_id}.json"
    return json.loads(boto3.client("s3").get_object(Bucket=box.bucket, Key=key)["Body"].read())


def folded(box: dp.Deployed, change_id: str) -> list[dict]:
    """The archive's ``processed`` entries (folded there by the change coordinator)."""
    return [m for m in archive(box, change_id)["modifications"] if m["modification_type"] == "processed"]


def test_workers_process_changes_end_to_end(
    deploy_server: LocalAws, sample_assembly: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    box = deploy(deploy_server, sample_assembly, monkeypatch, dp.sandbox_contacts())
    coordinator = WorkerProcess(box, None, tmp_path / "coordinator.log")
    workers = [WorkerProcess(box, code, tmp_path / f"{code}.log") for code in ("hts", "htsnonprod")]
    changes = [f"CHG-{n}" for n in range(3)]
    try:
        for change_id in changes:
            submit(box, change_id, ["hts", "htsnonprod"])
        wait_for(lambda: triggers_left(box) == 0, 60, "all triggers processed")
        wait_for(lambda: all(len(folded(box, c)) == 2 for c in changes), 60, "every result folded into the archive")
    finally:
        exit_codes = [w.stop() for w in workers]
        coordinator_exit = coordinator.stop()
    assert exit_codes == [0, 0] and coordinator_exit == 0
    for change_id in changes:
        for code in ("hts", "htsnonprod"):  # each processor recorded its result in its own object...
            recorded = processing(box, code, change_id)
            assert list(recorded["results"]) == ["1"] and recorded.get("lease") is None, (change_id, code, recorded)
        # ...and the coordinator folded exactly one `processed` entry per customer into the archive
        entries = sorted(folded(box, change_id), key=lambda m: m["customer_code"])
        assert [(m["customer_code"], m["revision"], m["user_id"]) for m in entries] == [
            ("hts", 1, "processor:hts"),
            ("htsnonprod", 1, "processor:htsnonprod"),
        ], entries
        # sample contacts: hts has ops + lead (its duplicate, opt-out and unsubscribed are filtered), htsnonprod 2
        assert [(m["recipients"], m["emails_sent"], m["rejected"]) for m in entries] == [(2, 2, 0), (2, 2, 0)]
        for entry in entries:  # the folded entry carries the processor's finish time, in UTC like every timestamp
            result = processing(box, entry["customer_code"], change_id)["results"]["1"]
            assert datetime.fromisoformat(entry["timestamp"]) == datetime.fromisoformat(result["finished_at"])
            assert datetime.fromisoformat(entry["timestamp"]).utcoffset() == timedelta(0), entry
    assert len(sb.sent_emails(HTS)) == 3 * 2
    assert len(sb.sent_emails(NONPROD)) == 3 * 2
    sqs = boto3.client("sqs")
    services: list[str | None] = ["hts", "htsnonprod", None]
    for url in [box.queue_url(code) for code in services]:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    for url in [box.dlq_url(code) for code in services]:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0", url
    handled = [line for line in workers[0].lines() if line.get("message") == "message handled"]
    assert handled and all(line["customer_code"] == "hts" and line.get("message_id") for line in handled)
    assert {line.get("change_id") for line in handled if line["outcome"] == "processed"} == set(changes)
    folds = [line for line in coordinator.lines() if line.get("message") == "results folded into the archive"]
    assert sum(len(line["folded"]) for line in folds) == 6 and len(folds) <= 6  # 6 results, never one write more


def test_sigterm_during_sending_loses_nothing_and_resends_nothing(
    deploy_server: LocalAws, sample_assembly: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    contacts = tuple(sb.Contact(f"person{i:02d}@big.example.com") for i in range(24))
    box = deploy(deploy_server, sample_assembly, monkeypatch, {"hts": contacts})
    submit(box, "CHG-SLOW", ["hts"])
    worker = WorkerProcess(box, "hts", tmp_path / "first.log", TTP_SEND_RATE_PER_SECOND="6", TTP_DRAIN_SECONDS="1")
    wait_for(lambda: len(sb.sent_emails(HTS)) >= 4, 60, "sending to start")
    assert worker.stop() == 0
    sent_before = len(sb.sent_emails(HTS))
    assert 4 <= sent_before < 24
    doc = processing(box, "hts", "CHG-SLOW")
    assert triggers_left(box) == 1  # nothing recorded, so the trigger stays
    assert doc.get("results", {}) == {}
    assert doc["progress"]["done"] == sent_before  # progress checkpointed on interrupt
    lines = worker.lines()
    assert any(line.get("message") == "drain time is up; interrupting in-flight work" for line in lines)
    assert any(line.get("outcome") == "retry" for line in lines)

    second = WorkerProcess(box, "hts", tmp_path / "second.log", TTP_SEND_RATE_PER_SECOND="50")
    try:
        wait_for(lambda: triggers_left(box) == 0, 60, "the returned message to be processed")
    finally:
        assert second.stop() == 0
    recipients = sorted(m["to"][0] for m in sb.sent_emails(HTS))
    assert recipients == sorted(c.email for c in contacts)  # everyone exactly once


def test_poison_message_reaches_the_dlq(
    deploy_server: LocalAws, sample_assembly: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The deployed queue's redrive (maxReceiveCount of the template) moves both messages to its DLQ."""
    box = deploy(deploy_server, sample_assembly, monkeypatch, dp.sandbox_contacts())
    queue_url, dlq_url = box.queue_url("hts"), box.dlq_url("hts")
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody="this is not an S3 event")
    traversal = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": box.bucket}, "object": {"key": "customers/hts/..%2Fx.json"}},
            }
        ]
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(traversal))
    worker = WorkerProcess(box, "hts", tmp_path / "w.log")

    def dlq_depth() -> int:
        attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    try:
        wait_for(lambda: dlq_depth() == 2, 60, "both poison messages in the DLQ")
    finally:
        assert worker.stop() == 0
    bodies = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"])
    assert "this is not an S3 event" in bodies
    poison_lines = [line for line in worker.lines() if line.get("outcome") == "poison"]
    assert poison_lines and all(line["level"] == "ERROR" and line["security"] for line in poison_lines)
