"""One customer's alarms: every threshold of DESIGN.md §6, each routed to its severity's SNS topic.

The numbers (and so the alarm descriptions, built from them) come from
:class:`runtime.contract.thresholds.AlarmThresholds`, plus any message in the DLQ (critical). Trigger
age is the larger of the processor's ``TriggerAge`` (age when processed) and the sweeper's
``OldestTriggerAge`` (age of triggers nobody processed yet).
Ratios are metric math over the runtime's counters and read 0 when there was no traffic; the bounce and
complaint rates (``EmailsBounced`` / ``EmailsComplained`` against ``EmailsDelivered``, counted by the
delivery-event consumer) are taken over an hour.
Alarm names are deterministic (``ttp-{code}-{alarm}``), so dashboards and the ops CLI can find them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from runtime.contract import dashboards, keys, names
from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName
from runtime.contract.names import Severity
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, AlarmThresholds

PERIOD_SECONDS = 300
FIVE_MINUTES = Duration.seconds(PERIOD_SECONDS)
ONE_MINUTE = Duration.minutes(1)
DELIVERY_RATE_PERIOD = Duration.seconds(dashboards.DELIVERY_RATE_PERIOD)
"""Bounce and complaint rates are taken over an hour (as the dashboards show them): over five minutes one
bounce among a handful of emails would read as tens of percent."""


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
        cc = {CUSTOMER_DIMENSION: code}

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

        service = {"ClusterName": props.cluster_name, "ServiceName": names.service_name(code)}

        def ecs_metric(namespace: str, metric: str, statistic: str, period: Duration) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace, metric_name=metric, dimensions_map=service, statistic=statistic, period=period
            )

        trigger_age = cloudwatch.MathExpression(
            expression="MAX([FILL(age, 0), FILL(oldest, 0)])",
            using_metrics={
                "age": custom(MetricName.TRIGGER_AGE, "Maximum"),
                "oldest": custom(MetricName.OLDEST_TRIGGER_AGE, "Maximum"),
            },
            label="trigger age (s): max of TriggerAge and OldestTriggerAge",
            period=FIVE_MINUTES,
        )
        archive_failure = _percentage(
            "fail",
            "ok",
            custom(MetricName.ARCHIVE_UPDATE_FAILURE, "Sum"),
            custom(MetricName.ARCHIVE_UPDATE_SUCCESS, "Sum"),
        )
        delete_failure = _percentage(
            "fail",
            "ok",
            custom(MetricName.TRIGGER_DELETE_FAILURE, "Sum"),
            custom(MetricName.TRIGGER_DELETION_RATE, "Sum"),
        )
        depth = sqs("ApproximateNumberOfMessagesVisible", names.queue_name(code))
        tasks_down = cloudwatch.MathExpression(
            expression="IF(FILL(running, 0) == 0 AND FILL(waiting, 0) > 0, 1, 0)",
            using_metrics={
                "running": ecs_metric("ECS/ContainerInsights", "RunningTaskCount", "Maximum", ONE_MINUTE),
                "waiting": sqs("ApproximateNumberOfMessagesVisible", names.queue_name(code), "Minimum", ONE_MINUTE),
            },
            label="1 = no task running while messages wait",
            period=ONE_MINUTE,
        )
        not_breaching = cloudwatch.TreatMissingData.NOT_BREACHING
        sustained = _duration(t.sustained_periods * PERIOD_SECONDS)

        self._alarm(
            "trigger-age-critical",
            "critical",
            trigger_age,
            t.trigger_age_critical_seconds,
            f"A trigger is older than {_duration(t.trigger_age_critical_seconds)} (stuck or never processed)",
            not_breaching,
        )
        self._alarm(
            "trigger-age-warning",
            "warning",
            trigger_age,
            t.trigger_age_warning_seconds,
            f"A trigger is older than {_duration(t.trigger_age_warning_seconds)}",
            not_breaching,
        )
        self._alarm(
            "archive-update-failure-critical",
            "critical",
            archive_failure,
            t.archive_failure_critical_percent,
            f"More than {_number(t.archive_failure_critical_percent)}% of archive updates failed",
            not_breaching,
        )
        self._alarm(
            "archive-update-failure-warning",
            "warning",
            archive_failure,
            t.archive_failure_warning_percent,
            f"More than {_number(t.archive_failure_warning_percent)}% of archive updates failed",
            not_breaching,
        )
        self._alarm(
            "queue-depth-critical",
            "critical",
            depth,
            t.queue_depth_critical,
            f"More than {_number(t.queue_depth_critical)} messages wait in the queue",
            not_breaching,
        )
        self._alarm(
            "queue-depth-warning",
            "warning",
            depth,
            t.queue_depth_warning,
            f"More than {_number(t.queue_depth_warning)} messages wait in the queue",
            not_breaching,
        )
        self._alarm(
            "queue-depth-info",
            "info",
            depth,
            t.queue_depth_info,
            f"More than {_number(t.queue_depth_info)} messages wait in the queue",
            not_breaching,
        )
        self._alarm(
            "tasks-down-critical",
            "critical",
            tasks_down,
            1,
            f"No processor task has been running for {_duration(t.tasks_down_minutes * 60)} while messages wait",
            not_breaching,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=t.tasks_down_minutes,
        )
        self._alarm(
            "cpu-warning",
            "warning",
            ecs_metric("AWS/ECS", "CPUUtilization", "Average", FIVE_MINUTES),
            t.cpu_warning_percent,
            f"Processor CPU above {_number(t.cpu_warning_percent)}% for {sustained}",
            not_breaching,
            evaluation_periods=t.sustained_periods,
        )
        self._alarm(
            "memory-info",
            "info",
            ecs_metric("AWS/ECS", "MemoryUtilization", "Average", FIVE_MINUTES),
            t.memory_info_percent,
            f"Processor memory above {_number(t.memory_info_percent)}% for {sustained}",
            not_breaching,
            evaluation_periods=t.sustained_periods,
        )
        self._alarm(
            "trigger-delete-failure-info",
            "info",
            delete_failure,
            t.trigger_delete_failure_info_percent,
            f"More than {_number(t.trigger_delete_failure_info_percent)}% of trigger deletions failed"
            " (the sweeper cleans them up)",
            not_breaching,
        )
        self._alarm(
            "processing-duration-info",
            "info",
            custom(MetricName.PROCESSING_DURATION, "Maximum"),
            t.processing_duration_info_seconds,
            f"Processing one trigger took longer than {_duration(t.processing_duration_info_seconds)}",
            not_breaching,
        )
        self._alarm(
            "dlq-messages-critical",
            "critical",
            sqs("ApproximateNumberOfMessagesVisible", names.dead_letter_queue_name(code)),
            t.dlq_messages_critical,
            "Messages in the dead-letter queue (poison or permanently failing triggers)",
            not_breaching,
        )
        self._delivery_alarms(custom)

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

    def _delivery_alarms(self, custom: Callable[[str, str, Duration], cloudwatch.Metric]) -> None:
        """Bounce rate (bounced / (delivered + bounced)) and complaint rate (complained / delivered) from the
        delivery-event consumer's counters, against SES's review levels (AlarmThresholds)."""
        t = self.props.thresholds
        delivered = custom(MetricName.EMAILS_DELIVERED, "Sum", DELIVERY_RATE_PERIOD)
        bounce_rate = _percentage(
            "bounced",
            "delivered",
            custom(MetricName.EMAILS_BOUNCED, "Sum", DELIVERY_RATE_PERIOD),
            delivered,
            label="bounce rate %",
            period=DELIVERY_RATE_PERIOD,
        )
        complaint_rate = cloudwatch.MathExpression(
            expression="IF(FILL(delivered, 0) > 0, 100 * FILL(complained, 0) / FILL(delivered, 0), 0)",
            using_metrics={
                "complained": custom(MetricName.EMAILS_COMPLAINED, "Sum", DELIVERY_RATE_PERIOD),
                "delivered": delivered,
            },
            label="complaint rate %",
            period=DELIVERY_RATE_PERIOD,
        )
        hour = _duration(DELIVERY_RATE_PERIOD.to_seconds())
        not_breaching = cloudwatch.TreatMissingData.NOT_BREACHING
        bounce_levels: tuple[tuple[Severity, float], ...] = (
            ("critical", t.bounce_rate_critical_percent),
            ("warning", t.bounce_rate_warning_percent),
        )
        for severity, percent in bounce_levels:
            self._alarm(
                f"bounce-rate-{severity}",
                severity,
                bounce_rate,
                percent,
                f"More than {_number(percent)}% of delivery outcomes in {hour} were bounces "
                f"(SES reviews an account at {_number(t.bounce_rate_critical_percent)}%)",
                not_breaching,
            )
        complaint_levels: tuple[tuple[Severity, float], ...] = (
            ("critical", t.complaint_rate_critical_percent),
            ("warning", t.complaint_rate_warning_percent),
        )
        for severity, percent in complaint_levels:
            self._alarm(
                f"complaint-rate-{severity}",
                severity,
                complaint_rate,
                percent,
                f"More than {_number(percent)}% of the emails delivered in {hour} were marked as spam "
                f"(SES reviews an account at {_number(t.complaint_rate_critical_percent)}%)",
                not_breaching,
            )

    def alarm_arns(self) -> list[str]:
        """Deterministic ARNs (no tokens): usable inside a dashboard body."""
        stack = Stack.of(self)
        prefix = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
        return [prefix + alarm_name(self.props.customer_code, n) for n in self.alarms]


def _number(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    """``900`` → ``15 minutes``; alarm descriptions state the very numbers the alarms use."""
    if seconds % 3600 == 0 and seconds >= 3600:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0 and seconds >= 60:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{_number(seconds)} seconds"


def _percentage(
    part_id: str,
    rest_id: str,
    part: cloudwatch.IMetric,
    rest: cloudwatch.IMetric,
    *,
    label: str = "failure %",
    period: Duration = FIVE_MINUTES,
) -> cloudwatch.MathExpression:
    p, r = f"FILL({part_id}, 0)", f"FILL({rest_id}, 0)"
    return cloudwatch.MathExpression(
        expression=f"IF(({p} + {r}) > 0, 100 * {p} / ({p} + {r}), 0)",
        using_metrics={part_id: part, rest_id: rest},
        label=label,
        period=period,
    )
