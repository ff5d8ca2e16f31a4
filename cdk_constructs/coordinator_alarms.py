"""The change coordinator's alarms (DESIGN §6): its queue's age, its DLQ, tasks down, unreconciled meetings,
refused delivery events, results refused (both security events).

Thresholds come from :class:`runtime.contract.thresholds.AlarmThresholds` (the ``coordinator_*``,
``meeting_failure_*`` and ``results_refused_critical`` fields, plus ``dlq_messages_critical`` and
``tasks_down_minutes`` shared with the customers' alarms); metric names from
:class:`runtime.contract.metric_names.MetricName` with the ``CustomerCode`` dimension
``runtime.contract.names.COORDINATOR_METRICS_DIMENSION_VALUE``. Alarm names are deterministic:
``ttp-change-coordinator-{alarm}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_constructs.customer_alarms import FIVE_MINUTES, ONE_MINUTE, PERIOD_SECONDS
from runtime.contract import names
from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName
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


def coordinator_alarm_name(alarm: str) -> str:
    return f"{names.COORDINATOR_NAME}-{alarm}"


class CoordinatorAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CoordinatorAlarmsProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or CoordinatorAlarmsProps()
        self.props = props
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.severity: dict[str, Severity] = {}
        t = props.thresholds

        def sqs(metric: str, queue_name: str, statistic: str, period: Duration = FIVE_MINUTES) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SQS",
                metric_name=metric,
                dimensions_map={"QueueName": queue_name},
                statistic=statistic,
                period=period,
            )

        queue_age = sqs("ApproximateAgeOfOldestMessage", names.COORDINATOR_QUEUE_NAME, "Maximum")
        self._alarm(
            "queue-age-critical",
            "critical",
            queue_age,
            t.coordinator_queue_age_critical_seconds,
            f"The coordinator's oldest event waits for more than {t.coordinator_queue_age_critical_seconds:g} s "
            "(results not folded into the archive, meetings not reconciled)",
        )
        self._alarm(
            "queue-age-warning",
            "warning",
            queue_age,
            t.coordinator_queue_age_warning_seconds,
            f"The coordinator's oldest event waits for more than {t.coordinator_queue_age_warning_seconds:g} s",
        )
        self._alarm(
            "dlq-messages-critical",
            "critical",
            sqs("ApproximateNumberOfMessagesVisible", names.COORDINATOR_DLQ_NAME, "Maximum"),
            t.dlq_messages_critical,
            "Messages in the coordinator's dead-letter queue (events it could not handle)",
        )
        tasks_down = cloudwatch.MathExpression(
            expression="IF(FILL(running, 0) == 0 AND FILL(waiting, 0) > 0, 1, 0)",
            using_metrics={
                "running": cloudwatch.Metric(
                    namespace="ECS/ContainerInsights",
                    metric_name="RunningTaskCount",
                    dimensions_map={"ClusterName": props.cluster_name, "ServiceName": names.COORDINATOR_SERVICE_NAME},
                    statistic="Maximum",
                    period=ONE_MINUTE,
                ),
                "waiting": sqs(
                    "ApproximateNumberOfMessagesVisible", names.COORDINATOR_QUEUE_NAME, "Minimum", ONE_MINUTE
                ),
            },
            label="1 = no coordinator task running while events wait",
            period=ONE_MINUTE,
        )
        self._alarm(
            "tasks-down-critical",
            "critical",
            tasks_down,
            1,
            f"No coordinator task has been running for {t.tasks_down_minutes} minutes while events wait",
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=t.tasks_down_minutes,
        )
        self._alarm(
            "meeting-failure-warning",
            "warning",
            cloudwatch.Metric(
                namespace=props.namespace,
                metric_name=MetricName.MEETING_FAILURE,
                dimensions_map={CUSTOMER_DIMENSION: names.COORDINATOR_METRICS_DIMENSION_VALUE},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            t.meeting_failure_warning,
            f"Meetings could not be reconciled for {t.meeting_failure_periods * PERIOD_SECONDS // 60} minutes "
            "(Graph down or refusing; emails are not affected)",
            evaluation_periods=t.meeting_failure_periods,
        )
        self._alarm(
            "delivery-events-refused-warning",
            "warning",
            cloudwatch.Metric(
                namespace=props.namespace,
                metric_name=MetricName.DELIVERY_EVENTS_REFUSED,
                dimensions_map={CUSTOMER_DIMENSION: names.COORDINATOR_METRICS_DIMENSION_VALUE},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            t.delivery_events_refused_warning,
            "Delivery events refused: not SES events of this platform, or naming a change, revision or customer "
            f'that was not sent to (security log lines "delivery event refused"; on {names.DELIVERY_EVENTS_DLQ_NAME})',
        )
        self._alarm(
            "results-refused-critical",
            "critical",
            cloudwatch.Metric(
                namespace=props.namespace,
                metric_name=MetricName.RESULTS_REFUSED,
                dimensions_map={CUSTOMER_DIMENSION: names.COORDINATOR_METRICS_DIMENSION_VALUE},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            t.results_refused_critical,
            "A processing object records a result the coordinator refused to fold (for a customer its revision "
            "did not target, or a revision newer than the archive's): a security event — the log line names the key",
        )

    def _alarm(
        self,
        name: str,
        severity: Severity,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=coordinator_alarm_name(name),
            alarm_description=f"[{severity}] change coordinator: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        topic = self.props.topics.get(severity)
        if topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            if severity in self.props.ok_actions_for:
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        self.alarms[name] = alarm
        self.severity[name] = severity
        return alarm
