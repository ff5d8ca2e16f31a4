"""Bad change documents (issue 6, "Bad input"): refused with an error naming the field, nothing written;
valid ones stored so that they read back the same, unknown fields included.

Documents are generated valid (random ids, unicode titles, camelCase spellings, meetings, unknown
fields holding any JSON) and then, for most examples, broken in exactly one known field — or given
one field twice under its two spellings (``change_id`` and ``changeId``), or sent as JSON text that
is not a document at all (garbage, too deep, numbers too long to parse).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from runtime.archive.documents import ArchiveDocument
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import InvalidSubmission, submit_change
from runtime.archive.triggers import TriggerStore
from tests.support.aws_platform import Faulty, Platform
from tests.support.properties import bounded

WRITES = {"put_object", "delete_object", "copy_object", "put_object_tagging", "delete_objects"}


@dataclass(frozen=True)
class Breakage:
    """How a document is broken, and the names an error must mention (either spelling of the field)."""

    names: tuple[str, ...]
    apply: Any  # (doc) -> None


def _set(field: str, value: Any) -> Breakage:
    def apply(doc: dict[str, Any]) -> None:
        for spelling in list(doc):
            if spelling in SPELLINGS.get(field, (field,)):
                del doc[spelling]
        doc[field] = value

    camel = SPELLINGS.get(field, (field,))
    return Breakage(tuple(dict.fromkeys((field, *camel))), apply)


def _twice(field: str, camel: str, value: Any) -> Breakage:
    def apply(doc: dict[str, Any]) -> None:
        current = doc.get(field, doc.get(camel))
        doc.pop(field, None)
        doc.pop(camel, None)
        doc[field], doc[camel] = current, value

    return Breakage((field, camel), apply)


SPELLINGS = {
    "change_id": ("change_id", "changeId"),
    "implementation_start": ("implementation_start", "implementationStart"),
    "implementation_end": ("implementation_end", "implementationEnd"),
}
BAD_VALUES: dict[str, list[Any]] = {
    "change_id": ["", "../etc/passwd", "a..b", "x/y", "-lead", "a" * 129, 5, None, "trailing.", "spa ce", "ü"],
    "title": ["", "two\nlines", "tab\there", "x" * 201, 12, None, ["t"], "del\x7f"],
    "customers": [[], ["BAD CODE"], ["hts", "hts"], "hts", [1], None, ["-x"], ["a" * 40]],
    "topic": ["", "has space", "x" * 65, 3, "ünï"],
    "status": ["done", "", 1, None],
    "revision": [-1, "one", 1.5],
    "implementation_start": ["not a date", "2026-13-45T00:00:00Z", [], {}],
    "meeting": [
        {"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"},
        {"start_time": "x", "end_time": "y"},
        "tomorrow",
        {"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T01:00:00Z", "subject": "s" * 300},
    ],
    "modifications": [[{"user_id": ""}], "none", [1]],
    "leases": [{"hts": {}}, [1]],
    "summary": [1, ["x"], {"a": 1}],
}
breakages = st.one_of(
    st.sampled_from(sorted(BAD_VALUES)).flatmap(
        lambda field: st.sampled_from(BAD_VALUES[field]).map(lambda value: _set(field, value))
    ),
    st.builds(_twice, st.just("change_id"), st.just("changeId"), st.sampled_from(["OTHER-1", "CHG-X2"])),
    st.builds(
        _twice,
        st.just("implementation_start"),
        st.just("implementationStart"),
        st.just("2030-01-01T00:00:00Z"),
    ),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=15,
)
unknown_fields = st.dictionaries(st.from_regex(r"\Ax_[a-z0-9_]{1,12}\Z"), json_values, max_size=4)
titles = st.text(
    st.characters(min_codepoint=32, exclude_characters="\x7f", exclude_categories=("Cs",)), min_size=1, max_size=200
)
timestamps = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.isoformat() + "Z"
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid change document, with some fields spelt camelCase; and its unknown fields."""
    change_id = draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,20}(\.[A-Za-z0-9_-]{1,8})?\Z"))
    doc: dict[str, Any] = {
        "changeId" if draw(st.booleans()) else "change_id": f"PROP-{change_id}",
        "title": draw(titles),
        "customers": draw(
            st.lists(st.sampled_from(["hts", "htsnonprod", "c1", "x-2"]), min_size=1, max_size=3, unique=True)
        ),
    }
    if draw(st.booleans()):
        doc["summary"] = draw(st.text(max_size=200))
    if draw(st.booleans()):
        start = draw(timestamps)
        doc["implementationStart" if draw(st.booleans()) else "implementation_start"] = start
    if draw(st.booleans()):
        doc["meeting"] = {"start_time": "2031-05-01T10:00:00Z", "end_time": "2031-05-01T11:00:00Z", "teams": False}
    unknown = draw(unknown_fields)
    doc.update(unknown)
    return doc, unknown


REFUSED_BUCKET = "ttp-refused-documents"  # documents expected to be refused go here: it must stay empty


_REFUSED_BUCKET_MADE: set[int] = set()
"""The platforms (``id``) that have the bucket: created on the first refusal, not listed again per example."""


def _empty_bucket(platform: Platform) -> str:
    if id(platform) not in _REFUSED_BUCKET_MADE:
        if not any(b["Name"] == REFUSED_BUCKET for b in platform.s3.list_buckets()["Buckets"]):
            platform.s3.create_bucket(Bucket=REFUSED_BUCKET)
            platform.s3.put_bucket_versioning(Bucket=REFUSED_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        _REFUSED_BUCKET_MADE.add(id(platform))
    return REFUSED_BUCKET


def _nothing_stored(platform: Platform) -> bool:
    listed = platform.s3.list_object_versions(Bucket=REFUSED_BUCKET)
    return not listed.get("Versions") and not listed.get("DeleteMarkers")


@bounded(150)
@given(generated=documents(), breakage=st.none() | breakages, as_text=st.booleans())
def test_submissions_are_refused_by_field_or_stored_faithfully(
    platform: Platform, generated: tuple[dict[str, Any], dict[str, Any]], breakage: Breakage | None, as_text: bool
) -> None:
    doc, unknown = generated
    if breakage is not None:
        breakage.apply(doc)
    raw = json.dumps(doc) if as_text else doc
    bucket = platform.bucket if breakage is None else _empty_bucket(platform)
    recording = Faulty(platform.s3)
    try:
        submit_change(ArchiveStore(recording, bucket), TriggerStore(recording, bucket), raw, user_id="prop")
    except InvalidSubmission as exc:
        assert breakage is not None, f"a valid document was refused: {exc}"
        assert any(name in str(exc) for name in breakage.names), f"{exc} does not name {breakage.names}"
        assert not WRITES & set(recording.calls), recording.calls
        assert _nothing_stored(platform)
        return
    assert breakage is None, f"accepted a document broken in {breakage.names}: {doc}"
    change_id = doc.get("change_id", doc.get("changeId"))
    stored = ArchiveStore(platform.s3, platform.bucket).load(change_id).document  # it must read back, valid
    as_json = json.loads(platform.s3.get_object(Bucket=platform.bucket, Key=f"archive/{change_id}.json")["Body"].read())
    assert stored.change_id == as_json["change_id"] == change_id
    assert stored.title == doc["title"]
    for key, value in unknown.items():
        assert as_json[key] == value, key  # unknown fields survive, unchanged
    assert stored.model_extra == {**(stored.model_extra or {}), **unknown}
    for code in doc["customers"]:
        platform.s3.head_object(Bucket=platform.bucket, Key=f"customers/{code}/{change_id}.json")
    assert ArchiveDocument.from_json_bytes(stored.to_json_bytes()) == stored  # a rewrite keeps everything


NOT_DOCUMENTS = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["[1, 2]", '"a string"', "null", "42", "{", '{"change_id": }']),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1000, 100_000).map(lambda n: '{"change_id": "X", "title": ' + "[" * n + "]" * n + "}"),
    # more digits than Python's int() reads (4300): valid JSON, but no parser here can read it
    st.integers(4301, 6000).map(lambda n: '{"change_id": "X", "title": "t", "customers": ["a"], "n": ' + "1" * n + "}"),
)


@bounded(60)
@given(raw=NOT_DOCUMENTS)
def test_text_that_is_no_document_is_refused_and_writes_nothing(platform: Platform, raw: str) -> None:
    bucket = _empty_bucket(platform)
    recording = Faulty(platform.s3)
    try:
        submit_change(ArchiveStore(recording, bucket), TriggerStore(recording, bucket), raw, user_id="prop")
    except InvalidSubmission as exc:
        assert "change document" in str(exc) or "change_id" in str(exc) or "title" in str(exc), exc
    else:
        raise AssertionError(f"accepted {raw[:80]!r}")
    assert not WRITES & set(recording.calls)
    assert _nothing_stored(platform)
