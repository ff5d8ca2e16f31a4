"""Sharded trigger routing (cdk_constructs/sharded_routing.py), built standalone in a small app.

The bucket account forwards trigger events to governance-account buses; each customer's rule sits on one
of them, in the customer's own stack, matching by prefix. The quota arithmetic is checked on the
templates with cdk_support.quotas: 30 customers already break the 30-wildcard-rules quota of today's
``eventbridge`` routing (MetadataBucket's per-customer rules), not of this one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Match, Template

from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_constructs.metadata_bucket import MetadataBucket, MetadataBucketProps, RoutedCustomer
from cdk_constructs.sharded_routing import (
    DEFAULT_TRIGGER_BUS_SHARDS,
    CustomerTriggerRule,
    CustomerTriggerRuleProps,
    TriggerBuses,
    TriggerBusesProps,
    TriggerForwarding,
    TriggerForwardingProps,
    largest_shard,
    shard_of,
)
from cdk_support.quotas import QuotaExceededError, SynthesizedStack, check, read_assembly
from runtime.contract import names
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from stacks.config import sample_customers
from tests.infra._shared_synth import NEW, with_customer
from tests.infra.stacks.test_onboarding import (
    _coordinator_accounts,
    _sweeper_queues,
    _without_sweeper_queues,
)
from tests.support.synth import GOV as SAMPLE_GOV
from tests.support.synth import MEETINGS, Synth, app_without_validation, sample_context, synthesize
from tests.support.synth import REGION as SAMPLE_REGION

MGMT, GOV, REGION = "111111111111", "222222222222", "us-east-1"
BUCKET = "ttp-metadata-test"


def _sharded_app(outdir: Path, codes: list[str], shards: int = DEFAULT_TRIGGER_BUS_SHARDS) -> App:
    app = app_without_validation(outdir=str(outdir))
    storage = Stack(app, "Storage", env=Environment(account=MGMT, region=REGION))
    MetadataBucket(
        storage,
        "Metadata",
        MetadataBucketProps(governance_account=GOV, routing="eventbridge", coordinator_account=GOV, bucket_name=BUCKET),
    )
    TriggerForwarding(
        storage, "Forwarding", TriggerForwardingProps(bucket_name=BUCKET, governance_account=GOV, shards=shards)
    )
    platform = Stack(app, "Platform", env=Environment(account=GOV, region=REGION))
    TriggerBuses(platform, "TriggerBuses", TriggerBusesProps(source_account=MGMT, shards=shards))
    for code in codes:
        customer = Stack(app, f"Customer-{code}", env=Environment(account=GOV, region=REGION))
        bus = names.trigger_bus_name(shard_of(code, shards))
        queue = CustomerQueue(
            customer,
            "Queue",
            CustomerQueueProps(
                customer_code=code, source_account=GOV, bucket_name=BUCKET, routing="eventbridge", event_bus_name=bus
            ),
        )
        CustomerTriggerRule(
            customer,
            "Route",
            CustomerTriggerRuleProps(
                customer_code=code, bucket_name=BUCKET, queue_arn=queue.queue.queue_arn, shards=shards
            ),
        )
    return app


def _codes(count: int) -> list[str]:
    return [c["code"] for c in sample_customers(count)]


@pytest.fixture(scope="module")
def sharded_assembly(tmp_path_factory: pytest.TempPathFactory) -> list[SynthesizedStack]:
    """The sharded app of 30 customers, synthesized once for the module."""
    outdir = tmp_path_factory.mktemp("sharded")
    _sharded_app(outdir, _codes(30)).synth()
    return read_assembly(outdir)


@pytest.fixture(scope="module")
def sharded(sharded_assembly: list[SynthesizedStack]) -> dict[str, dict[str, Any]]:
    return {stack.name: dict(stack.template) for stack in sharded_assembly}


def test_thirty_customers_break_the_wildcard_quota_of_eventbridge_routing(tmp_path: Path) -> None:
    """Today's routing 'eventbridge': one wildcard rule per customer on the default bus, plus the coordinator's."""
    app = app_without_validation(outdir=str(tmp_path))
    storage = Stack(app, "Storage", env=Environment(account=MGMT, region=REGION))
    MetadataBucket(
        storage,
        "Metadata",
        MetadataBucketProps(
            governance_account=GOV,
            routing="eventbridge",
            coordinator_account=GOV,
            bucket_name=BUCKET,
            customers=tuple(RoutedCustomer(code, GOV) for code in _codes(30)),
        ),
    )
    app.synth()
    with pytest.raises(QuotaExceededError, match=r"events\.wildcard-rules-per-bus.*has 31 rules, the limit is 30"):
        check(read_assembly(tmp_path))


def test_thirty_sharded_customers_fit_every_quota(sharded_assembly: list[SynthesizedStack]) -> None:
    check(sharded_assembly)


def test_the_bucket_account_holds_no_customer(sharded: dict[str, dict[str, Any]]) -> None:
    storage = Template.from_json(sharded["Storage"])
    # Five forwarding rules plus the coordinator's, whatever the number of customers.
    assert len(storage.find_resources("AWS::Events::Rule")) == DEFAULT_TRIGGER_BUS_SHARDS + 1
    storage.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "ttp-forward-triggers-03",
            "EventBusName": "default",
            "EventPattern": {
                "source": ["aws.s3"],
                "detail": {"bucket": {"name": [BUCKET]}, "object": {"key": [{"wildcard": "customers/*.json"}]}},
            },
            "Targets": [
                {
                    "Arn": {
                        "Fn::Join": [
                            "",
                            ["arn:", {"Ref": "AWS::Partition"}, f":events:{REGION}:{GOV}:event-bus/ttp-triggers-03"],
                        ]
                    },
                    "RoleArn": Match.any_value(),
                    "Id": "trigger-bus",
                }
            ],
        },
    )
    storage.has_resource_properties("AWS::IAM::Role", {"RoleName": names.TRIGGER_FORWARDER_ROLE_NAME})


def test_each_bus_admits_only_the_bucket_account(sharded: dict[str, dict[str, Any]]) -> None:
    platform = Template.from_json(sharded["Platform"])
    buses = platform.find_resources("AWS::Events::EventBus")
    assert sorted(b["Properties"]["Name"] for b in buses.values()) == [
        names.trigger_bus_name(i) for i in range(DEFAULT_TRIGGER_BUS_SHARDS)
    ]
    text = str(sharded["Platform"])
    assert MGMT in text and "events:source" in text


def test_each_customer_rule_is_in_its_own_stack_on_its_bus_by_prefix(sharded: dict[str, dict[str, Any]]) -> None:
    code = "c0007"
    bus = names.trigger_bus_name(shard_of(code, DEFAULT_TRIGGER_BUS_SHARDS))
    customer = Template.from_json(sharded[f"Customer-{code}"])
    customer.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": names.event_rule_name(code),
            "EventBusName": bus,
            "EventPattern": Match.object_like(
                {"detail": {"bucket": {"name": [BUCKET]}, "object": {"key": [{"prefix": f"customers/{code}/"}]}}}
            ),
            "Targets": [Match.object_like({"Id": "customer-queue"})],
        },
    )
    (rule,) = customer.find_resources("AWS::Events::Rule").values()
    assert "RoleArn" not in rule["Properties"]["Targets"][0]  # same account: no execution role
    customer.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": GOV},
                                    "ArnEquals": {
                                        "aws:SourceArn": {
                                            "Fn::Join": [
                                                "",
                                                [
                                                    "arn:",
                                                    {"Ref": "AWS::Partition"},
                                                    f":events:{REGION}:{GOV}:rule/{bus}/ttp-route-{code}",
                                                ],
                                            ]
                                        }
                                    },
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_a_customers_bus_depends_on_its_code_only() -> None:
    """Onboarding moves no other customer's rule: the shard of c0001 … c0500 is the same among 1,000."""
    thousand = {code: shard_of(code, 5) for code in _codes(1000)}
    assert {code: shard_of(code, 5) for code in _codes(500)} == {c: thousand[c] for c in _codes(500)}
    assert set(thousand.values()) == set(range(5))


def test_one_thousand_customers_fit_five_buses_below_the_rule_quota() -> None:
    assert largest_shard(_codes(1000), 5) == 212  # of 300 rules per bus
    assert largest_shard(_codes(1000), 3) > 300  # three buses would not do


def test_shards_must_be_positive() -> None:
    with pytest.raises(ValueError, match="shards must be at least 1, got 0"):
        shard_of("c0001", 0)


@pytest.fixture(scope="module")
def sharded_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synth, Synth]:
    before = sample_context(routing="eventbridge-sharded", meetings=MEETINGS)
    return (
        synthesize(tmp_path_factory.mktemp("sharded-before"), before, nag=False),
        synthesize(tmp_path_factory.mktemp("sharded-after"), with_customer(before), nag=False),
    )


def test_sharded_onboarding_changes_no_storage_template(sharded_pair: tuple[Synth, Synth]) -> None:
    """The onboarding diff, measured from the templates: the new customer's two stacks (its rule in the
    governance one), the platform's listed entries; the storage stack and every other customer unchanged."""
    before, after = sharded_pair
    assert set(after.templates) - set(before.templates) == {
        customer_stack_name("newco"),
        customer_account_stack_name("newco"),
    }
    queues = {**_sweeper_queues(before), "newco": names.queue_url(SAMPLE_REGION, SAMPLE_GOV, "newco")}
    assert _sweeper_queues(after) == queues
    assert _coordinator_accounts(after) == {**_coordinator_accounts(before), "newco": NEW["account"]}
    platform = _without_sweeper_queues(after.templates[PLATFORM_STACK])
    assert platform == _without_sweeper_queues(before.templates[PLATFORM_STACK])
    assert after.templates[STORAGE_STACK] == before.templates[STORAGE_STACK]
    for code in ("hts", "htsnonprod"):
        assert after.templates[customer_account_stack_name(code)] == before.templates[customer_account_stack_name(code)]
        assert after.templates[customer_stack_name(code)] == before.templates[customer_stack_name(code)], code
    rule = after.only(customer_stack_name("newco"), "AWS::Events::Rule")["Properties"]
    assert rule["Name"] == "ttp-route-newco"
    assert rule["EventBusName"] == names.trigger_bus_name(shard_of("newco", DEFAULT_TRIGGER_BUS_SHARDS))
