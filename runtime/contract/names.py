"""Every deterministic physical name of the platform, in one place.

Cross-account references cannot use CloudFormation exports, so every name another account must
know (queues, task roles, each customer's sender and contact-reader roles, alarm topics, event rules,
dashboards, log groups) is derived here, from the customer code where it has one, and imported by the
CDK constructs and the runtime alike. Pure functions only: importing this module needs neither
boto3 nor aws_cdk.
"""

from __future__ import annotations

from typing import Literal

from runtime.contract.keys import validate_customer_code

CLUSTER_NAME = "change-processor-cluster"
DEFAULT_METRICS_NAMESPACE = "CustomMetrics"
DEFAULT_CONTACT_LIST_NAME = "change-notifications"
CALENDAR_TOPIC = "aws-calendar"
ENV_PREFIX = "TTP_"


Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")

PROCESSOR_ROLE_PREFIX = "ttp-processor-"
SENDER_ROLE_PREFIX = "ttp-ses-sender-"
CONTACT_READER_ROLE_PREFIX = "ttp-contact-reader-"
SWEEPER_ROLE_NAME = "ttp-sweeper"
TASK_EXECUTION_ROLE_NAME = "ttp-task-execution"
"""The ECS agent's role (image pull, log writes) shared by every customer's processor task definition: one
role for all, so the governance account holds one role per customer (IAM roles quota), not two."""
OPERATOR_NAME = "ttp-operator"
"""The operator of the ops CLI (``python -m runtime``) in the governance account: the IAM role or IAM user of
that name, with the policy ``docs/policies/operator-governance-account.json`` (docs/runbook.md)."""
EVENTBRIDGE_ROUTER_ROLE_NAME = "ttp-eventbridge-router"
EVENT_RULE_PREFIX = "ttp-route-"
OVERVIEW_DASHBOARD_NAME = "TransientTriggerMonitoring"
CUSTOMER_DASHBOARD_PREFIX = "ttp-customer-"
CUSTOMER_TAG_KEY = "customer_code"
QUEUE_NAME_PATTERN = "customer-*-changes"
LOG_GROUP_PREFIX = "/ecs/change-processor/"
SWEEPER_LOG_GROUP_NAME = f"{LOG_GROUP_PREFIX}sweeper"

COORDINATOR_NAME = "ttp-change-coordinator"
"""The change coordinator's queue, ECS service, task family and task role (one per platform)."""
COORDINATOR_QUEUE_NAME = COORDINATOR_NAME
COORDINATOR_DLQ_NAME = f"{COORDINATOR_QUEUE_NAME}-dlq"
COORDINATOR_SERVICE_NAME = COORDINATOR_NAME
COORDINATOR_ROLE_NAME = COORDINATOR_NAME
COORDINATOR_LOG_GROUP_NAME = f"{LOG_GROUP_PREFIX}coordinator"
COORDINATOR_METRICS_DIMENSION_VALUE = "coordinator"
"""``CustomerCode`` dimension value of the coordinator's own metrics (it works for every customer)."""

DELIVERY_EVENTS_NAME = "ttp-delivery-events"
"""SES delivery events of every customer account: the governance account's event bus, the queue its rule
fills (read by the change coordinator's delivery-event consumer) and that rule."""
DELIVERY_EVENTS_BUS_NAME = DELIVERY_EVENTS_NAME
DELIVERY_EVENTS_QUEUE_NAME = DELIVERY_EVENTS_NAME
DELIVERY_EVENTS_DLQ_NAME = f"{DELIVERY_EVENTS_QUEUE_NAME}-dlq"
DELIVERY_EVENTS_RULE_NAME = DELIVERY_EVENTS_NAME
PLATFORM_QUEUE_LABELS = {"coordinator": COORDINATOR_QUEUE_NAME, "delivery-events": DELIVERY_EVENTS_QUEUE_NAME}
"""The platform's own queues as an operator names them (``health``, ``dlq --customer coordinator``): no
customer may have one of these codes (``stacks/config.py`` refuses them)."""
DELIVERY_FORWARD_RULE_NAME = "ttp-forward-ses-events"
"""The rule on a customer account's default bus that forwards its SES events to the governance bus."""
EMAIL_TAG_CHANGE_ID = "ttp-change-id"
EMAIL_TAG_CUSTOMER_CODE = "ttp-customer-code"
EMAIL_TAG_REVISION = "ttp-revision"
"""SES message tags on every email (``EmailTags``): SES copies them into each event's ``mail.tags``, so a
delivery event names its change, customer and revision without a lookup."""


def configuration_set_name(customer_code: str) -> str:
    """The SES configuration set the platform creates in a customer account (events to EventBridge)."""
    return f"ttp-{customer_code}"


def delivery_events_bus_arn(region: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/{DELIVERY_EVENTS_BUS_NAME}"


def queue_name(customer_code: str) -> str:
    return f"customer-{validate_customer_code(customer_code)}-changes"


def dead_letter_queue_name(customer_code: str) -> str:
    return f"{queue_name(customer_code)}-dlq"


def service_name(customer_code: str) -> str:
    return f"customer-{validate_customer_code(customer_code)}-processor"


def processor_role_name(customer_code: str) -> str:
    """The Fargate task role; customer accounts trust it by ARN (``aws:PrincipalArn``)."""
    return f"{PROCESSOR_ROLE_PREFIX}{validate_customer_code(customer_code)}"


def sender_role_name(customer_code: str) -> str:
    """Role in the customer's account that the processor assumes to send through SES."""
    return f"{SENDER_ROLE_PREFIX}{validate_customer_code(customer_code)}"


def contact_reader_role_name(customer_code: str) -> str:
    """Read-only role in the customer's account for listing ``aws-calendar`` subscribers."""
    return f"{CONTACT_READER_ROLE_PREFIX}{validate_customer_code(customer_code)}"


def log_group_name(customer_code: str) -> str:
    return f"{LOG_GROUP_PREFIX}{validate_customer_code(customer_code)}"


def role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def operator_arns(account: str, partition: str = "aws") -> list[str]:
    """The ARNs the bucket policy admits as the operator: the role or the user :data:`OPERATOR_NAME`."""
    return [role_arn(account, OPERATOR_NAME, partition), f"arn:{partition}:iam::{account}:user/{OPERATOR_NAME}"]


def queue_url(region: str, account: str, customer_code: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{account}/{queue_name(customer_code)}"


def processor_role_arn_pattern(governance_account: str, partition: str = "aws") -> str:
    """Matches every customer's processor task role (``ttp-processor-*``) in the governance account."""
    return role_arn(governance_account, f"{PROCESSOR_ROLE_PREFIX}*", partition)


def alarm_topic_name(severity: Severity) -> str:
    return f"ttp-alarms-{severity}"


def alarm_topic_arn(region: str, account: str, severity: Severity, partition: str = "aws") -> str:
    return f"arn:{partition}:sns:{region}:{account}:{alarm_topic_name(severity)}"


def event_rule_name(customer_code: str) -> str:
    return f"{EVENT_RULE_PREFIX}{validate_customer_code(customer_code)}"


def event_rule_arn(region: str, account: str, customer_code: str, partition: str = "aws") -> str:
    """A rule on the default event bus (its ARN carries no bus name)."""
    return f"arn:{partition}:events:{region}:{account}:rule/{event_rule_name(customer_code)}"


def queue_arn(region: str, account: str, customer_code: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sqs:{region}:{account}:{queue_name(customer_code)}"


def queue_key_alias(customer_code: str) -> str:
    return f"alias/ttp/{queue_name(customer_code)}"


def customer_dashboard_name(customer_code: str) -> str:
    return f"{CUSTOMER_DASHBOARD_PREFIX}{validate_customer_code(customer_code)}"


def default_bucket_name(management_account: str, region: str) -> str:
    return f"ttp-metadata-{management_account}-{region}"


def coordinator_queue_url(region: str, account: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{account}/{COORDINATOR_QUEUE_NAME}"


def coordinator_queue_arn(region: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sqs:{region}:{account}:{COORDINATOR_QUEUE_NAME}"


CUSTOMER_REGISTRY_PATH = "/ttp/customers"
"""Where the platform publishes its customer list: one SSM String parameter per deployed customer in the
governance account (created with the customer's queue), read by ``submit`` to refuse a code no queue reads."""


def customer_registry_parameter(customer_code: str) -> str:
    return f"{CUSTOMER_REGISTRY_PATH}/{validate_customer_code(customer_code)}"


def customer_registration(customer_code: str, account: str, region: str) -> dict[str, str]:
    """The registry parameter's value (as JSON): what a reader needs to find the customer's queue."""
    return {
        "code": validate_customer_code(customer_code),
        "queue_name": queue_name(customer_code),
        "account": account,
        "region": region,
    }


LIVENESS_FILE = "/tmp/ttp-worker-liveness.json"
"""The receive loop's liveness record (``runtime.worker.liveness``), read by the container health check
``python -m runtime healthcheck``; under ``/tmp``, the task's one writable volume."""


# Sharded trigger routing (routing "eventbridge-sharded", cdk_constructs/sharded_routing.py): the bucket's
# default bus forwards every trigger event to each governance-account trigger bus, and each customer's
# rule ``ttp-route-<code>`` sits on one of them.
TRIGGER_BUS_PREFIX = "ttp-triggers-"
TRIGGER_FORWARD_RULE_PREFIX = "ttp-forward-triggers-"
TRIGGER_FORWARDER_ROLE_NAME = "ttp-trigger-forwarder"


def trigger_bus_name(shard: int) -> str:
    """The governance account's trigger bus number ``shard`` (0-based): ``ttp-triggers-00`` …"""
    return f"{TRIGGER_BUS_PREFIX}{shard:02d}"


def trigger_forward_rule_name(shard: int) -> str:
    """The rule on the bucket account's default bus that forwards trigger events to that bus."""
    return f"{TRIGGER_FORWARD_RULE_PREFIX}{shard:02d}"


def trigger_bus_arn(region: str, account: str, shard: int, partition: str = "aws") -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/{trigger_bus_name(shard)}"
