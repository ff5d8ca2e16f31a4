"""CloudWatch dashboard bodies as plain JSON-able dicts (no aws_cdk import).

This module lives in ``runtime/`` because the runtime image (and so the ops CLI) contains only this
package: ``python -m runtime dashboard-json`` prints these bodies (the runbook's ``put-dashboard``
input) and the CDK constructs put the same bodies into ``AWS::CloudWatch::Dashboard``, so what ops
sees is what is deployed.

Each dashboard is a table of widgets (:class:`Graph`, :class:`Text`) whose rows are the metric
definitions of :mod:`runtime.contract.monitoring` (the ones the alarms read); :func:`_layout` places
them left to right, a new row when 24 columns are full, so no widget has hand-written coordinates.

The overview never lists customers: every customer graph uses ``SEARCH`` (and metric math over it), so
its widget count and body size are the same for 2 or 200 customers; its change-coordinator graphs read
the coordinator's own metrics. CloudWatch limits that matter:

* at most 500 widgets per dashboard and a 1 MB body (``DashboardBody``; we stay far below both);
* a ``SEARCH`` returns at most 500 time series, and a graph shows at most 500: each overview graph
  holds at most two searches, so up to 250 customers every graph is complete (see ``SEARCH_BUDGET``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from runtime.contract import names
from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName
from runtime.contract.monitoring import (
    BOUNCE_RATE,
    COMPLAINT_RATE,
    CPU,
    DELIVERY_RATE_PERIOD,
    DESIRED_TASKS,
    IN_FLIGHT,
    MEMORY,
    OLDEST_MESSAGE_AGE,
    PERIOD,
    RUNNING_TASKS,
    VISIBLE,
    Math,
    Source,
    Stat,
    Target,
    coordinator_target,
    customer_target,
)

OVERVIEW_DASHBOARD_NAME = names.OVERVIEW_DASHBOARD_NAME
customer_dashboard_name = names.customer_dashboard_name

# Time series one graph may hold; each overview widget has <= 2 searches of one series per customer.
SEARCH_BUDGET = 500
MAX_SEARCHES_PER_WIDGET = 2
MAX_WIDGETS = 500
MAX_BODY_BYTES = 1_000_000
GRID_WIDTH = 24

Widget = dict[str, Any]

SUM, AVG, MAX, ALL = "SUM({})", "AVG({})", "MAX({})", "{}"
TOP_5 = "SORT({}, MAX, DESC, 5)"


@dataclass(frozen=True)
class Search:
    """Overview row: ``template`` (e.g. ``SUM({})``) over a SEARCH of one metric across all customers."""

    template: str
    metric: str
    stat: str
    label: str
    id: str
    source: Source = Source.CUSTOM
    period: int = PERIOD
    visible: bool = True


Row = Stat | Math | Search


@dataclass(frozen=True)
class Graph:
    title: str
    rows: tuple[Row, ...]
    width: int = 6
    stat: str | None = None
    y_label: str | None = None
    period: int = PERIOD
    height: int = 6


@dataclass(frozen=True)
class Text:
    markdown: str
    height: int = 1
    width: int = GRID_WIDTH


@dataclass(frozen=True)
class AlarmStatus:
    alarm_arns: tuple[str, ...]
    title: str = "Alarms"
    height: int = 4
    width: int = GRID_WIDTH


Item = Graph | Text | AlarmStatus


def _search(metric: str, stat: str, source: Source, period: int, namespace: str, cluster: str) -> str:
    if source is Source.CUSTOM:
        query = f'{{{namespace},{CUSTOMER_DIMENSION}}} MetricName="{metric}"'
    elif source in (Source.QUEUE, Source.DLQ):
        # Token matching: "customer-x-changes" -> customer, x, changes; DLQs add the token "dlq".
        scope = "QueueName=dlq" if source is Source.DLQ else "NOT QueueName=dlq"
        query = f'{{AWS/SQS,QueueName}} MetricName="{metric}" QueueName=customer QueueName=changes {scope}'
    else:
        query = f'{{{source},ClusterName,ServiceName}} MetricName="{metric}" ClusterName="{cluster}"'
    return f"SEARCH('{query}', '{stat}', {period})"


@dataclass(frozen=True)
class _Context:
    """What a row needs to become JSON: the region, and whose metrics (a target, or all customers)."""

    region: str
    namespace: str
    cluster: str
    target: Target | None = None


def _row(row: Row, ctx: _Context) -> list[Any]:
    if isinstance(row, Search):
        search = _search(row.metric, row.stat, row.source, row.period, ctx.namespace, ctx.cluster)
        return [_options(expression=row.template.format(search), label=row.label, id=row.id, visible=row.visible)]
    if isinstance(row, Math):
        return [_options(expression=row.expression, label=row.label, id=row.id, visible=row.visible)]
    if ctx.target is None:
        raise ValueError(f"graph row {row.metric!r} names no customer: the overview graphs customers with Search")
    namespace, dimensions = ctx.target.dimensions(row.source)
    options = _options(
        stat=row.stat,
        label=row.label,
        period=row.period if row.period != PERIOD else None,
        id=row.id,
        visible=row.visible,
    )
    return [namespace, row.metric, *(part for item in dimensions.items() for part in item)] + (
        [options] if options else []
    )


def _with_inputs(rows: tuple[Row, ...]) -> list[Row]:
    """The graph's rows, after the hidden inputs of its alarm signals (each id once): a signal of
    :mod:`runtime.contract.monitoring` is drawn as the alarm computes it."""
    inputs = {s.id: replace(s, visible=False) for row in rows if isinstance(row, Math) for s in row.using}
    return [*inputs.values(), *rows]


def _options(**options: Any) -> dict[str, Any]:
    """The options that are set (``visible`` only when False)."""
    return {k: v for k, v in options.items() if v is not None and v is not True}


def _widget(item: Item, ctx: _Context, x: int, y: int) -> Widget:
    placed: Widget = {"type": "metric", "x": x, "y": y, "width": item.width, "height": item.height}
    if isinstance(item, Text):
        return placed | {"type": "text", "properties": {"markdown": item.markdown}}
    if isinstance(item, AlarmStatus):
        return placed | {"type": "alarm", "properties": {"title": item.title, "alarms": sorted(item.alarm_arns)}}
    properties: dict[str, Any] = {
        "title": item.title,
        "region": ctx.region,
        "view": "timeSeries",
        "stacked": False,
        "period": item.period,
        "metrics": [_row(row, ctx) for row in _with_inputs(item.rows)],
    }
    if item.stat:
        properties["stat"] = item.stat
    if item.y_label:
        properties["yAxis"] = {"left": {"label": item.y_label, "showUnits": False}}
    return placed | {"properties": properties}


def _layout(items: list[Item], ctx: _Context, y: int = 0) -> list[Widget]:
    """Left to right from row ``y``, a new row when the next item does not fit in the grid's 24 columns."""
    widgets: list[Widget] = []
    x = row_height = 0
    for item in items:
        if x + item.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        widgets.append(_widget(item, ctx, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    return widgets


def _body(items: list[Item], ctx: _Context) -> dict[str, Any]:
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": _layout(items, ctx)}


def _sum(metric: str, label: str, id_: str, **kw: Any) -> Search:
    return Search(SUM, metric, "Sum", label, id_, **kw)


def _sqs(template: str, metric: str, stat: str, label: str, id_: str, *, dlq: bool = False) -> Search:
    return Search(template, metric, stat, label, id_, Source.DLQ if dlq else Source.QUEUE)


RUNBOOK_GRAPHS: tuple[Graph, ...] = (
    Graph(
        "Trigger Creation vs Deletion",
        (
            _sum(MetricName.TRIGGER_CREATION_RATE, MetricName.TRIGGER_CREATION_RATE, "creation"),
            _sum(MetricName.TRIGGER_DELETION_RATE, MetricName.TRIGGER_DELETION_RATE, "deletion"),
        ),
        width=8,
        stat="Sum",
    ),
    Graph(
        "Trigger Age (seconds)",
        (
            Search(AVG, MetricName.TRIGGER_AGE, "Average", f"{MetricName.TRIGGER_AGE} Average", "age_avg"),
            Search(MAX, MetricName.TRIGGER_AGE, "Maximum", f"{MetricName.TRIGGER_AGE} Maximum", "age_max"),
        ),
        width=8,
        y_label="seconds",
    ),
    Graph(
        "Archive Update Success/Failure",
        (
            _sum(MetricName.ARCHIVE_UPDATE_SUCCESS, MetricName.ARCHIVE_UPDATE_SUCCESS, "archive_ok"),
            _sum(MetricName.ARCHIVE_UPDATE_FAILURE, MetricName.ARCHIVE_UPDATE_FAILURE, "archive_failed"),
        ),
        width=8,
        stat="Sum",
    ),
)
"""The runbook's trigger-monitoring-dashboard.json, over all customers (SUM/AVG/MAX of SEARCH)."""


def _hourly_search(metric: MetricName, id_: str) -> Search:
    """A rate's hidden input: every customer's hourly sum (one series each)."""
    return Search(ALL, metric, "Sum", metric, id_, period=DELIVERY_RATE_PERIOD, visible=False)


OVERVIEW_GROUPS: tuple[tuple[str, tuple[Graph, ...]], ...] = (
    (
        "## Trigger metrics",
        (
            Graph(
                "Trigger creation / deletion rate",
                (
                    _sum(MetricName.TRIGGER_CREATION_RATE, "created", "t_created"),
                    _sum(MetricName.TRIGGER_DELETION_RATE, "deleted", "t_deleted"),
                ),
            ),
            Graph(
                "Trigger age distribution (seconds)",
                (
                    Search(MAX, MetricName.TRIGGER_AGE, "p90", "p90 (worst customer)", "age_p90"),
                    Search(MAX, MetricName.TRIGGER_AGE, "Maximum", "maximum", "age_p100"),
                ),
                y_label="seconds",
            ),
            Graph(
                "Orphaned triggers / oldest trigger (sweeper)",
                (
                    Search(SUM, MetricName.ORPHANED_TRIGGERS, "Maximum", "orphaned triggers", "orphans"),
                    Search(MAX, MetricName.OLDEST_TRIGGER_AGE, "Maximum", "oldest trigger age (s)", "oldest"),
                ),
            ),
            Graph(
                "Trigger delete failures / duplicate events",
                (
                    _sum(MetricName.TRIGGER_DELETE_FAILURE, "trigger delete failures", "del_fail"),
                    _sum(MetricName.DUPLICATE_EVENTS, "duplicate events", "dups"),
                ),
            ),
        ),
    ),
    (
        "## Processing metrics",
        (
            Graph(
                "Processing duration (seconds)",
                (
                    Search(AVG, MetricName.PROCESSING_DURATION, "Average", "average", "dur_avg"),
                    Search(MAX, MetricName.PROCESSING_DURATION, "Maximum", "maximum", "dur_max"),
                ),
                y_label="seconds",
            ),
            Graph(
                "Processing success rate (%)",
                (
                    _sum(MetricName.PROCESSING_SUCCESS, "success", "p_ok", visible=False),
                    _sum(MetricName.PROCESSING_FAILURE, "failure", "p_fail", visible=False),
                    Math("100 * p_ok / (p_ok + p_fail)", "processing success %", "p_rate"),
                ),
                y_label="%",
            ),
            Graph(
                "Archive update success rate (%)",
                (
                    _sum(MetricName.ARCHIVE_UPDATE_SUCCESS, "success", "a_ok", visible=False),
                    _sum(MetricName.ARCHIVE_UPDATE_FAILURE, "failure", "a_fail", visible=False),
                    Math("100 * a_ok / (a_ok + a_fail)", "archive update success %", "a_rate"),
                ),
                y_label="%",
            ),
            Graph(
                "Email delivery rate",
                (
                    _sum(MetricName.EMAILS_SENT, "emails sent", "emails"),
                    _sum(MetricName.PROCESSING_FAILURE, "processing failures", "p_fail2"),
                ),
            ),
        ),
    ),
    (
        "## Queue metrics",
        (
            Graph(
                "SQS queue depth (visible messages)",
                (
                    _sqs(SUM, VISIBLE, "Maximum", "all queues", "q_sum"),
                    _sqs(TOP_5, VISIBLE, "Maximum", "", "q_top"),
                ),
            ),
            Graph(
                "SQS message age (oldest, seconds)",
                (_sqs(MAX, OLDEST_MESSAGE_AGE, "Maximum", "oldest message", "q_age"),),
                y_label="seconds",
            ),
            Graph(
                "DLQ message count",
                (
                    _sqs(SUM, VISIBLE, "Maximum", "all DLQs", "dlq_sum", dlq=True),
                    _sqs(TOP_5, VISIBLE, "Maximum", "", "dlq_top", dlq=True),
                ),
            ),
            Graph(
                "Message processing rate (deleted messages)",
                (
                    _sqs(SUM, "NumberOfMessagesDeleted", "Sum", "messages processed", "q_done"),
                    _sqs(SUM, "NumberOfMessagesReceived", "Sum", "messages received", "q_recv"),
                ),
            ),
        ),
    ),
    (
        "## System health",
        (
            Graph(
                "ECS task count",
                (
                    Search(SUM, RUNNING_TASKS, "Average", "running tasks", "running", Source.CONTAINER_INSIGHTS),
                    Search(SUM, DESIRED_TASKS, "Average", "desired tasks", "desired", Source.CONTAINER_INSIGHTS),
                ),
            ),
            Graph(
                "ECS CPU utilization (%)",
                (
                    Search(MAX, CPU, "Maximum", "max service", "cpu_max", Source.ECS),
                    Search(AVG, CPU, "Average", "average", "cpu_avg", Source.ECS),
                ),
                y_label="%",
            ),
            Graph(
                "ECS memory utilization (%)",
                (
                    Search(MAX, MEMORY, "Maximum", "max service", "mem_max", Source.ECS),
                    Search(AVG, MEMORY, "Average", "average", "mem_avg", Source.ECS),
                ),
                y_label="%",
            ),
            Graph(
                "Errors by type",
                (
                    _sum(MetricName.PROCESSING_FAILURE, MetricName.PROCESSING_FAILURE, "e_proc"),
                    _sum(MetricName.ARCHIVE_UPDATE_FAILURE, MetricName.ARCHIVE_UPDATE_FAILURE, "e_archive"),
                ),
            ),
        ),
    ),
    (
        "## Email delivery",
        (
            Graph(
                "Emails delivered / bounced",
                (
                    _sum(MetricName.EMAILS_DELIVERED, MetricName.EMAILS_DELIVERED, "m_dlv"),
                    _sum(MetricName.EMAILS_BOUNCED, MetricName.EMAILS_BOUNCED, "m_bnc"),
                ),
            ),
            Graph(
                "Emails complained",
                (_sum(MetricName.EMAILS_COMPLAINED, MetricName.EMAILS_COMPLAINED, "m_cmp"),),
            ),
            # Rates over DELIVERY_RATE_PERIOD like the customers' alarms: bounced / (delivered + bounced),
            # complained / delivered; the searches behind them are hidden.
            Graph(
                "Bounce rate (%, hourly)",
                (
                    _hourly_search(MetricName.EMAILS_DELIVERED, "b_dlv"),
                    _hourly_search(MetricName.EMAILS_BOUNCED, "b_bnc"),
                    Math(
                        "IF(SUM(b_dlv) + SUM(b_bnc) > 0, 100 * SUM(b_bnc) / (SUM(b_dlv) + SUM(b_bnc)), 0)",
                        "bounce rate % (all customers)",
                        "r_bounce",
                    ),
                ),
                y_label="%",
                period=DELIVERY_RATE_PERIOD,
            ),
            Graph(
                "Complaint rate (%, hourly)",
                (
                    _hourly_search(MetricName.EMAILS_DELIVERED, "c_dlv"),
                    _hourly_search(MetricName.EMAILS_COMPLAINED, "c_cmp"),
                    Math(
                        "IF(SUM(c_dlv) > 0, 100 * SUM(c_cmp) / SUM(c_dlv), 0)",
                        "complaint rate % (all customers)",
                        "r_complaint",
                    ),
                ),
                y_label="%",
                period=DELIVERY_RATE_PERIOD,
            ),
        ),
    ),
)
"""The overview's Key Metrics groups: a header, then its graphs."""

COORDINATOR_GROUP: tuple[str, tuple[Graph, ...]] = (
    "## Change coordinator",
    (
        Graph(
            "Coordinator events waiting / DLQ",
            (
                Stat(VISIBLE, "Maximum", Source.QUEUE, label="events waiting"),
                Stat(VISIBLE, "Maximum", Source.DLQ, label="DLQ visible"),
            ),
            width=8,
        ),
        Graph(
            "Coordinator oldest event (seconds)",
            (Stat(OLDEST_MESSAGE_AGE, "Maximum", Source.QUEUE),),
            width=8,
            y_label="seconds",
        ),
        Graph(
            "Coordinator tasks",
            (
                Stat(RUNNING_TASKS, "Maximum", Source.CONTAINER_INSIGHTS),
                Stat(CPU, "Average", Source.ECS),
                Stat(MEMORY, "Average", Source.ECS),
            ),
            width=8,
        ),
        Graph(
            "Results folded / refused",
            (Stat(MetricName.RESULTS_FOLDED), Stat(MetricName.RESULTS_REFUSED)),
            width=8,
            stat="Sum",
        ),
        Graph(
            "Fold lag (seconds)",
            (Stat(MetricName.FOLD_LAG, "Average"), Stat(MetricName.FOLD_LAG, "Maximum")),
            width=8,
            y_label="seconds",
        ),
        Graph(
            "Meetings / refused delivery events",
            (
                Stat(MetricName.MEETING_RECONCILED),
                Stat(MetricName.MEETING_FAILURE),
                Stat(MetricName.DELIVERY_EVENTS_REFUSED),
            ),
            width=8,
            stat="Sum",
        ),
    ),
)
"""The change coordinator's own metrics (dimension ``CustomerCode=coordinator``), queue, DLQ and service:
every metric its alarms read, plus what it folds and reconciles."""


def overview_dashboard_body(
    *,
    region: str,
    namespace: str = names.DEFAULT_METRICS_NAMESPACE,
    cluster_name: str = names.CLUSTER_NAME,
) -> dict[str, Any]:
    """The platform overview: the runbook's three widgets, the Key Metrics groups, the change coordinator."""
    header = (
        "# Transient Trigger Pipeline — all customers\n"
        "Aggregated with SEARCH: the same widgets for any number of customers. "
        f"Per-customer detail: the `{customer_dashboard_name('x').replace('-x', '-<code>')}` dashboards."
    )
    items: list[Item] = [Text(header, height=2), *RUNBOOK_GRAPHS]
    for title, graphs in OVERVIEW_GROUPS:
        items += [Text(title), *graphs]
    overview = _layout(items, _Context(region, namespace, cluster_name))
    coordinator = _Context(region, namespace, cluster_name, coordinator_target(namespace, cluster_name))
    title, graphs = COORDINATOR_GROUP
    overview += _layout([Text(title), *graphs], coordinator, y=max(w["y"] + w["height"] for w in overview))
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": overview}


CUSTOMER_GRAPHS: tuple[Graph, ...] = (
    Graph(
        "Trigger Creation vs Deletion",
        (Stat(MetricName.TRIGGER_CREATION_RATE), Stat(MetricName.TRIGGER_DELETION_RATE)),
        width=8,
        stat="Sum",
    ),
    Graph(
        "Trigger Age (seconds)",
        (
            Stat(MetricName.TRIGGER_AGE, "Average"),
            Stat(MetricName.TRIGGER_AGE, "Maximum"),
            Stat(MetricName.OLDEST_TRIGGER_AGE, "Maximum", label=f"{MetricName.OLDEST_TRIGGER_AGE} (sweeper)"),
        ),
        width=8,
        y_label="seconds",
    ),
    Graph(
        "Archive Update Success/Failure",
        (Stat(MetricName.ARCHIVE_UPDATE_SUCCESS), Stat(MetricName.ARCHIVE_UPDATE_FAILURE)),
        width=8,
        stat="Sum",
    ),
    Graph(
        "Processing",
        (
            Stat(MetricName.PROCESSING_SUCCESS, "Sum"),
            Stat(MetricName.PROCESSING_FAILURE, "Sum"),
            Stat(MetricName.EMAILS_SENT, "Sum"),
            Stat(MetricName.DUPLICATE_EVENTS, "Sum"),
        ),
        width=8,
    ),
    Graph(
        "Processing duration (seconds)",
        (Stat(MetricName.PROCESSING_DURATION, "Average"), Stat(MetricName.PROCESSING_DURATION, "Maximum")),
        width=8,
        y_label="seconds",
    ),
    Graph(
        "Trigger hygiene",
        (
            Stat(MetricName.TRIGGER_DELETE_FAILURE, "Sum"),
            Stat(MetricName.ORPHANED_TRIGGERS, "Maximum"),
            Stat(MetricName.TRIGGERS_RECREATED, "Sum"),
            Stat(MetricName.SWEEP_ERRORS, "Sum"),
        ),
        width=8,
    ),
    Graph(
        "Queue",
        (
            Stat(VISIBLE, "Maximum", Source.QUEUE),
            Stat(IN_FLIGHT, "Maximum", Source.QUEUE),
            Stat(VISIBLE, "Maximum", Source.DLQ, label="DLQ visible"),
        ),
        width=8,
    ),
    Graph(
        "Oldest message age (seconds)", (Stat(OLDEST_MESSAGE_AGE, "Maximum", Source.QUEUE),), width=8, y_label="seconds"
    ),
    Graph(
        "ECS service",
        (
            Stat(RUNNING_TASKS, "Average", Source.CONTAINER_INSIGHTS),
            Stat(CPU, "Average", Source.ECS),
            Stat(MEMORY, "Average", Source.ECS),
        ),
        width=8,
    ),
    Graph(
        "Email delivery",
        (
            Stat(MetricName.EMAILS_SENT, "Sum"),
            Stat(MetricName.EMAILS_DELIVERED, "Sum"),
            Stat(MetricName.EMAILS_BOUNCED, "Sum"),
            Stat(MetricName.EMAILS_COMPLAINED, "Sum"),
            Stat(MetricName.EMAILS_REJECTED, "Sum"),
        ),
        width=12,
    ),
    Graph(
        "Bounce and complaint rate (%, hourly)",
        (BOUNCE_RATE, COMPLAINT_RATE),
        width=12,
        y_label="%",
        period=DELIVERY_RATE_PERIOD,
    ),
)
"""One customer's graphs: its custom metrics, its queue and DLQ, its ECS service, its delivery outcomes."""


def customer_dashboard_body(
    *,
    customer_code: str,
    region: str,
    namespace: str = names.DEFAULT_METRICS_NAMESPACE,
    cluster_name: str = names.CLUSTER_NAME,
    alarm_arns: list[str] | None = None,
) -> dict[str, Any]:
    """One customer's dashboard: :data:`CUSTOMER_GRAPHS` of its metrics, then its alarms' status."""
    code = customer_code
    items: list[Item] = [Text(f"# Customer `{code}` — transient trigger pipeline"), *CUSTOMER_GRAPHS]
    if alarm_arns:
        items.append(AlarmStatus(tuple(alarm_arns)))
    return _body(items, _Context(region, namespace, cluster_name, customer_target(code, namespace, cluster_name)))


def searches_in_widget(widget: Widget) -> int:
    """How many SEARCH expressions a widget holds (each returns one series per customer)."""
    metrics = widget.get("properties", {}).get("metrics", [])
    count = 0
    for row in metrics:
        for item in row:
            if isinstance(item, dict) and "expression" in item:
                count += str(item["expression"]).count("SEARCH(")
    return count
