"""SIGTERM while several long sends are in flight: nothing half-done, nothing lost, nothing resent.

One worker subprocess (``TTP_MAX_CONCURRENCY=4``) works on four changes at once for a customer with
30 subscribers, at a send rate low enough (6 emails/s shared by the four) that no long send can end
before the drain budget runs out; a fourth, short change (the two ``aws-calendar`` subscribers) may
end within the drain. SIGTERM arrives once every long send is under way. Then:

* the worker exits 0 within its drain budget (``TTP_DRAIN_SECONDS`` plus the short interruption);
* every change is either completely processed (a recorded result in the customer's processing object,
  every recipient mailed once) or not at all (no result, trigger kept), and its progress records
  exactly the recipients SES accepted (the checkpoint on interrupt);
* the unfinished messages are back in the queue at once (visible, none in flight);
* after a restart every recipient has exactly one email per change, and the change coordinator
  (a subprocess beside the worker all along, fed by the ``processing/`` events) has folded exactly one
  ``processed`` entry per change into the archive, with the result's counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import sandbox as sb
from devtools.emulator import LocalAws, local_aws
from runtime.contract.names import CALENDAR_TOPIC
from tests.support.fault_injection import (
    CoordinatorProcess,
    WorkerProcess,
    archive,
    checkpointed,
    email_counts,
    modifications,
    processed_entries,
    processing,
    submit,
    trigger_keys,
    wait_for,
)

pytestmark = pytest.mark.slow

ACCOUNT = "770000000007"
CONTACTS = tuple(
    sb.Contact(f"person{i:02d}@long.example.com", {CALENDAR_TOPIC: "OPT_IN"} if i < 2 else {}) for i in range(30)
)
LONG = ["CHG-L1", "CHG-L2", "CHG-L3"]
SHORT = "CHG-S1"  # topic aws-calendar: two recipients
DRAIN_SECONDS = 2.0
INTERRUPT_GRACE = 5.0  # after the drain: stop sending, checkpoint, return messages, exit


def recipients_of(change_id: str) -> set[str]:
    if change_id == SHORT:
        return {c.email for c in CONTACTS if CALENDAR_TOPIC in c.topics}
    return {c.email for c in CONTACTS}


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with local_aws() as server:
        yield server


def sent_per_change() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (change, recipient), n in email_counts(ACCOUNT).items():
        out.setdefault(change, {})[recipient] = n
    return out


def test_sigterm_during_long_concurrent_sends(
    aws: LocalAws, tmp_path: Path, reaper: list[WorkerProcess], say: Callable[[str], None]
) -> None:
    box = sb.create_sandbox([sb.CustomerSpec("long", ACCOUNT, CONTACTS)], visibility_timeout=30)
    s3, sqs = boto3.client("s3", region_name=box.region), boto3.client("sqs", region_name=box.region)
    for change_id in LONG:
        submit(box, {"change_id": change_id, "title": f"Long {change_id}", "customers": ["long"]}, s3)
    submit(box, {"change_id": SHORT, "title": "Short", "customers": ["long"], "topic": CALENDAR_TOPIC}, s3)

    coordinator = CoordinatorProcess(box, aws.env(), tmp_path / "coordinator.log")
    reaper.append(coordinator)
    settings = {
        "TTP_MAX_CONCURRENCY": "4",
        "TTP_SEND_RATE_PER_SECOND": "6",
        "TTP_DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    first = WorkerProcess(box, "long", aws.env(), tmp_path / "first.log", settings)
    reaper.append(first)
    wait_for(
        lambda: all(sent_per_change().get(c) for c in LONG) and sum(map(len, sent_per_change().values())) >= 12,
        60,
        "every long send to be under way",
    )
    signalled = time.monotonic()
    exit_code = first.stop()
    stop_seconds = time.monotonic() - signalled
    say(f"SIGTERM with {len(LONG) + 1} sends in flight: worker exited {exit_code} after {stop_seconds:.1f}s")
    assert exit_code == 0, first.tail()
    assert stop_seconds < DRAIN_SECONDS + INTERRUPT_GRACE, first.tail()
    assert any(line.get("message") == "drain time is up; interrupting in-flight work" for line in first.lines())

    sent = sent_per_change()
    unfinished = []
    for change_id in [*LONG, SHORT]:
        doc, mailed = processing(box, "long", change_id, s3), sent.get(change_id, {})
        assert all(n == 1 for n in mailed.values()), (change_id, mailed)  # nothing sent twice
        if "1" in doc.get("results", {}):
            assert set(mailed) == recipients_of(change_id), change_id  # done means done
            assert f"customers/long/{change_id}.json" not in trigger_keys(box, s3)
            continue
        unfinished.append(change_id)
        saved = checkpointed(doc, recipients_of(change_id))
        assert saved == {m.lower() for m in mailed}, (change_id, doc.get("progress"), mailed)  # progress checkpointed
        assert f"customers/long/{change_id}.json" in trigger_keys(box, s3)
    assert set(LONG) <= set(unfinished), "a long send finished within the drain: the test did not interrupt it"
    assert any(0 < len(sent.get(c, {})) < 30 for c in LONG)
    attributes = sqs.get_queue_attributes(
        QueueUrl=box.customers["long"].queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        str(len(unfinished)),
        "0",
    ), "the unfinished messages must be back in the queue at once"

    second = WorkerProcess(box, "long", aws.env(), tmp_path / "second.log", {"TTP_SEND_RATE_PER_SECOND": "200"})
    reaper.append(second)
    try:
        wait_for(lambda: not trigger_keys(box, s3), 60, "the returned messages to be processed")
    finally:
        assert second.stop() == 0, second.tail()
    try:
        wait_for(
            lambda: all(processed_entries(archive(box, c, s3), "long") for c in [*LONG, SHORT]),
            60,
            "the coordinator to fold every result into the archive",
        )
    finally:
        assert coordinator.stop() == 0, coordinator.tail()
    sent = sent_per_change()
    for change_id in [*LONG, SHORT]:
        doc: dict[str, Any] = processing(box, "long", change_id, s3)
        entry = doc["results"]["1"]
        assert entry["sent"] == len(recipients_of(change_id))
        assert sent[change_id] == dict.fromkeys(recipients_of(change_id), 1), change_id  # everyone exactly once
        assert doc.get("lease") is None
        stored = archive(box, change_id, s3)
        [folded] = modifications(stored, "processed")  # exactly one, the coordinator's
        assert folded["customer_code"] == "long" and folded["revision"] == 1, folded
        assert folded["user_id"] == "processor:long", folded
        assert (folded["recipients"], folded["emails_sent"], folded["rejected"]) == (
            entry["recipients"],
            entry["sent"],
            entry["rejected"],
        ), (folded, entry)
        assert len(modifications(stored, "submitted")) == 1 and stored["revision"] == 1
    coordinator_dlq = box.coordinator.dlq_url if box.coordinator else ""
    depth = sqs.get_queue_attributes(QueueUrl=coordinator_dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0", coordinator.tail()
