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

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from cdk_constructs.monitoring import AlarmsProps, MetricFactory
from runtime.contract import names
from runtime.contract.monitoring import COORDINATOR_ALARMS, COORDINATOR_RUNBOOK_PREFIX, coordinator_target
from runtime.contract.names import Severity


@dataclass(frozen=True, kw_only=True)
class CoordinatorAlarmsProps(AlarmsProps):
    """Props of :class:`CoordinatorAlarms`: those of :class:`~cdk_constructs.monitoring.AlarmsProps`."""


def coordinator_alarm_name(alarm: str) -> str:
    return f"{names.COORDINATOR_NAME}-{alarm}"


class CoordinatorAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CoordinatorAlarmsProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or CoordinatorAlarmsProps()
        self.props = props
        factory = props.factory(
            self,
            metrics=MetricFactory(coordinator_target(props.namespace, props.cluster_name)),
            alarm_name=coordinator_alarm_name,
            subject="change coordinator",
            runbook_prefix=COORDINATOR_RUNBOOK_PREFIX,
        )
        self.alarms: dict[str, cloudwatch.CfnAlarm] = factory.alarms(COORDINATOR_ALARMS)
        self.severity: dict[str, Severity] = {spec.name: spec.severity for spec in COORDINATOR_ALARMS}
