"""``dashboard-json``: the CloudWatch dashboards exactly as the platform stack deploys them, for
``aws cloudwatch put-dashboard`` by hand (a dashboard deleted or edited in the console, a new region).

The bodies come from ``runtime.contract.dashboards`` (the stack uses the same functions); this module
only picks which ones and refuses a body CloudWatch would reject.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from runtime.contract import dashboards
from runtime.contract.settings import BucketSettings, CustomerCode, OpsSettings
from runtime.ops.errors import OpsError


class DashboardSettings(BucketSettings):
    """What ``dashboard-json`` reads of the ops settings: the namespace and the cluster (the fields of
    ``OpsSettings``, reused). It neither reads nor writes the bucket: ``TTP_BUCKET_NAME`` is not required."""

    bucket_name: str = Field("", description="Not used by dashboard-json.")
    cluster_name: Annotated[str, OpsSettings.model_fields["cluster_name"]]


class AllDashboardsSettings(DashboardSettings):
    """``dashboard-json --all`` without ``--customers`` also reads the customers (``TTP_CUSTOMER_QUEUES``);
    only then, so that variable cannot stop the other forms."""

    customer_queues: Annotated[dict[CustomerCode, str], OpsSettings.model_fields["customer_queues"]]


def dashboard_payload(
    *,
    region: str,
    namespace: str,
    cluster_name: str,
    customer: str | None = None,
    every_customer: list[str] | None = None,
) -> Any:
    """One body (the overview, or ``customer``'s), or with ``every_customer`` {dashboard name: body} for
    the overview and each of them. Raises :class:`OpsError` when a body is beyond CloudWatch's limits."""
    if every_customer is not None:
        payload: Any = {
            dashboards.OVERVIEW_DASHBOARD_NAME: dashboards.overview_dashboard_body(
                region=region, namespace=namespace, cluster_name=cluster_name
            )
        }
        for code in every_customer:
            payload[dashboards.customer_dashboard_name(code)] = dashboards.customer_dashboard_body(
                customer_code=code, region=region, namespace=namespace, cluster_name=cluster_name
            )
        check_sizes(payload.values())
        return payload
    if customer:
        body = dashboards.customer_dashboard_body(
            customer_code=customer, region=region, namespace=namespace, cluster_name=cluster_name
        )
    else:
        body = dashboards.overview_dashboard_body(region=region, namespace=namespace, cluster_name=cluster_name)
    check_sizes([body])
    return body


def check_sizes(bodies: Any) -> None:
    for body in bodies:
        size = len(json.dumps(body, separators=(",", ":")))
        if size > dashboards.MAX_BODY_BYTES or len(body["widgets"]) > dashboards.MAX_WIDGETS:
            raise OpsError(f"dashboard body too large for CloudWatch ({size} bytes, {len(body['widgets'])} widgets)")
