"""The document models: camelCase read, snake_case written, unknown fields kept, errors name the field."""

from __future__ import annotations

import json

import pytest

from runtime.archive.documents import ArchiveDocument

# ---- models -------------------------------------------------------------------------------------


def test_camel_case_is_accepted_and_snake_case_written() -> None:
    doc = ArchiveDocument.model_validate(
        {
            "changeId": "CHG-1",
            "title": "t",
            "customers": ["hts"],
            "modifications": [
                {
                    "timestamp": "2026-01-01T00:00:00Z",
                    "userId": "u",
                    "modificationType": "processed",
                    "customerCode": "hts",
                }
            ],
            "meetingMetadata": {"meetingId": "m1", "joinUrl": "https://x"},
        }
    )
    dumped = doc.to_json_dict()
    assert dumped["change_id"] == "CHG-1" and "changeId" not in dumped
    assert dumped["modifications"][0]["modification_type"] == "processed"
    assert dumped["meeting_metadata"]["join_url"] == "https://x"


def test_unknown_fields_are_preserved_on_rewrite() -> None:
    raw = {"change_id": "CHG-1", "title": "t", "customers": ["hts"], "riskLevel": "high", "x": {"y": [1]}}
    raw["modifications"] = [{"user_id": "u", "modification_type": "approved", "ticket": "INC-1"}]
    again = json.loads(ArchiveDocument.from_json_bytes(json.dumps(raw).encode()).to_json_bytes())
    assert again["riskLevel"] == "high" and again["x"] == {"y": [1]}
    assert again["modifications"][0]["ticket"] == "INC-1"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"change_id": "../x"}, "change_id"),
        ({"customers": ["HTS"]}, "customers.0"),
        ({"customers": []}, "customers"),
        ({"customers": ["a", "a"]}, "customers"),
        ({"title": "two\r\nBcc: evil@example.com"}, "title"),
        ({"title": ""}, "title"),
        ({"revision": -1}, "revision"),
        ({"meeting": {"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"}}, "meeting.end_time"),
    ],
)
def test_invalid_documents_name_the_field(patch: dict, field: str) -> None:
    from pydantic import ValidationError

    from runtime.contract.errors import describe_validation_error

    raw = {"change_id": "CHG-1", "title": "t", "customers": ["hts"], **patch}
    with pytest.raises(ValidationError) as caught:
        ArchiveDocument.model_validate(raw)
    assert describe_validation_error(caught.value).startswith(field)


# ---- times: a time without a UTC offset is read as UTC; submit refuses it (issue 11, item 4) --------


def test_a_naive_and_an_aware_meeting_time_do_not_crash_the_model() -> None:
    """Stored documents (written before submit refused naive times) are read with naive times as UTC,
    the meaning the meeting code always gave them: no raw ``TypeError`` from comparing the two."""
    from datetime import UTC, datetime

    doc = ArchiveDocument.model_validate(
        {
            "change_id": "CHG-1",
            "title": "t",
            "customers": ["hts"],
            "implementation_start": "2026-01-01T10:00:00",
            "implementation_end": "2026-01-01T11:00:00+01:00",
            "meeting": {"start_time": "2026-01-01T10:00:00", "end_time": "2026-01-01T11:00:00Z"},
        }
    )
    assert doc.meeting is not None
    assert doc.meeting.start_time == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert doc.implementation_start is not None and doc.implementation_start.tzinfo is not None
    again = json.loads(doc.to_json_bytes())
    assert again["meeting"]["start_time"] == "2026-01-01T10:00:00Z"  # written back with its zone


def test_a_naive_time_after_an_aware_one_names_the_field() -> None:
    """10:00 naive (UTC) ends before 11:00Z: a validation error naming the field, not a ``TypeError``."""
    from pydantic import ValidationError

    from runtime.contract.errors import describe_validation_error

    with pytest.raises(ValidationError) as caught:
        ArchiveDocument.model_validate(
            {
                "change_id": "CHG-1",
                "title": "t",
                "customers": ["hts"],
                "meeting": {"start_time": "2026-01-01T11:00:00Z", "end_time": "2026-01-01T10:00:00"},
            }
        )
    assert describe_validation_error(caught.value).startswith("meeting.end_time")


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"meeting": {"start_time": "2026-01-01T10:00:00", "end_time": "2026-01-01T11:00:00Z"}}, "meeting.start_time"),
        ({"meeting": {"start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T11:00:00"}}, "meeting.end_time"),
        ({"implementation_start": "2026-01-01T10:00:00"}, "implementation_start"),
        ({"implementationEnd": "2026-01-01T10:00:00"}, "implementationEnd"),
    ],
)
def test_submit_refuses_a_time_without_a_utc_offset(patch: dict, field: str) -> None:
    from runtime.archive.submit import InvalidSubmission, validate_change

    raw = {"change_id": "CHG-1", "title": "t", "customers": ["hts"], **patch}
    with pytest.raises(InvalidSubmission) as caught:
        validate_change(json.dumps(raw))
    message = str(caught.value)
    assert f"{field}:" in message and "UTC offset" in message


# ---- numbers the model does not know survive a rewrite (issue 11, item 10) ----------------------


STORED_NUMBERS = (
    b'{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "huge": 1e400, "notANumber": NaN,'
    b' "minusInf": -Infinity, "pi": 3.14159265358979323846264338327950288, "price": 1.50,'
    b' "big": 123456789012345678901234567890, "nested": {"values": [0.1000000000000000055511151231257827, 2E-7]},'
    b' "modifications": [{"user_id": "u", "modification_type": "approved", "score": 9.99999999999999999999}]}'
)


@pytest.mark.parametrize(
    "text",
    [
        b"1e400",
        b"NaN",
        b"-Infinity",
        b"3.14159265358979323846264338327950288",
        b"1.50",
        b"123456789012345678901234567890",
        b"0.1000000000000000055511151231257827",
        b"2E-7",
        b"9.99999999999999999999",
    ],
)
def test_unknown_numbers_are_rewritten_byte_for_byte(text: bytes) -> None:
    rewritten = ArchiveDocument.from_json_bytes(STORED_NUMBERS).to_json_bytes()
    assert text in rewritten
    assert rewritten.count(b"null") == 0


def test_a_document_without_unknown_numbers_is_written_as_before() -> None:
    """The number-keeping writer changes nothing else: same bytes as ``json.dumps(indent=2)`` of the dump."""
    from datetime import UTC, datetime

    from runtime.archive.documents import MeetingMetadata, ModificationEntry

    doc = ArchiveDocument.model_validate(
        {"change_id": "CHG-1", "title": 'Tést "quoted" \u2028', "customers": ["hts", "b"], "x": {}, "y": [], "z": None}
    )
    doc.modifications = [ModificationEntry(user_id="u", modification_type="submitted", revision=1, customers=["b"])]
    doc.meeting_metadata = MeetingMetadata(meeting_id="m", start_time=datetime(2026, 1, 1, 9, 30, 0, 5, tzinfo=UTC))
    expected = json.dumps(doc.to_json_dict(), indent=2).encode()
    assert doc.to_json_bytes() == expected


def test_unknown_numbers_read_as_floats_for_display() -> None:
    """``to_json_dict`` (what the CLI prints) holds plain JSON values, never the kept text."""
    shown = ArchiveDocument.from_json_bytes(STORED_NUMBERS).to_json_dict()
    json.dumps(shown)  # serialisable by the standard library
    assert shown["price"] == 1.5 and shown["big"] == 123456789012345678901234567890


def test_a_document_that_is_not_json_is_a_validation_error() -> None:
    from pydantic import ValidationError

    for body in (b"{", b"\xff\xfe{", b"[" * 100_000):
        with pytest.raises(ValidationError):
            ArchiveDocument.from_json_bytes(body)


@pytest.mark.parametrize("depth", [500, 5000])
def test_nesting_deeper_than_the_writer_can_rewrite_is_invalid(depth: int) -> None:
    """What is read must be writable again: a document nested deeper than ``MAX_NESTING`` is a
    validation error on read (the archive is invalid) and refused by submit, never a ``RecursionError``."""
    from pydantic import ValidationError

    from runtime.archive.documents import MAX_NESTING
    from runtime.archive.submit import InvalidSubmission, validate_change

    body = '{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "deep": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(ValidationError):
        ArchiveDocument.from_json_bytes(body.encode())
    with pytest.raises(InvalidSubmission, match=f"deeper than {MAX_NESTING}"):
        validate_change(body)
    nested: list[object] = []
    for _ in range(depth):
        nested = [nested]
    with pytest.raises(InvalidSubmission, match=f"deeper than {MAX_NESTING}"):
        validate_change({"change_id": "CHG-1", "title": "t", "customers": ["hts"], "deep": nested})


def test_nesting_at_the_limit_is_read_and_rewritten() -> None:
    from runtime.archive.documents import MAX_NESTING

    depth = MAX_NESTING - 1  # the document itself is the first level
    body = '{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "deep": ' + "[" * depth + "]" * depth + "}"
    rewritten = ArchiveDocument.from_json_bytes(body.encode()).to_json_bytes()
    assert json.loads(rewritten)["deep"] == json.loads(body)["deep"]
