"""Many writers on one archive: compare-and-swap must lose nothing (DESIGN.md §2, "Every archive write").

Processors no longer write the archive (v2): 24 customers processing one change touch 24 distinct
processing objects and leave the archive as submitted."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto import mock_aws

from devtools.emulator import make_conditional_writes_atomic
from runtime.archive.documents import ArchiveDocument, ModificationEntry
from runtime.archive.processing_store import ProcessingStore
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract.keys import TriggerRef
from runtime.pipeline.state_machine import Outcome, Processor
from runtime.telemetry.metrics import MetricsFactory

make_conditional_writes_atomic()
CUSTOMERS = [f"c{i:02d}" for i in range(24)]


class NoRecipients:
    def subscribers(self, topic: str) -> list[str]:
        return []

    def send(self, recipients, message, topic, **kwargs):  # type: ignore[no-untyped-def]
        return []


@pytest.fixture
def s3(aws_credentials: None):  # type: ignore[no-untyped-def]
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="ttp-bucket")
        yield client


def test_concurrent_appends_lose_nothing(s3) -> None:  # type: ignore[no-untyped-def]
    # What is tested is that no append is lost, not the retry budget: 30 writers on one object on a
    # loaded 2-core CI machine may need more than the default 25 attempts.
    store = ArchiveStore(s3, "ttp-bucket", max_attempts=500)
    store.update("CHG-1", lambda _: ArchiveDocument(change_id="CHG-1", title="t", customers=["a"]), create=True)
    writers, per_writer = 30, 5
    barrier = threading.Barrier(writers)

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(per_writer):

            def append(doc: ArchiveDocument | None, tag: str = f"w{n}-{i}") -> ArchiveDocument:
                assert doc is not None
                doc.modifications = [*doc.modifications, ModificationEntry(user_id=tag, modification_type="note")]
                return doc

            store.update("CHG-1", append)

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    users = [m.user_id for m in store.load("CHG-1").document.modifications]
    assert sorted(users) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(per_writer))


def test_create_if_absent_has_exactly_one_winner(s3) -> None:  # type: ignore[no-untyped-def]
    store = ArchiveStore(s3, "ttp-bucket")
    created: list[str] = []
    barrier = threading.Barrier(10)

    def create(n: int) -> None:
        barrier.wait()

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            if doc is not None:
                return None
            return ArchiveDocument(change_id="NEW", title=f"by {n}", customers=["a"])

        version = store.update("NEW", mutate, create=True)
        if version.document.title == f"by {n}":
            created.append(str(n))

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(create, range(10)))
    assert len(created) == 1


def test_twenty_four_customers_processing_one_change_concurrently(s3) -> None:  # type: ignore[no-untyped-def]
    archive, triggers = ArchiveStore(s3, "ttp-bucket"), TriggerStore(s3, "ttp-bucket")
    submit_change(
        archive,
        triggers,
        {"change_id": "CHG-1", "title": "t", "customers": CUSTOMERS, "approvals": ["kept"]},
        user_id="u",
    )
    barrier = threading.Barrier(len(CUSTOMERS))

    def run(code: str) -> Outcome:
        processor = Processor(
            code,
            ArchiveStore(s3, "ttp-bucket"),
            TriggerStore(s3, "ttp-bucket"),
            NoRecipients(),
            MetricsFactory("N", _Sink()),
            lease_seconds=60,
        )
        barrier.wait()
        return processor.process(TriggerRef(code, "CHG-1"), f"sqs:{code}").outcome

    with ThreadPoolExecutor(len(CUSTOMERS)) as pool:
        outcomes = list(pool.map(run, CUSTOMERS))
    assert outcomes == [Outcome.PROCESSED] * len(CUSTOMERS)
    document = archive.load("CHG-1").document
    # one writer per object: no processor wrote the archive; each recorded its result in its own object
    assert [m.modification_type for m in document.modifications] == ["submitted"]
    assert document.leases == {}
    assert document.model_extra == {"approvals": ["kept"]}
    store = ProcessingStore(s3, "ttp-bucket")
    for code in CUSTOMERS:
        version = store.load_optional(code, "CHG-1")
        assert version is not None and list(version.document.results) == ["1"] and version.document.lease is None
    assert s3.list_objects_v2(Bucket="ttp-bucket", Prefix="customers/").get("KeyCount") == 0


class _Sink:
    def write(self, _s: str) -> None:
        pass

    def flush(self) -> None:
        pass
