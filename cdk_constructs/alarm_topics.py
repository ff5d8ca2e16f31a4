"""One SNS topic per alarm severity (critical / warning / info), KMS-encrypted, SSL enforced.

Topic names are deterministic (``ttp-alarms-{severity}``) so customer stacks reference them by ARN.
The key is customer-managed: CloudWatch alarms cannot publish to a topic encrypted with the
AWS-managed SNS key; its policy lets ``cloudwatch.amazonaws.com`` use it for this account only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from runtime.contract import names
from runtime.contract.names import SEVERITIES, Severity


@dataclass(frozen=True)
class AlarmTopicsProps:
    alarm_emails: Mapping[Severity, Sequence[str]] = field(default_factory=dict)
    """E-mail addresses subscribed to each severity's topic. Default: none."""


class AlarmTopics(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: AlarmTopicsProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or AlarmTopicsProps()
        account = Stack.of(self).account
        self.key = kms.Key(self, "Key", description="Encrypts the TTP alarm topics", enable_key_rotation=True)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.topics: dict[Severity, sns.Topic] = {}
        for severity in SEVERITIES:
            topic = sns.Topic(
                self,
                severity.capitalize(),
                topic_name=names.alarm_topic_name(severity),
                display_name=f"TTP {severity} alarms",
                master_key=self.key,
                enforce_ssl=True,
            )
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCloudWatchAlarmsToPublish",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": account}},
                )
            )
            for address in props.alarm_emails.get(severity, ()):
                topic.add_subscription(subscriptions.EmailSubscription(address))
            self.topics[severity] = topic
