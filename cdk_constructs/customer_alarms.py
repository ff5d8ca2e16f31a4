"""One customer's alarms: every threshold of docs/design.md §6, each routed to its severity's SNS topic.

Which alarms exist (name, signal, threshold, evaluation periods, description) is the table
:data:`runtime.contract.monitoring.CUSTOMER_ALARMS`; the numbers come from
:class:`runtime.contract.thresholds.AlarmThresholds`; :mod:`cdk_constructs.monitoring` builds them.
Alarm names are deterministic (``ttp-{code}-{alarm}``), so dashboards and the ops CLI can find them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_constructs.monitoring import AlarmFactory, MetricFactory
from cdk_support.stack_facts import stack_facts
from runtime.contract import keys, names
from runtime.contract.monitoring import CUSTOMER_ALARMS, CUSTOMER_RUNBOOK_PREFIX, customer_target
from runtime.contract.names import Severity
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, AlarmThresholds


@dataclass(frozen=True)
class CustomerAlarmsProps:
    customer_code: str
    """The customer (``runtime.contract.keys`` rules); alarm, queue and service names derive from it. Required."""
    topics: Mapping[Severity, sns.ITopic] = field(default_factory=dict)
    """SNS topic per severity; alarms of a severity without a topic have no actions. Default: none."""
    namespace: str = names.DEFAULT_METRICS_NAMESPACE
    """Namespace of the runtime's custom metrics. Default: ``runtime.contract.names.DEFAULT_METRICS_NAMESPACE``."""
    cluster_name: str = names.CLUSTER_NAME
    """ECS cluster of the processor service. Default: ``runtime.contract.names.CLUSTER_NAME``."""
    thresholds: AlarmThresholds = DEFAULT_THRESHOLDS
    """Every alarm threshold. Default: ``runtime.contract.thresholds.DEFAULT_THRESHOLDS``."""
    ok_actions_for: tuple[Severity, ...] = ("critical", "warning")
    """Severities whose topic is also told when the alarm clears. Default: critical and warning."""
    runbook_url: str | None = None
    """Where operators read ``docs/runbook.md`` (e.g. its URL in your repository); when set, each alarm's
    description ends with ``Runbook: {runbook_url}#alarm-{family}``. Default: none (no link)."""


def alarm_name(customer_code: str, alarm: str) -> str:
    return f"ttp-{keys.validate_customer_code(customer_code)}-{alarm}"


class CustomerAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerAlarmsProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.props = props
        factory = AlarmFactory(
            self,
            metrics=MetricFactory(customer_target(code, props.namespace, props.cluster_name)),
            thresholds=props.thresholds,
            alarm_name=lambda alarm: alarm_name(code, alarm),
            subject=code,
            topics=props.topics,
            ok_actions_for=props.ok_actions_for,
            runbook=f"{props.runbook_url}#{CUSTOMER_RUNBOOK_PREFIX}" if props.runbook_url else None,
        )
        self.alarms: dict[str, cloudwatch.CfnAlarm] = factory.alarms(CUSTOMER_ALARMS)
        self.severity: dict[str, Severity] = {spec.name: spec.severity for spec in CUSTOMER_ALARMS}

    def alarm_arns(self) -> list[str]:
        """Deterministic ARNs (no tokens): usable inside a dashboard body."""
        stack = stack_facts(self)
        prefix = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
        return [prefix + alarm_name(self.props.customer_code, n) for n in self.alarms]
