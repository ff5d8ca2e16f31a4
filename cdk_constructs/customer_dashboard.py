"""One customer's CloudWatch dashboard (body from :mod:`runtime.contract.dashboards`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from cdk_support.stack_facts import stack_facts
from runtime.contract import keys, names
from runtime.contract.dashboards import customer_dashboard_body


@dataclass(frozen=True)
class CustomerDashboardProps:
    customer_code: str
    """The customer (``runtime.contract.keys`` rules); the dashboard name derives from it. Required."""
    namespace: str = names.DEFAULT_METRICS_NAMESPACE
    """Namespace of the runtime's custom metrics. Default: ``runtime.contract.names.DEFAULT_METRICS_NAMESPACE``."""
    cluster_name: str = names.CLUSTER_NAME
    """ECS cluster of the processor service. Default: ``runtime.contract.names.CLUSTER_NAME``."""
    alarm_arns: tuple[str, ...] = ()
    """Alarms shown in the alarm-status widget (plain ARNs, no tokens). Default: none (no widget)."""


class CustomerDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerDashboardProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.body = customer_dashboard_body(
            customer_code=code,
            region=stack_facts(scope).region,
            namespace=props.namespace,
            cluster_name=props.cluster_name,
            alarm_arns=list(props.alarm_arns),
        )
        self.dashboard = cloudwatch.CfnDashboard(
            self,
            "Dashboard",
            dashboard_name=names.customer_dashboard_name(code),
            dashboard_body=json.dumps(self.body, separators=(",", ":")),
        )
