"""CloudWatch dashboard bodies as plain JSON-able dicts (no aws_cdk import).

This module lives in ``runtime/`` because the runtime image (and so the ops CLI) contains only this
package: ``python -m runtime dashboard-json`` prints these bodies (the runbook's ``put-dashboard``
input) and the CDK constructs put the same bodies into ``AWS::CloudWatch::Dashboard``, so what ops
sees is what is deployed.

Each dashboard is a table of widgets (:mod:`runtime.contract.dashboard_graphs`) whose rows are the metric
definitions of :mod:`runtime.contract.monitoring` (the ones the alarms read);
:mod:`runtime.contract.dashboard_widgets` places them left to right, a new row when 24 columns are full,
so no widget has hand-written coordinates.

The overview never lists customers: every customer graph uses ``SEARCH`` (and metric math over it), so
its widget count and body size are the same for 2 or 200 customers; its change-coordinator graphs read
the coordinator's own metrics. CloudWatch limits that matter:

* at most 500 widgets per dashboard and a 1 MB body (``DashboardBody``; we stay far below both);
* a ``SEARCH`` returns at most 500 time series, and a graph shows at most 500: each overview graph
  holds at most two searches, so up to 250 customers every graph is complete (see ``SEARCH_BUDGET``).
"""

from __future__ import annotations

from typing import Any

from runtime.contract import names
from runtime.contract.dashboard_graphs import COORDINATOR_GROUP, CUSTOMER_GRAPHS, OVERVIEW_GROUPS, RUNBOOK_GRAPHS
from runtime.contract.dashboard_widgets import (
    MAX_BODY_BYTES,
    MAX_SEARCHES_PER_WIDGET,
    MAX_WIDGETS,
    SEARCH_BUDGET,
    AlarmStatus,
    Context,
    Item,
    Text,
    body,
    layout,
    searches_in_widget,
)
from runtime.contract.monitoring import DELIVERY_RATE_PERIOD, coordinator_target, customer_target

OVERVIEW_DASHBOARD_NAME = names.OVERVIEW_DASHBOARD_NAME
customer_dashboard_name = names.customer_dashboard_name

__all__ = [
    "DELIVERY_RATE_PERIOD",
    "MAX_BODY_BYTES",
    "MAX_SEARCHES_PER_WIDGET",
    "MAX_WIDGETS",
    "OVERVIEW_DASHBOARD_NAME",
    "SEARCH_BUDGET",
    "customer_dashboard_body",
    "customer_dashboard_name",
    "overview_dashboard_body",
    "searches_in_widget",
]


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
    overview = layout(items, Context(region, namespace, cluster_name))
    coordinator = Context(region, namespace, cluster_name, coordinator_target(namespace, cluster_name))
    title, graphs = COORDINATOR_GROUP
    overview += layout([Text(title), *graphs], coordinator, y=max(w["y"] + w["height"] for w in overview))
    return body(overview)


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
    target = customer_target(code, namespace, cluster_name)
    return body(layout(items, Context(region, namespace, cluster_name, target)))
