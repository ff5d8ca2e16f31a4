"""A queue fed by the metadata bucket's object events (S3 notifications or EventBridge), with its DLQ.

The shared part of :class:`~cdk_constructs.customer_queue.CustomerQueue` (one per customer) and the
change coordinator's queue (:class:`~cdk_constructs.change_coordinator.ChangeCoordinator`):

* Deterministic names (``runtime.contract.names``): the bucket in the management account targets the
  queue by ARN.
* A customer-managed KMS key with rotation: S3 and EventBridge cannot use the AWS-managed SQS key.
  Its policy lets the event source's service principal use it in AWS's documented form (no condition:
  see ``docs/infrastructure.md``, "KMS key policies of the queues"), or the EventBridge router role by
  ``aws:PrincipalArn`` through SQS only for a bus in another account.
* SSL enforced on both queues; redrive to the DLQ after ``max_receive_count`` receives; only this
  queue may use the DLQ (redrive-allow policy by ARN).
* Queue policy: ``sqs:SendMessage`` for exactly that source (``aws:SourceAccount`` + ``aws:SourceArn``,
  or the router role): the binding to the bucket or rule lives here.

The construct children (``Key``, ``DeadLetterQueue``, ``SourceQueueRef``, ``Queue``) keep the ids
``CustomerQueue`` always had, so its logical ids do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_support.stack_facts import days, minutes, seconds, stack_facts
from runtime.contract import names

RoutingMode = Literal["s3", "eventbridge"]


@dataclass(frozen=True)
class EventQueueSpec:
    """What the variant decides (names and the rule that feeds it), not chosen by its user."""

    queue_name: str
    """Physical name of the queue (``runtime.contract.names``). Required."""
    dead_letter_queue_name: str
    """Physical name of the DLQ (``runtime.contract.names``). Required."""
    key_alias: str
    """Alias of the KMS key. Required."""
    key_description: str
    """Description of the KMS key. Required."""
    event_rule_name: str
    """Name of the EventBridge rule (on the source account's default bus) that feeds the queue in
    ``eventbridge`` routing. Required."""
    event_bus_name: str = "default"
    """The bus of that rule in the queue's own account (a rule on a custom bus has the ARN
    ``rule/<bus>/<rule>``). Default: ``"default"``."""


@dataclass(frozen=True, kw_only=True)
class EventQueueProps:
    """Where the events come from and how long messages live."""

    source_account: str
    """The account of the metadata bucket (and of its default event bus). Required."""
    bucket_name: str | None = None
    """The metadata bucket whose S3 notifications may send (required with ``routing="s3"``). Default: None
    (an EventBridge-fed queue: the rule is named in the spec)."""
    routing: RoutingMode = "s3"
    """How object events reach the queue: S3 event notifications or an EventBridge rule. Default: ``"s3"``."""
    visibility_timeout_seconds: int
    """Visibility timeout (the consumer's lease; give the consumer the same value). Required."""
    max_receive_count: int
    """Receives before a message moves to the DLQ. Required."""
    retention_days: int = 14
    """How long an unprocessed message is kept. Default: 14 (the SQS maximum)."""
    dlq_retention_days: int = 14
    """How long a message is kept in the DLQ. Default: 14 (the SQS maximum)."""


class EventQueue(Construct):
    """Queue + DLQ + key fed by the bucket's events; attributes ``key``, ``queue``, ``dead_letter_queue``."""

    def __init__(self, scope: Construct, construct_id: str, props: EventQueueProps, spec: EventQueueSpec) -> None:
        super().__init__(scope, construct_id)
        stack_facts(scope, construct=self)
        self.key = kms.Key(
            self,
            "Key",
            description=spec.key_description,
            enable_key_rotation=True,
            alias=spec.key_alias,
        )
        self._queues(props, spec)
        principal, conditions = self._event_source(props, spec)
        self._admit(principal, conditions)

    def _queues(self, props: EventQueueProps, spec: EventQueueSpec) -> None:
        """The dead-letter queue (only this queue may use it) and the queue, both under ``self.key``."""
        stack = stack_facts(self)
        partition = stack.partition
        self.dead_letter_queue = self._encrypted_queue(
            "DeadLetterQueue",
            spec.dead_letter_queue_name,
            retention_period=days(props.dlq_retention_days),
            # Only this queue may use it as its DLQ (ARN by name: no circular reference).
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[
                    sqs.Queue.from_queue_arn(
                        self,
                        "SourceQueueRef",
                        f"arn:{partition}:sqs:{stack.region}:{stack.account}:{spec.queue_name}",
                    )
                ],
            ),
        )
        self.queue = self._encrypted_queue(
            "Queue",
            spec.queue_name,
            visibility_timeout=seconds(props.visibility_timeout_seconds),
            retention_period=days(props.retention_days),
            receive_message_wait_time=seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=props.max_receive_count
            ),
        )

    def _encrypted_queue(self, construct_id: str, queue_name: str, **settings: Any) -> sqs.Queue:
        """A queue under ``self.key`` (data keys reused for 5 minutes) that refuses requests without TLS."""
        return sqs.Queue(
            self,
            construct_id,
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=minutes(5),
            enforce_ssl=True,
            **settings,
        )

    def _event_source(self, props: EventQueueProps, spec: EventQueueSpec) -> tuple[iam.IPrincipal, dict[str, Any]]:
        """Who sends the trigger events, and on which conditions: S3 notifications of ``props.bucket_name``,
        an EventBridge rule of this account, or another account's EventBridge router role."""
        stack = stack_facts(self)
        partition = stack.partition
        source_account = props.source_account
        if props.routing == "s3":
            if props.bucket_name is None:
                raise ValueError("EventQueueProps.bucket_name is required with routing='s3' (the notifying bucket)")
            principal: iam.IPrincipal = iam.ServicePrincipal("s3.amazonaws.com")
            conditions = {
                "StringEquals": {"aws:SourceAccount": source_account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{props.bucket_name}"},
            }
        elif source_account == stack.account:
            principal = iam.ServicePrincipal("events.amazonaws.com")
            conditions = {
                "StringEquals": {"aws:SourceAccount": source_account},
                "ArnEquals": {
                    "aws:SourceArn": f"arn:{partition}:events:{stack.region}:{source_account}:rule/{_rule_path(spec)}"
                },
            }
        else:
            # Cross-account EventBridge targets are invoked through the bus account's execution role.
            # Account principal + aws:PrincipalArn: the policy stays valid before that role exists.
            principal = iam.AccountPrincipal(source_account)
            conditions = {
                "ArnEquals": {
                    "aws:PrincipalArn": names.role_arn(source_account, names.EVENTBRIDGE_ROUTER_ROLE_NAME, partition)
                }
            }
        return principal, conditions

    def _admit(self, principal: iam.IPrincipal, conditions: dict[str, Any]) -> None:
        """The queue policy admits the event source; the key policy lets it encrypt."""
        stack = stack_facts(self)
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowTriggerEvents",
                principals=[principal],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions=conditions,
            )
        )
        # The key policy takes AWS's documented form for a service event source (SQS developer guide,
        # "Configure KMS permissions for AWS services": the service principal, kms:GenerateDataKey and
        # kms:Decrypt, no condition). aws:SourceAccount / aws:SourceArn are not documented to reach the KMS
        # calls SQS makes for S3's destination validation and EventBridge's delivery; if they were absent
        # there, a conditioned key policy would fail the validation or drop events silently. The source stays
        # bound where it is documented: the queue policy above. An IAM role (cross-account EventBridge) keeps
        # its principal condition and may use the key only through SQS.
        key_conditions: dict[str, Any] | None = None
        if isinstance(principal, iam.AccountPrincipal):
            key_conditions = {**conditions, "StringEquals": {"kms:ViaService": f"sqs.{stack.region}.amazonaws.com"}}
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowTriggerEventSourceToUseKey",
                principals=[principal],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions=key_conditions,
            )
        )

    def grant_consume(self, grantee: iam.IGrantable) -> None:
        """Receive, delete and extend visibility on the queue (plus kms:Decrypt on its key)."""
        self.queue.grant_consume_messages(grantee)


def _rule_path(spec: EventQueueSpec) -> str:
    """The rule part of a rule ARN: the default bus's rules carry no bus name."""
    if spec.event_bus_name == "default":
        return spec.event_rule_name
    return f"{spec.event_bus_name}/{spec.event_rule_name}"


COORDINATOR_EVENT_RULE_NAME = f"{names.EVENT_RULE_PREFIX}{names.COORDINATOR_NAME}"
"""The EventBridge rule that routes ``archive/``, ``processing/`` and ``delivery/`` events to the coordinator's queue
(``ttp-route-`` like the customers' rules, so the router role's trust covers it; the customer code equal
to ``names.COORDINATOR_NAME`` is reserved by ``stacks.config``)."""
