"""The delivery-events bus policy and rule at 1,000 customer accounts (issue 19).

The rule matches ``source`` only (the bus policy already decides who may put events, and the coordinator
refuses an event whose account is not its customer's): its pattern does not grow. The bus policy admits one
principal per account, about 300 accounts in EventBridge's 10,240 characters, or, with
``accounts.organization_id``, the whole organization in one condition at any number of accounts; past the
quota without it the synth fails naming that fix.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Environment, Stack

from cdk_constructs.delivery_events import DeliveryEvents, DeliveryEventsProps
from cdk_support.quotas import QUOTAS, SynthesizedStack, breaches, measure
from stacks.app_builder import PLATFORM_STACK
from stacks.config import ConfigError, parse_config
from tests.support.synth import GOV, Synth, app_without_validation, sample_context

ORGANIZATION = "o-a1b2c3d4e5"


def _accounts(count: int) -> list[str]:
    return [f"{500000000000 + i}" for i in range(count)]


def _template(accounts: list[str], organization_id: str | None = None) -> dict[str, Any]:
    app = app_without_validation()
    stack = Stack(app, "Gov", env=Environment(account=GOV, region="us-east-1"))
    DeliveryEvents(
        stack,
        "Delivery",
        DeliveryEventsProps(
            customer_accounts=accounts, visibility_timeout_seconds=300, organization_id=organization_id
        ),
    )
    return dict(app.synth().get_stack_by_name("Gov").template)


def _one(template: dict[str, Any], type_: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]
    return dict(found)


def _usage(template: dict[str, Any], key: str) -> int:
    stack = SynthesizedStack("Gov", GOV, "us-east-1", template, 0)
    (usage,) = [u for u in measure([stack]) if u.quota.key == key]
    return usage.count


def test_the_rule_pattern_is_the_same_for_2_and_1000_accounts() -> None:
    small, large = _template(_accounts(2)), _template(_accounts(1000))
    assert _one(large, "AWS::Events::Rule")["EventPattern"] == {"source": ["aws.ses"]}
    assert _usage(small, "events.pattern-size") == _usage(large, "events.pattern-size") < 100


def test_with_an_organization_the_bus_policy_is_one_condition_at_any_number_of_accounts() -> None:
    small = _template(_accounts(2), ORGANIZATION)
    large = _template(_accounts(1000), ORGANIZATION)
    statement = _one(large, "AWS::Events::EventBusPolicy")["Statement"]
    assert statement["Principal"] == {"AWS": "*"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": ORGANIZATION},
        "ForAllValues:StringEquals": {"events:source": ["aws.ses"]},
    }
    size = _usage(large, "events.bus-policy-size")
    assert size == _usage(small, "events.bus-policy-size") < QUOTAS["events.bus-policy-size"].limit // 20


def test_without_an_organization_1000_accounts_exceed_the_bus_policy_quota_naming_the_fix() -> None:
    fits, too_many = _template(_accounts(250)), _template(_accounts(1000))
    assert not breaches(measure([SynthesizedStack("Gov", GOV, "us-east-1", fits, 0)]))
    (breach,) = breaches(measure([SynthesizedStack("Gov", GOV, "us-east-1", too_many, 0)]))
    assert breach.usage.quota.key == "events.bus-policy-size"
    assert "accounts.organization_id" in breach.message()


def test_the_organization_id_is_validated_in_the_config() -> None:
    raw = sample_context()["ttp"]
    raw["accounts"]["organization_id"] = "o-NOPE"
    with pytest.raises(ConfigError, match=r"accounts\.organization_id: .o-NOPE. must be an AWS Organizations id"):
        parse_config(raw)


def test_the_app_passes_the_organization_to_the_bus_policy(make_synth: Any) -> None:
    context = sample_context()
    context["ttp"]["accounts"]["organization_id"] = ORGANIZATION
    synth: Synth = make_synth("organization", context, nag=True)
    (policy,) = synth.resources(PLATFORM_STACK, "AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["Statement"]["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORGANIZATION}
