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

    from runtime.archive.documents import describe_validation_error

    raw = {"change_id": "CHG-1", "title": "t", "customers": ["hts"], **patch}
    with pytest.raises(ValidationError) as caught:
        ArchiveDocument.model_validate(raw)
    assert describe_validation_error(caught.value).startswith(field)
