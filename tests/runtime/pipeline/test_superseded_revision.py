"""Issue 17 item 4: a superseded revision sends nothing new and is never the last email a recipient gets.

Revision 2 takes over revision 1's live lease at once. Before, a slow revision-1 ``SendEmail`` landed
after revision 2's emails and the old processor then sent one more revision-1 email, and its partial
sends appeared nowhere. Now the old holder checks before each send, stops and records what it sent as
superseded; the newer revision waits for that (bounded by the displaced lease's end) before sending.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from runtime.archive.documents import utcnow
from runtime.archive.processing import SendProgress, recipients_digest
from runtime.contract.keys import TriggerRef
from runtime.pipeline import Outcome
from runtime.worker import Fate
from tests.runtime.pipeline.test_leases import HookedMailer
from tests.runtime.pipeline.test_state_machine import HTS_RECIPIENTS
from tests.support.aws_platform import Faulty, Platform, client_error

HTS = TriggerRef("hts", "CHG-1")
SECOND = "second revision"


class Log:
    """One ordered log of what both processors did: each ``SendEmail`` as it starts, and the claims."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.times: list[float] = []

    def add(self, kind: str, detail: str) -> None:
        with self._lock:
            self.events.append((kind, detail))
            self.times.append(time.monotonic())


class ClaimSpy:
    """Wraps an S3 client: logs ``claim`` once a processing-object write that names ``owner`` as the
    lease holder has landed."""

    def __init__(self, target: Any, log: Log, owner: str) -> None:
        self._target, self._log, self._owner = target, log, owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name != "put_object":
            return attr

        def put_object(**kwargs: Any) -> Any:
            response = attr(**kwargs)
            body = kwargs.get("Body", b"")
            if str(kwargs.get("Key", "")).startswith("processing/") and f'"owner":"{self._owner}"'.encode() in body:
                self._log.add("claim", self._owner)
            return response

        return put_object


def logging_ses(platform: Platform, log: Log, revision: int, block: threading.Event | None = None) -> Faulty:
    """The customer's SES client; every ``SendEmail`` is logged as it starts. With ``block``, the first
    one waits for it (a throttled or slow call, already past every check) before SES takes it."""
    ses = Faulty(platform.ses("hts"))
    state = {"first": True}

    def before(**kwargs: Any) -> None:
        log.add("send", f"r{revision}:{kwargs['Destination']['ToAddresses'][0].lower()}")
        if block is not None and state["first"]:
            state["first"] = False
            log.add("blocked", f"r{revision}")
            assert block.wait(30), "the test never released the slow SendEmail"

    ses.fail("send_email", before, times=1000)
    return ses


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_slow_revision_1_send_is_never_the_last_email_and_its_partial_sends_are_recorded(
    platform: Platform,
) -> None:
    platform.submit()
    log, release = Log(), threading.Event()
    old = platform.processor("hts", ses=logging_ses(platform, log, 1, block=release), lease_seconds=60)
    results: dict[str, Any] = {}
    t1 = threading.Thread(target=lambda: results.setdefault("r1", old.process(HTS, "sqs:m1:r1")))
    t1.start()
    wait_for(lambda: ("blocked", "r1") in log.events)  # revision 1's first SendEmail is under way, slowly

    platform.submit(title=f"Change CHG-1, {SECOND}")
    new = platform.processor(
        "hts", s3=ClaimSpy(platform.s3, log, "sqs:m2:r1"), ses=logging_ses(platform, log, 2), lease_seconds=60
    )
    t2 = threading.Thread(target=lambda: results.setdefault("r2", new.process(HTS, "sqs:m2:r1")))
    t2.start()
    wait_for(lambda: ("claim", "sqs:m2:r1") in log.events)
    t2.join(timeout=1.0)  # before the fix revision 2 sent at once and finished here
    release.set()  # the slow revision-1 SendEmail lands now
    t1.join(timeout=30)
    t2.join(timeout=30)
    assert not t1.is_alive() and not t2.is_alive()

    # (i) revision 1 started no SendEmail after revision 2's claim
    claimed_at = log.events.index(("claim", "sqs:m2:r1"))
    late = [d for kind, d in log.events[claimed_at:] if kind == "send" and d.startswith("r1:")]
    assert late == [], f"revision 1 sent after revision 2's claim: {late}"

    # (ii) every recipient's newest email is revision 2's (SES's own order of acceptance)
    last: dict[str, str] = {}
    for email in platform.emails("hts"):
        last[email["to"][0].lower()] = email["subject"]
    assert last and all(SECOND in subject for subject in last.values()), last

    # (iii) revision 1's partial sends are recorded as superseded, and folded so into the audit trail
    r1, r2 = results["r1"], results["r2"]
    assert r1.outcome is Outcome.SUPERSEDED and r1.fate is Fate.ACK and r1.emails_sent == 1
    assert r2.outcome is Outcome.PROCESSED and r2.emails_sent == 2
    partial = platform.result("hts", 1) or {}
    assert partial.get("superseded") is True and partial["sent"] == 1 and partial["recipients"] == 2
    assert (platform.result("hts", 2) or {}).get("superseded") is None
    doc = platform.processing("hts") or {}
    assert not doc.get("displaced") and doc.get("lease") is None
    platform.fold(customers=["hts"])
    entries = {e["revision"]: e for e in platform.processed_entries()}
    assert entries[1]["superseded"] is True and entries[1]["emails_sent"] == 1
    assert "superseded" not in entries[2] and entries[2]["emails_sent"] == 2


def test_newer_revision_waits_for_a_silent_displaced_holder_until_its_lease_ends(platform: Platform) -> None:
    """A displaced holder that never answers (killed mid-send): the newer revision sends only once the
    old lease has ended on the storage clock, never while the old holder might still be sending."""
    platform.submit()
    dead = platform.processor("hts", lease_seconds=4)
    claimed = dead._claim("CHG-1", "sqs:dead:r1", 1)
    recipients = sorted(HTS_RECIPIENTS)
    checkpoint = SendProgress(
        revision=1, recipients=2, recipients_digest=recipients_digest(recipients), done=1, done_through=recipients[0]
    )
    dead.store.update(  # its checkpoint after the first email; then the task was killed: nobody will answer
        "hts",
        "CHG-1",
        lambda v: v.document.model_copy(update={"progress": checkpoint}) if v else None,
        create=False,
        current=claimed,
    )
    old_lease = (platform.processing("hts") or {})["lease"]
    platform.submit(title=f"Change CHG-1, {SECOND}")
    log = Log()
    new = platform.processor("hts", ses=logging_ses(platform, log, 2), lease_seconds=60)
    old_lease_left = (datetime.fromisoformat(old_lease["expires_at"]) - utcnow()).total_seconds()
    started = time.monotonic()
    result = new.process(HTS, "sqs:m2:r1")
    assert result.outcome is Outcome.PROCESSED and result.emails_sent == 2
    first_send = log.times[[kind for kind, _ in log.events].index("send")] - started
    assert old_lease_left > 2 and first_send >= old_lease_left - 1.0  # Date's whole seconds: ≤ 1 s early
    assert first_send < old_lease_left + 5  # bounded: it does not wait longer than the old lease
    partial = platform.result("hts", 1) or {}  # from its last checkpoint: what it sent at least
    assert partial.get("superseded") is True and partial["sent"] == 1 and partial["recipients"] == 2
    assert not (platform.processing("hts") or {}).get("displaced")


def test_revision_stopped_by_the_drain_is_recorded_as_superseded_by_the_next_revisions_claim(
    platform: Platform,
) -> None:
    """Revision 1 was interrupted by a drain after 1 of 2 emails (lease released with the checkpoint);
    revision 2 is submitted before its message comes back: that message will find revision 2 recorded
    and be acked, so revision 2's claim records revision 1's sends as superseded."""
    platform.submit()
    cancelled = threading.Event()
    first = platform.processor("hts")
    first.mailer = HookedMailer(first.mailer, lambda i: cancelled.set() if i == 1 else None)
    assert first.process(HTS, "sqs:m1:r1", cancelled).outcome is Outcome.RETRY
    platform.submit(title=f"Change CHG-1, {SECOND}")
    assert platform.processor("hts").process(HTS, "sqs:m2:r1").outcome is Outcome.PROCESSED
    assert platform.processor("hts").process(HTS, "sqs:m1:r2").outcome is Outcome.TRIGGER_GONE
    partial = platform.result("hts", 1) or {}
    assert partial.get("superseded") is True and partial["sent"] == 1 and partial["recipients"] == 2
    platform.fold(customers=["hts"])
    assert [(e["revision"], e.get("superseded"), e["emails_sent"]) for e in platform.processed_entries()] == [
        (1, True, 1),
        (2, None, 2),
    ]


def test_a_holder_of_the_newest_revision_pays_one_conditional_read_per_email(platform: Platform) -> None:
    """The cost of checking before each send: one GET ``IfNoneMatch`` (304, no body) per email, the first
    included (a newer claim may land right after ours:
    ``test_a_newer_claim_between_the_holders_claim_and_its_first_email_stops_it_before_any_send``)."""
    platform.submit()
    s3 = Faulty(platform.s3)
    reads: list[dict[str, Any]] = []
    s3.fail("get_object", lambda **kw: reads.append(kw), times=1000)
    result = platform.processor("hts", s3=s3).process(HTS, "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.emails_sent == 2
    checks = [r for r in reads if str(r["Key"]).startswith("processing/")]
    conditional = all("IfNoneMatch" in r for r in checks)
    print(f"\nprocessing-object reads for 2 emails: {len(checks)}, all conditional: {conditional}")
    assert len(checks) == 2 and conditional


def test_holder_starts_no_send_once_its_lease_may_have_ended(platform: Platform) -> None:
    """What bounds the newer revision's wait: a holder whose lease could not be extended (S3 refused
    every checkpoint) starts no send past its lease's end, where a newer revision may already send."""
    platform.submit()
    s3 = Faulty(platform.s3)

    def refuse_checkpoints(**kwargs: object) -> None:
        if "IfMatch" in kwargs and str(kwargs.get("Key", "")).startswith("processing/"):
            raise client_error("InternalError", 500)

    s3.fail("put_object", refuse_checkpoints, times=100_000)
    holder = platform.processor("hts", s3=s3, lease_seconds=3)
    holder.mailer = HookedMailer(holder.mailer, lambda i: time.sleep(3.2) if i == 1 else None)  # a slow spell
    result = holder.process(HTS, "sqs:m1:r1")
    assert len(platform.emails("hts")) == 1  # the second email was not sent after the lease had ended
    assert result.outcome is Outcome.RETRY and "lease" in result.reason


class ClaimThenWait(ClaimSpy):
    """A :class:`ClaimSpy` whose processor, once its claim has landed, waits for ``until`` before going on
    (a slow moment between its claim and its first email: a paused thread, a long recipient listing)."""

    def __init__(self, target: Any, log: Log, owner: str, until: threading.Event) -> None:
        super().__init__(target, log, owner)
        self._until = until

    def __getattr__(self, name: str) -> Any:
        put = super().__getattr__(name)
        if name != "put_object":
            return put

        def put_object(**kwargs: Any) -> Any:
            response = put(**kwargs)
            if ("claim", self._owner) in self._log.events and not self._until.is_set():
                assert self._until.wait(30), "the test never let the first claimant go on"
            return response

        return put_object


def test_a_newer_claim_between_the_holders_claim_and_its_first_email_stops_it_before_any_send(
    platform: Platform,
) -> None:
    """docs/design.md, "A superseded revision sends nothing new": it stops before its next send, the first
    included. The holder's own claim proved the lease its own only when it landed: a newer revision's claim
    right after it must still stop the holder before its first SendEmail (issue 21 had the claim stand in
    for that check)."""
    platform.submit()
    log, go_on = Log(), threading.Event()
    old = platform.processor(
        "hts",
        s3=ClaimThenWait(platform.s3, log, "sqs:m1:r1", go_on),
        ses=logging_ses(platform, log, 1),
        lease_seconds=60,
    )
    results: dict[str, Any] = {}
    t1 = threading.Thread(target=lambda: results.setdefault("r1", old.process(HTS, "sqs:m1:r1")))
    t1.start()
    wait_for(lambda: ("claim", "sqs:m1:r1") in log.events)  # revision 1 holds the lease, has sent nothing

    platform.submit(title=f"Change CHG-1, {SECOND}")
    new = platform.processor(
        "hts", s3=ClaimSpy(platform.s3, log, "sqs:m2:r1"), ses=logging_ses(platform, log, 2), lease_seconds=60
    )
    t2 = threading.Thread(target=lambda: results.setdefault("r2", new.process(HTS, "sqs:m2:r1")))
    t2.start()
    wait_for(lambda: ("claim", "sqs:m2:r1") in log.events)
    go_on.set()  # revision 1 goes on, right after revision 2's claim
    t1.join(timeout=30)
    t2.join(timeout=30)
    assert not t1.is_alive() and not t2.is_alive()
    late = [d for kind, d in log.events if kind == "send" and d.startswith("r1:")]
    assert late == [], f"revision 1 sent after revision 2's claim: {late}"
    assert results["r1"].outcome is Outcome.SUPERSEDED and results["r1"].emails_sent == 0
    assert results["r2"].outcome is Outcome.PROCESSED and results["r2"].emails_sent == 2
