"""One customer's queue and dead-letter queue (governance account).

* Names from ``runtime.contract.names`` (the bucket in the management account targets them by ARN).
* A customer-managed KMS key with rotation: S3 and EventBridge cannot use the AWS-managed SQS key.
  Its policy lets only the event source use it (``aws:SourceAccount`` + ``aws:SourceArn``, or the
  EventBridge router role by ``aws:PrincipalArn`` for a bus in another account).
* SSL enforced on both queues; redrive to the DLQ after ``max_receive_count`` receives.
* Queue policy: ``sqs:SendMessage`` for exactly that source, with the same conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_support import defaults
from cdk_support.environment import setting_default
from runtime.contract import keys, names
from runtime.contract.settings import WorkerSettings


@dataclass(frozen=True)
class CustomerQueueProps:
    customer_code: str
    """The customer (``runtime.contract.keys`` rules); queue, DLQ and key alias names derive from it. Required."""
    source_account: str
    """The account of the metadata bucket (and of its default event bus). Required."""
    bucket_name: str
    """The metadata bucket whose events (S3 notifications or EventBridge rule) may send. Required."""
    routing: Literal["s3", "eventbridge"] = "s3"
    """How trigger events reach the queue: S3 event notifications or an EventBridge rule. Default: ``"s3"``."""
    visibility_timeout_seconds: int = int(setting_default(WorkerSettings, "visibility_timeout_seconds"))
    """Visibility timeout (the worker's lease; give the processor the same value).
    Default: the default of ``WorkerSettings.visibility_timeout_seconds``."""
    max_receive_count: int = defaults.MAX_RECEIVE_COUNT
    """Receives before a message moves to the DLQ. Default: ``cdk_support.defaults.MAX_RECEIVE_COUNT``."""
    retention_days: int = 14
    """How long an unprocessed message is kept. Default: 14 (the SQS maximum)."""
    dlq_retention_days: int = 14
    """How long a message is kept in the DLQ. Default: 14 (the SQS maximum)."""


class CustomerQueue(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerQueueProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.props = props
        stack = Stack.of(self)
        partition = stack.partition

        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the trigger queue and DLQ of customer {code}",
            enable_key_rotation=True,
            alias=names.queue_key_alias(code),
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=names.dead_letter_queue_name(code),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=Duration.minutes(5),
            enforce_ssl=True,
            retention_period=Duration.days(props.dlq_retention_days),
            # Only this customer's queue may use it as its DLQ (ARN by name: no circular reference).
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[
                    sqs.Queue.from_queue_arn(
                        self, "SourceQueueRef", names.queue_arn(stack.region, stack.account, code, partition)
                    )
                ],
            ),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=names.queue_name(code),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=Duration.minutes(5),
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(props.visibility_timeout_seconds),
            retention_period=Duration.days(props.retention_days),
            receive_message_wait_time=Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=props.max_receive_count
            ),
        )

        source_account = props.source_account
        same_account = not _is_other_account(stack.account, source_account)
        if props.routing == "s3":
            principal: iam.IPrincipal = iam.ServicePrincipal("s3.amazonaws.com")
            conditions = {
                "StringEquals": {"aws:SourceAccount": source_account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{props.bucket_name}"},
            }
        elif same_account:
            principal = iam.ServicePrincipal("events.amazonaws.com")
            conditions = {
                "StringEquals": {"aws:SourceAccount": source_account},
                "ArnEquals": {"aws:SourceArn": names.event_rule_arn(stack.region, source_account, code, partition)},
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
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowTriggerEvents",
                principals=[principal],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions=conditions,
            )
        )
        key_conditions = dict(conditions)
        if isinstance(principal, iam.AccountPrincipal):
            key_conditions["StringEquals"] = {"kms:ViaService": f"sqs.{stack.region}.amazonaws.com"}
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


def _is_other_account(own: str, other: str) -> bool:
    return own != other
