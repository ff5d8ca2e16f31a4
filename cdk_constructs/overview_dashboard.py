"""The platform overview dashboard.

The body comes from :func:`runtime.dashboard.overview_dashboard_body` (pure Python, printable
by the ops CLI). It uses SEARCH expressions only, so it does not change when customers are added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from runtime.contract import names
from runtime.contract.dashboards import overview_dashboard_body


@dataclass(frozen=True)
class OverviewDashboardProps:
    dashboard_name: str = names.OVERVIEW_DASHBOARD_NAME
    """Name of the dashboard. Default: ``runtime.contract.names.OVERVIEW_DASHBOARD_NAME``."""
    namespace: str = names.DEFAULT_METRICS_NAMESPACE
    """Namespace of the runtime's custom metrics. Default: ``runtime.contract.names.DEFAULT_METRICS_NAMESPACE``."""
    cluster_name: str = names.CLUSTER_NAME
    """ECS cluster of the processors. Default: ``runtime.contract.names.CLUSTER_NAME``."""


class OverviewDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: OverviewDashboardProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or OverviewDashboardProps()
        self.body = overview_dashboard_body(
            region=Stack.of(self).region, namespace=props.namespace, cluster_name=props.cluster_name
        )
        self.dashboard = cloudwatch.CfnDashboard(
            self,
            "Dashboard",
            dashboard_name=props.dashboard_name,
            dashboard_body=json.dumps(self.body, separators=(",", ":")),
        )
