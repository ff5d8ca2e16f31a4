"""Unit tests: keys, document models, envelopes, rendering, settings errors, rate limiting."""

from __future__ import annotations

import json

import pytest

from runtime.archive.documents import ArchiveDocument
from runtime.contract import keys
from runtime.contract.settings import ConfigurationError, OpsSettings, WorkerSettings, load
from runtime.notify.rendering import render_email
from runtime.notify.ses import RateLimiter, topic_subscribers
from runtime.pipeline.envelopes import UnparseableMessage, parse_message_body

# ---- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, code, change_id",
    [
        ("customers/hts/CHG-1.json", "hts", "CHG-1"),
        ("customers%2Fcustomer-a%2FCHG.2026_1.json", "customer-a", "CHG.2026_1"),
        ("customers/a/x.json", "a", "x"),
    ],
)
def test_trigger_keys_parse_after_url_decoding(raw: str, code: str, change_id: str) -> None:
    ref = keys.parse_trigger_key(raw)
    assert (ref.customer_code, ref.change_id) == (code, change_id)
    assert ref.key == f"customers/{code}/{change_id}.json"
    assert ref.archive_key == f"archive/{change_id}.json"


@pytest.mark.parametrize(
    "raw",
    [
        "customers/hts/../CHG-1.json",
        "customers/hts/..%2FCHG-1.json",
        "customers/hts/sub/CHG-1.json",
        "customers//CHG-1.json",
        "customers/hts/.json",
        "customers/hts/CHG..1.json",
        "customers/hts/CHG-1.json.bak",
        "customers/Hts/CHG-1.json",
        "customers/-hts/CHG-1.json",
        "customers/hts/CHG+1.json",  # '+' decodes to a space
        "customers/hts/%00.json",
        "customers/hts/CHG%E2%80%AE1.json",  # unicode right-to-left override
        "drafts/CHG-1.json",
        "customers/" + "a" * 40 + "/x.json",
        "customers/hts/" + "x" * 2000 + ".json",
        "",
    ],
)
def test_unsafe_or_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(keys.InvalidKeyError):
        keys.parse_trigger_key(raw)


def test_eventbridge_keys_are_not_decoded_twice() -> None:
    with pytest.raises(keys.InvalidKeyError):
        keys.parse_trigger_key("customers/hts/CHG%2D1.json", encoded=False)
    assert keys.parse_trigger_key("customers/hts/CHG-1.json", encoded=False).change_id == "CHG-1"


def test_key_builders_validate() -> None:
    assert keys.archive_key("CHG-1") == "archive/CHG-1.json"
    assert keys.draft_key("CHG-1") == "drafts/CHG-1.json"
    with pytest.raises(keys.InvalidKeyError, match="invalid change id"):
        keys.archive_key("../etc/passwd")
    with pytest.raises(keys.InvalidKeyError, match="invalid customer code"):
        keys.trigger_key("HTS", "CHG-1")


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


def test_envelopes() -> None:
    s3 = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "customers%2Fhts%2FX.json", "eTag": "e"}},
            }
        ]
    }
    [record] = parse_message_body(json.dumps(s3))
    assert record.key_is_url_encoded and record.bucket == "b" and record.etag == "e"
    eventbridge = {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "customers/hts/X.json", "etag": "e"}},
    }
    [record] = parse_message_body(json.dumps(eventbridge))
    assert not record.key_is_url_encoded and record.key == "customers/hts/X.json"
    assert parse_message_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == []


@pytest.mark.parametrize(
    "body",
    [
        "",
        "null",
        "[]",
        "42",
        '{"Records": []}',
        '{"Records": [{}]}',
        json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectRemoved:Delete",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}},
                    }
                ]
            }
        ),
        json.dumps({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}),
        json.dumps({"Event": "s3:TestEvent"}),
        "[" * 100000,
        "x" * (300 * 1024),
    ],
)
def test_unparseable_bodies_raise_a_clear_error(body: str) -> None:
    with pytest.raises(UnparseableMessage):
        parse_message_body(body)


# ---- rendering ----------------------------------------------------------------------------------


def test_rendering_escapes_html_and_keeps_subject_single_line() -> None:
    doc = ArchiveDocument.model_validate(
        {
            "change_id": "CHG-1",
            "title": "Upgrade <script>alert(1)</script> & more",
            "customers": ["hts"],
            "description": "line1\n<img src=x onerror=alert(1)>",
            "implementation_start": "2026-12-01T10:00:00Z",
        }
    )
    email = render_email(doc, "hts")
    assert "\n" not in email.subject and "\r" not in email.subject
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<img" not in email.html and "&lt;img src=x onerror=alert(1)&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text  # plain text is plain
    assert "2026-12-01T10:00:00+00:00" in email.text


def test_cancelled_change_says_so_in_the_subject() -> None:
    doc = ArchiveDocument.model_validate({"change_id": "C", "title": "t", "customers": ["a"], "status": "cancelled"})
    assert render_email(doc, "a").subject.startswith("[CANCELLED]")


# ---- subscribers (client-side filter) -----------------------------------------------------------


class FakeSes:
    """An SES that ignores TopicFilter, like moto: the client-side filter must still be right."""

    def __init__(self, contacts: list[dict], default: str = "OPT_IN") -> None:
        self.contacts = contacts
        self.default = default

    def get_contact_list(self, ContactListName: str) -> dict:
        return {"Topics": [{"TopicName": "t", "DefaultSubscriptionStatus": self.default}]}

    def list_contacts(self, **kwargs: object) -> dict:
        start = int(str(kwargs.get("NextToken", "0")))
        page = self.contacts[start : start + 2]
        token = str(start + 2) if start + 2 < len(self.contacts) else None
        return {"Contacts": page, **({"NextToken": token} if token else {})}


def test_subscribers_honour_preferences_defaults_unsubscribe_all_and_pages() -> None:
    contacts = [
        {"EmailAddress": "a@x.com"},
        {"EmailAddress": "B@x.com", "TopicPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_IN"}]},
        {"EmailAddress": "b@X.com"},
        {"EmailAddress": "c@x.com", "TopicPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_OUT"}]},
        {"EmailAddress": "d@x.com", "UnsubscribeAll": True},
        {"EmailAddress": "e@x.com", "TopicDefaultPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_OUT"}]},
    ]
    assert topic_subscribers(FakeSes(contacts), "list", "t") == ["a@x.com", "B@x.com"]
    assert topic_subscribers(FakeSes(contacts, default="OPT_OUT"), "list", "t") == ["B@x.com"]


# ---- rate limiter -------------------------------------------------------------------------------


def test_rate_limiter_paces_to_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(5.0, clock=lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for _ in range(51):
        limiter.acquire(sleep)
    assert now[0] == pytest.approx(10.0, rel=0.01)  # 50 intervals of 1/5 s after the first token


# ---- settings -----------------------------------------------------------------------------------

GOOD = {
    "TTP_CUSTOMER_CODE": "hts",
    "TTP_BUCKET_NAME": "bucket-1",
    "TTP_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/customer-hts-changes",
    "TTP_SENDER_ROLE_ARN": "arn:aws:iam::333333333333:role/ttp-ses-sender-hts",
    "TTP_SENDER_EXTERNAL_ID": "ext-123",
    "TTP_FROM_ADDRESS": "changes@hts.example.com",
}


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("TTP_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_worker_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, GOOD)
    settings = load(WorkerSettings)
    assert settings.customer_code == "hts" and settings.visibility_timeout_seconds == 300
    assert "ext-123" not in repr(settings)  # the ExternalId is not printed


@pytest.mark.parametrize(
    "change, message",
    [
        ({"TTP_QUEUE_URL": None}, "TTP_QUEUE_URL: is required but not set"),
        ({"TTP_CUSTOMER_CODE": "HTS"}, "TTP_CUSTOMER_CODE"),
        ({"TTP_SENDER_ROLE_ARN": "role/x"}, "TTP_SENDER_ROLE_ARN"),
        ({"TTP_MAX_CONCURRENCY": "lots"}, "TTP_MAX_CONCURRENCY"),
        ({"TTP_SEND_RATE_PER_SECOND": "0"}, "TTP_SEND_RATE_PER_SECOND"),
        ({"TTP_DRAIN_SECONDS": "100", "TTP_VISIBILITY_TIMEOUT_SECONDS": "60"}, "TTP_DRAIN_SECONDS must be smaller"),
    ],
)
def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, change: dict, message: str) -> None:
    values = {**GOOD, **{k: v for k, v in change.items() if v is not None}}
    for k, v in change.items():
        if v is None:
            values.pop(k)
    _env(monkeypatch, values)
    with pytest.raises(ConfigurationError) as caught:
        load(WorkerSettings)
    assert message in str(caught.value)


def test_ops_settings_parse_json_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"TTP_BUCKET_NAME": "bucket-1", "TTP_CUSTOMER_QUEUES": '{"hts": "https://q/1"}'})
    assert load(OpsSettings).customer_queues == {"hts": "https://q/1"}
    _env(monkeypatch, {"TTP_BUCKET_NAME": "bucket-1", "TTP_CUSTOMER_QUEUES": '{"HTS": "https://q/1"}'})
    with pytest.raises(ConfigurationError, match="TTP_CUSTOMER_QUEUES"):
        load(OpsSettings)
