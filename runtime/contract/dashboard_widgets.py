"""The dashboard widget types and how a table of them becomes CloudWatch dashboard JSON (no I/O).

A dashboard is a list of :class:`Graph`, :class:`Text` and :class:`AlarmStatus` items whose graph rows are
the metric definitions of :mod:`runtime.contract.monitoring` (the ones the alarms read) or a
:class:`Search` over all customers; :func:`layout` places them left to right, a new row when 24 columns
are full, so no widget has hand-written coordinates. The tables themselves are in
:mod:`runtime.contract.dashboard_graphs`, the two bodies in :mod:`runtime.contract.dashboards`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from runtime.contract.metric_names import CUSTOMER_DIMENSION
from runtime.contract.monitoring import PERIOD, Math, Source, Stat, Target

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
class Context:
    """What a row needs to become JSON: the region, and whose metrics (a target, or all customers)."""

    region: str
    namespace: str
    cluster: str
    target: Target | None = None


def _row(row: Row, ctx: Context) -> list[Any]:
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


def _widget(item: Item, ctx: Context, x: int, y: int) -> Widget:
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


def layout(items: list[Item], ctx: Context, y: int = 0) -> list[Widget]:
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


def body(widgets: list[Widget]) -> dict[str, Any]:
    """A dashboard body around placed widgets: the last six hours, each graph at its own period."""
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": widgets}


def searches_in_widget(widget: Widget) -> int:
    """How many SEARCH expressions a widget holds (each returns one series per customer)."""
    metrics = widget.get("properties", {}).get("metrics", [])
    count = 0
    for row in metrics:
        for item in row:
            if isinstance(item, dict) and "expression" in item:
                count += str(item["expression"]).count("SEARCH(")
    return count
