"""Deterministic physical names shared by the stacks and the runtime.

Cross-account references cannot use CloudFormation exports, so every name another account must
know (queues, the processor's task role, each customer's sender and contact-reader roles) is derived
from the customer code here, in one place, and imported by both the CDK constructs and the runtime.
Pure functions only: importing this module needs neither boto3 nor aws_cdk.
"""

from __future__ import annotations

from runtime.keys import validate_customer_code

CLUSTER_NAME = "change-processor-cluster"
DEFAULT_METRICS_NAMESPACE = "CustomMetrics"
DEFAULT_CONTACT_LIST_NAME = "change-notifications"
CALENDAR_TOPIC = "aws-calendar"
ENV_PREFIX = "TTP_"


def queue_name(customer_code: str) -> str:
    return f"customer-{validate_customer_code(customer_code)}-changes"


def dead_letter_queue_name(customer_code: str) -> str:
    return f"{queue_name(customer_code)}-dlq"


def service_name(customer_code: str) -> str:
    return f"customer-{validate_customer_code(customer_code)}-processor"


def processor_role_name(customer_code: str) -> str:
    """The Fargate task role; customer accounts trust it by ARN (``aws:PrincipalArn``)."""
    return f"ttp-processor-{validate_customer_code(customer_code)}"


def sender_role_name(customer_code: str) -> str:
    """Role in the customer's account that the processor assumes to send through SES."""
    return f"ttp-ses-sender-{validate_customer_code(customer_code)}"


def contact_reader_role_name(customer_code: str) -> str:
    """Read-only role in the customer's account for listing ``aws-calendar`` subscribers."""
    return f"ttp-contact-reader-{validate_customer_code(customer_code)}"


def log_group_name(customer_code: str) -> str:
    return f"/ecs/change-processor/{validate_customer_code(customer_code)}"


def role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def queue_url(region: str, account: str, customer_code: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{account}/{queue_name(customer_code)}"
