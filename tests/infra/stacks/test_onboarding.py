"""Onboarding one more customer changes exactly what it should, across all stacks.

S3 routing: one new CustomerStack and CustomerAccountStack, one more bucket notification, one more
queue in the sweeper's TTP_CUSTOMER_QUEUES and (a new account) one more account admitted by the
delivery-events bus and matched by its rule; every other template is byte-for-byte unchanged.
EventBridge routing with meetings: one more rule instead of a notification, and (inherent in the
runtime's contract) every processor's TTP_CALENDAR_CONTACT_ROLES gains the new contact-reader role.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cdk_constructs.sweeper import SWEEPER_TASK_FAMILY
from runtime.contract import names
from runtime.contract.settings import MeetingSettings, OpsSettings
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from tests.infra._shared_synth import (
    NEW,
    multi_onboarded,
    sample_onboarded,
    stack_accounts,
    stack_dependencies,
)
from tests.support.synth import (
    GOV,
    REGION,
    Synth,
    env_of,
    sample_context,
    settings_in,
    synthesize,
    task_definition,
)


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return sample_onboarded(tmp_path_factory)


@pytest.fixture(scope="module")
def eventbridge_pair(multi: Synth, tmp_path_factory: pytest.TempPathFactory) -> tuple[Synth, Synth]:
    """EventBridge routing with meetings: the session's ``multi`` app, and the same plus :data:`NEW`."""
    return multi, multi_onboarded(tmp_path_factory)


def _sweeper_queues(synth: Synth) -> dict[str, str]:
    """Customer code -> queue URL as the sweeper reads them (codes in its task definition, URLs derived)."""
    task = task_definition(synth, PLATFORM_STACK, SWEEPER_TASK_FAMILY)
    return dict(settings_in(OpsSettings, env_of(task)).customer_queues)


def _coordinator_accounts(synth: Synth) -> dict[str, str]:
    """Customer code -> account, as the coordinator accepts delivery events (``TTP_CUSTOMER_ACCOUNTS``)."""
    task = task_definition(synth, PLATFORM_STACK, names.COORDINATOR_NAME)
    return dict(json.loads(env_of(task)["TTP_CUSTOMER_ACCOUNTS"]))


def _without_sweeper_queues(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            for item in resource["Properties"]["ContainerDefinitions"][0]["Environment"]:
                if item["Name"] in ("TTP_CUSTOMER_CODES", "TTP_CUSTOMER_ACCOUNTS"):
                    item["Value"] = "<one entry per customer>"
        # The delivery-events bus admits one entry per customer account (its rule names none).
        if resource["Type"] == "AWS::Events::EventBusPolicy":
            resource["Properties"]["Statement"]["Principal"]["AWS"] = "<one entry per customer account>"
        if resource["Type"] == "AWS::Events::Rule" and "account" in resource["Properties"].get("EventPattern", {}):
            resource["Properties"]["EventPattern"]["account"] = "<one entry per customer account>"
    return template


def _delivery_accounts(synth: Synth) -> tuple[list[str], dict[str, Any]]:
    """(accounts the delivery-events bus admits, its rule's pattern: since issue 19 the same for any accounts)."""
    policy = synth.only(PLATFORM_STACK, "AWS::Events::EventBusPolicy")["Properties"]["Statement"]
    admitted = [arn.split(":")[4] for arn in policy["Principal"]["AWS"]]
    (rule,) = [
        r["Properties"]
        for r in synth.resources(PLATFORM_STACK, "AWS::Events::Rule").values()
        if r["Properties"].get("Name") == names.DELIVERY_EVENTS_RULE_NAME
    ]
    return admitted, rule["EventPattern"]


def _assert_common_changes(before: Synth, after: Synth) -> None:
    new_stacks = set(after.templates) - set(before.templates)
    assert new_stacks == {customer_stack_name("newco"), customer_account_stack_name("newco")}
    assert set(before.templates) <= set(after.templates)
    assert _sweeper_queues(after) == {**_sweeper_queues(before), "newco": names.queue_url(REGION, GOV, "newco")}
    assert _coordinator_accounts(after) == {**_coordinator_accounts(before), "newco": NEW["account"]}
    old_admitted, old_pattern = _delivery_accounts(before)
    assert _delivery_accounts(after) == (sorted([*old_admitted, NEW["account"]]), old_pattern)
    assert _without_sweeper_queues(after.templates[PLATFORM_STACK]) == _without_sweeper_queues(
        before.templates[PLATFORM_STACK]
    )
    assert stack_accounts(after)[customer_account_stack_name("newco")] == NEW["account"]


def test_s3_onboarding_changes_exactly_one_notification(sample: Synth, onboarded: Synth) -> None:
    _assert_common_changes(sample, onboarded)
    for code in ("hts", "htsnonprod"):
        for stack in (customer_stack_name(code), customer_account_stack_name(code)):
            assert onboarded.templates[stack] == sample.templates[stack], stack

    old, new = sample.templates[STORAGE_STACK], copy.deepcopy(onboarded.templates[STORAGE_STACK])
    bucket_id = next(
        lid for lid, r in new["Resources"].items() if r["Properties"].get("BucketName", "").startswith("ttp-metadata-")
    )
    configurations = new["Resources"][bucket_id]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    added = [
        c
        for c in configurations
        if c not in old["Resources"][bucket_id]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    ]
    assert added == [
        {
            "Event": "s3:ObjectCreated:*",
            "Filter": {
                "S3Key": {
                    "Rules": [{"Name": "prefix", "Value": "customers/newco/"}, {"Name": "suffix", "Value": ".json"}]
                }
            },
            "Queue": f"arn:aws:sqs:{REGION}:{GOV}:customer-newco-changes",
        }
    ]
    configurations.remove(added[0])
    assert new == old  # nothing else in the storage stack changed (bucket policy included)


def test_eventbridge_onboarding_adds_one_rule(eventbridge_pair: tuple[Synth, Synth]) -> None:
    before, after = eventbridge_pair
    _assert_common_changes(before, after)
    old, new = before.templates[STORAGE_STACK], copy.deepcopy(after.templates[STORAGE_STACK])
    added = set(new["Resources"]) - set(old["Resources"])
    assert len(added) == 1
    (rule_id,) = added
    assert new["Resources"][rule_id]["Properties"]["Name"] == "ttp-route-newco"
    del new["Resources"][rule_id]
    assert new == old

    # With meetings, the coordinator (platform stack) lists every contact-reader role: only that variable
    # changes there; the processors hold no meeting settings, so the other customers' stacks do not change.
    assert _contact_roles(after) == {
        **_contact_roles(before),
        "newco": f"arn:aws:iam::{NEW['account']}:role/ttp-contact-reader-newco",
    }
    for code in ("hts", "htsnonprod"):
        assert after.templates[customer_account_stack_name(code)] == before.templates[customer_account_stack_name(code)]
        assert after.templates[customer_stack_name(code)] == before.templates[customer_stack_name(code)], code


def _contact_roles(synth: Synth) -> dict[str, str]:
    task = task_definition(synth, PLATFORM_STACK, names.COORDINATOR_SERVICE_NAME)
    return dict(settings_in(MeetingSettings, env_of(task), TTP_GRAPH_CLIENT_SECRET="x").calendar_contact_roles)


# --- Offboarding (issue 12) -------------------------------------------------------------------------
#
# Destroying a customer's stacks while the storage stack still routes to its queue makes every later
# storage update fail S3's destination validation. Step 1 marks the customer `offboarding: true` and
# deploys the storage stack (its notification goes while the queue still exists); step 2 removes the
# entry and destroys the customer's stacks, which no longer changes the storage stack.

GONE = "htsnonprod"


def _customers_of(context: dict[str, Any], **changes: Any) -> dict[str, Any]:
    context = copy.deepcopy(context)
    customers = context["ttp"]["customers"]
    if changes.get("remove"):
        context["ttp"]["customers"] = [c for c in customers if c["code"] != GONE]
    else:
        for customer in customers:
            if customer["code"] == GONE:
                customer["offboarding"] = True
    return context


@pytest.fixture(scope="module")
def offboarding_steps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synth, Synth]:
    before = sample_context()
    return (
        synthesize(tmp_path_factory.mktemp("offboarding"), _customers_of(before), nag=False),
        synthesize(tmp_path_factory.mktemp("offboarded"), _customers_of(before, remove=True), nag=False),
    )


def _queue_configurations(synth: Synth) -> list[dict[str, Any]]:
    template = synth.templates[STORAGE_STACK]
    (bucket,) = [r for r in template["Resources"].values() if r["Properties"].get("BucketName", "").startswith("ttp-")]
    return list(bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"])


def test_offboarding_drops_only_the_customers_route_and_keeps_its_stacks(
    sample: Synth, offboarding_steps: tuple[Synth, Synth]
) -> None:
    offboarding, _ = offboarding_steps
    gone_queue = f"arn:aws:sqs:{REGION}:{GOV}:{names.queue_name(GONE)}"
    assert [c["Queue"] for c in _queue_configurations(sample)].count(gone_queue) == 1
    assert [c for c in _queue_configurations(offboarding) if c["Queue"] != gone_queue] == [
        c for c in _queue_configurations(sample) if c["Queue"] != gone_queue
    ]
    assert gone_queue not in json.dumps(offboarding.templates[STORAGE_STACK])
    # Its queue, processor and roles stay as they were (the queue drains; the sweeper still sees it).
    for stack in (customer_stack_name(GONE), customer_account_stack_name(GONE), PLATFORM_STACK):
        assert offboarding.templates[stack] == sample.templates[stack], stack
    # The storage stack no longer depends on the customer's stacks: `cdk destroy` of them will not drag it along.
    gone_stacks = {customer_stack_name(GONE), customer_account_stack_name(GONE)}
    assert gone_stacks <= stack_dependencies(sample, STORAGE_STACK)
    assert not gone_stacks & stack_dependencies(offboarding, STORAGE_STACK)


def test_removing_an_offboarded_customer_no_longer_changes_the_storage_stack(
    sample: Synth, offboarding_steps: tuple[Synth, Synth]
) -> None:
    offboarding, removed = offboarding_steps
    assert removed.templates[STORAGE_STACK] == offboarding.templates[STORAGE_STACK]
    assert set(offboarding.templates) - set(removed.templates) == {
        customer_stack_name(GONE),
        customer_account_stack_name(GONE),
    }
    # Removing the entry directly (skipping step 1) would change the storage stack in the same deploy that
    # drops the queue: that is the unsafe order the offboarding step exists for.
    assert removed.templates[STORAGE_STACK] != sample.templates[STORAGE_STACK]
