"""Trigger routing for 1,000 customers within every default quota (routing ``"eventbridge-sharded"``).

One router cannot hold 1,000 customers: the bucket takes 100 notification configurations, a bus 300
rules of which only 30 may use a ``wildcard``. So the routing is spread over three constructs, none of which
grows with the number of customers outside the customer's own stack:

* :class:`TriggerBuses` (governance account, platform stack): ``shards`` custom buses ``ttp-triggers-NN``,
  each admitting ``events:PutEvents`` of ``aws.s3`` events from the bucket's account only.
* :class:`TriggerForwarding` (bucket account, storage stack): one rule per bus on the bucket account's
  default bus (``ttp-forward-triggers-NN``) forwarding every ``customers/*.json`` object-created event of the
  bucket to that bus, through one execution role that may only put events on those buses. ``shards`` wildcard
  rules (plus the coordinator's one) of the 30 allowed.
* :class:`CustomerTriggerRule` (governance account, the customer's stack): rule ``ttp-route-<code>`` on the
  customer's bus (:func:`shard_of`) matching the customer's key prefix (``prefix``, not ``wildcard``: the
  forwarding rule already required the ``.json`` suffix) to the customer's queue, in the same account, so
  without an execution role; the queue's policy admits exactly this rule (:class:`~cdk_constructs.event_queue.
  EventQueue` with ``event_bus_name``).

A customer's bus is ``crc32(code) % shards``: fixed by the code, so adding a customer moves no other
customer's rule. With the default 5 buses the 1,000 sample customers take at most 212 rules on one bus (quota
300). Every bus receives every trigger event (``shards`` events per trigger, $1.00 per million), and only the
one customer rule matches.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_support import defaults
from cdk_support.event_rules import S3_EVENT_SOURCE, events_execution_principal, object_created_pattern
from runtime.contract import keys, names

DEFAULT_TRIGGER_BUS_SHARDS = defaults.TRIGGER_BUS_SHARDS
"""Buses of a sharded platform (``cdk_support.defaults.TRIGGER_BUS_SHARDS``)."""
PlatformRouting = defaults.RoutingName
"""The platform's routings (``cdk_support.defaults.RoutingName``)."""


def bucket_routing(routing: PlatformRouting) -> Literal["s3", "eventbridge"]:
    """How the bucket publishes its events: S3 notifications, or to EventBridge (both EventBridge routings)."""
    return "s3" if routing == "s3" else "eventbridge"


def shard_of(customer_code: str, shards: int) -> int:
    """The trigger bus of a customer: a stable hash of its code (adding customers moves no other one)."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return zlib.crc32(keys.validate_customer_code(customer_code).encode()) % shards


def customer_rule_pattern(bucket_name: str, customer_code: str) -> dict[str, object]:
    """The customer rule's pattern: object-created events of the bucket under ``customers/<code>/``."""
    return object_created_pattern(bucket_name, [{"prefix": keys.trigger_prefix(customer_code)}])


def _check_shards(props: TriggerBusesProps | TriggerForwardingProps) -> None:
    if props.shards < 1:
        raise ValueError(f"{type(props).__name__}.shards must be at least 1, got {props.shards}")


@dataclass(frozen=True, kw_only=True)
class TriggerBusesProps:
    source_account: str
    """The account of the metadata bucket, whose forwarding rules put events on the buses. Required."""
    shards: int = DEFAULT_TRIGGER_BUS_SHARDS
    """How many buses. Default: :data:`DEFAULT_TRIGGER_BUS_SHARDS`."""


class TriggerBuses(Construct):
    """The governance account's trigger buses; attribute ``buses`` (index = shard)."""

    def __init__(self, scope: Construct, construct_id: str, props: TriggerBusesProps) -> None:
        super().__init__(scope, construct_id)
        _check_shards(props)
        self.buses: list[events.EventBus] = []
        for shard in range(props.shards):
            bus = events.EventBus(self, f"Bus{shard:02d}", event_bus_name=names.trigger_bus_name(shard))
            bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="BucketAccountForwardsTriggerEvents",
                    principals=[iam.AccountPrincipal(props.source_account)],
                    actions=["events:PutEvents"],
                    resources=[bus.event_bus_arn],
                    conditions={"ForAllValues:StringEquals": {"events:source": [S3_EVENT_SOURCE]}},
                )
            )
            self.buses.append(bus)


@dataclass(frozen=True, kw_only=True)
class TriggerForwardingProps:
    bucket_name: str
    """The metadata bucket (EventBridge notifications enabled, e.g. by ``MetadataBucket``). Required."""
    governance_account: str
    """The account of the trigger buses. Required."""
    shards: int = DEFAULT_TRIGGER_BUS_SHARDS
    """How many buses (the same number as :class:`TriggerBuses`). Default: :data:`DEFAULT_TRIGGER_BUS_SHARDS`."""


class TriggerForwarding(Construct):
    """Forwarding rules on the bucket account's default bus; attributes ``rules`` and ``role``."""

    def __init__(self, scope: Construct, construct_id: str, props: TriggerForwardingProps) -> None:
        super().__init__(scope, construct_id)
        _check_shards(props)
        stack = Stack.of(self)
        partition, region, account = stack.partition, stack.region, stack.account
        bus_arns = [
            names.trigger_bus_arn(region, props.governance_account, shard, partition) for shard in range(props.shards)
        ]
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.TRIGGER_FORWARDER_ROLE_NAME,
            description="EventBridge execution role: forwards trigger events to the platform's trigger buses",
            assumed_by=events_execution_principal(partition, region, account, names.TRIGGER_FORWARD_RULE_PREFIX),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="PutOnTriggerBuses", actions=["events:PutEvents"], resources=bus_arns)
        )
        self.rules: list[events.CfnRule] = []
        for shard, bus_arn in enumerate(bus_arns):
            self.rules.append(
                events.CfnRule(
                    self,
                    f"Forward{shard:02d}",
                    name=names.trigger_forward_rule_name(shard),
                    description=f"Trigger objects of every customer to trigger bus {names.trigger_bus_name(shard)}",
                    event_bus_name="default",
                    state="ENABLED",
                    event_pattern=object_created_pattern(
                        props.bucket_name, [{"wildcard": f"{keys.CUSTOMERS_PREFIX}*{keys.SUFFIX}"}]
                    ),
                    targets=[events.CfnRule.TargetProperty(id="trigger-bus", arn=bus_arn, role_arn=self.role.role_arn)],
                )
            )


@dataclass(frozen=True, kw_only=True)
class CustomerTriggerRuleProps:
    customer_code: str
    """The customer; the rule's name and key prefix derive from it. Required."""
    bucket_name: str
    """The metadata bucket whose events the rule matches. Required."""
    queue_arn: str
    """The customer's queue, in the rule's account (no execution role). Required."""
    shards: int = DEFAULT_TRIGGER_BUS_SHARDS
    """How many trigger buses the platform has. Default: :data:`DEFAULT_TRIGGER_BUS_SHARDS`."""


class CustomerTriggerRule(Construct):
    """The customer's rule on its trigger bus; attributes ``rule``, ``bus_name``."""

    def __init__(self, scope: Construct, construct_id: str, props: CustomerTriggerRuleProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.bus_name = names.trigger_bus_name(shard_of(code, props.shards))
        self.rule = events.CfnRule(
            self,
            "Rule",
            name=names.event_rule_name(code),
            description=f"Trigger objects of customer {code} to its queue",
            event_bus_name=self.bus_name,
            state="ENABLED",
            event_pattern=customer_rule_pattern(props.bucket_name, code),
            targets=[events.CfnRule.TargetProperty(id="customer-queue", arn=props.queue_arn)],
        )


def largest_shard(customer_codes: Sequence[str], shards: int) -> int:
    """The number of customer rules on the fullest bus."""
    counts = [0] * shards
    for code in customer_codes:
        counts[shard_of(code, shards)] += 1
    return max(counts, default=0)
