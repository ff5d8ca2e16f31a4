"""Each customer's contact-reader role can require its own ExternalId (issue 12).

``ttp.customers[].contact_reader_external_id`` goes into that customer's role trust and into the
coordinator's ``TTP_CONTACT_READER_EXTERNAL_IDS``; customers without one keep the shared
``ttp.meetings.contact_reader_external_id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from runtime.contract import names
from stacks.app_builder import PLATFORM_STACK, customer_account_stack_name
from tests.support.synth import MEETINGS, Synth, env_of, role_named, sample_context, task_definition

OWN_ID = "ttp-reader-hts-5e0a"


@pytest.fixture(scope="module")
def own_ids(make_synth: Callable[..., Synth]) -> Synth:
    context = sample_context(routing="eventbridge", meetings=MEETINGS)
    for customer in context["ttp"]["customers"]:
        if customer["code"] == "hts":
            customer["contact_reader_external_id"] = OWN_ID
    return make_synth("own-external-ids", context, nag=False)


def _external_id(synth: Synth, code: str) -> Any:
    _, role = role_named(synth, customer_account_stack_name(code), names.contact_reader_role_name(code))
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return statement["Condition"]["StringEquals"]["sts:ExternalId"]


def test_a_customer_with_its_own_external_id_gets_it_in_its_role_trust(own_ids: Synth) -> None:
    assert _external_id(own_ids, "hts") == OWN_ID
    assert _external_id(own_ids, "htsnonprod") == MEETINGS["contact_reader_external_id"]


def test_the_coordinator_assumes_each_role_with_its_external_id(own_ids: Synth) -> None:
    env = env_of(task_definition(own_ids, PLATFORM_STACK, names.COORDINATOR_SERVICE_NAME))
    assert json.loads(env["TTP_CONTACT_READER_EXTERNAL_IDS"]) == {"hts": OWN_ID}
    assert env["TTP_CONTACT_READER_EXTERNAL_ID"] == MEETINGS["contact_reader_external_id"]
