"""The change coordinator's alarms (docs/design.md §6): its queue's age, its DLQ, tasks down, unreconciled meetings,
refused delivery events, results refused (both security events).

Which alarms exist is the table :data:`runtime.contract.monitoring.COORDINATOR_ALARMS`, their numbers the
``coordinator_*``, ``meeting_failure_*``, ``delivery_events_refused_warning`` and
``results_refused_critical`` fields of :class:`runtime.contract.thresholds.AlarmThresholds` (plus
``dlq_messages_critical`` and ``tasks_down_minutes`` shared with the customers' alarms); custom metrics
carry the ``CustomerCode`` dimension ``runtime.contract.names.COORDINATOR_METRICS_DIMENSION_VALUE``.
Alarm names are deterministic: ``ttp-change-coordinator-{alarm}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_constructs.monitoring import AlarmFactory, MetricFactory
from runtime.contract import names
from runtime.contract.monitoring import COORDINATOR_ALARMS, COORDINATOR_RUNBOOK_PREFIX, coordinator_target
from runtime.contract.names import Severity
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, AlarmThresholds


@dataclass(frozen=True)
class CoordinatorAlarmsProps:
    topics: Mapping[Severity, sns.ITopic] = field(default_factory=dict)
    """SNS topic per severity; alarms of a severity without a topic have no actions. Default: none."""
    namespace: str = names.DEFAULT_METRICS_NAMESPACE
    """Namespace of the runtime's custom metrics. Default: ``runtime.contract.names.DEFAULT_METRICS_NAMESPACE``."""
    cluster_name: str = names.CLUSTER_NAME
    """ECS cluster of the coordinator service. Default: ``runtime.contract.names.CLUSTER_NAME``."""
    thresholds: AlarmThresholds = DEFAULT_THRESHOLDS
    """Every alarm threshold. Default: ``runtime.contract.thresholds.DEFAULT_THRESHOLDS``."""
    ok_actions_for: tuple[Severity, ...] = ("critical", "warning")
    """Severities whose topic is also told when the alarm clears. Default: critical and warning."""
    runbook_url: str | None = None
    """Where operators read ``docs/runbook.md`` (e.g. its URL in your repository); when set, each alarm's
    description ends with ``Runbook: {runbook_url}#coordinator-alarm-{family}``. Default: none (no link)."""


def coordinator_alarm_name(alarm: str) -> str:
    return f"{names.COORDINATOR_NAME}-{alarm}"


class CoordinatorAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CoordinatorAlarmsProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or CoordinatorAlarmsProps()
        self.props = props
        factory = AlarmFactory(
            self,
            metrics=MetricFactory(coordinator_target(props.namespace, props.cluster_name)),
            thresholds=props.thresholds,
            alarm_name=coordinator_alarm_name,
            subject="change coordinator",
            topics=props.topics,
            ok_actions_for=props.ok_actions_for,
            runbook=f"{props.runbook_url}#{COORDINATOR_RUNBOOK_PREFIX}" if props.runbook_url else None,
        )
        self.alarms: dict[str, cloudwatch.CfnAlarm] = factory.alarms(COORDINATOR_ALARMS)
        self.severity: dict[str, Severity] = {spec.name: spec.severity for spec in COORDINATOR_ALARMS}
