"""CloudWatch dashboard bodies as plain JSON-able dicts (no aws_cdk import).

This module lives in ``runtime/`` because the runtime image (and so the ops CLI) contains only this
package: ``python -m runtime dashboard-json`` prints these bodies (the runbook's ``put-dashboard``
input) and the CDK constructs put the same bodies into ``AWS::CloudWatch::Dashboard``, so what ops
sees is what is deployed.

The overview never lists customers: every graph uses ``SEARCH`` (and metric math over it), so its
widget count and body size are the same for 2 or 200 customers. CloudWatch limits that matter:

* at most 500 widgets per dashboard and a 1 MB body (``DashboardBody``; we stay far below both);
* a ``SEARCH`` returns at most 500 time series, and a graph shows at most 500: each overview graph
  holds at most two searches, so up to 250 customers every graph is complete (see ``SEARCH_BUDGET``).
"""

from __future__ import annotations

from typing import Any

from runtime.contract import names
from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName

OVERVIEW_DASHBOARD_NAME = names.OVERVIEW_DASHBOARD_NAME
customer_dashboard_name = names.customer_dashboard_name

PERIOD = 300
DELIVERY_RATE_PERIOD = 3600
"""Bounce and complaint rates are hourly (as the customers' rate alarms): 5 minutes is too few emails."""
# Time series one graph may hold; each overview widget has <= 2 searches of one series per customer.
SEARCH_BUDGET = 500
MAX_SEARCHES_PER_WIDGET = 2
MAX_WIDGETS = 500
MAX_BODY_BYTES = 1_000_000

Widget = dict[str, Any]


def _search(namespace: str, metric: str, stat: str, period: int = PERIOD, extra: str = "") -> str:
    query = f'{{{namespace},{CUSTOMER_DIMENSION}}} MetricName="{metric}"{extra}'
    return f"SEARCH('{query}', '{stat}', {period})"


def _sqs_search(metric: str, stat: str, *, dlq: bool, period: int = PERIOD) -> str:
    # Token matching: "customer-x-changes" -> customer, x, changes; DLQs add the token "dlq".
    scope = "QueueName=dlq" if dlq else "NOT QueueName=dlq"
    query = f'{{AWS/SQS,QueueName}} MetricName="{metric}" QueueName=customer QueueName=changes {scope}'
    return f"SEARCH('{query}', '{stat}', {period})"


def _ecs_search(namespace: str, metric: str, stat: str, cluster_name: str, period: int = PERIOD) -> str:
    query = f'{{{namespace},ClusterName,ServiceName}} MetricName="{metric}" ClusterName="{cluster_name}"'
    return f"SEARCH('{query}', '{stat}', {period})"


def _expr(expression: str, label: str, id_: str, *, visible: bool = True, **extra: Any) -> list[Any]:
    options: dict[str, Any] = {"expression": expression, "label": label, "id": id_}
    if not visible:
        options["visible"] = False
    options.update(extra)
    return [options]


def _graph(
    title: str,
    metrics: list[list[Any]],
    *,
    region: str,
    x: int,
    y: int,
    width: int = 6,
    height: int = 6,
    stat: str | None = None,
    y_label: str | None = None,
    period: int = PERIOD,
) -> Widget:
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stacked": False,
        "period": period,
        "metrics": metrics,
    }
    if stat:
        properties["stat"] = stat
    if y_label:
        properties["yAxis"] = {"left": {"label": y_label, "showUnits": False}}
    return {"type": "metric", "x": x, "y": y, "width": width, "height": height, "properties": properties}


def _text(markdown: str, *, x: int = 0, y: int, width: int = 24, height: int = 1) -> Widget:
    return {"type": "text", "x": x, "y": y, "width": width, "height": height, "properties": {"markdown": markdown}}


def runbook_widgets(*, region: str, namespace: str, y: int = 1) -> list[Widget]:
    """The runbook's trigger-monitoring-dashboard.json, over all customers (SUM/AVG/MAX of SEARCH)."""
    ns = namespace
    return [
        _graph(
            "Trigger Creation vs Deletion",
            [
                _expr(
                    f"SUM({_search(ns, MetricName.TRIGGER_CREATION_RATE, 'Sum')})",
                    MetricName.TRIGGER_CREATION_RATE,
                    "creation",
                ),
                _expr(
                    f"SUM({_search(ns, MetricName.TRIGGER_DELETION_RATE, 'Sum')})",
                    MetricName.TRIGGER_DELETION_RATE,
                    "deletion",
                ),
            ],
            region=region,
            x=0,
            y=y,
            width=8,
            stat="Sum",
        ),
        _graph(
            "Trigger Age (seconds)",
            [
                _expr(
                    f"AVG({_search(ns, MetricName.TRIGGER_AGE, 'Average')})",
                    f"{MetricName.TRIGGER_AGE} Average",
                    "age_avg",
                ),
                _expr(
                    f"MAX({_search(ns, MetricName.TRIGGER_AGE, 'Maximum')})",
                    f"{MetricName.TRIGGER_AGE} Maximum",
                    "age_max",
                ),
            ],
            region=region,
            x=8,
            y=y,
            width=8,
            y_label="seconds",
        ),
        _graph(
            "Archive Update Success/Failure",
            [
                _expr(
                    f"SUM({_search(ns, MetricName.ARCHIVE_UPDATE_SUCCESS, 'Sum')})",
                    MetricName.ARCHIVE_UPDATE_SUCCESS,
                    "archive_ok",
                ),
                _expr(
                    f"SUM({_search(ns, MetricName.ARCHIVE_UPDATE_FAILURE, 'Sum')})",
                    MetricName.ARCHIVE_UPDATE_FAILURE,
                    "archive_failed",
                ),
            ],
            region=region,
            x=16,
            y=y,
            width=8,
            stat="Sum",
        ),
    ]


def overview_dashboard_body(
    *,
    region: str,
    namespace: str = names.DEFAULT_METRICS_NAMESPACE,
    cluster_name: str = names.CLUSTER_NAME,
) -> dict[str, Any]:
    """The platform overview: the runbook's three widgets, then the Key Metrics groups."""
    ns = namespace
    widgets: list[Widget] = [
        _text(
            "# Transient Trigger Pipeline — all customers\n"
            "Aggregated with SEARCH: the same widgets for any number of customers. "
            f"Per-customer detail: the `{customer_dashboard_name('x').replace('-x', '-<code>')}` dashboards.",
            y=0,
            height=2,
        )
    ]
    widgets += runbook_widgets(region=region, namespace=ns, y=2)

    y = 8
    widgets.append(_text("## Trigger metrics", y=y))
    y += 1
    widgets += [
        _graph(
            "Trigger creation / deletion rate",
            [
                _expr(f"SUM({_search(ns, MetricName.TRIGGER_CREATION_RATE, 'Sum')})", "created", "t_created"),
                _expr(f"SUM({_search(ns, MetricName.TRIGGER_DELETION_RATE, 'Sum')})", "deleted", "t_deleted"),
            ],
            region=region,
            x=0,
            y=y,
        ),
        _graph(
            "Trigger age distribution (seconds)",
            [
                _expr(f"MAX({_search(ns, MetricName.TRIGGER_AGE, 'p90')})", "p90 (worst customer)", "age_p90"),
                _expr(f"MAX({_search(ns, MetricName.TRIGGER_AGE, 'Maximum')})", "maximum", "age_p100"),
            ],
            region=region,
            x=6,
            y=y,
            y_label="seconds",
        ),
        _graph(
            "Orphaned triggers / oldest trigger (sweeper)",
            [
                _expr(f"SUM({_search(ns, MetricName.ORPHANED_TRIGGERS, 'Maximum')})", "orphaned triggers", "orphans"),
                _expr(
                    f"MAX({_search(ns, MetricName.OLDEST_TRIGGER_AGE, 'Maximum')})", "oldest trigger age (s)", "oldest"
                ),
            ],
            region=region,
            x=12,
            y=y,
        ),
        _graph(
            "Trigger delete failures / duplicate events",
            [
                _expr(
                    f"SUM({_search(ns, MetricName.TRIGGER_DELETE_FAILURE, 'Sum')})",
                    "trigger delete failures",
                    "del_fail",
                ),
                _expr(f"SUM({_search(ns, MetricName.DUPLICATE_EVENTS, 'Sum')})", "duplicate events", "dups"),
            ],
            region=region,
            x=18,
            y=y,
        ),
    ]
    y += 6
    widgets.append(_text("## Processing metrics", y=y))
    y += 1
    widgets += [
        _graph(
            "Processing duration (seconds)",
            [
                _expr(f"AVG({_search(ns, MetricName.PROCESSING_DURATION, 'Average')})", "average", "dur_avg"),
                _expr(f"MAX({_search(ns, MetricName.PROCESSING_DURATION, 'Maximum')})", "maximum", "dur_max"),
            ],
            region=region,
            x=0,
            y=y,
            y_label="seconds",
        ),
        _graph(
            "Processing success rate (%)",
            [
                _expr(f"SUM({_search(ns, MetricName.PROCESSING_SUCCESS, 'Sum')})", "success", "p_ok", visible=False),
                _expr(f"SUM({_search(ns, MetricName.PROCESSING_FAILURE, 'Sum')})", "failure", "p_fail", visible=False),
                _expr("100 * p_ok / (p_ok + p_fail)", "processing success %", "p_rate"),
            ],
            region=region,
            x=6,
            y=y,
            y_label="%",
        ),
        _graph(
            "Archive update success rate (%)",
            [
                _expr(
                    f"SUM({_search(ns, MetricName.ARCHIVE_UPDATE_SUCCESS, 'Sum')})", "success", "a_ok", visible=False
                ),
                _expr(
                    f"SUM({_search(ns, MetricName.ARCHIVE_UPDATE_FAILURE, 'Sum')})", "failure", "a_fail", visible=False
                ),
                _expr("100 * a_ok / (a_ok + a_fail)", "archive update success %", "a_rate"),
            ],
            region=region,
            x=12,
            y=y,
            y_label="%",
        ),
        _graph(
            "Email delivery rate",
            [
                _expr(f"SUM({_search(ns, MetricName.EMAILS_SENT, 'Sum')})", "emails sent", "emails"),
                _expr(f"SUM({_search(ns, MetricName.PROCESSING_FAILURE, 'Sum')})", "processing failures", "p_fail2"),
            ],
            region=region,
            x=18,
            y=y,
        ),
    ]
    y += 6
    widgets.append(_text("## Queue metrics", y=y))
    y += 1
    widgets += [
        _graph(
            "SQS queue depth (visible messages)",
            [
                _expr(
                    f"SUM({_sqs_search('ApproximateNumberOfMessagesVisible', 'Maximum', dlq=False)})",
                    "all queues",
                    "q_sum",
                ),
                _expr(
                    f"SORT({_sqs_search('ApproximateNumberOfMessagesVisible', 'Maximum', dlq=False)}, MAX, DESC, 5)",
                    "",
                    "q_top",
                ),
            ],
            region=region,
            x=0,
            y=y,
        ),
        _graph(
            "SQS message age (oldest, seconds)",
            [
                _expr(
                    f"MAX({_sqs_search('ApproximateAgeOfOldestMessage', 'Maximum', dlq=False)})",
                    "oldest message",
                    "q_age",
                ),
            ],
            region=region,
            x=6,
            y=y,
            y_label="seconds",
        ),
        _graph(
            "DLQ message count",
            [
                _expr(
                    f"SUM({_sqs_search('ApproximateNumberOfMessagesVisible', 'Maximum', dlq=True)})",
                    "all DLQs",
                    "dlq_sum",
                ),
                _expr(
                    f"SORT({_sqs_search('ApproximateNumberOfMessagesVisible', 'Maximum', dlq=True)}, MAX, DESC, 5)",
                    "",
                    "dlq_top",
                ),
            ],
            region=region,
            x=12,
            y=y,
        ),
        _graph(
            "Message processing rate (deleted messages)",
            [
                _expr(
                    f"SUM({_sqs_search('NumberOfMessagesDeleted', 'Sum', dlq=False)})", "messages processed", "q_done"
                ),
                _expr(
                    f"SUM({_sqs_search('NumberOfMessagesReceived', 'Sum', dlq=False)})", "messages received", "q_recv"
                ),
            ],
            region=region,
            x=18,
            y=y,
        ),
    ]
    y += 6
    widgets.append(_text("## System health", y=y))
    y += 1
    widgets += [
        _graph(
            "ECS task count",
            [
                _expr(
                    f"SUM({_ecs_search('ECS/ContainerInsights', 'RunningTaskCount', 'Average', cluster_name)})",
                    "running tasks",
                    "running",
                ),
                _expr(
                    f"SUM({_ecs_search('ECS/ContainerInsights', 'DesiredTaskCount', 'Average', cluster_name)})",
                    "desired tasks",
                    "desired",
                ),
            ],
            region=region,
            x=0,
            y=y,
        ),
        _graph(
            "ECS CPU utilization (%)",
            [
                _expr(
                    f"MAX({_ecs_search('AWS/ECS', 'CPUUtilization', 'Maximum', cluster_name)})",
                    "max service",
                    "cpu_max",
                ),
                _expr(
                    f"AVG({_ecs_search('AWS/ECS', 'CPUUtilization', 'Average', cluster_name)})", "average", "cpu_avg"
                ),
            ],
            region=region,
            x=6,
            y=y,
            y_label="%",
        ),
        _graph(
            "ECS memory utilization (%)",
            [
                _expr(
                    f"MAX({_ecs_search('AWS/ECS', 'MemoryUtilization', 'Maximum', cluster_name)})",
                    "max service",
                    "mem_max",
                ),
                _expr(
                    f"AVG({_ecs_search('AWS/ECS', 'MemoryUtilization', 'Average', cluster_name)})", "average", "mem_avg"
                ),
            ],
            region=region,
            x=12,
            y=y,
            y_label="%",
        ),
        _graph(
            "Errors by type",
            [
                _expr(
                    f"SUM({_search(ns, MetricName.PROCESSING_FAILURE, 'Sum')})", MetricName.PROCESSING_FAILURE, "e_proc"
                ),
                _expr(
                    f"SUM({_search(ns, MetricName.ARCHIVE_UPDATE_FAILURE, 'Sum')})",
                    MetricName.ARCHIVE_UPDATE_FAILURE,
                    "e_archive",
                ),
            ],
            region=region,
            x=18,
            y=y,
        ),
    ]
    widgets += email_delivery_widgets(region=region, namespace=ns, y=y + 6)
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": widgets}


def email_delivery_widgets(*, region: str, namespace: str, y: int) -> list[Widget]:
    """SES delivery outcomes of all customers (the delivery-event consumer's counters), two searches a graph.

    Rates are over ``DELIVERY_RATE_PERIOD`` like the customers' bounce and complaint alarms: bounce rate =
    bounced / (delivered + bounced), complaint rate = complained / delivered.
    """
    ns, hour = namespace, DELIVERY_RATE_PERIOD

    def total(metric: MetricName, id_: str, period: int = PERIOD) -> list[Any]:
        return _expr(_search(ns, metric, "Sum", period), metric, id_, visible=False)

    return [
        _text("## Email delivery", y=y),
        _graph(
            "Emails delivered / bounced",
            [
                _expr(f"SUM({_search(ns, MetricName.EMAILS_DELIVERED, 'Sum')})", MetricName.EMAILS_DELIVERED, "m_dlv"),
                _expr(f"SUM({_search(ns, MetricName.EMAILS_BOUNCED, 'Sum')})", MetricName.EMAILS_BOUNCED, "m_bnc"),
            ],
            region=region,
            x=0,
            y=y + 1,
        ),
        _graph(
            "Emails complained",
            [_expr(f"SUM({_search(ns, MetricName.EMAILS_COMPLAINED, 'Sum')})", MetricName.EMAILS_COMPLAINED, "m_cmp")],
            region=region,
            x=6,
            y=y + 1,
        ),
        _graph(
            "Bounce rate (%, hourly)",
            [
                total(MetricName.EMAILS_DELIVERED, "b_dlv", hour),
                total(MetricName.EMAILS_BOUNCED, "b_bnc", hour),
                _expr(
                    "IF(SUM(b_dlv) + SUM(b_bnc) > 0, 100 * SUM(b_bnc) / (SUM(b_dlv) + SUM(b_bnc)), 0)",
                    "bounce rate % (all customers)",
                    "r_bounce",
                ),
            ],
            region=region,
            x=12,
            y=y + 1,
            y_label="%",
            period=hour,
        ),
        _graph(
            "Complaint rate (%, hourly)",
            [
                total(MetricName.EMAILS_DELIVERED, "c_dlv", hour),
                total(MetricName.EMAILS_COMPLAINED, "c_cmp", hour),
                _expr(
                    "IF(SUM(c_dlv) > 0, 100 * SUM(c_cmp) / SUM(c_dlv), 0)",
                    "complaint rate % (all customers)",
                    "r_complaint",
                ),
            ],
            region=region,
            x=18,
            y=y + 1,
            y_label="%",
            period=hour,
        ),
    ]


def _metric(namespace: str, metric: str, dims: dict[str, str], **options: Any) -> list[Any]:
    row: list[Any] = [namespace, metric]
    for key, value in dims.items():
        row += [key, value]
    if options:
        row.append(options)
    return row


def customer_dashboard_body(
    *,
    customer_code: str,
    region: str,
    namespace: str = names.DEFAULT_METRICS_NAMESPACE,
    cluster_name: str = names.CLUSTER_NAME,
    alarm_arns: list[str] | None = None,
) -> dict[str, Any]:
    """One customer's dashboard: its custom metrics, its queue and DLQ, its ECS service, its alarms."""
    code = customer_code
    cc = {CUSTOMER_DIMENSION: code}
    queue = {"QueueName": names.queue_name(code)}
    dlq = {"QueueName": names.dead_letter_queue_name(code)}
    svc = {"ClusterName": cluster_name, "ServiceName": names.service_name(code)}
    ns = namespace
    widgets: list[Widget] = [_text(f"# Customer `{code}` — transient trigger pipeline", y=0)]
    widgets += [
        _graph(
            "Trigger Creation vs Deletion",
            [_metric(ns, MetricName.TRIGGER_CREATION_RATE, cc), _metric(ns, MetricName.TRIGGER_DELETION_RATE, cc)],
            region=region,
            x=0,
            y=1,
            width=8,
            stat="Sum",
        ),
        _graph(
            "Trigger Age (seconds)",
            [
                _metric(ns, MetricName.TRIGGER_AGE, cc, stat="Average"),
                _metric(ns, MetricName.TRIGGER_AGE, cc, stat="Maximum"),
                _metric(
                    ns,
                    MetricName.OLDEST_TRIGGER_AGE,
                    cc,
                    stat="Maximum",
                    label=f"{MetricName.OLDEST_TRIGGER_AGE} (sweeper)",
                ),
            ],
            region=region,
            x=8,
            y=1,
            width=8,
            y_label="seconds",
        ),
        _graph(
            "Archive Update Success/Failure",
            [_metric(ns, MetricName.ARCHIVE_UPDATE_SUCCESS, cc), _metric(ns, MetricName.ARCHIVE_UPDATE_FAILURE, cc)],
            region=region,
            x=16,
            y=1,
            width=8,
            stat="Sum",
        ),
        _graph(
            "Processing",
            [
                _metric(ns, MetricName.PROCESSING_SUCCESS, cc, stat="Sum"),
                _metric(ns, MetricName.PROCESSING_FAILURE, cc, stat="Sum"),
                _metric(ns, MetricName.EMAILS_SENT, cc, stat="Sum"),
                _metric(ns, MetricName.DUPLICATE_EVENTS, cc, stat="Sum"),
            ],
            region=region,
            x=0,
            y=7,
            width=8,
        ),
        _graph(
            "Processing duration (seconds)",
            [
                _metric(ns, MetricName.PROCESSING_DURATION, cc, stat="Average"),
                _metric(ns, MetricName.PROCESSING_DURATION, cc, stat="Maximum"),
            ],
            region=region,
            x=8,
            y=7,
            width=8,
            y_label="seconds",
        ),
        _graph(
            "Trigger hygiene",
            [
                _metric(ns, MetricName.TRIGGER_DELETE_FAILURE, cc, stat="Sum"),
                _metric(ns, MetricName.ORPHANED_TRIGGERS, cc, stat="Maximum"),
                _metric(ns, MetricName.TRIGGERS_RECREATED, cc, stat="Sum"),
                _metric(ns, MetricName.SWEEP_ERRORS, cc, stat="Sum"),
            ],
            region=region,
            x=16,
            y=7,
            width=8,
        ),
        _graph(
            "Queue",
            [
                _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, stat="Maximum"),
                _metric("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue, stat="Maximum"),
                _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq, stat="Maximum", label="DLQ visible"),
            ],
            region=region,
            x=0,
            y=13,
            width=8,
        ),
        _graph(
            "Oldest message age (seconds)",
            [_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", queue, stat="Maximum")],
            region=region,
            x=8,
            y=13,
            width=8,
            y_label="seconds",
        ),
        _graph(
            "ECS service",
            [
                _metric("ECS/ContainerInsights", "RunningTaskCount", svc, stat="Average"),
                _metric("AWS/ECS", "CPUUtilization", svc, stat="Average"),
                _metric("AWS/ECS", "MemoryUtilization", svc, stat="Average"),
            ],
            region=region,
            x=16,
            y=13,
            width=8,
        ),
    ]
    widgets += _customer_delivery_widgets(ns, cc, region=region, y=19)
    if alarm_arns:
        widgets.append(
            {
                "type": "alarm",
                "x": 0,
                "y": 25,
                "width": 24,
                "height": 4,
                "properties": {"title": "Alarms", "alarms": sorted(alarm_arns)},
            }
        )
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": widgets}


def _customer_delivery_widgets(ns: str, cc: dict[str, str], *, region: str, y: int) -> list[Widget]:
    """One customer's SES delivery outcomes and its bounce / complaint rates (as its rate alarms compute them)."""
    hour = DELIVERY_RATE_PERIOD

    def hourly(metric: MetricName, id_: str) -> list[Any]:
        return _metric(ns, metric, cc, stat="Sum", period=hour, id=id_, visible=False)

    return [
        _graph(
            "Email delivery",
            [
                _metric(ns, MetricName.EMAILS_SENT, cc, stat="Sum"),
                _metric(ns, MetricName.EMAILS_DELIVERED, cc, stat="Sum"),
                _metric(ns, MetricName.EMAILS_BOUNCED, cc, stat="Sum"),
                _metric(ns, MetricName.EMAILS_COMPLAINED, cc, stat="Sum"),
            ],
            region=region,
            x=0,
            y=y,
            width=12,
        ),
        _graph(
            "Bounce and complaint rate (%, hourly)",
            [
                hourly(MetricName.EMAILS_DELIVERED, "dlv"),
                hourly(MetricName.EMAILS_BOUNCED, "bnc"),
                hourly(MetricName.EMAILS_COMPLAINED, "cmp"),
                _expr(
                    "IF(FILL(dlv, 0) + FILL(bnc, 0) > 0, 100 * FILL(bnc, 0) / (FILL(dlv, 0) + FILL(bnc, 0)), 0)",
                    "bounce rate %",
                    "r_bounce",
                ),
                _expr(
                    "IF(FILL(dlv, 0) > 0, 100 * FILL(cmp, 0) / FILL(dlv, 0), 0)",
                    "complaint rate %",
                    "r_complaint",
                ),
            ],
            region=region,
            x=12,
            y=y,
            width=12,
            y_label="%",
            period=hour,
        ),
    ]


def searches_in_widget(widget: Widget) -> int:
    """How many SEARCH expressions a widget holds (each returns one series per customer)."""
    metrics = widget.get("properties", {}).get("metrics", [])
    count = 0
    for row in metrics:
        for item in row:
            if isinstance(item, dict) and "expression" in item:
                count += str(item["expression"]).count("SEARCH(")
    return count
