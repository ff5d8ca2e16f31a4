"""Issue 19: onboarding a third customer changes only that customer's two stacks plus the listed
platform entries, measured from the templates (every resource of every stack diffed, property by
property: ``tests.support.template_diff``) and compared with an explicit list.

A platform entry that is not listed here (a bucket policy that grows, a role rewritten, a customer's
stack touched by another's onboarding) fails the test, naming the stack, the logical id and the path.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from tests.infra._shared_synth import NEW, multi_onboarded, sample_onboarded, with_customer
from tests.support.synth import Synth, sample_context, synthesize
from tests.support.template_diff import changed_paths, template_changes

COORDINATOR_TASK = "CoordinatorTaskDefinitionB019A795"
SWEEPER_TASK = "SweeperTaskDefinition7AFDB3A6"
COORDINATOR_ENV = "Properties.ContainerDefinitions[coordinator].Environment"
SWEEPER_QUEUES = (
    PLATFORM_STACK,
    SWEEPER_TASK,
    "Properties.ContainerDefinitions[sweep].Environment[TTP_CUSTOMER_CODES].Value",
)
COORDINATOR_ACCOUNTS = (PLATFORM_STACK, COORDINATOR_TASK, f"{COORDINATOR_ENV}[TTP_CUSTOMER_ACCOUNTS].Value")
NEW_ACCOUNT_ADMITTED = {
    (
        PLATFORM_STACK,
        "CoordinatorDeliveryEventsBuscdkCustomerAccountsForwardSesEventsB62677DD",
        "Properties.Statement.Principal.AWS",
    ),
}
"""A customer in an account new to the platform: the delivery-events bus admits it (its rule names no account
since issue 19, so it does not change)."""


def _new_stacks(code: str) -> set[tuple[str, str, str]]:
    return {(customer_stack_name(code), "*", "added"), (customer_account_stack_name(code), "*", "added")}


ALLOWED_S3 = (
    _new_stacks("newco")
    | NEW_ACCOUNT_ADMITTED
    | {
        SWEEPER_QUEUES,
        COORDINATOR_ACCOUNTS,
        (STORAGE_STACK, "MetadataBucket9EC46EE3", "Properties.NotificationConfiguration.QueueConfigurations"),
    }
)
"""S3 routing (the sample): one more queue configuration on the bucket."""
ALLOWED_EVENTBRIDGE_MEETINGS = (
    _new_stacks("newco")
    | NEW_ACCOUNT_ADMITTED
    | {
        SWEEPER_QUEUES,
        COORDINATOR_ACCOUNTS,
        (STORAGE_STACK, "MetadataRoutenewcoFF10FE29", "added"),
    }
)
"""EventBridge routing with meetings: one more rule instead, and the coordinator reads its contacts."""
ALLOWED_SHARED_ACCOUNT = _new_stacks("hts2") | {
    SWEEPER_QUEUES,
    COORDINATOR_ACCOUNTS,
    (STORAGE_STACK, "MetadataBucket9EC46EE3", "Properties.NotificationConfiguration.QueueConfigurations"),
    (
        customer_account_stack_name("hts"),
        "DeliveryEventsForwardRule25401E51",
        "Properties.EventPattern.detail.mail.tags.ses:configuration-set",
    ),
}
"""A customer in the account of ``hts``: no new account for the bus, but the account's one forwarding
rule (in the stack of its first customer) matches the new configuration set too."""


@pytest.fixture(scope="module")
def s3_pair(sample: Synth, tmp_path_factory: pytest.TempPathFactory) -> tuple[Synth, Synth]:
    return sample, sample_onboarded(tmp_path_factory)


def test_a_third_customer_changes_only_its_stacks_and_the_listed_platform_entries(
    s3_pair: tuple[Synth, Synth],
) -> None:
    before, after = s3_pair
    assert template_changes(before.templates, after.templates) == ALLOWED_S3


def test_with_eventbridge_and_meetings_too(multi: Synth, tmp_path_factory: pytest.TempPathFactory) -> None:
    after = multi_onboarded(tmp_path_factory)
    assert template_changes(multi.templates, after.templates) == ALLOWED_EVENTBRIDGE_MEETINGS


def test_a_customer_in_an_existing_account_changes_that_accounts_forwarding_rule_only(
    sample: Synth, tmp_path_factory: pytest.TempPathFactory
) -> None:
    context = sample_context()
    context["ttp"]["customers"][0]["shares_ses_account_with"] = ["hts2"]
    shared = {**NEW, "code": "hts2", "account": "333333333333", "shares_ses_account_with": ["hts"]}
    after = synthesize(tmp_path_factory.mktemp("diff-shared"), with_customer(context, shared), nag=False)
    assert template_changes(sample.templates, after.templates) == ALLOWED_SHARED_ACCOUNT


def test_the_diff_sees_a_change_anywhere() -> None:
    """Guards the measurement: a changed statement, an environment value and a new resource are reported."""
    before: dict[str, Any] = {
        "S": {"Resources": {"A": {"Type": "T", "Properties": {"P": [{"Name": "X", "Value": "1"}]}}}}
    }
    after = copy.deepcopy(before)
    after["S"]["Resources"]["A"]["Properties"]["P"][0]["Value"] = "2"
    after["S"]["Resources"]["B"] = {"Type": "T"}
    assert template_changes(before, after) == {("S", "A", "Properties.P[X].Value"), ("S", "B", "added")}
    assert list(changed_paths({"a": [1, 2]}, {"a": [1, 3]})) == ["a"]
