"""What the platform monitors, defined once: the metrics (as data), every alarm, and the metrics left unalarmed.

Plain data, no ``aws_cdk`` import, so both renderers read the same table: the CDK metric and alarm
factories (``cdk_constructs.monitoring``) turn a :class:`Stat` or :class:`Math` into a CloudWatch metric
and an :class:`AlarmSpec` into an alarm; ``runtime.contract.dashboards`` turns the same :class:`Stat` into a
dashboard row (and, on the overview, into a ``SEARCH`` over all customers). A :class:`Target` says whose
metric it is (a customer or the change coordinator), so a signal is written once for every customer.

Each alarm's name, severity, signal, threshold (a field of
:class:`runtime.contract.thresholds.AlarmThresholds`), evaluation periods, description and runbook
section are one row of :data:`CUSTOMER_ALARMS` or :data:`COORDINATOR_ALARMS`; every metric of
:class:`MetricName` is either in an alarm's signal or in :data:`NOT_ALARMED` with the reason.
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass, fields
from typing import Any, Literal

from runtime.contract import names
from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName
from runtime.contract.names import Severity
from runtime.contract.thresholds import AlarmThresholds

PERIOD = 300
"""The period of every graph and alarm unless a definition says otherwise (5 minutes)."""
ONE_MINUTE = 60
DELIVERY_RATE_PERIOD = 3600
"""Bounce and complaint rates are taken over an hour (alarms and dashboards alike): over five minutes one
bounce among a handful of emails would read as tens of percent."""


class Source(enum.StrEnum):
    """Where a metric comes from; a :class:`Target` supplies the namespace and dimensions."""

    CUSTOM = "custom"
    """The runtime's own metrics (``MetricName``), dimension ``CustomerCode``."""
    QUEUE = "queue"
    DLQ = "dlq"
    ECS = "AWS/ECS"
    CONTAINER_INSIGHTS = "ECS/ContainerInsights"


SQS_NAMESPACE = "AWS/SQS"
VISIBLE = "ApproximateNumberOfMessagesVisible"
IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible"
OLDEST_MESSAGE_AGE = "ApproximateAgeOfOldestMessage"
RUNNING_TASKS = "RunningTaskCount"
DESIRED_TASKS = "DesiredTaskCount"
CPU = "CPUUtilization"
MEMORY = "MemoryUtilization"


@dataclass(frozen=True)
class Stat:
    """One statistic of one metric. ``stat=None`` takes the graph's statistic; ``id`` names it in math."""

    metric: str
    stat: str | None = None
    source: Source = Source.CUSTOM
    period: int = PERIOD
    label: str | None = None
    id: str | None = None
    visible: bool = True


@dataclass(frozen=True)
class Math:
    """A metric-math expression over :class:`Stat` rows named by their ``id``."""

    expression: str
    label: str
    id: str = ""
    using: tuple[Stat, ...] = ()
    period: int = PERIOD
    visible: bool = True


Signal = Stat | Math


@dataclass(frozen=True)
class Target:
    """Whose metrics: a customer (its queue, DLQ and processor service) or the change coordinator."""

    namespace: str
    dimension_value: str
    queue: str
    dlq: str
    cluster: str
    service: str

    def dimensions(self, source: Source) -> tuple[str, dict[str, str]]:
        """(namespace, dimensions) of a metric of ``source`` for this target."""
        if source is Source.CUSTOM:
            return self.namespace, {CUSTOMER_DIMENSION: self.dimension_value}
        if source in (Source.QUEUE, Source.DLQ):
            return SQS_NAMESPACE, {"QueueName": self.queue if source is Source.QUEUE else self.dlq}
        return str(source), {"ClusterName": self.cluster, "ServiceName": self.service}


def customer_target(
    customer_code: str, namespace: str = names.DEFAULT_METRICS_NAMESPACE, cluster: str = names.CLUSTER_NAME
) -> Target:
    return Target(
        namespace=namespace,
        dimension_value=customer_code,
        queue=names.queue_name(customer_code),
        dlq=names.dead_letter_queue_name(customer_code),
        cluster=cluster,
        service=names.service_name(customer_code),
    )


def coordinator_target(namespace: str = names.DEFAULT_METRICS_NAMESPACE, cluster: str = names.CLUSTER_NAME) -> Target:
    return Target(
        namespace=namespace,
        dimension_value=names.COORDINATOR_METRICS_DIMENSION_VALUE,
        queue=names.COORDINATOR_QUEUE_NAME,
        dlq=names.COORDINATOR_DLQ_NAME,
        cluster=cluster,
        service=names.COORDINATOR_SERVICE_NAME,
    )


def percentage(part: Stat, rest: Stat, *, label: str = "failure %", id_: str = "", period: int = PERIOD) -> Math:
    """100 * part / (part + rest), 0 without traffic (missing data reads 0)."""
    p, r = f"FILL({part.id}, 0)", f"FILL({rest.id}, 0)"
    return Math(f"IF(({p} + {r}) > 0, 100 * {p} / ({p} + {r}), 0)", label, id_, using=(part, rest), period=period)


def tasks_down(label: str) -> Math:
    """1 while no task of the service runs and messages wait in its queue (per minute)."""
    return Math(
        "IF(FILL(running, 0) == 0 AND FILL(waiting, 0) > 0, 1, 0)",
        label,
        using=(
            Stat(RUNNING_TASKS, "Maximum", Source.CONTAINER_INSIGHTS, ONE_MINUTE, id="running"),
            Stat(VISIBLE, "Minimum", Source.QUEUE, ONE_MINUTE, id="waiting"),
        ),
        period=ONE_MINUTE,
    )


def _hourly(metric: MetricName, id_: str) -> Stat:
    return Stat(metric, "Sum", period=DELIVERY_RATE_PERIOD, id=id_)


TRIGGER_AGE = Math(
    "MAX([FILL(age, 0), FILL(oldest, 0)])",
    f"trigger age (s): max of {MetricName.TRIGGER_AGE} and {MetricName.OLDEST_TRIGGER_AGE}",
    using=(
        Stat(MetricName.TRIGGER_AGE, "Maximum", id="age"),
        Stat(MetricName.OLDEST_TRIGGER_AGE, "Maximum", id="oldest"),
    ),
)
"""Trigger age is the larger of the processor's (age when processed) and the sweeper's (age of triggers
nobody processed yet)."""
ARCHIVE_FAILURE = percentage(
    Stat(MetricName.ARCHIVE_UPDATE_FAILURE, "Sum", id="fail"), Stat(MetricName.ARCHIVE_UPDATE_SUCCESS, "Sum", id="ok")
)
DELETE_FAILURE = percentage(
    Stat(MetricName.TRIGGER_DELETE_FAILURE, "Sum", id="fail"), Stat(MetricName.TRIGGER_DELETION_RATE, "Sum", id="ok")
)
QUEUE_DEPTH = Stat(VISIBLE, "Maximum", Source.QUEUE)
DLQ_DEPTH = Stat(VISIBLE, "Maximum", Source.DLQ)
BOUNCE_RATE = percentage(
    _hourly(MetricName.EMAILS_BOUNCED, "bounced"),
    _hourly(MetricName.EMAILS_DELIVERED, "delivered"),
    label="bounce rate %",
    id_="r_bounce",
    period=DELIVERY_RATE_PERIOD,
)
"""bounced / (delivered + bounced), from the delivery-event consumer's counters."""
COMPLAINT_RATE = Math(
    "IF(FILL(delivered, 0) > 0, 100 * FILL(complained, 0) / FILL(delivered, 0), 0)",
    "complaint rate %",
    "r_complaint",
    using=(_hourly(MetricName.EMAILS_COMPLAINED, "complained"), _hourly(MetricName.EMAILS_DELIVERED, "delivered")),
    period=DELIVERY_RATE_PERIOD,
)
"""complained / delivered. Both rates are drawn on the customer's dashboard as they are alarmed."""

Comparison = Literal["GreaterThanThreshold", "GreaterThanOrEqualToThreshold"]


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm. ``threshold`` and ``evaluation_periods`` name a field of ``AlarmThresholds`` (or are a
    fixed number); ``description`` is a template over those fields plus ``{threshold}`` and ``{window}``
    (evaluation periods x the signal's period, as a duration); ``{x:duration}`` writes seconds as
    ``15 minutes``."""

    family: str
    """The alarm's name without its severity; also its runbook section (``RUNBOOK_ANCHOR_PREFIX``)."""
    severity: Severity
    signal: Signal
    threshold: str | float
    description: str
    evaluation_periods: str | int = 1
    comparison: Comparison = "GreaterThanThreshold"

    @property
    def name(self) -> str:
        return f"{self.family}-{self.severity}"

    def threshold_value(self, thresholds: AlarmThresholds) -> float:
        return float(_field(thresholds, self.threshold, self))

    def periods(self, thresholds: AlarmThresholds) -> int:
        return int(_field(thresholds, self.evaluation_periods, self))

    def describe(self, thresholds: AlarmThresholds) -> str:
        """The description with the very numbers the alarm uses."""
        window = _duration(self.periods(thresholds) * self.signal.period)
        values = {f.name: getattr(thresholds, f.name) for f in fields(thresholds)}
        return _Template().format(self.description, threshold=self.threshold_value(thresholds), window=window, **values)


def _field(thresholds: AlarmThresholds, value: str | float, spec: AlarmSpec) -> float:
    if not isinstance(value, str):
        return value
    if not hasattr(thresholds, value):
        raise ValueError(
            f"alarm {spec.name!r}: {value!r} is not a field of AlarmThresholds; "
            "add it to runtime/contract/thresholds.py or name an existing field"
        )
    return float(getattr(thresholds, value))


class _Template(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        return _duration(value) if format_spec == "duration" else super().format_field(value, format_spec)


def _duration(seconds: float) -> str:
    """``900`` → ``15 minutes``; alarm descriptions state the very numbers the alarms use."""
    if seconds % 3600 == 0 and seconds >= 3600:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0 and seconds >= 60:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"


_TRIGGER_AGE = "A trigger is older than {threshold:duration}"
_ARCHIVE = "More than {threshold:g}% of archive updates failed"
_DEPTH = "More than {threshold:g} messages wait in the queue"
_BOUNCE = (
    "More than {threshold:g}% of delivery outcomes in {window} were bounces "
    "(SES reviews an account at {bounce_rate_critical_percent:g}%)"
)
_COMPLAINT = (
    "More than {threshold:g}% of the emails delivered in {window} were marked as spam "
    "(SES reviews an account at {complaint_rate_critical_percent:g}%)"
)
_GE: Comparison = "GreaterThanOrEqualToThreshold"

CUSTOMER_ALARMS: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        "trigger-age",
        "critical",
        TRIGGER_AGE,
        "trigger_age_critical_seconds",
        _TRIGGER_AGE + " (stuck or never processed)",
    ),
    AlarmSpec("trigger-age", "warning", TRIGGER_AGE, "trigger_age_warning_seconds", _TRIGGER_AGE),
    AlarmSpec("archive-update-failure", "critical", ARCHIVE_FAILURE, "archive_failure_critical_percent", _ARCHIVE),
    AlarmSpec("archive-update-failure", "warning", ARCHIVE_FAILURE, "archive_failure_warning_percent", _ARCHIVE),
    AlarmSpec("queue-depth", "critical", QUEUE_DEPTH, "queue_depth_critical", _DEPTH),
    AlarmSpec("queue-depth", "warning", QUEUE_DEPTH, "queue_depth_warning", _DEPTH),
    AlarmSpec("queue-depth", "info", QUEUE_DEPTH, "queue_depth_info", _DEPTH),
    AlarmSpec(
        "tasks-down",
        "critical",
        tasks_down("1 = no task running while messages wait"),
        1,
        "No processor task has been running for {window} while messages wait",
        "tasks_down_minutes",
        _GE,
    ),
    AlarmSpec(
        "cpu",
        "warning",
        Stat(CPU, "Average", Source.ECS),
        "cpu_warning_percent",
        "Processor CPU above {threshold:g}% for {window}",
        "sustained_periods",
    ),
    AlarmSpec(
        "memory",
        "info",
        Stat(MEMORY, "Average", Source.ECS),
        "memory_info_percent",
        "Processor memory above {threshold:g}% for {window}",
        "sustained_periods",
    ),
    AlarmSpec(
        "trigger-delete-failure",
        "info",
        DELETE_FAILURE,
        "trigger_delete_failure_info_percent",
        "More than {threshold:g}% of trigger deletions failed (the sweeper cleans them up)",
    ),
    AlarmSpec(
        "processing-duration",
        "info",
        Stat(MetricName.PROCESSING_DURATION, "Maximum"),
        "processing_duration_info_seconds",
        "Processing one trigger took longer than {threshold:duration}",
    ),
    AlarmSpec(
        "dlq-messages",
        "critical",
        DLQ_DEPTH,
        "dlq_messages_critical",
        "Messages in the dead-letter queue (poison or permanently failing triggers)",
    ),
    AlarmSpec("bounce-rate", "critical", BOUNCE_RATE, "bounce_rate_critical_percent", _BOUNCE),
    AlarmSpec("bounce-rate", "warning", BOUNCE_RATE, "bounce_rate_warning_percent", _BOUNCE),
    AlarmSpec("complaint-rate", "critical", COMPLAINT_RATE, "complaint_rate_critical_percent", _COMPLAINT),
    AlarmSpec("complaint-rate", "warning", COMPLAINT_RATE, "complaint_rate_warning_percent", _COMPLAINT),
)
"""Every alarm of one customer (docs/design.md §6), named ``ttp-{code}-{family}-{severity}``."""

_QUEUE_AGE = Stat(OLDEST_MESSAGE_AGE, "Maximum", Source.QUEUE)
_QUEUE_AGE_TEXT = "The coordinator's oldest event waits for more than {threshold:g} s"

COORDINATOR_ALARMS: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        "queue-age",
        "critical",
        _QUEUE_AGE,
        "coordinator_queue_age_critical_seconds",
        _QUEUE_AGE_TEXT + " (results not folded into the archive, meetings not reconciled)",
    ),
    AlarmSpec("queue-age", "warning", _QUEUE_AGE, "coordinator_queue_age_warning_seconds", _QUEUE_AGE_TEXT),
    AlarmSpec(
        "dlq-messages",
        "critical",
        DLQ_DEPTH,
        "dlq_messages_critical",
        "Messages in the coordinator's dead-letter queue (events it could not handle)",
    ),
    AlarmSpec(
        "tasks-down",
        "critical",
        tasks_down("1 = no coordinator task running while events wait"),
        1,
        "No coordinator task has been running for {window} while events wait",
        "tasks_down_minutes",
        _GE,
    ),
    AlarmSpec(
        "meeting-failure",
        "warning",
        Stat(MetricName.MEETING_FAILURE, "Sum"),
        "meeting_failure_warning",
        "Meetings could not be reconciled for {window} (Graph down or refusing; emails are not affected)",
        "meeting_failure_periods",
    ),
    AlarmSpec(
        "delivery-events-refused",
        "warning",
        Stat(MetricName.DELIVERY_EVENTS_REFUSED, "Sum"),
        "delivery_events_refused_warning",
        "Delivery events refused: not SES events of this platform, or naming a change, revision or customer "
        'that was not sent to (security log lines "delivery event refused"; on ' + names.DELIVERY_EVENTS_DLQ_NAME + ")",
    ),
    AlarmSpec(
        "results-refused",
        "critical",
        Stat(MetricName.RESULTS_REFUSED, "Sum"),
        "results_refused_critical",
        "A processing object records a result the coordinator refused to fold (for a customer its revision "
        "did not target, or a revision newer than the archive's): a security event — the log line names the key",
    ),
)
"""The change coordinator's alarms (docs/design.md §6), named ``ttp-change-coordinator-{family}-{severity}``."""

RUNBOOK = "docs/runbook.md"
CUSTOMER_RUNBOOK_PREFIX = "alarm-"
COORDINATOR_RUNBOOK_PREFIX = "coordinator-alarm-"
"""Runbook sections: ``### Alarm: {family}`` (customer) and ``### Coordinator alarm: {family}``, whose
anchors are these prefixes plus the family."""

NOT_ALARMED: dict[MetricName, str] = {
    MetricName.TRIGGER_CREATION_RATE: "traffic volume: no level of it is wrong",
    MetricName.PROCESSING_SUCCESS: "traffic volume; its failures are retried and the ones that stay reach the DLQ",
    MetricName.PROCESSING_FAILURE: "retried; a trigger that keeps failing reaches the DLQ (dlq-messages)",
    MetricName.EMAILS_SENT: "traffic volume; delivery outcomes are alarmed as bounce and complaint rates",
    MetricName.DUPLICATE_EVENTS: "expected with at-least-once delivery; each duplicate is skipped",
    MetricName.ORPHANED_TRIGGERS: "their age is alarmed: the sweeper's OldestTriggerAge feeds trigger-age",
    MetricName.SWEEP_ERRORS: "each is logged with its key; the trigger it could not sweep ages into trigger-age",
    MetricName.TRIGGERS_RECREATED: "a repair the sweeper made; the recreated trigger is then processed as usual",
    MetricName.EMAILS_REJECTED: "addresses SES refused (per recipient); recorded in the result for ops to read",
    MetricName.RESULTS_FOLDED: "traffic volume of the coordinator; its lag is alarmed as queue-age",
    MetricName.FOLD_LAG: "alarmed through the coordinator's queue-age (an event waits while the fold lags)",
    MetricName.MEETING_RECONCILED: "traffic volume; failures are alarmed as meeting-failure",
}
"""Metrics the runtime emits that no alarm reads, and why; every other ``MetricName`` is alarmed."""


def stats_of(signal: Signal) -> tuple[Stat, ...]:
    """The plain metrics an alarm or graph signal reads."""
    return signal.using if isinstance(signal, Math) else (signal,)


def unclassified_metrics(
    specs: tuple[AlarmSpec, ...] = CUSTOMER_ALARMS + COORDINATOR_ALARMS,
    not_alarmed: dict[MetricName, str] = NOT_ALARMED,
) -> set[MetricName]:
    """Metrics no alarm of ``specs`` reads and ``not_alarmed`` does not explain (or that are in both)."""
    alarmed = {stat.metric for spec in specs for stat in stats_of(spec.signal)}
    return {metric for metric in MetricName if (metric in alarmed) == (metric in not_alarmed)}
