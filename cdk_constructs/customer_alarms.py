"""One customer's alarms: every threshold of DESIGN.md §6, each routed to its severity's SNS topic.

| severity | trigger age | archive update failure | queue depth | ECS |
|---|---|---|---|---|
| critical | > 15 min | > 5 % | > 50 | all tasks down (while work is waiting) |
| warning | > 10 min | > 2 % | > 20 | CPU > 80 % |
| info | trigger delete failure > 10 % | processing duration > 5 min | > 10 | memory > 70 % |

plus any message in the DLQ (critical). Trigger age is the larger of the processor's ``TriggerAge``
(age when processed) and the sweeper's ``OldestTriggerAge`` (age of triggers nobody processed yet).
Ratios are metric math over the runtime's counters and read 0 when there was no traffic.
Alarm names are deterministic (``ttp-{code}-{alarm}``), so dashboards and the ops CLI can find them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_constructs.names import Severity
from runtime import keys, naming

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)


@dataclass(frozen=True)
class AlarmThresholds:
    trigger_age_critical_seconds: float = 900
    trigger_age_warning_seconds: float = 600
    archive_failure_critical_percent: float = 5
    archive_failure_warning_percent: float = 2
    queue_depth_critical: float = 50
    queue_depth_warning: float = 20
    queue_depth_info: float = 10
    cpu_warning_percent: float = 80
    memory_info_percent: float = 70
    trigger_delete_failure_info_percent: float = 10
    processing_duration_info_seconds: float = 300
    dlq_messages_critical: float = 0
    tasks_down_minutes: int = 5


@dataclass(frozen=True)
class CustomerAlarmsProps:
    customer_code: str
    topics: Mapping[Severity, sns.ITopic] = field(default_factory=dict)
    namespace: str = naming.DEFAULT_METRICS_NAMESPACE
    cluster_name: str = naming.CLUSTER_NAME
    thresholds: AlarmThresholds = AlarmThresholds()
    ok_actions_for: tuple[Severity, ...] = ("critical", "warning")


def alarm_name(customer_code: str, alarm: str) -> str:
    return f"ttp-{keys.validate_customer_code(customer_code)}-{alarm}"


class CustomerAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerAlarmsProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.props = props
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.severity: dict[str, Severity] = {}
        t = props.thresholds
        ns = props.namespace
        cc = {"CustomerCode": code}

        def custom(metric: str, statistic: str, period: Duration = FIVE_MINUTES) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=ns, metric_name=metric, dimensions_map=cc, statistic=statistic, period=period
            )

        def sqs(
            metric: str, queue_name: str, statistic: str = "Maximum", period: Duration = FIVE_MINUTES
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SQS",
                metric_name=metric,
                dimensions_map={"QueueName": queue_name},
                statistic=statistic,
                period=period,
            )

        service = {"ClusterName": props.cluster_name, "ServiceName": naming.service_name(code)}

        def ecs_metric(namespace: str, metric: str, statistic: str, period: Duration) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace, metric_name=metric, dimensions_map=service, statistic=statistic, period=period
            )

        trigger_age = cloudwatch.MathExpression(
            expression="MAX([FILL(age, 0), FILL(oldest, 0)])",
            using_metrics={"age": custom("TriggerAge", "Maximum"), "oldest": custom("OldestTriggerAge", "Maximum")},
            label="trigger age (s): max of TriggerAge and OldestTriggerAge",
            period=FIVE_MINUTES,
        )
        archive_failure = _percentage(
            "fail", "ok", custom("ArchiveUpdateFailure", "Sum"), custom("ArchiveUpdateSuccess", "Sum")
        )
        delete_failure = _percentage(
            "fail", "ok", custom("TriggerDeleteFailure", "Sum"), custom("TriggerDeletionRate", "Sum")
        )
        depth = sqs("ApproximateNumberOfMessagesVisible", naming.queue_name(code))
        tasks_down = cloudwatch.MathExpression(
            expression="IF(FILL(running, 0) == 0 AND FILL(waiting, 0) > 0, 1, 0)",
            using_metrics={
                "running": ecs_metric("ECS/ContainerInsights", "RunningTaskCount", "Maximum", ONE_MINUTE),
                "waiting": sqs("ApproximateNumberOfMessagesVisible", naming.queue_name(code), "Minimum", ONE_MINUTE),
            },
            label="1 = no task running while messages wait",
            period=ONE_MINUTE,
        )
        not_breaching = cloudwatch.TreatMissingData.NOT_BREACHING

        self._alarm(
            "trigger-age-critical",
            "critical",
            trigger_age,
            t.trigger_age_critical_seconds,
            "A trigger is older than 15 minutes (stuck or never processed)",
            not_breaching,
        )
        self._alarm(
            "trigger-age-warning",
            "warning",
            trigger_age,
            t.trigger_age_warning_seconds,
            "A trigger is older than 10 minutes",
            not_breaching,
        )
        self._alarm(
            "archive-update-failure-critical",
            "critical",
            archive_failure,
            t.archive_failure_critical_percent,
            "More than 5% of archive updates failed",
            not_breaching,
        )
        self._alarm(
            "archive-update-failure-warning",
            "warning",
            archive_failure,
            t.archive_failure_warning_percent,
            "More than 2% of archive updates failed",
            not_breaching,
        )
        self._alarm(
            "queue-depth-critical",
            "critical",
            depth,
            t.queue_depth_critical,
            "More than 50 messages wait in the queue",
            not_breaching,
        )
        self._alarm(
            "queue-depth-warning",
            "warning",
            depth,
            t.queue_depth_warning,
            "More than 20 messages wait in the queue",
            not_breaching,
        )
        self._alarm(
            "queue-depth-info",
            "info",
            depth,
            t.queue_depth_info,
            "More than 10 messages wait in the queue",
            not_breaching,
        )
        self._alarm(
            "tasks-down-critical",
            "critical",
            tasks_down,
            1,
            "No processor task has been running for 5 minutes while messages wait",
            not_breaching,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=t.tasks_down_minutes,
        )
        self._alarm(
            "cpu-warning",
            "warning",
            ecs_metric("AWS/ECS", "CPUUtilization", "Average", FIVE_MINUTES),
            t.cpu_warning_percent,
            "Processor CPU above 80% for 15 minutes",
            not_breaching,
            evaluation_periods=3,
        )
        self._alarm(
            "memory-info",
            "info",
            ecs_metric("AWS/ECS", "MemoryUtilization", "Average", FIVE_MINUTES),
            t.memory_info_percent,
            "Processor memory above 70% for 15 minutes",
            not_breaching,
            evaluation_periods=3,
        )
        self._alarm(
            "trigger-delete-failure-info",
            "info",
            delete_failure,
            t.trigger_delete_failure_info_percent,
            "More than 10% of trigger deletions failed (the sweeper cleans them up)",
            not_breaching,
        )
        self._alarm(
            "processing-duration-info",
            "info",
            custom("ProcessingDuration", "Maximum"),
            t.processing_duration_info_seconds,
            "Processing one trigger took longer than 5 minutes",
            not_breaching,
        )
        self._alarm(
            "dlq-messages-critical",
            "critical",
            sqs("ApproximateNumberOfMessagesVisible", naming.dead_letter_queue_name(code)),
            t.dlq_messages_critical,
            "Messages in the dead-letter queue (poison or permanently failing triggers)",
            not_breaching,
        )

    def _alarm(
        self,
        name: str,
        severity: Severity,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        treat_missing_data: cloudwatch.TreatMissingData,
        *,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        code = self.props.customer_code
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=alarm_name(code, name),
            alarm_description=f"[{severity}] {code}: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=treat_missing_data,
        )
        topic = self.props.topics.get(severity)
        if topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            if severity in self.props.ok_actions_for:
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        self.alarms[name] = alarm
        self.severity[name] = severity
        return alarm

    def alarm_arns(self) -> list[str]:
        """Deterministic ARNs (no tokens): usable inside a dashboard body."""
        stack = Stack.of(self)
        prefix = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
        return [prefix + alarm_name(self.props.customer_code, n) for n in self.alarms]


def _percentage(
    part_id: str, rest_id: str, part: cloudwatch.IMetric, rest: cloudwatch.IMetric
) -> cloudwatch.MathExpression:
    p, r = f"FILL({part_id}, 0)", f"FILL({rest_id}, 0)"
    return cloudwatch.MathExpression(
        expression=f"IF(({p} + {r}) > 0, 100 * {p} / ({p} + {r}), 0)",
        using_metrics={part_id: part, rest_id: rest},
        label="failure %",
        period=FIVE_MINUTES,
    )
