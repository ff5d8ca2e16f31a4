"""The metric factory and the alarm factory: CloudWatch metrics and alarms from the definitions of
:mod:`runtime.contract.monitoring` (as cdk-monitoring-constructs' ``MetricFactory`` / ``AlarmFactory``).

A construct that alarms says only whose metrics (a :class:`~runtime.contract.monitoring.Target`), how its
alarms are named and which topics they notify; which alarms exist, on what signal, at what threshold
and with which description is the table's. Every alarm treats missing data as not breaching (a quiet
customer is a healthy one) and needs all of its evaluation periods to breach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

from runtime.contract import names
from runtime.contract.monitoring import AlarmSpec, Math, Signal, Stat, Target
from runtime.contract.names import Severity
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, AlarmThresholds


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

    def alarm_properties(self, signal: Signal) -> dict[str, Any]:
        """``CfnAlarm`` properties of a signal, as ``cloudwatch.Alarm`` renders its metric: namespace, name,
        dimensions, statistic and period of one metric, or the expression (``expr_1``) and its metrics."""
        if isinstance(signal, Stat):
            namespace, dimensions = self.target.dimensions(signal.source)
            statistic = signal.stat or "Average"
            percentile = statistic.startswith("p")
            return {
                "namespace": namespace,
                "metric_name": signal.metric,
                "dimensions": [cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in dimensions.items()],
                "statistic": None if percentile else statistic,
                "extended_statistic": statistic if percentile else None,
                "period": signal.period,
            }
        queries = [
            cloudwatch.CfnAlarm.MetricDataQueryProperty(
                id="expr_1", expression=signal.expression, label=signal.label, return_data=True
            )
        ]
        for stat in signal.using:
            namespace, dimensions = self.target.dimensions(stat.source)
            queries.append(
                cloudwatch.CfnAlarm.MetricDataQueryProperty(
                    id=str(stat.id),
                    metric_stat=cloudwatch.CfnAlarm.MetricStatProperty(
                        metric=cloudwatch.CfnAlarm.MetricProperty(
                            namespace=namespace,
                            metric_name=stat.metric,
                            dimensions=[
                                cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in dimensions.items()
                            ],
                        ),
                        period=stat.period,
                        stat=stat.stat or "Average",
                    ),
                    return_data=False,
                )
            )
        return {"metrics": queries}

    def math(self, math: Math) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=math.expression,
            using_metrics={str(s.id): self.metric(s) for s in math.using},
            label=math.label,
            period=Duration.seconds(math.period),
        )


@dataclass(frozen=True, kw_only=True)
class AlarmsProps:
    """What the customer's and the coordinator's alarms take alike (:class:`~cdk_constructs.customer_alarms.
    CustomerAlarmsProps`, :class:`~cdk_constructs.coordinator_alarms.CoordinatorAlarmsProps`)."""

    topics: Mapping[Severity, sns.ITopic] = field(default_factory=dict)
    """SNS topic per severity; alarms of a severity without a topic have no actions. Default: none."""
    namespace: str = names.DEFAULT_METRICS_NAMESPACE
    """Namespace of the runtime's custom metrics. Default: ``runtime.contract.names.DEFAULT_METRICS_NAMESPACE``."""
    cluster_name: str = names.CLUSTER_NAME
    """ECS cluster of the watched service (the processor's, the coordinator's).
    Default: ``runtime.contract.names.CLUSTER_NAME``."""
    thresholds: AlarmThresholds = DEFAULT_THRESHOLDS
    """Every alarm threshold. Default: ``runtime.contract.thresholds.DEFAULT_THRESHOLDS``."""
    ok_actions_for: tuple[Severity, ...] = ("critical", "warning")
    """Severities whose topic is also told when the alarm clears. Default: critical and warning."""
    runbook_url: str | None = None
    """Where operators read ``docs/runbook.md`` (e.g. its URL in your repository); when set, each alarm's
    description ends with ``Runbook: {runbook_url}#alarm-{family}`` (a customer's alarm) or
    ``#coordinator-alarm-{family}`` (the coordinator's). Default: none (no link)."""

    def factory(
        self,
        scope: Construct,
        *,
        metrics: MetricFactory,
        alarm_name: Callable[[str], str],
        subject: str,
        runbook_prefix: str,
    ) -> AlarmFactory:
        """The factory of the subject's alarms: its topics, thresholds and runbook anchors from these props."""
        return AlarmFactory(
            scope,
            metrics=metrics,
            thresholds=self.thresholds,
            alarm_name=alarm_name,
            subject=subject,
            topics=self.topics,
            ok_actions_for=self.ok_actions_for,
            runbook=f"{self.runbook_url}#{runbook_prefix}" if self.runbook_url else None,
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
        self._topic_arns: dict[Severity, str | None] = {}

    def alarm(self, spec: AlarmSpec) -> cloudwatch.CfnAlarm:
        """The row's alarm as the L1 ``CfnAlarm`` with plain properties: the template ``cloudwatch.Alarm``
        rendered (same construct path ``<spec.name>/Resource``, so the same logical id), for two jsii calls
        instead of about ten per alarm (issue 19: synth time per customer)."""
        t = self.thresholds
        periods = spec.periods(t)
        topic_arn = self._topic_arn(spec.severity)
        holder = Construct(self.scope, spec.name)
        return cloudwatch.CfnAlarm(
            holder,
            "Resource",
            alarm_name=self.alarm_name(spec.name),
            alarm_description=self.description(spec),
            threshold=spec.threshold_value(t),
            comparison_operator=spec.comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data="notBreaching",
            alarm_actions=None if topic_arn is None else [topic_arn],
            ok_actions=[topic_arn] if topic_arn is not None and spec.severity in self.ok_actions_for else None,
            **self.metrics.alarm_properties(spec.signal),
        )

    def _topic_arn(self, severity: Severity) -> str | None:
        if severity not in self._topic_arns:
            topic = self.topics.get(severity)
            self._topic_arns[severity] = None if topic is None else topic.topic_arn
        return self._topic_arns[severity]

    def description(self, spec: AlarmSpec) -> str:
        link = f" Runbook: {self.runbook}{spec.family}" if self.runbook else ""
        return f"[{spec.severity}] {self.subject}: {spec.describe(self.thresholds)}{link}"

    def alarms(self, specs: Sequence[AlarmSpec]) -> dict[str, cloudwatch.CfnAlarm]:
        """One alarm per row, by the spec's name, in the table's order."""
        return {spec.name: self.alarm(spec) for spec in specs}
