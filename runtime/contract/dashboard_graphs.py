"""The dashboards' graphs as tables (pure data): the runbook's three, the overview's Key Metrics groups,
the change coordinator's group and one customer's graphs.

Overview rows are :class:`Search` rows over all customers; customer and coordinator rows are the
:class:`Stat` and :class:`Math` definitions of :mod:`runtime.contract.monitoring`, drawn for one target.
The small builders below name the shapes the tables repeat (a sum, an average beside a maximum, a success
rate, an hourly rate), so each graph is one line of what differs.
"""

from __future__ import annotations

from typing import Any

from runtime.contract.dashboard_widgets import ALL, AVG, MAX, SUM, TOP_5, Graph, Row, Search
from runtime.contract.metric_names import MetricName
from runtime.contract.monitoring import (
    BOUNCE_RATE,
    COMPLAINT_RATE,
    CPU,
    DELIVERY_RATE_PERIOD,
    DESIRED_TASKS,
    IN_FLIGHT,
    MEMORY,
    OLDEST_MESSAGE_AGE,
    RUNNING_TASKS,
    VISIBLE,
    Math,
    Source,
    Stat,
)

M = MetricName  # the tables' shorthand: most graphs then fit on one or two lines


def graph(title: str, *rows: Row, **options: Any) -> Graph:
    """A :class:`Graph` of ``rows`` (the table's one line per graph)."""
    return Graph(title, rows, **options)


def _sum(metric: str, id_: str, label: str | None = None, **kw: Any) -> Search:
    """The sum over all customers, labelled with the metric's name unless ``label`` says otherwise."""
    return Search(SUM, metric, "Sum", metric if label is None else label, id_, **kw)


def _sqs(template: str, metric: str, stat: str, label: str, id_: str, *, dlq: bool = False) -> Search:
    return Search(template, metric, stat, label, id_, Source.DLQ if dlq else Source.QUEUE)


def _searches(
    metric: str, *aggregates: tuple[str, str, str, str], source: Source = Source.CUSTOM
) -> tuple[Search, ...]:
    """Aggregates of one metric over all customers, each ``(template, stat, label, id)``."""
    return tuple(Search(template, metric, stat, label, id_, source) for template, stat, label, id_ in aggregates)


def _ecs_utilization(title: str, metric: str, prefix: str) -> Graph:
    """The busiest service beside the average over all services (percent)."""
    busiest, average = (MAX, "Maximum", "max service", f"{prefix}_max"), (AVG, "Average", "average", f"{prefix}_avg")
    return graph(title, *_searches(metric, busiest, average, source=Source.ECS), y_label="%")


def _success_rate(title: str, success: MetricName, failure: MetricName, prefix: str, label: str) -> Graph:
    """``100 * success / (success + failure)`` over all customers; the two sums behind it are hidden."""
    ok, failed = f"{prefix}_ok", f"{prefix}_fail"
    return graph(
        title,
        _sum(success, ok, "success", visible=False),
        _sum(failure, failed, "failure", visible=False),
        Math(f"100 * {ok} / ({ok} + {failed})", label, f"{prefix}_rate"),
        y_label="%",
    )


def _hourly_search(metric: MetricName, id_: str) -> Search:
    """A rate's hidden input: every customer's hourly sum (one series each)."""
    return Search(ALL, metric, "Sum", metric, id_, period=DELIVERY_RATE_PERIOD, visible=False)


def _hourly_rate(title: str, inputs: tuple[Search, Search], expression: str, label: str, id_: str) -> Graph:
    return graph(title, *inputs, Math(expression, label, id_), y_label="%", period=DELIVERY_RATE_PERIOD)


def _average_and_maximum(metric: str) -> tuple[Stat, Stat]:
    return Stat(metric, "Average"), Stat(metric, "Maximum")


def _sums(*metrics: str) -> tuple[Stat, ...]:
    return tuple(Stat(metric, "Sum") for metric in metrics)


RUNBOOK_GRAPHS: tuple[Graph, ...] = (
    graph(
        "Trigger Creation vs Deletion",
        _sum(M.TRIGGER_CREATION_RATE, "creation"),
        _sum(M.TRIGGER_DELETION_RATE, "deletion"),
        width=8,
        stat="Sum",
    ),
    graph(
        "Trigger Age (seconds)",
        *_searches(
            M.TRIGGER_AGE,
            (AVG, "Average", f"{M.TRIGGER_AGE} Average", "age_avg"),
            (MAX, "Maximum", f"{M.TRIGGER_AGE} Maximum", "age_max"),
        ),
        width=8,
        y_label="seconds",
    ),
    graph(
        "Archive Update Success/Failure",
        _sum(M.ARCHIVE_UPDATE_SUCCESS, "archive_ok"),
        _sum(M.ARCHIVE_UPDATE_FAILURE, "archive_failed"),
        width=8,
        stat="Sum",
    ),
)
"""The runbook's trigger-monitoring-dashboard.json, over all customers (SUM/AVG/MAX of SEARCH)."""

_TRIGGER_GRAPHS = (
    graph(
        "Trigger creation / deletion rate",
        _sum(M.TRIGGER_CREATION_RATE, "t_created", "created"),
        _sum(M.TRIGGER_DELETION_RATE, "t_deleted", "deleted"),
    ),
    graph(
        "Trigger age distribution (seconds)",
        *_searches(
            M.TRIGGER_AGE, (MAX, "p90", "p90 (worst customer)", "age_p90"), (MAX, "Maximum", "maximum", "age_p100")
        ),
        y_label="seconds",
    ),
    graph(
        "Orphaned triggers / oldest trigger (sweeper)",
        Search(SUM, M.ORPHANED_TRIGGERS, "Maximum", "orphaned triggers", "orphans"),
        Search(MAX, M.OLDEST_TRIGGER_AGE, "Maximum", "oldest trigger age (s)", "oldest"),
    ),
    graph(
        "Trigger delete failures / duplicate events",
        _sum(M.TRIGGER_DELETE_FAILURE, "del_fail", "trigger delete failures"),
        _sum(M.DUPLICATE_EVENTS, "dups", "duplicate events"),
    ),
)
_PROCESSING_GRAPHS = (
    graph(
        "Processing duration (seconds)",
        *_searches(
            M.PROCESSING_DURATION, (AVG, "Average", "average", "dur_avg"), (MAX, "Maximum", "maximum", "dur_max")
        ),
        y_label="seconds",
    ),
    _success_rate(
        "Processing success rate (%)", M.PROCESSING_SUCCESS, M.PROCESSING_FAILURE, "p", "processing success %"
    ),
    _success_rate(
        "Archive update success rate (%)",
        M.ARCHIVE_UPDATE_SUCCESS,
        M.ARCHIVE_UPDATE_FAILURE,
        "a",
        "archive update success %",
    ),
    graph(
        "Email delivery rate",
        _sum(M.EMAILS_SENT, "emails", "emails sent"),
        _sum(M.PROCESSING_FAILURE, "p_fail2", "processing failures"),
    ),
)
_QUEUE_GRAPHS = (
    graph(
        "SQS queue depth (visible messages)",
        _sqs(SUM, VISIBLE, "Maximum", "all queues", "q_sum"),
        _sqs(TOP_5, VISIBLE, "Maximum", "", "q_top"),
    ),
    graph(
        "SQS message age (oldest, seconds)",
        _sqs(MAX, OLDEST_MESSAGE_AGE, "Maximum", "oldest message", "q_age"),
        y_label="seconds",
    ),
    graph(
        "DLQ message count",
        _sqs(SUM, VISIBLE, "Maximum", "all DLQs", "dlq_sum", dlq=True),
        _sqs(TOP_5, VISIBLE, "Maximum", "", "dlq_top", dlq=True),
    ),
    graph(
        "Message processing rate (deleted messages)",
        _sqs(SUM, "NumberOfMessagesDeleted", "Sum", "messages processed", "q_done"),
        _sqs(SUM, "NumberOfMessagesReceived", "Sum", "messages received", "q_recv"),
    ),
)
_SYSTEM_GRAPHS = (
    graph(
        "ECS task count",
        Search(SUM, RUNNING_TASKS, "Average", "running tasks", "running", Source.CONTAINER_INSIGHTS),
        Search(SUM, DESIRED_TASKS, "Average", "desired tasks", "desired", Source.CONTAINER_INSIGHTS),
    ),
    _ecs_utilization("ECS CPU utilization (%)", CPU, "cpu"),
    _ecs_utilization("ECS memory utilization (%)", MEMORY, "mem"),
    graph("Errors by type", _sum(M.PROCESSING_FAILURE, "e_proc"), _sum(M.ARCHIVE_UPDATE_FAILURE, "e_archive")),
)
# Rates over DELIVERY_RATE_PERIOD like the customers' alarms: bounced / (delivered + bounced),
# complained / delivered; the searches behind them are hidden.
_EMAIL_GRAPHS = (
    graph("Emails delivered / bounced", _sum(M.EMAILS_DELIVERED, "m_dlv"), _sum(M.EMAILS_BOUNCED, "m_bnc")),
    graph("Emails complained", _sum(M.EMAILS_COMPLAINED, "m_cmp")),
    _hourly_rate(
        "Bounce rate (%, hourly)",
        (_hourly_search(M.EMAILS_DELIVERED, "b_dlv"), _hourly_search(M.EMAILS_BOUNCED, "b_bnc")),
        "IF(SUM(b_dlv) + SUM(b_bnc) > 0, 100 * SUM(b_bnc) / (SUM(b_dlv) + SUM(b_bnc)), 0)",
        "bounce rate % (all customers)",
        "r_bounce",
    ),
    _hourly_rate(
        "Complaint rate (%, hourly)",
        (_hourly_search(M.EMAILS_DELIVERED, "c_dlv"), _hourly_search(M.EMAILS_COMPLAINED, "c_cmp")),
        "IF(SUM(c_dlv) > 0, 100 * SUM(c_cmp) / SUM(c_dlv), 0)",
        "complaint rate % (all customers)",
        "r_complaint",
    ),
)

OVERVIEW_GROUPS: tuple[tuple[str, tuple[Graph, ...]], ...] = (
    ("## Trigger metrics", _TRIGGER_GRAPHS),
    ("## Processing metrics", _PROCESSING_GRAPHS),
    ("## Queue metrics", _QUEUE_GRAPHS),
    ("## System health", _SYSTEM_GRAPHS),
    ("## Email delivery", _EMAIL_GRAPHS),
)
"""The overview's Key Metrics groups: a header, then its graphs."""

COORDINATOR_GROUP: tuple[str, tuple[Graph, ...]] = (
    "## Change coordinator",
    (
        graph(
            "Coordinator events waiting / DLQ",
            Stat(VISIBLE, "Maximum", Source.QUEUE, label="events waiting"),
            Stat(VISIBLE, "Maximum", Source.DLQ, label="DLQ visible"),
            width=8,
        ),
        graph(
            "Coordinator oldest event (seconds)",
            Stat(OLDEST_MESSAGE_AGE, "Maximum", Source.QUEUE),
            width=8,
            y_label="seconds",
        ),
        graph(
            "Coordinator tasks",
            Stat(RUNNING_TASKS, "Maximum", Source.CONTAINER_INSIGHTS),
            Stat(CPU, "Average", Source.ECS),
            Stat(MEMORY, "Average", Source.ECS),
            width=8,
        ),
        graph("Results folded / refused", Stat(M.RESULTS_FOLDED), Stat(M.RESULTS_REFUSED), width=8, stat="Sum"),
        graph("Fold lag (seconds)", *_average_and_maximum(M.FOLD_LAG), width=8, y_label="seconds"),
        graph(
            "Meetings / refused delivery events",
            Stat(M.MEETING_RECONCILED),
            Stat(M.MEETING_FAILURE),
            Stat(M.DELIVERY_EVENTS_REFUSED),
            width=8,
            stat="Sum",
        ),
    ),
)
"""The change coordinator's own metrics (dimension ``CustomerCode=coordinator``), queue, DLQ and service:
every metric its alarms read, plus what it folds and reconciles."""

CUSTOMER_GRAPHS: tuple[Graph, ...] = (
    graph(
        "Trigger Creation vs Deletion",
        Stat(M.TRIGGER_CREATION_RATE),
        Stat(M.TRIGGER_DELETION_RATE),
        width=8,
        stat="Sum",
    ),
    graph(
        "Trigger Age (seconds)",
        *_average_and_maximum(M.TRIGGER_AGE),
        Stat(M.OLDEST_TRIGGER_AGE, "Maximum", label=f"{M.OLDEST_TRIGGER_AGE} (sweeper)"),
        width=8,
        y_label="seconds",
    ),
    graph(
        "Archive Update Success/Failure",
        Stat(M.ARCHIVE_UPDATE_SUCCESS),
        Stat(M.ARCHIVE_UPDATE_FAILURE),
        width=8,
        stat="Sum",
    ),
    graph("Processing", *_sums(M.PROCESSING_SUCCESS, M.PROCESSING_FAILURE, M.EMAILS_SENT, M.DUPLICATE_EVENTS), width=8),
    graph("Processing duration (seconds)", *_average_and_maximum(M.PROCESSING_DURATION), width=8, y_label="seconds"),
    graph(
        "Trigger hygiene",
        Stat(M.TRIGGER_DELETE_FAILURE, "Sum"),
        Stat(M.ORPHANED_TRIGGERS, "Maximum"),
        *_sums(M.TRIGGERS_RECREATED, M.SWEEP_ERRORS),
        width=8,
    ),
    graph(
        "Queue",
        Stat(VISIBLE, "Maximum", Source.QUEUE),
        Stat(IN_FLIGHT, "Maximum", Source.QUEUE),
        Stat(VISIBLE, "Maximum", Source.DLQ, label="DLQ visible"),
        width=8,
    ),
    graph(
        "Oldest message age (seconds)", Stat(OLDEST_MESSAGE_AGE, "Maximum", Source.QUEUE), width=8, y_label="seconds"
    ),
    graph(
        "ECS service",
        Stat(RUNNING_TASKS, "Average", Source.CONTAINER_INSIGHTS),
        Stat(CPU, "Average", Source.ECS),
        Stat(MEMORY, "Average", Source.ECS),
        width=8,
    ),
    graph(
        "Email delivery",
        *_sums(M.EMAILS_SENT, M.EMAILS_DELIVERED, M.EMAILS_BOUNCED, M.EMAILS_COMPLAINED, M.EMAILS_REJECTED),
        width=12,
    ),
    graph(
        "Bounce and complaint rate (%, hourly)",
        BOUNCE_RATE,
        COMPLAINT_RATE,
        width=12,
        y_label="%",
        period=DELIVERY_RATE_PERIOD,
    ),
)
"""One customer's graphs: its custom metrics, its queue and DLQ, its ECS service, its delivery outcomes."""
