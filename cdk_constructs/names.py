"""Deterministic names the infrastructure needs beyond ``runtime.naming``.

``runtime.naming`` holds every name that the runtime and the stacks share (queues, services, the
processor and customer roles, log groups). The names here are only referenced across stacks and
accounts by the infrastructure itself (the sweeper role in the bucket policy, the EventBridge router
role in the queue policies, the alarm topics in every customer stack), so they live next to the
constructs. Pure functions: no aws_cdk import, usable by the ops CLI too.
"""

from __future__ import annotations

from typing import Literal

from runtime import dashboard, keys, naming

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")

PROCESSOR_ROLE_PREFIX = "ttp-processor-"
CONTACT_READER_ROLE_PREFIX = "ttp-contact-reader-"
SWEEPER_ROLE_NAME = "ttp-sweeper"
EVENTBRIDGE_ROUTER_ROLE_NAME = "ttp-eventbridge-router"
EVENT_RULE_PREFIX = "ttp-route-"
OVERVIEW_DASHBOARD_NAME = dashboard.OVERVIEW_DASHBOARD_NAME
CUSTOMER_TAG_KEY = "customer_code"
QUEUE_NAME_PATTERN = "customer-*-changes"
SWEEPER_LOG_GROUP_NAME = "/ecs/change-processor/sweeper"


def processor_role_arn_pattern(governance_account: str, partition: str = "aws") -> str:
    """Matches every customer's processor task role (``ttp-processor-*``) in the governance account."""
    return naming.role_arn(governance_account, f"{PROCESSOR_ROLE_PREFIX}*", partition)


def alarm_topic_name(severity: Severity) -> str:
    return f"ttp-alarms-{severity}"


def alarm_topic_arn(region: str, account: str, severity: Severity, partition: str = "aws") -> str:
    return f"arn:{partition}:sns:{region}:{account}:{alarm_topic_name(severity)}"


def event_rule_name(customer_code: str) -> str:
    return f"{EVENT_RULE_PREFIX}{keys.validate_customer_code(customer_code)}"


def event_rule_arn(region: str, account: str, customer_code: str, partition: str = "aws") -> str:
    """A rule on the default event bus (its ARN carries no bus name)."""
    return f"arn:{partition}:events:{region}:{account}:rule/{event_rule_name(customer_code)}"


def queue_arn(region: str, account: str, customer_code: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sqs:{region}:{account}:{naming.queue_name(customer_code)}"


def queue_key_alias(customer_code: str) -> str:
    return f"alias/ttp/{naming.queue_name(keys.validate_customer_code(customer_code))}"


def customer_dashboard_name(customer_code: str) -> str:
    return dashboard.customer_dashboard_name(customer_code)


def default_bucket_name(management_account: str, region: str) -> str:
    return f"ttp-metadata-{management_account}-{region}"
