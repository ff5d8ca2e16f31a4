"""PlatformStack (governance account): what all customers share.

Network (or your VPC), the ECS cluster ``change-processor-cluster`` with Container Insights, the
per-severity alarm topics, the overview dashboard and the sweeper. Nothing in here grows with the
number of customers except the sweeper's ``TTP_CUSTOMER_QUEUES`` (one entry per customer).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from cdk_constructs.alarm_topics import AlarmTopics, AlarmTopicsProps
from cdk_constructs.overview_dashboard import OverviewDashboard, OverviewDashboardProps
from cdk_constructs.platform_network import ImportedVpc, PlatformNetwork, PlatformNetworkProps
from cdk_constructs.runtime_task import runtime_image
from cdk_constructs.sweeper import Sweeper, SweeperProps
from cdk_support.log_retention import retention
from runtime.contract import names
from stacks.config import PlatformConfig


class PlatformStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        region, account = config.accounts.region, config.accounts.governance
        existing = None
        if config.vpc is not None:
            existing = ImportedVpc(
                vpc_id=config.vpc.vpc_id,
                availability_zones=config.vpc.availability_zones,
                private_subnet_ids=config.vpc.private_subnet_ids,
            )
        self.network = PlatformNetwork(
            self,
            "Network",
            PlatformNetworkProps(existing_vpc=existing, flow_log_retention=retention(config.log_retention_days)),
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=names.CLUSTER_NAME,
            vpc=self.network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.alarm_topics = AlarmTopics(self, "AlarmTopics", AlarmTopicsProps(emails=dict(config.alarm_emails)))
        self.overview = OverviewDashboard(
            self,
            "Overview",
            OverviewDashboardProps(namespace=config.metrics_namespace, cluster_name=names.CLUSTER_NAME),
        )
        self.sweeper = Sweeper(
            self,
            "Sweeper",
            SweeperProps(
                cluster=self.cluster,
                bucket_name=config.metadata_bucket_name,
                customer_queues={c.code: names.queue_url(region, account, c.code) for c in config.customers},
                image=runtime_image(),
                subnets=self.network.task_subnets,
                interval_minutes=config.sweeper_interval_minutes,
                metrics_namespace=config.metrics_namespace,
                log_retention=retention(config.log_retention_days),
            ),
        )
