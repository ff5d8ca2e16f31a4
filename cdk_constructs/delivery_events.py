"""The governance account's end of SES delivery events (issue 13): bus, rule, queue.

* Event bus ``ttp-delivery-events`` (``runtime.contract.names.DELIVERY_EVENTS_BUS_NAME``). Its resource
  policy admits ``events:PutEvents`` from exactly the platform's customer accounts (one account principal
  each) and only for events whose ``source`` is ``aws.ses``: the forwarding rule on each customer
  account's default bus (:class:`~cdk_constructs.ses_delivery_events.SesDeliveryEvents`) is the only
  sender. Nothing else may put events on it. The policy may hold 10,240 characters (EventBridge's quota),
  about 300 accounts; with ``organization_id`` it admits the principals of that AWS organization instead
  (``aws:PrincipalOrgID``), one condition at any number of accounts.
* Rule ``ttp-delivery-events`` on that bus (``source`` ``aws.ses``; the policy decides the accounts, so the
  pattern names none and does not grow with them: it held about 130 in 2,048 characters) -> queue
  ``ttp-delivery-events`` with DLQ ``ttp-delivery-events-dlq``: an
  :class:`~cdk_constructs.event_queue.EventQueue` (customer-managed KMS key with rotation, SSL enforced,
  redrive, queue policy for exactly this rule by ``aws:SourceArn``).

The message body on the queue is the EventBridge event as EventBridge delivers it to an SQS target;
the change coordinator consumes it (``TTP_DELIVERY_QUEUE_URL``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import partial

import jsii
from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct, IValidation

from cdk_constructs.event_queue import EventQueue, EventQueueProps, EventQueueSpec
from cdk_support import defaults
from cdk_support.forwarding import forwarded
from cdk_support.lazy import lazy_any
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

    customer_accounts: Collection[str]
    """The platform's customer accounts: the only accounts the bus admits (at least one by synthesis; a live
    view such as ``LiveMapping.values()`` is read again then). Required."""
    visibility_timeout_seconds: int
    """Visibility timeout of the queue (the coordinator's lease). Required."""
    max_receive_count: int = defaults.MAX_RECEIVE_COUNT
    """Receives before a message moves to the DLQ. Default: ``cdk_support.defaults.MAX_RECEIVE_COUNT``."""
    organization_id: str | None = None
    """AWS Organizations id (``o-...``) of the customer accounts: the bus admits every principal of that
    organization (``aws:PrincipalOrgID``) instead of one principal per account, so the policy does not grow
    with the accounts. The coordinator still accepts an event only from its customer's own account
    (``TTP_CUSTOMER_ACCOUNTS``). Default: None (one account principal each)."""


class DeliveryEvents(Construct):
    """Bus + bus policy + rule + queue; attributes ``bus``, ``rule``, ``events`` (the EventQueue), ``queue``."""

    def __init__(self, scope: Construct, construct_id: str, props: DeliveryEventsProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        # The accounts are read again at synthesis: a live collection (the platform's registry) may still grow.
        accounts = self.accounts()
        if accounts and (errors := _account_errors(accounts)):
            raise ValueError(errors[0])
        self.node.add_validation(_AccountsValidation(self))
        stack = Stack.of(self)
        self.bus = events.EventBus(self, "Bus", event_bus_name=names.DELIVERY_EVENTS_BUS_NAME)
        self.bus.add_to_resource_policy(self._bus_statement())
        # The principals are the customer accounts registered by synthesis (rendered then).
        for policy in self.bus.node.children:
            for cfn in (policy, *policy.node.children):
                if isinstance(cfn, events.CfnEventBusPolicy):
                    cfn.add_property_override("Statement", lazy_any(partial(self._rendered, cfn.statement_id)))
        self.events = EventQueue(
            self,
            "Queue",
            forwarded(EventQueueProps, props, source_account=stack.account, routing="eventbridge"),
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
            # No account list: only the accounts the bus policy admits can put events here (and an "aws." source
            # cannot be put by anyone else), so naming them again here only grew the pattern per account.
            event_pattern={"source": [SES_EVENT_SOURCE]},
            targets=[events.CfnRule.TargetProperty(id="delivery-events-queue", arn=self.queue.queue_arn)],
        )

    def accounts(self) -> list[str]:
        """The distinct customer accounts, sorted, as the props hold them now."""
        return sorted(set(self.props.customer_accounts))

    def _bus_statement(self) -> iam.PolicyStatement:
        if self.props.organization_id is not None:
            return iam.PolicyStatement(
                sid="CustomerAccountsForwardSesEvents",
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                # EventBridge user guide, "Granting permissions to an organization".
                conditions={
                    "StringEquals": {"aws:PrincipalOrgID": self.props.organization_id},
                    "ForAllValues:StringEquals": {"events:source": [SES_EVENT_SOURCE]},
                },
            )
        return iam.PolicyStatement(
            sid="CustomerAccountsForwardSesEvents",
            # With no account yet the statement still renders (the validation reports the empty list).
            principals=[iam.AccountPrincipal(account) for account in self.accounts() or [Stack.of(self).account]],
            actions=["events:PutEvents"],
            resources=[self.bus.event_bus_arn],
            # EventBridge user guide, "Example policy: Send events to a custom bus in a different account".
            conditions={"ForAllValues:StringEquals": {"events:source": [SES_EVENT_SOURCE]}},
        )

    def _rendered(self, sid: str | None) -> object:
        statement = dict(self._bus_statement().to_statement_json())
        return {**statement, "Sid": sid} if sid else statement


def _account_errors(accounts: list[str]) -> list[str]:
    """What is wrong with the accounts the bus admits: none at all, or one that is not an account id."""
    if not accounts:
        return [
            "DeliveryEventsProps.customer_accounts is empty: the bus would admit no account "
            "(add a customer, or turn delivery events off)"
        ]
    return [
        f"DeliveryEventsProps.customer_accounts: {account!r} is not a 12-digit account id"
        for account in accounts
        if not (len(account) == 12 and account.isdigit())
    ]


@jsii.implements(IValidation)
class _AccountsValidation:
    """At synthesis: the bus admits at least one account, and only account ids."""

    def __init__(self, construct: DeliveryEvents) -> None:
        self._construct = construct

    def validate(self) -> list[str]:
        return _account_errors(self._construct.accounts())
