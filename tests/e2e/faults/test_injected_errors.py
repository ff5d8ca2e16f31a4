"""Injected S3, SES and Graph errors while many processors and two change coordinators work at once.

Six queue workers (two per customer, three messages each at a time: 18 in flight) run in threads
against moto in-process, and two change-coordinator workers (in threads, fed by moto's S3 notifications
of ``archive/`` and ``processing/``) fold the results and own the meetings, against the fake Graph.
Every change goes to all three customers; each customer's processors compare-and-swap that customer's
own ``processing/{code}/{id}.json`` (two workers per customer race for it), read the archive and never
write it, and some S3 events are delivered twice (S3 delivers at least once). On top, seeded random
faults:

* S3 (processors and coordinators alike): 412 on writes (a writer we did not see), 500/503 before a
  call, and 500 *after* a write, a delete or a read succeeded (the answer was lost — the call happened);
* SES: throttling (``TooManyRequestsException``) and 500 before SES accepts an email (a 500 after the
  accept cannot be told apart from a sent email by anyone, so it is not injected);
* Graph (the coordinators' only): 429 with ``Retry-After``, 503, 500, and a 500 after an event was
  created (a lost answer).

No process crashes here, so the documented duplicate window (a crash between SES accepting and the
next checkpoint) never opens: every recipient must get exactly one email per change. (Faults are not
injected into the progress save that follows a failure — see ``EXEMPT_FRAMES`` in conftest.py: two
failures in a row there resend the unsaved emails by design.) Every change
must end with exactly one recorded result per customer (in its processing object, no lease left),
folded once into the archive as a ``processed`` entry with the result's counts; the archive's
content is kept; each meeting exists once in Graph and is recorded once; and nothing may end in a
dead-letter queue (the customers' nor the coordinator's).
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools import sandbox as sb
from devtools.emulator import speed_up_moto
from devtools.fake_graph import FakeGraph
from runtime.archive.documents import utcnow
from runtime.archive.processing_store import ProcessingStore
from runtime.archive.store import ArchiveStore
from runtime.archive.triggers import TriggerStore
from runtime.contract.settings import OpsSettings
from runtime.coordinator.folding import FoldBatcher, Folder
from runtime.coordinator.handler import CoordinatorHandler
from runtime.notify.attendees import ContactDirectory
from runtime.notify.graph import GraphCalendar, GraphClient, MsalTokenProvider, TimeoutSession, graph_scope
from runtime.notify.meetings import MeetingCoordinator
from runtime.notify.ses import RateLimiter, SesMailer
from runtime.pipeline import Processor, ProcessorHandler
from runtime.sweeper import SweepAction, Sweeper, s3_event_message
from runtime.telemetry.metrics import MetricsFactory
from runtime.worker import Worker
from tests.support.fault_injection import (
    RandomFaults,
    Rule,
    chaos_customer,
    client_error,
    duplicates,
    email_counts,
    modifications,
    queue_depth,
    submit,
    trigger_keys,
    wait_for,
)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TTP_FAULT_SEED") or random.SystemRandom().randrange(2**32))
CHANGES = 24
MEETINGS = 3
WORKERS_PER_CUSTOMER = 2
LEASE_SECONDS = 10
"""Lease and visibility timeout (the service's floor is 30 s; built here directly): a claim whose answer
was lost waits for its lease to end, so this bounds how long such a trigger waits (heartbeats and lease
renewals run every third of it, as in the service)."""
COORDINATORS = 2


CUSTOMERS = [
    chaos_customer("delta", "740000000004"),
    chaos_customer("echo", "750000000005"),
    chaos_customer("foxtrot", "760000000006"),
]
CODES = [c.code for c in CUSTOMERS]


def s3_rules() -> list[Rule]:
    return [
        Rule("put_object", 0.10, lambda: client_error("PreconditionFailed", 412), label="412"),
        Rule("put_object", 0.05, lambda: client_error("InternalError", 500), label="500"),
        Rule("put_object", 0.04, lambda: client_error("InternalError", 500), after_success=True, label="500-after"),
        Rule("get_object", 0.04, lambda: client_error("InternalError", 500), label="500"),
        Rule("get_object", 0.03, lambda: client_error("SlowDown", 503), after_success=True, label="503-after"),
        Rule("head_object", 0.05, lambda: client_error("ServiceUnavailable", 503), label="503"),
        Rule("delete_object", 0.05, lambda: client_error("ServiceUnavailable", 503), label="503"),
        Rule("delete_object", 0.05, lambda: client_error("InternalError", 500), after_success=True, label="500-after"),
    ]


def ses_rules() -> list[Rule]:
    return [
        Rule("send_email", 0.08, lambda: client_error("TooManyRequestsException", 429), label="throttled"),
        Rule("send_email", 0.04, lambda: client_error("InternalFailure", 500), label="500-before-accept"),
        Rule("list_contacts", 0.04, lambda: client_error("InternalFailure", 500), label="500"),
        Rule("get_contact_list", 0.04, lambda: client_error("TooManyRequestsException", 429), label="throttled"),
    ]


def graph_faults(fake: FakeGraph) -> None:
    """Queued on the fake: the next matching requests fail, in this order."""
    fake.fail_next(429, retry_after=0.2, times=2, method="GET", path_contains="/events")
    fake.fail_next(503, times=1, method="GET", path_contains="/events")
    fake.fail_next(500, times=1, method="POST", path_contains="/events", after_success=True)  # created, answer lost
    fake.fail_next(429, retry_after=0.1, times=1, method="POST", path_contains="/events")
    fake.fail_next(503, times=2, method="POST", path_contains="/events")
    fake.fail_next(500, times=1, method="POST", path_contains="/events")


@pytest.fixture(scope="module", autouse=True)
def moto_without_hot_spots() -> None:
    """moto in this process without the per-request work the emulator also drops (same answers):
    the notifications into the coordinators' growing queue no longer count its messages each time."""
    speed_up_moto()


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph() as server:
        yield server


def test_injected_s3_ses_graph_errors_lose_nothing_and_send_nothing_twice(
    aws_credentials: None, fake: FakeGraph, say: Callable[[str], None]
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    with mock_aws():
        box = sb.create_sandbox(CUSTOMERS, max_receive_count=1000, visibility_timeout=LEASE_SECONDS)
        s3, sqs = boto3.client("s3", region_name=box.region), boto3.client("sqs", region_name=box.region)
        faulty: list[RandomFaults] = []

        def build_worker(code: str) -> Worker:
            spec = box.customers[code].spec
            s3_faults = RandomFaults(
                boto3.client("s3", region_name=box.region), s3_rules(), random.Random(rng.random())
            )
            ses_faults = RandomFaults(
                sb.customer_session(spec, box.region).client("sesv2"), ses_rules(), random.Random(rng.random())
            )
            faulty.extend([s3_faults, ses_faults])
            processor = Processor(
                code,
                ArchiveStore(s3_faults, box.bucket),
                TriggerStore(s3_faults, box.bucket),
                SesMailer(lambda: ses_faults, spec.sender, sb.DEFAULT_CONTACT_LIST_NAME, RateLimiter(500, burst=50)),
                MetricsFactory("CustomMetrics", io.StringIO()),
                lease_seconds=LEASE_SECONDS,
                store=ProcessingStore(s3_faults, box.bucket),
            )
            return Worker(
                boto3.client("sqs", region_name=box.region),
                box.customers[code].queue_url,
                ProcessorHandler(box.bucket, processor),
                max_concurrency=3,
                visibility_timeout=LEASE_SECONDS,
                receive_wait_seconds=1,
                retry_base_seconds=0,
                drain_seconds=5,
            )

        tokens = MsalTokenProvider(
            tenant_id=fake.tenant_id,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            authority_host=fake.authority_host,
            scope=graph_scope(fake.graph_base_url),
            http_client=TimeoutSession(ca_bundle=fake.ca_path),
        )
        calendar_ses = {
            code: sb.customer_session(box.customers[code].spec, box.region).client("sesv2") for code in CODES
        }
        roles = {code: c.spec.contact_role_arn for code, c in box.customers.items()}
        coordinator_faults: list[RandomFaults] = []

        def build_coordinator() -> Worker:
            s3_faults = RandomFaults(
                boto3.client("s3", region_name=box.region), s3_rules(), random.Random(rng.random())
            )
            coordinator_faults.append(s3_faults)
            client = GraphClient(
                fake.graph_base_url,
                tokens,
                session_factory=lambda: TimeoutSession(ca_bundle=fake.ca_path),
                backoff_base=0.05,
                max_retry_after=2.0,
            )
            meetings = MeetingCoordinator(
                ArchiveStore(s3_faults, box.bucket),
                GraphCalendar(client, fake.organizer),
                ContactDirectory(roles, "ext", sb.DEFAULT_CONTACT_LIST_NAME, ses_factory=calendar_ses.__getitem__),
                organizer=fake.organizer,
                lease_seconds=10,
                wait_seconds=0.0,  # as the coordinator's composition: a lease held elsewhere means retry later
            )
            metrics = MetricsFactory("CustomMetrics", io.StringIO())
            archive = ArchiveStore(s3_faults, box.bucket)
            handler = CoordinatorHandler(
                s3_faults, box.bucket, archive, FoldBatcher(Folder(archive, metrics), 0.2), metrics, meetings
            )
            assert box.coordinator is not None
            return Worker(
                boto3.client("sqs", region_name=box.region),
                box.coordinator.queue_url,
                handler,
                max_concurrency=6,
                visibility_timeout=LEASE_SECONDS,
                receive_wait_seconds=1,
                retry_base_seconds=0.5,
                drain_seconds=5,
            )

        workers = [build_worker(code) for code in CODES for _ in range(WORKERS_PER_CUSTOMER)]
        workers += [build_coordinator() for _ in range(COORDINATORS)]
        graph_faults(fake)
        plan: list[dict[str, Any]] = []
        for n in range(CHANGES):
            doc: dict[str, Any] = {"change_id": f"CHG-F{n:03d}", "title": f"Fault change {n}", "customers": CODES}
            doc["approvals"] = [{"by": "cab", "n": n}]  # unknown to the processor
            if n < MEETINGS:
                doc["meeting"] = {
                    "start_time": f"2026-11-0{n + 1}T09:00:00Z",
                    "end_time": f"2026-11-0{n + 1}T10:00:00Z",
                }
            plan.append(doc)
            submit(box, doc, s3)
        # S3 delivers at least once: a second copy of some events
        duplicated = 0
        for doc in plan:
            for code in CODES:
                if rng.random() < 0.2:
                    key = f"customers/{code}/{doc['change_id']}.json"
                    body = s3_event_message(box.bucket, key, etag=None, region=box.region, at=utcnow(), attempt=0)
                    sqs.send_message(QueueUrl=box.customers[code].queue_url, MessageBody=body)
                    duplicated += 1

        stop = threading.Event()
        crashes: list[BaseException] = []

        def run(worker: Worker) -> None:
            try:
                worker.run(until=stop.is_set)
            except BaseException as exc:  # the worker must never crash
                crashes.append(exc)

        threads = [threading.Thread(target=run, args=(w,), name=f"worker-{i}") for i, w in enumerate(workers)]
        for thread in threads:
            thread.start()
        # a trigger whose delete failed after the result was recorded is the sweeper's (docs/design.md §2 step 8)
        settings = OpsSettings(
            bucket_name=box.bucket, customer_queues={c: box.customers[c].queue_url for c in CODES}
        ).model_copy(update={"stuck_after_seconds": 5})
        sweeper = Sweeper(
            s3, sqs, settings, MetricsFactory("CustomMetrics", io.StringIO()), log=_quiet, cleanup_grace_seconds=1
        )
        swept: list[SweepAction] = []

        def done() -> bool:
            remaining = trigger_keys(box, s3)
            drained = all(queue_depth(sqs, box.customers[c].queue_url) == 0 for c in CODES)
            if remaining and drained:
                swept.extend(sweeper.run().actions)
            return drained and not remaining

        archive_store = ArchiveStore(s3, box.bucket)

        def settled() -> bool:  # every result folded, every meeting recorded, the coordinator's queue empty
            for doc in plan:
                stored = archive_store.load_with_results(doc["change_id"]).document
                if any(not stored.is_processed(code, 1) for code in CODES):
                    return False
                if "meeting" in doc and (stored.meeting_metadata is None or stored.meeting_lease is not None):
                    return False
            assert box.coordinator is not None
            return queue_depth(sqs, box.coordinator.queue_url) == 0

        try:
            wait_for(
                done,
                120,
                "every trigger processed and every queue drained",
                interval=0.5,
            )
            wait_for(settled, 90, "every result folded and every meeting recorded by the coordinators", interval=0.5)
        except AssertionError as exc:
            left = trigger_keys(box, s3)
            depths = {c: queue_depth(sqs, box.customers[c].queue_url) for c in CODES}
            leases = {k: _processing_state(s3, box.bucket, k) for k in left[:5]}
            raise AssertionError(
                f"seed {SEED}: {exc}; triggers left {left}; queue depths {depths}; {leases}; "
                f"archives {[_archive_state(s3, box.bucket, d['change_id']) for d in plan[: MEETINGS + 2]]}"
            ) from None
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        elapsed = time.monotonic() - started

        docs = {
            doc["change_id"]: ArchiveStore(s3, box.bucket).load_with_results(doc["change_id"]).document for doc in plan
        }
        processing = {
            (code, doc["change_id"]): ProcessingStore(s3, box.bucket).load_optional(code, doc["change_id"])
            for doc in plan
            for code in CODES
        }
        emails = {code: email_counts(box.customers[code].spec.account) for code in CODES}
        dlq_urls = {code: box.customers[code].dlq_url for code in CODES}
        assert box.coordinator is not None
        dlq_urls["coordinator"] = box.coordinator.dlq_url
        dlq = {
            name: int(
                sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                    "ApproximateNumberOfMessages"
                ]
            )
            for name, url in dlq_urls.items()
        }

    injected = sum((f.injected for f in faulty), Counter[str]())
    coordinator_injected = sum((f.injected for f in coordinator_faults), Counter[str]())
    graph_errors = Counter(status for _method, _path, status in fake.requests if status >= 400)
    events = fake.events()
    say(
        f"fault seed {SEED} (rerun: TTP_FAULT_SEED={SEED}): {len(plan) * len(CODES)} triggers "
        f"(+{duplicated} duplicate S3 events), 6 workers, {COORDINATORS} coordinators\n"
        f"  injected AWS errors: {sum(injected.values())} {dict(sorted(injected.items()))}\n"
        f"  injected S3 errors into the coordinators: {sum(coordinator_injected.values())} "
        f"{dict(sorted(coordinator_injected.items()))}\n"
        f"  Graph errors answered: {dict(sorted(graph_errors.items()))}; meetings: {len(events)} events for "
        f"{MEETINGS} changes\n"
        f"  the sweeper deleted {sum(a.action == 'deleted' for a in swept)} recorded triggers whose delete had failed; "
        f"elapsed {elapsed:.1f}s"
    )
    assert not crashes, crashes
    # only clean-up: a recorded trigger whose delete failed (the sweeper reads the processing objects)
    assert all(a.action == "deleted" for a in swept), swept
    assert not [t.name for t in threads if t.is_alive()]
    assert sum(1 for k in injected if k.startswith("put_object:500")) > 0  # the faults did happen
    assert sum(1 for k in coordinator_injected if k.startswith("put_object")) > 0
    assert sum(1 for _m, _p, status in fake.requests if status in (429, 503)) > 0  # Graph faults answered
    assert dlq == dict.fromkeys([*CODES, "coordinator"], 0)

    for doc in plan:
        stored = docs[doc["change_id"]]
        dumped = stored.to_json_dict()
        assert len(modifications(dumped, "submitted")) == 1
        assert stored.revision == 1 and stored.model_extra == {"approvals": doc["approvals"]}
        assert len(modifications(dumped, "processed")) == len(CODES), (doc["change_id"], dumped["modifications"])
        for code in CODES:
            version = processing[(code, doc["change_id"])]
            assert version is not None, (doc["change_id"], code)
            assert list(version.document.results) == ["1"], (doc["change_id"], code, version.document)
            assert version.document.lease is None and version.document.progress is None
            result = version.document.results["1"]
            [entry] = modifications(dumped, "processed", code)  # folded once, by the coordinator
            assert entry["revision"] == 1 and entry["user_id"] == f"processor:{code}", entry
            assert (entry["recipients"], entry["emails_sent"], entry["rejected"]) == (
                result.recipients,
                result.sent,
                result.rejected,
            ), (entry, result)
        if "meeting" in doc:
            assert len(modifications(dumped, "meeting_scheduled")) == 1, dumped["modifications"]
            assert stored.meeting_metadata is not None and stored.meeting_lease is None
        else:
            assert stored.meeting_metadata is None and not modifications(dumped, "meeting_scheduled")
    # exactly one event per meeting change (the 500 after a created event was adopted, not created again)
    assert len(events) == MEETINGS and len({e["transactionId"] for e in events}) == MEETINGS, events
    assert {d.meeting_metadata.meeting_id for d in docs.values() if d.meeting_metadata} == {e["id"] for e in events}

    for spec in CUSTOMERS:
        expected = {(doc["change_id"], c.email.lower()) for doc in plan for c in spec.contacts}
        assert set(emails[spec.code]) == expected, f"{spec.code}: lost {expected - set(emails[spec.code])}"
        assert duplicates(emails[spec.code]) == 0, {k: n for k, n in emails[spec.code].items() if n > 1}


def _processing_state(s3: Any, bucket: str, trigger_key: str) -> dict[str, Any]:
    _, code, name = trigger_key.split("/")
    version = ProcessingStore(s3, bucket).load_optional(code, name[: -len(".json")])
    if version is None:
        return {}
    doc = version.document
    return {"lease": doc.lease.owner if doc.lease else None, "results": sorted(doc.results)}


def _archive_state(s3: Any, bucket: str, change_id: str) -> dict[str, Any]:
    doc = ArchiveStore(s3, bucket).load_with_results(change_id).document
    return {
        "change": change_id,
        "meeting_lease": doc.meeting_lease.owner if doc.meeting_lease else None,
        "meeting": doc.meeting_metadata.meeting_id if doc.meeting_metadata else None,
        "processed": [m.customer_code for m in doc.modifications if m.modification_type == "processed"],
    }


def _quiet(_level: str, _message: str, _extra: dict[str, Any]) -> None:
    pass
