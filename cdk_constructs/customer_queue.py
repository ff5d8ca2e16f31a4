"""One customer's queue and dead-letter queue (governance account): a thin variant of
:class:`~cdk_constructs.event_queue.EventQueue` (same construct ids, so the same logical ids as before).

* Names from ``runtime.contract.names`` (the bucket in the management account targets them by ARN).
* A customer-managed KMS key with rotation: S3 and EventBridge cannot use the AWS-managed SQS key.
  Its policy lets the event source's service principal use it (AWS's documented form, no condition),
  or the EventBridge router role by ``aws:PrincipalArn`` through SQS for a bus in another account.
* SSL enforced on both queues; redrive to the DLQ after ``max_receive_count`` receives.
* Queue policy: ``sqs:SendMessage`` for exactly that source (``aws:SourceAccount`` + ``aws:SourceArn``).
* The customer's entry in the platform's customer list: the SSM String parameter
  ``/ttp/customers/{code}`` (``names.customer_registry_parameter``; value ``names.customer_registration``)
  in the queue's account and region, which ``submit`` reads to refuse a code no queue reads. It lives
  and dies with the queue, so the list is exactly the customers whose triggers are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_constructs.event_queue import EventQueue, EventQueueProps, EventQueueSpec
from cdk_support import defaults
from cdk_support.environment import setting_default
from cdk_support.forwarding import forwarded
from cdk_support.stack_facts import stack_facts
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
    event_bus_name: str = "default"
    """The bus of the rule that feeds the queue in ``eventbridge`` routing, in ``source_account``
    (``ttp-triggers-NN`` with sharded routing, where ``source_account`` is the queue's own). Default:
    ``"default"`` (the bucket account's default bus)."""


class CustomerQueue(EventQueue):
    """The customer's trigger queue: an :class:`~cdk_constructs.event_queue.EventQueue` named after the customer."""

    def __init__(self, scope: Construct, construct_id: str, props: CustomerQueueProps) -> None:
        code = keys.validate_customer_code(props.customer_code)
        super().__init__(
            scope,
            construct_id,
            forwarded(EventQueueProps, props),
            EventQueueSpec(
                queue_name=names.queue_name(code),
                dead_letter_queue_name=names.dead_letter_queue_name(code),
                key_alias=names.queue_key_alias(code),
                key_description=f"Encrypts the trigger queue and DLQ of customer {code}",
                event_rule_name=names.event_rule_name(code),
                event_bus_name=props.event_bus_name,
            ),
        )
        self.props = props
        stack = stack_facts(self).stack
        self.registration = ssm.StringParameter(
            self,
            "Registration",
            parameter_name=names.customer_registry_parameter(code),
            string_value=stack.to_json_string(names.customer_registration(code, stack.account, stack.region)),
            description=f"Customer {code} is deployed: its triggers are read by {names.queue_name(code)}",
        )
