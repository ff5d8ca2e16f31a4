"""The lease rules of docs/design.md §2 (v2) and issue 10, each with the reproduction that broke v1.

The lease lives in the customer's processing object ``processing/hts/CHG-1.json``; expiry is judged on
the storage clock (S3's ``Date``), the owner is unique per receive of a message, the holder keeps its
lease alive while it works, and only the claimed revision is ever rendered.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from runtime.archive.documents import utcnow
from runtime.archive.triggers import DeleteOutcome
from runtime.contract.keys import TriggerRef
from runtime.notify.rendering import RenderedEmail
from runtime.pipeline import MAX_UNRECORDED_EMAILS, Outcome, RecipientDone
from runtime.worker import Fate
from tests.support.aws_platform import Faulty, Platform, client_error

HTS = TriggerRef("hts", "CHG-1")


def put_processing(platform: Platform, fields: dict[str, Any], code: str = "hts") -> None:
    doc = {"customer_code": code, "change_id": "CHG-1", **fields}
    platform.s3.put_object(Bucket=platform.bucket, Key=f"processing/{code}/CHG-1.json", Body=json.dumps(doc).encode())


class HookedMailer:
    """Wraps a mailer: ``before_send(i)`` runs before the i-th email of this processor (0-based)."""

    def __init__(self, inner: Any, before_send: Any) -> None:
        self.inner = inner
        self.before_send = before_send
        self.count = 0

    def subscribers(self, topic: str) -> list[str]:
        result: list[str] = self.inner.subscribers(topic)
        return result

    def send(
        self,
        recipients: list[str],
        message: RenderedEmail,
        topic: str,
        *,
        on_done: RecipientDone,
        cancelled: threading.Event | None,
    ) -> list[str]:
        sent: list[str] = []
        for address in recipients:
            self.before_send(self.count)
            self.count += 1
            sent += self.inner.send([address], message, topic, on_done=on_done, cancelled=cancelled)
        return sent


def mailed(platform: Platform, code: str = "hts") -> list[str]:
    return [m["to"][0].lower() for m in platform.emails(code)]


# ---- owner unique per receive ---------------------------------------------------------------------


def test_redelivered_message_waits_for_its_first_receive_instead_of_sharing_the_lease(platform: Platform) -> None:
    """v1: owner = message id, so a redelivery (visibility lapsed, heartbeat refused) resumed the same
    lease concurrently and mailed everyone twice. v2: another receive of the same message retries
    after the lease's remaining time, and does not ack (that would delete the holder's message)."""
    platform.submit()
    first = platform.processor("hts")
    seen: dict[str, Any] = {}

    def redelivery(i: int) -> None:
        if i == 1:  # the first receive is mid-send when SQS hands the message out again
            seen["second"] = platform.processor("hts").process(HTS, "sqs:m1:receive-2")

    first.mailer = HookedMailer(first.mailer, redelivery)
    result = first.process(HTS, "sqs:m1:receive-1")
    second = seen["second"]
    assert second.outcome is Outcome.RETRY and second.fate is Fate.RETRY  # not acked
    assert second.retry_after is not None and 0 < second.retry_after <= 61  # Date has 1 s resolution
    assert result.outcome is Outcome.PROCESSED
    assert sorted(mailed(platform)) == sorted(set(mailed(platform)))  # nobody mailed twice
    assert len(mailed(platform)) == 2


def test_live_lease_of_another_message_is_a_duplicate(platform: Platform) -> None:
    platform.submit()
    first = platform.processor("hts")
    seen: dict[str, Any] = {}
    first.mailer = HookedMailer(
        first.mailer,
        lambda i: seen.setdefault("dup", platform.processor("hts").process(HTS, "sqs:m2:r1")) if i == 0 else None,
    )
    assert first.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert seen["dup"].outcome is Outcome.LEASE_HELD and seen["dup"].fate is Fate.ACK
    lease_holder = json.loads(
        platform.s3.get_object(Bucket=platform.bucket, Key="processing/hts/CHG-1.json")["Body"].read()
    )
    assert lease_holder.get("lease") is None and len(mailed(platform)) == 2


def test_worker_owner_is_unique_per_receive(platform: Platform) -> None:
    from runtime.worker import Worker

    owners: list[str] = []

    def handler(body: str, owner: str, cancelled: threading.Event | None) -> list[Any]:
        owners.append(owner)
        return []

    queue = platform.sqs.create_queue(QueueName="q-owner")["QueueUrl"]
    platform.sqs.send_message(QueueUrl=queue, MessageBody="{}")
    worker = Worker(platform.sqs, queue, handler, max_concurrency=1, visibility_timeout=30, receive_wait_seconds=0)
    message = platform.sqs.receive_message(QueueUrl=queue, AttributeNames=["All"])["Messages"][0]
    worker._handle(message)
    worker._slots.acquire()
    worker._handle(message)
    assert len(owners) == 2 and owners[0] != owners[1]
    assert all(o.startswith(f"sqs:{message['MessageId']}:") for o in owners)


# ---- one clock --------------------------------------------------------------------------------------


def test_manual_run_with_a_fast_local_clock_does_not_take_over_a_live_lease(platform: Platform) -> None:
    """v1 judged expiry on the reader's clock: a `process` run on a machine 400 s fast took over."""
    platform.submit()
    worker = platform.processor("hts", lease_seconds=300)
    fast = platform.processor("hts", lease_seconds=300, clock=lambda: utcnow() + timedelta(seconds=400))
    fast.store.clock._local = lambda: utcnow() + timedelta(seconds=400)  # even its storage-clock fallback
    seen: dict[str, Any] = {}
    worker.mailer = HookedMailer(
        worker.mailer, lambda i: seen.setdefault("manual", fast.process(HTS, "manual:ops-laptop")) if i == 0 else None
    )
    assert worker.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert seen["manual"].outcome is Outcome.LEASE_HELD
    assert len(mailed(platform)) == 2


# ---- render only the claimed revision ---------------------------------------------------------------


def test_only_the_claimed_revision_is_rendered_when_a_new_one_lands_during_the_claim(platform: Platform) -> None:
    """v1 re-read the archive when its claim lost a race, then mailed revision 2's content for a
    revision-1 message — revision 2 arrived twice."""
    platform.submit()
    s3 = Faulty(platform.s3)

    def submit_revision_2(**kwargs: object) -> None:
        platform.submit(title="Change CHG-1, second revision")

    s3.fail("put_object", submit_revision_2, times=1)  # lands between our archive GET and our claim
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.revision == 1
    assert result.trigger_delete is DeleteOutcome.REPLACED  # revision 2's trigger stays for its own event
    subjects = [m["subject"] for m in platform.emails("hts")]
    assert subjects and all("second revision" not in s for s in subjects)
    assert all("second revision" not in str(m["body"]) for m in platform.emails("hts"))
    follow_up = platform.processor("hts").process(HTS, "sqs:m2:r1")
    assert follow_up.outcome is Outcome.PROCESSED and follow_up.revision == 2
    assert sum("second revision" in m["subject"] for m in platform.emails("hts")) == 2  # once per recipient
    assert sorted((platform.processing("hts") or {})["results"]) == ["1", "2"]


# ---- check what the claim returned ------------------------------------------------------------------


def test_claim_meeting_a_recorded_newer_revision_is_already_recorded(platform: Platform) -> None:
    """v1 raised KeyError when its claim met an already processed newer revision."""
    platform.submit()
    newer = {"revision": 2, "recipients": 2, "sent": 2, "finished_at": utcnow().isoformat()}
    put_processing(platform, {"results": {"2": newer}})
    result = platform.processor("hts").process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.ALREADY_RECORDED and result.fate is Fate.ACK
    assert platform.emails("hts") == []
    assert not platform.trigger_exists("hts")


# ---- the lease is kept alive while working -----------------------------------------------------------


def test_lease_is_extended_while_an_ses_call_is_slow(platform: Platform) -> None:
    """v1 extended the lease only with a checkpoint after an email: a slow SES call let it expire and
    another message's processor took over and mailed everyone again."""
    platform.submit()
    holder = platform.processor("hts", lease_seconds=3)
    seen: dict[str, Any] = {}

    def slow_ses(i: int) -> None:
        if i == 0:
            time.sleep(4.5)  # longer than the lease
            seen["other"] = platform.processor("hts", lease_seconds=3).process(HTS, "sqs:m2:r1")

    holder.mailer = HookedMailer(holder.mailer, slow_ses)
    assert holder.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert seen["other"].outcome is Outcome.LEASE_HELD
    assert len(mailed(platform)) == 2


def test_a_trigger_with_nothing_to_checkpoint_starts_no_lease_keeper_thread(platform: Platform) -> None:
    """Issue 21: the keeper started a writer thread per trigger, even for 2 recipients, which need no
    checkpoint (the record covers them) and, sent well within a third of the lease, no extension: about
    1 % of the worker's CPU per trigger. The writer now starts only once a checkpoint or an extension is due."""
    platform.submit()
    processor = platform.processor("hts")
    alive: list[list[str]] = []

    def look(i: int) -> None:
        alive.append([t.name for t in threading.enumerate() if t.name == "lease-keeper"])

    processor.mailer = HookedMailer(processor.mailer, look)
    assert processor.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert alive == [[], []]


def test_threads_started_per_trigger_do_not_grow_with_the_triggers(platform: Platform) -> None:
    """One processor, three changes of 2 recipients each, one after the other: once the first trigger has
    started the process's shared threads, the next ones start none (no thread per trigger). The processor's
    read pool is left out: its threads are bounded by the pool, and one may start late in a race of the
    executor's own (a submit just before the previous task's thread reports itself idle)."""
    started: list[str] = []
    original = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if not thread.name.startswith("archive-read"):
            started.append(thread.name)
        original(thread)

    processor = platform.processor("hts")
    per_trigger: list[list[str]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "start", start)
        for n in (1, 2, 3):
            platform.submit(change_id=f"CHG-{n}")
            del started[:]
            assert processor.process(TriggerRef("hts", f"CHG-{n}"), f"sqs:m{n}:r1").outcome is Outcome.PROCESSED
            per_trigger.append(list(started))
    assert per_trigger[1:] == [[], []], per_trigger


def test_lease_is_extended_while_a_checkpoint_write_is_retried(platform: Platform) -> None:
    platform.submit()
    s3 = Faulty(platform.s3)
    holder = platform.processor("hts", s3=s3, lease_seconds=3)
    seen: dict[str, Any] = {}

    def flaky_checkpoint(**kwargs: object) -> None:
        if "IfMatch" in kwargs and str(kwargs.get("Key", "")).startswith("processing/"):
            raise client_error("InternalError", 500)

    def slow(i: int) -> None:
        if i == 1:
            s3.fail("put_object", flaky_checkpoint, times=3)  # three checkpoint writes fail, then recover
            time.sleep(4.0)
            seen["other"] = platform.processor("hts", lease_seconds=3).process(HTS, "sqs:m2:r1")

    holder.mailer = HookedMailer(holder.mailer, slow)
    assert holder.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert seen["other"].outcome is Outcome.LEASE_HELD
    assert len(mailed(platform)) == 2


# ---- progress: the duplicate window and the checkpoint size -----------------------------------------


class CountingMailer:
    """``n`` synthetic recipients; each send checks the back-pressure bound against S3 itself."""

    def __init__(self, platform: Platform, n: int, check_every: int = 0) -> None:
        self.platform = platform
        self.addresses = [f"user{i:05d}@hts.example.com" for i in range(n)]
        self.check_every = check_every
        self.worst_window = 0

    def subscribers(self, topic: str) -> list[str]:
        return list(self.addresses)

    def send(
        self,
        recipients: list[str],
        message: RenderedEmail,
        topic: str,
        *,
        on_done: RecipientDone,
        cancelled: threading.Event | None,
    ) -> list[str]:
        for k, address in enumerate(recipients):
            on_done(address, None)
            if self.check_every and k % self.check_every == 0:
                durable = (self.platform.processing("hts") or {}).get("progress") or {"done": 0}
                self.worst_window = max(self.worst_window, (k + 1) - durable["done"])
        return list(recipients)


def checkpoint_bytes(platform: Platform, n: int) -> tuple[int, int]:
    s3 = Faulty(platform.s3)
    written: list[int] = []
    s3.fail(
        "put_object",
        lambda **kw: written.append(len(kw["Body"])) if str(kw["Key"]).startswith("processing/") else None,
        times=100_000,
    )
    processor = platform.processor("hts", s3=s3)
    processor.mailer = CountingMailer(platform, n)
    platform.submit(change_id="CHG-1")
    assert processor.process(HTS, f"sqs:n{n}:r1").outcome is Outcome.PROCESSED
    s3._faults.clear()
    platform.s3.delete_object(Bucket=platform.bucket, Key="processing/hts/CHG-1.json")
    return sum(written), len(written)


def test_checkpoint_bytes_grow_linearly_with_the_recipients(platform: Platform) -> None:
    small, small_writes = checkpoint_bytes(platform, 100)
    large, large_writes = checkpoint_bytes(platform, 1000)
    print(f"checkpoint bytes: 100 recipients {small} B in {small_writes} writes; 1000: {large} B in {large_writes}")
    assert large_writes >= 1000 // MAX_UNRECORDED_EMAILS  # back-pressure: a checkpoint per ≤ 2 emails
    assert large / small < 13  # ~10x for 10x the recipients (v1's growing lists: ~100x)
    assert large / large_writes < 1000  # O(1) bytes per checkpoint


def test_never_more_than_two_emails_sent_but_not_checkpointed(platform: Platform) -> None:
    platform.submit()
    processor = platform.processor("hts")
    mailer = CountingMailer(platform, 40, check_every=1)
    processor.mailer = mailer
    assert processor.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert 1 <= mailer.worst_window <= MAX_UNRECORDED_EMAILS
    result = platform.result("hts") or {}
    assert result["recipients"] == 40 and result["sent"] == 40


def test_rejected_recipient_is_recorded_as_rejected_not_sent(platform: Platform) -> None:
    platform.submit()
    ses = Faulty(platform.ses("hts")).fail(
        "send_email",
        client_error(
            "MessageRejected",
            400,
            "Email address is not verified. The following identities failed the check in region US-EAST-1: "
            "lead@hts.example.com",  # the first recipient: a sandbox account refuses that address only
        ),
    )
    result = platform.processor("hts", ses=ses).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and len(result.rejected) == 1 and result.emails_sent == 1
    recorded = platform.result("hts") or {}
    assert recorded["recipients"] == 2 and recorded["sent"] == 1 and recorded["rejected"] == 1
    assert platform.metric_total("EmailsRejected", "hts") == 1
    assert platform.metric_total("EmailsSent", "hts") == 1


# ---- v1 compatibility ---------------------------------------------------------------------------------


def v1_archive(platform: Platform, **fields: Any) -> None:
    doc = platform.archive()
    doc.update(fields)
    platform.s3.put_object(Bucket=platform.bucket, Key="archive/CHG-1.json", Body=json.dumps(doc).encode())


def test_v1_processed_entry_counts_as_already_recorded(platform: Platform) -> None:
    platform.submit()
    entry = {
        "timestamp": utcnow().isoformat(),
        "user_id": "processor:hts",
        "modification_type": "processed",
        "customer_code": "hts",
        "revision": 1,
        "emails_sent": 2,
    }
    v1_archive(platform, modifications=[*platform.archive()["modifications"], entry])
    s3 = Faulty(platform.s3)
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.ALREADY_RECORDED and result.trigger_delete is DeleteOutcome.DELETED
    assert platform.emails("hts") == [] and platform.processing("hts") is None
    assert "put_object" not in s3.calls


def test_v1_lease_in_the_archive_is_ignored(platform: Platform) -> None:
    platform.submit()
    live = (utcnow() + timedelta(hours=1)).isoformat()
    v1_archive(platform, leases={"hts": {"owner": "sqs:v1", "revision": 1, "expires_at": live, "emails_sent": []}})
    result = platform.processor("hts").process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and len(mailed(platform)) == 2
    assert platform.archive()["leases"]["hts"]["owner"] == "sqs:v1"  # never written: it expires by itself


# ---- cost per trigger ---------------------------------------------------------------------------------


def test_a_new_trigger_costs_one_put_to_claim_and_no_processing_get(platform: Platform) -> None:
    platform.submit()
    s3 = Faulty(platform.s3)
    gets: list[str] = []
    s3.fail(
        "get_object",
        lambda **kw: gets.append(str(kw["Key"]) + (" IfNoneMatch" if "IfNoneMatch" in kw else "")),
        times=1000,
    )
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED
    # the claim created the processing object without a GET; the only reads of it are the conditional
    # checks before each email (issue 17 item 4: a bodiless 304 while the lease is ours)
    assert gets == ["archive/CHG-1.json", *["processing/hts/CHG-1.json IfNoneMatch"] * 2]
    calls = {k: v for k, v in s3.calls.items() if v}
    print(f"S3 calls for one trigger, 2 recipients: {calls}")
    assert calls["head_object"] == 1 and calls["delete_object"] == 1


def test_sender_stops_when_no_checkpoint_lands_for_a_whole_lease(platform: Platform) -> None:
    """Back-pressure never waits forever: with S3 refusing every checkpoint, at most 2 emails go out
    unrecorded and the receive gives up once a whole lease passed without one."""
    platform.submit()
    s3 = Faulty(platform.s3)

    def refuse_checkpoints(**kwargs: object) -> None:
        if "IfMatch" in kwargs and str(kwargs.get("Key", "")).startswith("processing/"):
            raise client_error("InternalError", 500)

    s3.fail("put_object", refuse_checkpoints, times=100_000)
    processor = platform.processor("hts", s3=s3, lease_seconds=2)
    processor.mailer = CountingMailer(platform, 10)
    started = time.monotonic()
    result = processor.process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.RETRY and "lease" in result.reason
    assert time.monotonic() - started < 10
    assert platform.trigger_exists("hts") and platform.result("hts") is None


# ---- an interrupted run ends its lease (issue 11 item 11) -------------------------------------------


class LedgerMailer:
    """``n`` synthetic recipients and a shared ledger of every email "SES accepted"; with
    ``interrupt_before`` set, Ctrl-C (``KeyboardInterrupt``) lands before that email (0-based), with
    ``interrupt_reading`` while the recipients are read."""

    def __init__(
        self, ledger: list[str], n: int, interrupt_before: int | None = None, *, interrupt_reading: bool = False
    ) -> None:
        self.ledger = ledger
        self.addresses = [f"user{i:02d}@hts.example.com" for i in range(n)]
        self.interrupt_before = interrupt_before
        self.interrupt_reading = interrupt_reading

    def subscribers(self, topic: str) -> list[str]:
        if self.interrupt_reading:
            raise KeyboardInterrupt
        return list(self.addresses)

    def send(
        self,
        recipients: list[str],
        message: RenderedEmail,
        topic: str,
        *,
        on_done: RecipientDone,
        cancelled: threading.Event | None,
    ) -> list[str]:
        for address in recipients:
            if len(self.ledger) == self.interrupt_before:
                raise KeyboardInterrupt
            self.ledger.append(address)
            on_done(address, None)
        return list(recipients)


def test_interrupted_manual_run_releases_its_lease_and_the_worker_sends_only_the_rest(platform: Platform) -> None:
    """A Ctrl-C'd `process` left its lease live for the whole lease time: the worker acked its own
    message as a duplicate (LEASE_HELD) and the trigger waited for the sweeper. Now the interrupted run
    writes its exact progress and ends its lease, so the worker resumes at once: every recipient once."""
    platform.submit()
    ledger: list[str] = []
    manual = platform.processor("hts", lease_seconds=300)
    manual.mailer = LedgerMailer(ledger, 7, interrupt_before=3)
    with pytest.raises(KeyboardInterrupt):  # the interrupt reaches the caller: the CLI stops
        manual.process(HTS, "manual:ops-laptop")
    doc = platform.processing("hts") or {}
    assert doc["lease"]["owner"] == "manual:ops-laptop"
    assert datetime.fromisoformat(doc["lease"]["expires_at"]) <= utcnow()  # released on the storage clock
    assert doc["progress"]["done"] == 3  # every email sent before the interrupt, none more
    assert platform.trigger_exists("hts") and not doc.get("results")  # nothing recorded, nothing lost

    worker = platform.processor("hts", lease_seconds=300)
    worker.mailer = LedgerMailer(ledger, 7)
    result = worker.process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.emails_sent == 4
    assert sorted(ledger) == worker.mailer.addresses  # each recipient exactly once: none lost, none twice
    assert (platform.result("hts") or {})["sent"] == 7
    assert not platform.trigger_exists("hts")


def test_interrupt_before_any_email_releases_the_claimed_lease(platform: Platform) -> None:
    """Ctrl-C while the recipients are read (after the claim, before any email): the lease ends too."""
    platform.submit()
    manual = platform.processor("hts", lease_seconds=300)
    ledger: list[str] = []
    manual.mailer = LedgerMailer(ledger, 3, interrupt_reading=True)
    with pytest.raises(KeyboardInterrupt):
        manual.process(HTS, "manual:ops-laptop")
    lease = (platform.processing("hts") or {})["lease"]
    assert datetime.fromisoformat(lease["expires_at"]) <= utcnow()
    worker = platform.processor("hts", lease_seconds=300)
    worker.mailer = LedgerMailer(ledger, 3)
    assert worker.process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    assert sorted(ledger) == worker.mailer.addresses


def test_interrupt_during_the_record_keeps_every_email_sent(platform: Platform) -> None:
    """Ctrl-C while the result is being recorded (step 7), before the write lands: the last emails
    are not checkpointed yet (the record would have covered them), so the interrupted run checkpoints
    them with the release; the worker then sends nothing more and records the result."""
    platform.submit()
    s3 = Faulty(platform.s3)

    def interrupt_the_record(**kwargs: Any) -> None:
        if str(kwargs["Key"]).startswith("processing/") and b'"results":{"1"' in kwargs["Body"]:
            raise KeyboardInterrupt

    s3.fail("put_object", interrupt_the_record, times=1000)
    manual = platform.processor("hts", s3=s3, lease_seconds=300)
    ledger: list[str] = []
    manual.mailer = LedgerMailer(ledger, 3)
    with pytest.raises(KeyboardInterrupt):
        manual.process(HTS, "manual:ops-laptop")
    s3._faults.clear()
    doc = platform.processing("hts") or {}
    assert not doc.get("results") and doc["progress"]["done"] == 3
    assert datetime.fromisoformat(doc["lease"]["expires_at"]) <= utcnow()
    worker = platform.processor("hts", lease_seconds=300)
    worker.mailer = LedgerMailer(ledger, 3)
    result = worker.process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.emails_sent == 0
    assert sorted(ledger) == worker.mailer.addresses
    assert (platform.result("hts") or {})["sent"] == 3


def test_send_interrupted_by_the_drain_releases_the_lease_with_the_progress(platform: Platform) -> None:
    """The worker's side: at the end of a SIGTERM drain the interrupted send returns its message; its
    lease ends with the checkpoint, so whichever task receives the message next resumes at once."""
    platform.submit()
    cancelled = threading.Event()
    draining = platform.processor("hts", lease_seconds=300)
    draining.mailer = HookedMailer(draining.mailer, lambda i: cancelled.set() if i == 1 else None)
    first = draining.process(HTS, "sqs:m1:r1", cancelled)
    assert first.outcome is Outcome.RETRY and first.emails_sent == 1
    doc = platform.processing("hts") or {}
    assert datetime.fromisoformat(doc["lease"]["expires_at"]) <= utcnow() and doc["progress"]["done"] == 1
    second = platform.processor("hts", lease_seconds=300).process(HTS, "sqs:m1:r2")  # another task, at once
    assert second.outcome is Outcome.PROCESSED and second.emails_sent == 1
    assert sorted(mailed(platform)) == sorted(set(mailed(platform))) and len(mailed(platform)) == 2
