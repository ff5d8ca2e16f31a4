"""Settings from TTP_* variables: loading, errors that name the variable, JSON maps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runtime.contract.settings import ConfigurationError, CoordinatorSettings, OpsSettings, WorkerSettings, load

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
    assert settings.configuration_set is None  # optional: no configuration set, no delivery events


def test_the_configuration_set_comes_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {**GOOD, "TTP_CONFIGURATION_SET": "ttp-hts"})
    assert load(WorkerSettings).configuration_set == "ttp-hts"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"TTP_QUEUE_URL": None}, "TTP_QUEUE_URL: is required but not set"),
        ({"TTP_CUSTOMER_CODE": "HTS"}, "TTP_CUSTOMER_CODE"),
        ({"TTP_SENDER_ROLE_ARN": "role/x"}, "TTP_SENDER_ROLE_ARN"),
        ({"TTP_MAX_CONCURRENCY": "lots"}, "TTP_MAX_CONCURRENCY"),
        ({"TTP_SEND_RATE_PER_SECOND": "0"}, "TTP_SEND_RATE_PER_SECOND"),
        ({"TTP_DRAIN_SECONDS": "100", "TTP_VISIBILITY_TIMEOUT_SECONDS": "60"}, "TTP_DRAIN_SECONDS must be smaller"),
        ({"TTP_CONFIGURATION_SET": "ttp hts"}, "TTP_CONFIGURATION_SET"),
        ({"TTP_CONFIGURATION_SET": "x" * 65}, "TTP_CONFIGURATION_SET"),
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


# ---- ExternalId (issue 11: "at least 2 items" for a string) -----------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        ("Q", "TTP_SENDER_EXTERNAL_ID: must be 2-1224 characters (an sts:ExternalId), got 1 character"),
        ("x" * 1225, "TTP_SENDER_EXTERNAL_ID: must be 2-1224 characters (an sts:ExternalId), got 1225 characters"),
        ("has space", "TTP_SENDER_EXTERNAL_ID: may contain only letters, digits and _+=,.@:/- (an sts:ExternalId)"),
    ],
)
def test_external_id_errors_speak_of_characters(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    _env(monkeypatch, {**GOOD, "TTP_SENDER_EXTERNAL_ID": value})
    with pytest.raises(ConfigurationError) as caught:
        load(WorkerSettings)
    assert message in str(caught.value) and "items" not in str(caught.value)
    assert value not in str(caught.value)  # a secret is never echoed


def test_contact_reader_external_id_is_checked_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.contract.settings import MeetingSettings

    _env(monkeypatch, {"TTP_CONTACT_READER_EXTERNAL_ID": "x"})
    with pytest.raises(ConfigurationError, match="TTP_CONTACT_READER_EXTERNAL_ID: must be 2-1224 characters"):
        load(MeetingSettings)


def test_delivery_events_need_the_customers_accounts() -> None:
    """Without them any account admitted to the bus could report on another customer's emails."""
    base = {"bucket_name": "b-1", "queue_url": "https://sqs.example/q", "delivery_queue_url": "https://sqs.example/d"}
    with pytest.raises(ValidationError, match="TTP_CUSTOMER_ACCOUNTS is required with TTP_DELIVERY_QUEUE_URL"):
        CoordinatorSettings(**base)
    with pytest.raises(ValidationError, match=r"customer_accounts\.hts"):
        CoordinatorSettings(**base, customer_accounts={"hts": "12345"})
    assert CoordinatorSettings(**base, customer_accounts={"hts": "123456789012"}).customer_accounts == {
        "hts": "123456789012"
    }


# ---- compact customer lists (issue 19: a task definition holds 1,000 customers in 64 KiB) ------------------


def test_ops_settings_derive_queue_urls_from_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(
        monkeypatch,
        {
            "TTP_BUCKET_NAME": "bucket-1",
            "TTP_CUSTOMER_CODES": '["hts", "acme"]',
            "TTP_QUEUE_REGION": "ap-southeast-2",
            "TTP_QUEUE_ACCOUNT": "111111111111",
            "TTP_CUSTOMER_QUEUES": '{"acme": "https://q/elsewhere"}',
        },
    )
    assert load(OpsSettings).customer_queues == {
        "hts": "https://sqs.ap-southeast-2.amazonaws.com/111111111111/customer-hts-changes",
        "acme": "https://q/elsewhere",
    }


def test_ops_settings_still_read_the_full_queue_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task definition of the shape before issue 19 (every URL listed, no codes) keeps working."""
    url = "https://sqs.ap-southeast-2.amazonaws.com/111111111111/customer-hts-changes"
    _env(monkeypatch, {"TTP_BUCKET_NAME": "bucket-1", "TTP_CUSTOMER_QUEUES": f'{{"hts": "{url}"}}'})
    assert load(OpsSettings).customer_queues == {"hts": url}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"TTP_QUEUE_ACCOUNT": None}, "TTP_QUEUE_ACCOUNT must be set"),
        ({"TTP_QUEUE_REGION": None}, "TTP_QUEUE_REGION"),
        ({"TTP_CUSTOMER_CODES": '["HTS"]'}, "TTP_CUSTOMER_CODES"),
        ({"TTP_QUEUE_ACCOUNT": "1234"}, "TTP_QUEUE_ACCOUNT"),
        ({"TTP_CUSTOMER_CODES": None}, "TTP_CUSTOMER_CODES is required"),
    ],
)
def test_ops_settings_customer_codes_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str | None], message: str
) -> None:
    values: dict[str, str | None] = {
        "TTP_BUCKET_NAME": "bucket-1",
        "TTP_CUSTOMER_CODES": '["hts"]',
        "TTP_QUEUE_REGION": "ap-southeast-2",
        "TTP_QUEUE_ACCOUNT": "111111111111",
        **change,
    }
    _env(monkeypatch, {k: v for k, v in values.items() if v is not None})
    with pytest.raises(ConfigurationError, match=message):
        load(OpsSettings)


MEETINGS = {
    "TTP_GRAPH_TENANT_ID": "tenant",
    "TTP_GRAPH_CLIENT_ID": "client",
    "TTP_GRAPH_CLIENT_SECRET": "secret",
    "TTP_MEETING_ORGANIZER": "ops@example.com",
    "TTP_CONTACT_READER_EXTERNAL_ID": "ext-123",
}


def test_meeting_settings_derive_contact_roles_from_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.contract.settings import MeetingSettings

    _env(
        monkeypatch,
        {
            **MEETINGS,
            "TTP_CUSTOMER_ACCOUNTS": '{"hts": "333333333333", "acme": "444444444444"}',
            "TTP_PARTITION": "aws-cn",
            "TTP_CALENDAR_CONTACT_ROLES": '{"acme": "arn:aws:iam::444444444444:role/custom"}',
        },
    )
    assert load(MeetingSettings).calendar_contact_roles == {
        "hts": "arn:aws-cn:iam::333333333333:role/ttp-contact-reader-hts",
        "acme": "arn:aws:iam::444444444444:role/custom",
    }


def test_meeting_settings_still_read_the_full_role_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator's task definition before issue 19 lists every role ARN as well as the accounts."""
    from runtime.contract.settings import MeetingSettings

    roles = '{"hts": "arn:aws:iam::333333333333:role/ttp-contact-reader-hts"}'
    _env(
        monkeypatch,
        {**MEETINGS, "TTP_CUSTOMER_ACCOUNTS": '{"hts": "333333333333"}', "TTP_CALENDAR_CONTACT_ROLES": roles},
    )
    assert load(MeetingSettings).calendar_contact_roles == {
        "hts": "arn:aws:iam::333333333333:role/ttp-contact-reader-hts"
    }


def test_meeting_settings_without_meetings_derive_no_contact_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    """A coordinator without Graph settings (meetings off) still gets ``TTP_CUSTOMER_ACCOUNTS`` for the
    delivery events: it must start without any contact-reader ExternalId (tests/e2e/faults found it refusing)."""
    from runtime.contract.settings import MeetingSettings

    _env(monkeypatch, {"TTP_CUSTOMER_ACCOUNTS": '{"hts": "333333333333"}'})
    settings = load(MeetingSettings)
    assert not settings.enabled and settings.calendar_contact_roles == {}
