"""A customer account's SES delivery events, forwarded to the governance account (issue 13).

* Configuration set ``ttp-{code}`` (``runtime.contract.names.configuration_set_name``) with SES's
  account-level suppression list applied for BOUNCE and COMPLAINT: the processor sends every email with
  it (``TTP_CONFIGURATION_SET``). If the customer already names its own ``configuration_set``, the worker
  keeps sending with that one and the platform creates **no** set: it attaches only its event destination
  to the customer's set (which stays the customer's, suppression settings included). Creating ours
  instead would make the customer's set, and whatever it does, stop applying to these emails.
* Event destination ``ttp-delivery-events`` on that set: SEND, DELIVERY, BOUNCE, COMPLAINT, REJECT,
  DELIVERY_DELAY, SUBSCRIPTION, RENDERING_FAILURE to the account's **default** event bus (the only bus
  SES publishes to).
* Rule ``ttp-forward-ses-events`` (``DELIVERY_FORWARD_RULE_NAME``) on the default bus: ``source``
  ``aws.ses`` and, through SES's automatic tag ``ses:configuration-set``, only the platform's
  configuration sets; target the governance account's bus ``ttp-delivery-events`` with an execution
  role (EventBridge needs one to put events on a bus in another account), which may only
  ``events:PutEvents`` on that bus and is assumable only by this rule. The rule name is fixed, so there is
  one per account: when several customers share an account, the stack of the first of them creates it
  (``forward_rule``) and matches every platform configuration set of that account.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ses as ses
from constructs import Construct

from cdk_support.lazy import lazy_any
from cdk_support.stack_facts import stack_facts
from runtime.contract import keys, names

SES_EVENT_SOURCE = "aws.ses"
"""The ``source`` of the events SES publishes to EventBridge."""
CONFIGURATION_SET_TAG = "ses:configuration-set"
"""SES's automatic message tag naming the configuration set (in every event's ``mail.tags``)."""
PUBLISHED_EVENTS = (
    ses.EmailSendingEvent.SEND,
    ses.EmailSendingEvent.DELIVERY,
    ses.EmailSendingEvent.BOUNCE,
    ses.EmailSendingEvent.COMPLAINT,
    ses.EmailSendingEvent.REJECT,
    ses.EmailSendingEvent.DELIVERY_DELAY,
    ses.EmailSendingEvent.SUBSCRIPTION,
    ses.EmailSendingEvent.RENDERING_FAILURE,
)
"""The SES event types published (no OPEN / CLICK: the platform does not track them)."""


@dataclass(frozen=True, kw_only=True)
class SesDeliveryEventsProps:
    """Props of :class:`SesDeliveryEvents`."""

    customer_code: str
    """The customer (``runtime.contract.keys`` rules); the configuration set's name derives from it. Required."""
    governance_account: str
    """The account of the delivery-events bus (``runtime.contract.names.DELIVERY_EVENTS_BUS_NAME``). Required."""
    governance_region: str | None = None
    """Region of that bus. Default: None (the stack's region)."""
    configuration_set: str | None = None
    """The customer's own configuration set the worker sends with; the destination is attached to it and no
    set is created. Default: None (create ``configuration_set_name(customer_code)``)."""
    forward_rule: bool = True
    """Create the account's forwarding rule (one per account: its name is fixed). Default: True."""
    other_configuration_sets: Collection[str] = ()
    """Configuration sets of the account's other platform customers, also matched by the forwarding rule; read
    at synthesis, so a live collection may still grow (customers of the account onboarded later).
    Default: none."""


NAMED_SETS_MAX_CHARACTERS = 1024
"""Past this many characters of set names (half of EventBridge's 2,048-character pattern quota) the rule
matches the platform's own sets by their prefix instead of one name each."""


def configuration_set_matchers(configuration_sets: Collection[str]) -> list[object]:
    """The forwarding rule's values for ``ses:configuration-set``: every name, or, for an account with many
    platform customers, the prefix of the platform's sets (``ttp-``) and the customers' own sets by name.

    A customer's own set whose name starts with ``ttp-`` is then forwarded too; the coordinator accepts an
    event only with the platform's email tags from that customer's account."""
    names_sorted = sorted(set(configuration_sets))
    if len(json.dumps(names_sorted)) <= NAMED_SETS_MAX_CHARACTERS:
        return list(names_sorted)
    prefix = names.configuration_set_name("")
    return [{"prefix": prefix}, *(name for name in names_sorted if not name.startswith(prefix))]


class SesDeliveryEvents(Construct):
    """Attributes ``configuration_set_name``, ``configuration_set`` (None for the customer's own),
    ``event_destination``, ``forward_rule`` and ``forward_role`` (None without ``forward_rule``)."""

    def __init__(self, scope: Construct, construct_id: str, props: SesDeliveryEventsProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        stack = stack_facts(scope, construct=self)
        self.configuration_set: ses.ConfigurationSet | None = None
        if props.configuration_set is None:
            self.configuration_set = ses.ConfigurationSet(
                self,
                "ConfigurationSet",
                configuration_set_name=names.configuration_set_name(code),
                suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
            )
            configuration_set: ses.IConfigurationSet = self.configuration_set
            self.configuration_set_name = names.configuration_set_name(code)
        else:
            configuration_set = ses.ConfigurationSet.from_configuration_set_name(
                self, "CustomerConfigurationSet", props.configuration_set
            )
            self.configuration_set_name = props.configuration_set
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.event_destination = ses.ConfigurationSetEventDestination(
            self,
            "EventDestination",
            configuration_set=configuration_set,
            configuration_set_event_destination_name=names.DELIVERY_EVENTS_NAME,
            destination=ses.EventDestination.event_bus(default_bus),
            events=list(PUBLISHED_EVENTS),
        )

        self.forward_rule: events.CfnRule | None = None
        self.forward_role: iam.Role | None = None
        if not props.forward_rule:
            return
        region = props.governance_region or stack.region
        target_bus = names.delivery_events_bus_arn(region, props.governance_account, stack.partition)
        rule_arn = (
            f"arn:{stack.partition}:events:{stack.region}:{stack.account}:rule/{names.DELIVERY_FORWARD_RULE_NAME}"
        )
        self.forward_role = iam.Role(
            self,
            "ForwardRole",
            description="EventBridge execution role: forwards this account's SES events to the platform's bus",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": rule_arn},
                }
            ),
        )
        self.forward_role.add_to_policy(
            iam.PolicyStatement(sid="PutOnDeliveryEventsBus", actions=["events:PutEvents"], resources=[target_bus])
        )
        own = self.configuration_set_name
        configuration_sets = lazy_any(lambda: configuration_set_matchers({own, *props.other_configuration_sets}))
        self.forward_rule = events.CfnRule(
            self,
            "ForwardRule",
            name=names.DELIVERY_FORWARD_RULE_NAME,
            description="SES events of the platform's configuration sets to the platform's delivery-events bus",
            event_bus_name="default",
            state="ENABLED",
            event_pattern={
                "source": [SES_EVENT_SOURCE],
                "detail": {"mail": {"tags": {CONFIGURATION_SET_TAG: configuration_sets}}},
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="delivery-events-bus", arn=target_bus, role_arn=self.forward_role.role_arn
                )
            ],
        )
