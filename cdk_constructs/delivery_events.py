"""The governance account's end of SES delivery events (issue 13): bus, rule, queue.

* Event bus ``ttp-delivery-events`` (``runtime.contract.names.DELIVERY_EVENTS_BUS_NAME``). Its resource
  policy admits ``events:PutEvents`` from exactly the platform's customer accounts (one account principal
  each) and only for events whose ``source`` is ``aws.ses``: the forwarding rule on each customer
  account's default bus (:class:`~cdk_constructs.ses_delivery_events.SesDeliveryEvents`) is the only
  sender. Nothing else may put events on it; the policy is at most 10 KB (EventBridge's limit), about
  200 distinct accounts.
* Rule ``ttp-delivery-events`` on that bus (``source`` ``aws.ses`` from those accounts) -> queue
  ``ttp-delivery-events`` with DLQ ``ttp-delivery-events-dlq``: an
  :class:`~cdk_constructs.event_queue.EventQueue` (customer-managed KMS key with rotation, SSL enforced,
  redrive, queue policy for exactly this rule by ``aws:SourceArn``).

The message body on the queue is the EventBridge event as EventBridge delivers it to an SQS target;
the change coordinator consumes it (``TTP_DELIVERY_QUEUE_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_constructs.event_queue import EventQueue, EventQueueProps, EventQueueSpec
from cdk_support import defaults
from runtime.contract import names

DELIVERY_EVENTS_KEY_ALIAS = f"alias/ttp/{names.DELIVERY_EVENTS_QUEUE_NAME}"
"""Alias of the delivery-events queue's KMS key (like the other queues' ``alias/ttp/<queue name>``)."""
SES_EVENT_SOURCE = "aws.ses"
"""The ``source`` of the events SES publishes to EventBridge."""


def delivery_events_queue_url(region: str, account: str) -> str:
    """The queue's URL, known before the queue exists (the coordinator's environment is built first)."""
    return f"https://sqs.{region}.amazonaws.com/{account}/{names.DELIVERY_EVENTS_QUEUE_NAME}"


@dataclass(frozen=True, kw_only=True)
class DeliveryEventsProps:
    """Props of :class:`DeliveryEvents`."""

    customer_accounts: tuple[str, ...]
    """The platform's customer accounts: the only accounts the bus admits (at least one). Required."""
    visibility_timeout_seconds: int
    """Visibility timeout of the queue (the coordinator's lease). Required."""
    max_receive_count: int = defaults.MAX_RECEIVE_COUNT
    """Receives before a message moves to the DLQ. Default: ``cdk_support.defaults.MAX_RECEIVE_COUNT``."""


class DeliveryEvents(Construct):
    """Bus + bus policy + rule + queue; attributes ``bus``, ``rule``, ``events`` (the EventQueue), ``queue``."""

    def __init__(self, scope: Construct, construct_id: str, props: DeliveryEventsProps) -> None:
        super().__init__(scope, construct_id)
        accounts = sorted(set(props.customer_accounts))
        if not accounts:
            raise ValueError("DeliveryEventsProps.customer_accounts is empty: the bus would admit no account")
        for account in accounts:
            if not (len(account) == 12 and account.isdigit()):
                raise ValueError(f"DeliveryEventsProps.customer_accounts: {account!r} is not a 12-digit account id")
        stack = Stack.of(self)
        self.bus = events.EventBus(self, "Bus", event_bus_name=names.DELIVERY_EVENTS_BUS_NAME)
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CustomerAccountsForwardSesEvents",
                principals=[iam.AccountPrincipal(account) for account in accounts],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                # EventBridge user guide, "Example policy: Send events to a custom bus in a different account".
                conditions={"ForAllValues:StringEquals": {"events:source": [SES_EVENT_SOURCE]}},
            )
        )
        self.events = EventQueue(
            self,
            "Queue",
            EventQueueProps(
                source_account=stack.account,
                routing="eventbridge",
                visibility_timeout_seconds=props.visibility_timeout_seconds,
                max_receive_count=props.max_receive_count,
            ),
            EventQueueSpec(
                queue_name=names.DELIVERY_EVENTS_QUEUE_NAME,
                dead_letter_queue_name=names.DELIVERY_EVENTS_DLQ_NAME,
                key_alias=DELIVERY_EVENTS_KEY_ALIAS,
                key_description="Encrypts the SES delivery-events queue and its DLQ",
                event_rule_name=names.DELIVERY_EVENTS_RULE_NAME,
                event_bus_name=names.DELIVERY_EVENTS_BUS_NAME,
            ),
        )
        self.queue = self.events.queue
        self.dead_letter_queue = self.events.dead_letter_queue
        self.rule = events.CfnRule(
            self,
            "Rule",
            name=names.DELIVERY_EVENTS_RULE_NAME,
            description="SES delivery events of the customer accounts to the delivery-events queue",
            event_bus_name=self.bus.event_bus_name,
            state="ENABLED",
            event_pattern={"source": [SES_EVENT_SOURCE], "account": accounts},
            targets=[events.CfnRule.TargetProperty(id="delivery-events-queue", arn=self.queue.queue_arn)],
        )
