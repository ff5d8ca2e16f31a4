"""Each customer's contact-reader role may have its own ExternalId (issue 12).

``TTP_CONTACT_READER_EXTERNAL_IDS`` (customer code -> ExternalId) wins over the shared
``TTP_CONTACT_READER_EXTERNAL_ID`` for that customer; a role without either is a configuration error.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from runtime.contract.settings import MeetingSettings
from runtime.notify import attendees
from runtime.notify.attendees import ContactDirectory
from runtime.notify.errors import MeetingConfigurationError

ROLES = {
    "hts": "arn:aws:iam::333333333333:role/ttp-contact-reader-hts",
    "acme": "arn:aws:iam::444444444444:role/ttp-contact-reader-acme",
}


class _RecordingSes:
    assumed: list[tuple[str, str]] = []

    def __init__(self, role: str, external_id: str, *_: Any, **__: Any) -> None:
        self.assumed.append((role, external_id))

    def client(self, _service: str) -> object:
        return object()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    _RecordingSes.assumed = []
    monkeypatch.setattr(attendees, "CustomerSes", _RecordingSes)
    return _RecordingSes.assumed


def test_each_role_is_assumed_with_its_own_external_id(recorded: list[tuple[str, str]]) -> None:
    directory = ContactDirectory(ROLES, "shared-id", "change-notifications", external_ids={"hts": "hts-own-id"})
    directory._ses("hts")
    directory._ses("acme")
    assert recorded == [(ROLES["hts"], "hts-own-id"), (ROLES["acme"], "shared-id")]


def test_a_role_without_any_external_id_is_a_configuration_error(recorded: list[tuple[str, str]]) -> None:
    directory = ContactDirectory(ROLES, None, "change-notifications", external_ids={"hts": "hts-own-id"})
    directory._ses("hts")
    with pytest.raises(MeetingConfigurationError, match=r"acme.*TTP_CONTACT_READER_EXTERNAL_IDS"):
        directory._ses("acme")


def test_settings_need_the_shared_id_only_for_roles_without_their_own() -> None:
    own = MeetingSettings(calendar_contact_roles=ROLES, contact_reader_external_ids={"hts": "a1", "acme": "b2"})
    assert own.contact_reader_external_ids == {"hts": "a1", "acme": "b2"}
    with pytest.raises(ValidationError, match="names acme without an entry in TTP_CONTACT_READER_EXTERNAL_IDS"):
        MeetingSettings(calendar_contact_roles=ROLES, contact_reader_external_ids={"hts": "a1"})
    shared = MeetingSettings(
        calendar_contact_roles=ROLES,
        contact_reader_external_ids={"hts": "a1"},
        contact_reader_external_id=SecretStr("shared-id"),
    )
    assert shared.contact_reader_external_id is not None


def test_a_customers_own_external_id_is_checked_like_the_shared_one() -> None:
    with pytest.raises(ValidationError, match=r"contact_reader_external_ids\.hts[\s\S]*2-1224 characters"):
        MeetingSettings(calendar_contact_roles=ROLES, contact_reader_external_ids={"hts": "x", "acme": "b2"})
    with pytest.raises(ValidationError, match="only letters, digits"):
        MeetingSettings(calendar_contact_roles=ROLES, contact_reader_external_ids={"hts": "a b", "acme": "b2"})
