"""The metric factory and the alarm factory: CloudWatch metrics and alarms from the definitions of
:mod:`runtime.contract.monitoring` (as cdk-monitoring-constructs' ``MetricFactory`` / ``AlarmFactory``).

A construct that alarms says only whose metrics (a :class:`~runtime.contract.monitoring.Target`), how its
alarms are named and which topics they notify; which alarms exist, on what signal, at what threshold
and with which description is the table's. Every alarm treats missing data as not breaching (a quiet
customer is a healthy one) and needs all of its evaluation periods to breach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from runtime.contract.monitoring import AlarmSpec, Comparison, Math, Signal, Stat, Target
from runtime.contract.names import Severity
from runtime.contract.thresholds import AlarmThresholds

COMPARISONS: dict[Comparison, cloudwatch.ComparisonOperator] = {
    "GreaterThanThreshold": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    "GreaterThanOrEqualToThreshold": cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
}


class MetricFactory:
    """CloudWatch metrics of one :class:`Target` from :class:`Stat` / :class:`Math` definitions."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def metric(self, stat: Stat) -> cloudwatch.Metric:
        namespace, dimensions = self.target.dimensions(stat.source)
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=stat.metric,
            dimensions_map=dimensions,
            statistic=stat.stat or "Average",
            period=Duration.seconds(stat.period),
        )

    def signal(self, signal: Signal) -> cloudwatch.IMetric:
        if isinstance(signal, Stat):
            return self.metric(signal)
        return self.math(signal)

    def math(self, math: Math) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=math.expression,
            using_metrics={str(s.id): self.metric(s) for s in math.using},
            label=math.label,
            period=Duration.seconds(math.period),
        )


class AlarmFactory:
    """Alarms of one subject (a customer, the coordinator), each from one :class:`AlarmSpec` row.

    The alarm is a child of ``scope`` with the spec's name as its id; its physical name is
    ``alarm_name(spec.name)``, its description ``[{severity}] {subject}: {the spec's description}``; it
    notifies its severity's topic (and, for ``ok_actions_for``, tells it when the alarm clears). With
    ``runbook`` (a URL up to the anchor prefix), the description ends with the link to the row's section.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        metrics: MetricFactory,
        thresholds: AlarmThresholds,
        alarm_name: Callable[[str], str],
        subject: str,
        topics: Mapping[Severity, sns.ITopic],
        ok_actions_for: Sequence[Severity],
        runbook: str | None = None,
    ) -> None:
        self.scope = scope
        self.metrics = metrics
        self.thresholds = thresholds
        self.alarm_name = alarm_name
        self.subject = subject
        self.topics = topics
        self.ok_actions_for = tuple(ok_actions_for)
        self.runbook = runbook

    def alarm(self, spec: AlarmSpec) -> cloudwatch.Alarm:
        t = self.thresholds
        periods = spec.periods(t)
        alarm = cloudwatch.Alarm(
            self.scope,
            spec.name,
            alarm_name=self.alarm_name(spec.name),
            alarm_description=self.description(spec),
            metric=self.metrics.signal(spec.signal),
            threshold=spec.threshold_value(t),
            comparison_operator=COMPARISONS[spec.comparison],
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        topic = self.topics.get(spec.severity)
        if topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            if spec.severity in self.ok_actions_for:
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        return alarm

    def description(self, spec: AlarmSpec) -> str:
        link = f" Runbook: {self.runbook}{spec.family}" if self.runbook else ""
        return f"[{spec.severity}] {self.subject}: {spec.describe(self.thresholds)}{link}"

    def alarms(self, specs: Sequence[AlarmSpec]) -> dict[str, cloudwatch.Alarm]:
        """One alarm per row, by the spec's name, in the table's order."""
        return {spec.name: self.alarm(spec) for spec in specs}
