"""PlatformStack (governance account): what all customers share.

Network (or your VPC), the ECS cluster ``change-processor-cluster`` with Container Insights, the
per-severity alarm topics, the overview dashboard and the sweeper. Nothing in here grows with the
number of customers except the sweeper's ``TTP_CUSTOMER_QUEUES`` (one entry per customer).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_constructs.alarm_topics import AlarmTopics, AlarmTopicsProps
from cdk_constructs.customer_processor import runtime_image
from cdk_constructs.overview_dashboard import OverviewDashboard, OverviewDashboardProps
from cdk_constructs.platform_network import ImportedVpc, PlatformNetwork, PlatformNetworkProps
from cdk_constructs.sweeper import Sweeper, SweeperProps
from runtime.contract import names
from stacks.config import PlatformConfig


def retention(days: int) -> logs.RetentionDays:
    for candidate in logs.RetentionDays:
        if _RETENTION_VALUES.get(candidate.name) == days:
            return candidate
    raise ValueError(f"unsupported log retention {days} days")


_RETENTION_VALUES = {
    "ONE_DAY": 1,
    "THREE_DAYS": 3,
    "FIVE_DAYS": 5,
    "ONE_WEEK": 7,
    "TWO_WEEKS": 14,
    "ONE_MONTH": 30,
    "TWO_MONTHS": 60,
    "THREE_MONTHS": 90,
    "FOUR_MONTHS": 120,
    "FIVE_MONTHS": 150,
    "SIX_MONTHS": 180,
    "ONE_YEAR": 365,
    "THIRTEEN_MONTHS": 400,
    "EIGHTEEN_MONTHS": 545,
    "TWO_YEARS": 731,
    "THREE_YEARS": 1096,
    "FIVE_YEARS": 1827,
    "SIX_YEARS": 2192,
    "SEVEN_YEARS": 2557,
    "EIGHT_YEARS": 2922,
    "NINE_YEARS": 3288,
    "TEN_YEARS": 3653,
}


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
