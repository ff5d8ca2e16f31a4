"""PlatformStack (governance account): what all customers share.

Network (or your VPC), the ECS cluster ``change-processor-cluster`` with Container Insights, the
per-severity alarm topics, the overview dashboard, the sweeper and the change coordinator (its queue,
service and alarms, and the SES delivery-events bus and queue it consumes). Nothing in here grows with
the number of customers except the sweeper's ``TTP_CUSTOMER_QUEUES``, the delivery-events bus policy and
rule (one entry per customer *account*) and, with meetings, the coordinator's
``TTP_CALENDAR_CONTACT_ROLES`` (one entry per customer each).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_constructs.alarm_topics import AlarmTopics, AlarmTopicsProps
from cdk_constructs.change_coordinator import ChangeCoordinator, ChangeCoordinatorProps, CoordinatorMeetings
from cdk_constructs.coordinator_alarms import CoordinatorAlarms, CoordinatorAlarmsProps
from cdk_constructs.overview_dashboard import OverviewDashboard, OverviewDashboardProps
from cdk_constructs.platform_network import ImportedVpc, PlatformNetwork, PlatformNetworkProps
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
                cpu_architecture=config.cpu_architecture,
                subnets=self.network.task_subnets,
                interval_minutes=config.sweeper_interval_minutes,
                metrics_namespace=config.metrics_namespace,
                log_retention=retention(config.log_retention_days),
            ),
        )
        self.coordinator = ChangeCoordinator(
            self,
            "Coordinator",
            ChangeCoordinatorProps(
                cluster=self.cluster,
                bucket_name=config.metadata_bucket_name,
                source_account=config.accounts.management,
                routing=config.routing,
                visibility_timeout_seconds=config.visibility_timeout_seconds,
                max_receive_count=config.max_receive_count,
                contact_list_name=_contact_list_name(config),
                cpu_architecture=config.cpu_architecture,
                subnets=self.network.task_subnets,
                metrics_namespace=config.metrics_namespace,
                log_retention=retention(config.log_retention_days),
                meetings=self._meetings(config),
                delivery_customer_accounts={c.code: c.account for c in config.customers},
            ),
        )
        self.coordinator_alarms = CoordinatorAlarms(
            self,
            "CoordinatorAlarms",
            CoordinatorAlarmsProps(topics=dict(self.alarm_topics.topics), namespace=config.metrics_namespace),
        )

    def _meetings(self, config: PlatformConfig) -> CoordinatorMeetings | None:
        if config.meetings is None:
            return None
        m = config.meetings
        secret = (
            secretsmanager.Secret.from_secret_complete_arn(self, "GraphClientSecret", m.client_secret)
            if m.client_secret.startswith("arn:")
            else secretsmanager.Secret.from_secret_name_v2(self, "GraphClientSecret", m.client_secret)
        )
        return CoordinatorMeetings(
            tenant_id=m.tenant_id,
            client_id=m.client_id,
            organizer=m.organizer,
            client_secret=secret,
            contact_reader_external_id=m.contact_reader_external_id,
            calendar_contact_roles={
                c.code: names.role_arn(c.account, names.contact_reader_role_name(c.code), self.partition)
                for c in config.customers
            },
            contact_reader_external_ids={
                c.code: c.contact_reader_external_id for c in config.customers if c.contact_reader_external_id
            },
            graph_base_url=m.graph_base_url,
            graph_authority_host=m.graph_authority_host,
        )


def _contact_list_name(config: PlatformConfig) -> str:
    """The customers' common contact list (the coordinator reads every customer's ``aws-calendar`` subscribers
    from one list name); the default when there are none or they differ."""
    lists = {c.contact_list_name for c in config.customers}
    return lists.pop() if len(lists) == 1 else names.DEFAULT_CONTACT_LIST_NAME
