"""Bad queue messages and S3 keys (issue 6, "Bad input"): the worker never crashes, and every message
ends processed, skipped with a reason, or dead-lettered; a poison message never touches S3.

Bodies: arbitrary JSON, arbitrary text (control characters, lone surrogates, Latin-1 bytes), S3 and
EventBridge envelopes with random mutations, huge and deeply nested bodies, numbers too long for
Python's int parser. Keys: URL-encoded (once, twice, partially), unicode look-alikes, traversal,
other customers, oversized. They run through :func:`runtime.pipeline.routing.decide` against moto in-process,
and through a worker's whole message handling with a recording SQS stub.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from runtime.archive.documents import ArchiveDocument, ProcessingLease
from runtime.archive.store import ArchiveStore
from runtime.contract import keys
from runtime.pipeline import Outcome, Processor, ProcessorHandler, decide
from runtime.worker import Worker, overall_fate
from tests.support.aws_platform import Faulty, Platform
from tests.support.properties import bounded

CUSTOMER = "hts"
EXISTING = ["CHG-P1", "CHG-P2", "CHG-P3"]  # submitted for hts: real triggers and archives
NO_ARCHIVE = "CHG-ORPHANED"  # a trigger whose archive does not exist
SKIPPED = {Outcome.ALREADY_RECORDED, Outcome.TRIGGER_GONE, Outcome.LEASE_HELD, Outcome.TEST_EVENT}
DEAD_LETTERED = {Outcome.POISON, Outcome.PERMANENT_ERROR}


HELD = "CHG-P3"  # another message holds a live lease on it: a duplicate event is acked


@pytest.fixture(scope="module")
def subject(platform: Platform) -> tuple[Platform, Processor, Faulty]:
    for change_id in EXISTING:
        platform.submit(change_id, customers=[CUSTOMER])

    def hold(doc: ArchiveDocument | None) -> ArchiveDocument:
        assert doc is not None
        far = datetime(2099, 1, 1, tzinfo=UTC)
        doc.leases = {CUSTOMER: ProcessingLease(owner="sqs:someone-else", revision=10**6, expires_at=far)}
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(HELD, hold)
    platform.s3.put_object(Bucket=platform.bucket, Key=f"customers/{CUSTOMER}/{NO_ARCHIVE}.json", Body=b"{}")
    recording = Faulty(platform.s3)  # records every S3 call, injects nothing
    return platform, platform.processor(CUSTOMER, s3=recording), recording


def prepare(platform: Platform, resubmit: str | None) -> None:
    """A new revision of one change (a message for it is processed again), or only its trigger back (a
    recorded change whose trigger delete failed); and the held change's trigger back."""
    if resubmit and resubmit.startswith("trigger:"):
        platform.s3.put_object(Bucket=platform.bucket, Key=f"customers/{CUSTOMER}/{resubmit[8:]}.json", Body=b"{}")
    elif resubmit:
        platform.submit(resubmit, customers=[CUSTOMER])
    platform.s3.put_object(Bucket=platform.bucket, Key=f"customers/{CUSTOMER}/{HELD}.json", Body=b"{}")


resubmits = st.sampled_from([None, "CHG-P1", "CHG-P2", "trigger:CHG-P1"])


# ---- strategies ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
change_ids = st.one_of(
    st.sampled_from([*EXISTING, NO_ARCHIVE, "CHG-NOPE"]),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z"),
)
codes = st.sampled_from([CUSTOMER, "htsnonprod", "HTS", "hts ", "other-customer", ""])
TRAVERSAL = ["..", "../", "..%2F", "%2e%2e%2f", "%252e%252e%252f", "/", "//", "\\", "%00", "\x00", "./", "%2F", "+"]
LOOKALIKES = [
    "customers/\uff48\uff54\uff53/CHG-P1.json",  # full-width "hts"
    "customers/hts/CHG\u2024P1.json",  # one-dot leader instead of "-"
    "customers/hts/CHG-P1.json\u200b",  # zero-width space
]


def _encodings(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [key, quote_plus(key, safe="/"), quote_plus(key, safe=""), quote(key, safe=""), quote(quote(key, safe=""))]
    )


hts_keys = st.builds(lambda cid: f"customers/{CUSTOMER}/{cid}.json", st.sampled_from([*EXISTING, NO_ARCHIVE])).flatmap(
    _encodings
)
well_formed_keys = st.builds(lambda code, cid: f"customers/{code}/{cid}.json", codes, change_ids).flatmap(_encodings)
traversal_keys = st.builds(
    lambda prefix, piece, rest: f"{prefix}{piece}{rest}",
    st.sampled_from(["customers/hts/", "customers/", "", "archive/", "customers/hts/CHG-P1", "drafts/"]),
    st.sampled_from(TRAVERSAL),
    st.sampled_from(["CHG-P1.json", "archive/CHG-P1.json", "x.json", "", "hts/CHG-P1.json"]),
)
oversized_keys = st.integers(990, 5000).map(lambda n: f"customers/hts/{'A' * n}.json")
object_keys = st.one_of(
    hts_keys,
    hts_keys,
    well_formed_keys,
    traversal_keys,
    oversized_keys,
    st.sampled_from(LOOKALIKES),
    st.text(max_size=80),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3).map(
        lambda s: f"customers/hts/{s}.json"
    ),
)


def s3_record(key: Any, bucket: Any, source: Any = "aws:s3", name: Any = "ObjectCreated:Put") -> dict[str, Any]:
    return {"eventSource": source, "eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}


def eventbridge(key: Any, bucket: Any) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, envelope: dict[str, Any]) -> dict[str, Any]:
    """Up to three random edits: drop a field, replace a value with any JSON, wrap it in a list."""
    doc = json.loads(json.dumps(envelope))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(doc)[1:] or [()]))
        if not path:
            break
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        edit = draw(st.sampled_from(["drop", "replace", "wrap"]))
        if edit == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif edit == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        else:
            parent[path[-1]] = draw(json_values)
    return doc


buckets = st.sampled_from(["ttp-metadata-local", "another-bucket", ""])
sources = st.sampled_from(["aws:s3", "aws:sqs", "AWS:S3"])
event_names = st.sampled_from(["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:Delete", "s3:TestEvent"])
envelopes = st.one_of(
    st.builds(
        lambda records: {"Records": records},
        st.lists(st.builds(s3_record, object_keys, buckets, sources, event_names), min_size=0, max_size=3),
    ),
    st.builds(eventbridge, object_keys, buckets),
    st.just({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "ttp-metadata-local"}),
)
valid_event = json.dumps({"Records": [s3_record(f"customers/{CUSTOMER}/CHG-P1.json", "ttp-metadata-local")]})
bodies = st.one_of(
    st.builds(lambda key: json.dumps({"Records": [s3_record(key, "ttp-metadata-local")]}), hts_keys),
    envelopes.map(json.dumps),
    envelopes.flatmap(mutated).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.integers(1, 5000).map(lambda n: '{"Records": ' + "[" * n + "]" * n + "}"),  # deep
    st.integers(4300, 6000).map(lambda n: '{"Records": [' + "9" * n + "]}"),  # longer than int() parses
    st.integers(4300, 6000).map(lambda n: valid_event.replace('"Records"', f'"n": {"1" * n}, "Records"')),
    st.integers(262_000, 263_000).map(lambda n: valid_event[:-1] + ', "pad": "' + "x" * n + '"}'),  # > 256 KiB
    st.integers(1, 40).map(lambda n: json.dumps({"Records": [json.loads(valid_event)["Records"][0]] * n})),
)


# ---- properties ----------------------------------------------------------------------------------


def _check(results: list[Any], s3_calls_made: bool) -> None:
    assert results, "every message has an outcome"
    for result in results:
        event(result.outcome.label)  # --hypothesis-show-statistics shows how often each outcome was reached
        assert result.outcome in {Outcome.PROCESSED} | SKIPPED | DEAD_LETTERED, result
        if result.outcome is not Outcome.PROCESSED:
            assert result.reason, f"{result.outcome} without a reason"
        if result.change_id is not None:
            keys.validate_change_id(result.change_id)  # only safe ids ever reach the processor
    if all(r.outcome is Outcome.POISON for r in results):
        assert not s3_calls_made, "a poison message touched S3"
    overall_fate(results)


@bounded(250)
@given(body=bodies, resubmit=resubmits)
def test_decide_never_raises_and_every_body_has_a_fate(
    subject: tuple[Platform, Processor, Faulty], body: str, resubmit: str | None
) -> None:
    platform, processor, recording = subject
    prepare(platform, resubmit)
    before = sum(recording.calls.values())
    results = decide(body, platform.bucket, processor, "sqs:property")
    _check(results, sum(recording.calls.values()) != before)


@bounded(150)
@given(key=object_keys, eventbridge_envelope=st.booleans(), resubmit=resubmits)
def test_keys_through_decide(
    subject: tuple[Platform, Processor, Faulty], key: str, eventbridge_envelope: bool, resubmit: str | None
) -> None:
    platform, processor, recording = subject
    prepare(platform, resubmit)
    envelope = (
        eventbridge(key, platform.bucket) if eventbridge_envelope else {"Records": [s3_record(key, platform.bucket)]}
    )
    before = sum(recording.calls.values())
    results = decide(json.dumps(envelope), platform.bucket, processor, "sqs:property")
    _check(results, sum(recording.calls.values()) != before)
    [result] = results
    try:
        ref = keys.parse_trigger_key(key, encoded=not eventbridge_envelope)
    except keys.InvalidKeyError:
        assert result.outcome is Outcome.POISON, (key, result)
        return
    if ref.customer_code != CUSTOMER:
        assert result.outcome is Outcome.POISON
    else:
        assert result.outcome is not Outcome.POISON and result.change_id == ref.change_id


@bounded(300)
@given(key=object_keys, encoded=st.booleans())
def test_key_parser_accepts_only_safe_keys(key: str, encoded: bool) -> None:
    try:
        ref = keys.parse_trigger_key(key, encoded=encoded)
    except keys.InvalidKeyError:
        return
    decoded = keys.decode_event_key(key) if encoded else key
    assert ref.key == decoded  # what is acted on is exactly what arrived, decoded once
    assert ".." not in ref.change_id and "/" not in ref.change_id and "\\" not in ref.change_id
    assert ref.archive_key == f"archive/{ref.change_id}.json"
    assert len(key) <= keys.MAX_KEY_LENGTH


class RecordingSqs:
    """What the worker does with a message: delete it (ack) or change its visibility (retry / DLQ)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def delete_message(self, **kwargs: Any) -> None:
        self.calls.append(("delete_message", kwargs))

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.calls.append(("change_message_visibility", kwargs))


RETRY_DELAY = 7  # a retried message would come back with this delay; bad input must never be retried


@bounded(120)
@given(body=bodies)
def test_worker_settles_every_message_exactly_once(subject: tuple[Platform, Processor, Faulty], body: str) -> None:
    platform, processor, _ = subject
    sqs = RecordingSqs()
    worker = Worker(
        sqs,
        "https://queue",
        ProcessorHandler(platform.bucket, processor),
        visibility_timeout=60,
        retry_base_seconds=RETRY_DELAY,
    )
    worker._handle(
        {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body, "Attributes": {"ApproximateReceiveCount": "1"}}
    )
    assert len(sqs.calls) == 1, sqs.calls
    [(call, kwargs)] = sqs.calls
    if call == "change_message_visibility":  # dead-lettered: visible at once, the redrive policy moves it to the DLQ
        assert kwargs["VisibilityTimeout"] == 0, f"bad input was retried instead of dead-lettered: {body[:200]!r}"
    assert worker.handled == 1 and not worker.in_flight
