"""One name per setting (issue 19): the ``cdk.json`` keys, the construct props and the runtime settings models
name the From address and the Graph settings alike; a deployed cdk.json's old keys are still read, with a
deprecation warning naming the new key."""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from typing import Any

import pytest

from cdk_constructs.change_coordinator import CoordinatorMeetings
from cdk_constructs.customer import TtpCustomerProps
from cdk_constructs.customer_processor import CustomerProcessorProps
from cdk_constructs.customer_ses_roles import CustomerSesRolesProps
from cdk_constructs.platform import PlatformMeetings
from runtime.contract.settings import MeetingSettings, WorkerSettings
from stacks.app_builder import CDK_JSON
from stacks.config import ConfigDeprecationWarning, ConfigError, Customer, Meetings, parse_config

MEETINGS = {
    "graph_tenant_id": "00000000-0000-0000-0000-000000000001",
    "graph_client_id": "00000000-0000-0000-0000-000000000002",
    "meeting_organizer": "change-bot@example.com",
    "graph_client_secret": "ttp/graph-client-secret",
    "contact_reader_external_id": "ttp-contact-reader-9c1e",
}
RENAMED = [
    ("customers", "sender_address", "from_address"),
    ("meetings", "tenant_id", "graph_tenant_id"),
    ("meetings", "client_id", "graph_client_id"),
    ("meetings", "organizer", "meeting_organizer"),
    ("meetings", "client_secret", "graph_client_secret"),
]


def _raw() -> dict[str, Any]:
    raw = copy.deepcopy(json.loads(CDK_JSON.read_text())["context"]["ttp"])
    raw["meetings"] = dict(MEETINGS)
    return raw


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_config_props_and_runtime_use_the_runtime_names() -> None:
    assert "from_address" in WorkerSettings.model_fields and "from_address" in Customer.model_fields
    graph = {"graph_tenant_id", "graph_client_id", "meeting_organizer", "graph_client_secret"}
    assert graph <= set(MeetingSettings.model_fields) and graph <= set(Meetings.model_fields)
    for props in (TtpCustomerProps, CustomerProcessorProps, CustomerSesRolesProps):
        assert "from_address" in _fields(props) and "sender_address" not in _fields(props), props.__name__
    for props in (PlatformMeetings, CoordinatorMeetings):
        assert graph <= _fields(props), props.__name__
    old = {old for _, old, _ in RENAMED}
    assert not old & (set(Customer.model_fields) | set(Meetings.model_fields))


def test_the_sample_cdk_json_uses_the_one_names() -> None:
    text = CDK_JSON.read_text()
    assert '"from_address"' in text and '"sender_address"' not in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_config(json.loads(text)["context"]["ttp"])


@pytest.mark.parametrize(("section", "old", "new"), RENAMED, ids=[old for _, old, _ in RENAMED])
def test_an_old_key_is_still_read_with_a_warning_naming_the_new_one(section: str, old: str, new: str) -> None:
    raw = _raw()
    entry = raw["customers"][0] if section == "customers" else raw["meetings"]
    entry[old] = entry.pop(new)
    with pytest.warns(ConfigDeprecationWarning, match=f"{old!r}.*rename it to {new!r}"):
        config = parse_config(raw)
    model = config.customers[0] if section == "customers" else config.meetings
    assert getattr(model, new) == entry[old]


@pytest.mark.parametrize(("section", "old", "new"), RENAMED, ids=[old for _, old, _ in RENAMED])
def test_an_old_and_a_new_key_together_are_refused(section: str, old: str, new: str) -> None:
    raw = _raw()
    entry = raw["customers"][0] if section == "customers" else raw["meetings"]
    entry[old] = entry[new]
    with pytest.raises(ConfigError, match=f"give {new} only: {old} is its old name"):
        parse_config(raw)
