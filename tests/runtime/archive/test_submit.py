"""Submission: a revision states the whole user-owned content, refuses what cannot be stored or
mailed faithfully, and keeps what the pipeline and others recorded (issue 11, items 2, 5 and 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.archive.documents import MEETING_SCHEDULED, ArchiveDocument, MeetingMetadata, ModificationEntry
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import InvalidSubmission, submit_change, validate_change
from runtime.archive.triggers import TriggerStore
from runtime.contract.document_limits import MAX_CHANGE_DOCUMENT_BYTES

BUCKET = "ttp-bucket"


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def submit(s3: Any, change: dict[str, Any] | str | bytes) -> int:
    return submit_change(ArchiveStore(s3, BUCKET), TriggerStore(s3, BUCKET), change, user_id="tester").revision


def stored(s3: Any, change_id: str = "CHG-1") -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=f"archive/{change_id}.json")["Body"].read()
    return body


def change(**fields: Any) -> dict[str, Any]:
    return {"change_id": "CHG-1", "title": "Patch", "customers": ["hts"], **fields}


# ---- item 5: a resubmission states the whole user-owned content ------------------------------------


def test_a_resubmission_removes_the_fields_it_no_longer_has(s3: Any) -> None:
    first = change(
        summary="first",
        implementation_start="2026-03-01T10:00:00Z",
        implementation_end="2026-03-01T12:00:00Z",
        meeting={"start_time": "2026-02-28T09:00:00Z", "end_time": "2026-02-28T10:00:00Z", "subject": "CAB"},
        riskLevel="high",
        ticket={"id": "INC-1"},
    )
    assert submit(s3, first) == 1

    def coordinator_records_a_meeting(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.meeting_metadata = MeetingMetadata(meeting_id="m-1", join_url="https://teams/x", revision=1)
        doc.modifications = [
            *doc.modifications,
            ModificationEntry(user_id="coordinator", modification_type=MEETING_SCHEDULED, revision=1),
        ]
        return doc

    ArchiveStore(s3, BUCKET).update("CHG-1", coordinator_records_a_meeting)

    assert submit(s3, change(ticket={"id": "INC-2"}, newField=1)) == 2
    revision_2 = json.loads(stored(s3))
    for gone in ("meeting", "implementation_start", "implementation_end"):
        assert gone not in revision_2, gone
    assert revision_2["summary"] == ""  # back to the default: the new revision has no summary
    # what the pipeline recorded is kept
    assert revision_2["meeting_metadata"]["meeting_id"] == "m-1"
    trail = [m["modification_type"] for m in revision_2["modifications"]]
    assert trail == ["submitted", MEETING_SCHEDULED, "submitted"]
    # fields unknown to us: kept when absent, replaced when given, added when new
    assert revision_2["riskLevel"] == "high"
    assert revision_2["ticket"] == {"id": "INC-2"}
    assert revision_2["newField"] == 1


def test_a_resubmission_ignores_recorded_fields_it_carries(s3: Any) -> None:
    submit(s3, change())
    forged = change(revision=41, modifications=[], meeting_metadata={"meeting_id": "forged"})
    assert submit(s3, forged) == 2
    revision_2 = json.loads(stored(s3))
    assert revision_2["revision"] == 2 and len(revision_2["modifications"]) == 2
    assert "meeting_metadata" not in revision_2


# ---- item 10: numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number, field",
    [
        ("NaN", "risk.score"),
        ("Infinity", "risk.score"),
        ("-Infinity", "risk.score"),
        ("1e400", "risk.score"),
        ("-1e400", "risk.score"),
    ],
)
def test_submit_refuses_a_number_json_readers_cannot_hold(s3: Any, number: str, field: str) -> None:
    raw = '{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "risk": {"score": ' + number + "}}"
    with pytest.raises(InvalidSubmission) as caught:
        submit(s3, raw)
    assert f"{field}:" in str(caught.value) and number in str(caught.value)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # nothing written


def test_submit_refuses_a_non_finite_float_given_as_a_dict(s3: Any) -> None:
    with pytest.raises(InvalidSubmission, match=r"weights\.1: "):
        validate_change(change(weights=[1.0, float("nan")]))


def test_a_long_decimal_survives_submission_and_resubmission(s3: Any) -> None:
    digits = "3.14159265358979323846264338327950288"
    submit(s3, '{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "pi": ' + digits + ', "rate": 1.50}')
    assert digits.encode() in stored(s3) and b'"rate": 1.50' in stored(s3)
    submit(s3, '{"change_id": "CHG-1", "title": "t2", "customers": ["hts"]}')  # pi is kept: unknown to us
    assert digits.encode() in stored(s3) and b'"rate": 1.50' in stored(s3)


def test_numbers_someone_else_stored_survive_a_resubmission(s3: Any) -> None:
    """Written by another writer (``NaN`` and ``1e400`` included): kept as they are, byte for byte."""
    body = b'{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "revision": 1, "a": 1e400, "b": NaN}'
    s3.put_object(Bucket=BUCKET, Key="archive/CHG-1.json", Body=body)
    assert submit(s3, change()) == 2
    assert b'"a": 1e400' in stored(s3) and b'"b": NaN' in stored(s3)


# ---- item 2: the size cap -----------------------------------------------------------------------------


def padded(size: int) -> str:
    """A change document of exactly ``size`` bytes (UTF-8)."""
    empty = json.dumps(change(description=""))
    return json.dumps(change(description="x" * (size - len(empty))))


def test_a_document_over_the_size_cap_is_refused_naming_size_and_limit(s3: Any) -> None:
    too_big = padded(MAX_CHANGE_DOCUMENT_BYTES + 1)
    with pytest.raises(InvalidSubmission) as caught:
        submit(s3, too_big)
    message = str(caught.value)
    assert f"{MAX_CHANGE_DOCUMENT_BYTES + 1:,} bytes" in message and f"{MAX_CHANGE_DOCUMENT_BYTES:,}" in message
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_the_size_cap_counts_bytes_not_characters(s3: Any) -> None:
    """Three bytes per character: under the cap in characters, over it in bytes."""
    text = "\u20ac" * (MAX_CHANGE_DOCUMENT_BYTES // 3 + 10)
    with pytest.raises(InvalidSubmission, match="bytes"):
        submit(s3, json.dumps(change(description=text), ensure_ascii=False))
    with pytest.raises(InvalidSubmission, match="bytes"):  # a dict is measured as the JSON it becomes
        submit(s3, change(description="x" * MAX_CHANGE_DOCUMENT_BYTES))


def test_a_document_at_the_size_cap_is_accepted(s3: Any) -> None:
    assert submit(s3, padded(MAX_CHANGE_DOCUMENT_BYTES)) == 1


def test_the_largest_document_renders_an_email_well_under_the_ses_limit() -> None:
    """Worst case: every character of summary and description HTML-escaped to 6 bytes (``'`` →
    ``&#x27;``), in both the text and the HTML part, and then every byte of the email encoded to 3
    (quoted-printable's worst; base64 adds a third). SES v2 takes 40 MB per message after encoding
    (SES Developer Guide, "Service quotas in Amazon SES")."""
    from runtime.notify.rendering import render_email

    ses_v2_max_message_bytes = 40 * 1000 * 1000
    half = (MAX_CHANGE_DOCUMENT_BYTES - 200) // 2
    document = validate_change(change(summary="'" * half, description="'" * half))
    email = render_email(document, "hts")
    rendered = len(email.subject.encode()) + len(email.text.encode()) + len(email.html.encode())
    assert rendered * 3 < ses_v2_max_message_bytes


# ---- issue 17, item 3: a submission keeps its identity across a deletion ------------------------------


@pytest.fixture
def versioned(s3: Any) -> Any:
    """The metadata bucket keeps every archive version (``MetadataBucket``: versioned, archive versions
    never expire)."""
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_a_change_submitted_again_after_its_archive_was_deleted_continues_its_revisions(versioned: Any) -> None:
    """The runbook lets an operator delete a withdrawn change's archive. Submitting the same id again
    must not start at revision 1 again: the processing objects still record revisions 1..N as sent."""
    s3 = versioned
    assert submit(s3, change(summary="first")) == 1
    assert submit(s3, change(summary="withdrawn", status="cancelled")) == 2
    s3.delete_object(Bucket=BUCKET, Key="archive/CHG-1.json")
    assert submit(s3, change(summary="the new content")) == 3
    doc = json.loads(stored(s3))
    assert doc["revision"] == 3 and doc["summary"] == "the new content"
    assert [(m["modification_type"], m["revision"]) for m in doc["modifications"]] == [("submitted", 3)]
    trigger = s3.get_object(Bucket=BUCKET, Key="customers/hts/CHG-1.json")["Body"].read()
    assert json.loads(trigger)["revision"] == 3
    assert submit(s3, change(summary="and again")) == 4  # an existing archive goes on as always


def test_the_continued_revision_comes_from_the_change_ids_own_key_only(versioned: Any) -> None:
    """``archive/CHG-1.json`` is a prefix of ``archive/CHG-1.json.json`` (change id ``CHG-1.json``)."""
    s3 = versioned
    for _ in range(3):
        submit(s3, change(change_id="CHG-1.json"))
    assert submit(s3, change()) == 1


def test_an_unreadable_newest_version_is_skipped_for_the_last_readable_revision(versioned: Any) -> None:
    s3 = versioned
    submit(s3, change())
    submit(s3, change())
    s3.put_object(Bucket=BUCKET, Key="archive/CHG-1.json", Body=b"{not json")  # someone's broken write
    s3.delete_object(Bucket=BUCKET, Key="archive/CHG-1.json")
    assert submit(s3, change()) == 3


def test_a_history_without_any_readable_revision_is_refused_naming_the_fix(versioned: Any) -> None:
    s3 = versioned
    s3.put_object(Bucket=BUCKET, Key="archive/CHG-1.json", Body=b"{not json")
    s3.delete_object(Bucket=BUCKET, Key="archive/CHG-1.json")
    with pytest.raises(InvalidSubmission, match=r"archive/CHG-1\.json.*versions.*restore CHG-1 --list"):
        submit(s3, change())
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="customers/")


def test_a_submitter_without_the_version_permissions_is_told_which_ones(versioned: Any) -> None:
    """A new archive is numbered from the key's versions: without ``s3:ListBucketVersions`` the submission
    is refused naming the permissions (starting at 1 could collide with an old submission's results)."""
    from tests.support.aws_platform import Faulty, client_error

    denied = Faulty(versioned).fail("get_paginator", client_error("AccessDenied", 403))
    with pytest.raises(InvalidSubmission, match=r"s3:ListBucketVersions.*s3:GetObjectVersion"):
        submit(denied, change())
    assert "Contents" not in versioned.list_objects_v2(Bucket=BUCKET, Prefix="archive/")
