"""The platform's network: bring your own VPC, or a small default one.

The default VPC has 2 AZs, public subnets (for the one NAT gateway only) and private-with-egress
subnets for the tasks, an S3 gateway endpoint (bucket traffic skips the NAT) and flow logs to
CloudWatch Logs. One NAT gateway is a cost choice (~$33/month): losing its AZ pauses processing
until the AZ returns; triggers wait in the queues meanwhile (no data loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_support.log_retention import DEFAULT_LOG_RETENTION_DAYS, retention


@dataclass(frozen=True)
class ImportedVpc:
    """An existing VPC to run the tasks in."""

    vpc_id: str
    """Its id (``vpc-...``). Required."""
    availability_zones: Sequence[str]
    """Its availability zones, one per private subnet. Required."""
    private_subnet_ids: Sequence[str]
    """Private subnets with a route to the internet (NAT) or VPC endpoints, one per zone. Required."""


@dataclass(frozen=True)
class PlatformNetworkProps:
    existing_vpc: ImportedVpc | None = None
    """Bring your own VPC (then nothing else here applies). Default: None (create a VPC)."""
    max_azs: int = 2
    """Availability zones of the created VPC. Default: 2."""
    nat_gateways: int = 1
    """NAT gateways of the created VPC (a cost choice, see the module docstring). Default: 1."""
    cidr: str = "10.80.0.0/20"
    """Address range of the created VPC. Default: ``10.80.0.0/20``."""
    flow_log_retention: logs.RetentionDays | None = None
    """Retention of the flow logs. Default: ``cdk_support.log_retention.DEFAULT_LOG_RETENTION_DAYS``."""


class PlatformNetwork(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: PlatformNetworkProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or PlatformNetworkProps()
        self.vpc: ec2.IVpc
        if props.existing_vpc is not None:
            existing = props.existing_vpc
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=existing.vpc_id,
                availability_zones=list(existing.availability_zones),
                private_subnet_ids=list(existing.private_subnet_ids),
            )
            self.task_subnets = ec2.SubnetSelection(subnets=self.vpc.private_subnets)
            return
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=props.flow_log_retention or retention(DEFAULT_LOG_RETENTION_DAYS),
            removal_policy=RemovalPolicy.DESTROY,
        )
        flow_log_role = iam.Role(self, "FlowLogRole", assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com"))
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(props.cidr),
            max_azs=props.max_azs,
            nat_gateways=props.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26),
                ec2.SubnetConfiguration(name="tasks", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=23),
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group, flow_log_role),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.vpc = vpc
        self.task_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
