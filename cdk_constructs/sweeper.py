"""The sweeper: a scheduled Fargate task (``python -m runtime sweep``) every few minutes.

It lists ``customers/``, emits ``OrphanedTriggers`` / ``OldestTriggerAge`` per customer (EMF, through
its log group: no CloudWatch permission needed), deletes triggers whose archive already records the
result, and re-drives stuck triggers by sending their event to the customer's queue again.

Role ``ttp-sweeper`` (deterministic: the bucket policy in the management account names it): list the
bucket, read ``archive/*`` and ``customers/*``, delete and tag ``customers/*`` (re-drive attempts);
``sqs:SendMessage`` to the customer queues (name pattern ``customer-*-changes``, so onboarding does not
rewrite the policy) and the matching KMS use through SQS only. Environment: exactly
``runtime.settings.OpsSettings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_support.environment import settings_environment
from cdk_support.nag import acknowledge, acknowledge_wildcard_resources
from runtime.contract import keys, names
from runtime.contract.settings import OpsSettings

SWEEP_COMMAND = ("python", "-m", "runtime", "sweep")
# Re-drive attempts are recorded as tags on the trigger's version (no ObjectCreated event, no archive write).
SWEEPER_TAGGING_ACTIONS = (
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
)


@dataclass(frozen=True)
class SweeperProps:
    cluster: ecs.ICluster
    bucket_name: str
    customer_queues: Mapping[str, str]
    """Customer code -> queue URL (``TTP_CUSTOMER_QUEUES``)."""
    image: ecs.ContainerImage
    subnets: ec2.SubnetSelection | None = None
    interval_minutes: int = 5
    metrics_namespace: str = names.DEFAULT_METRICS_NAMESPACE
    log_level: str = "INFO"
    cpu: int = 256
    memory_limit_mib: int = 512
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS


class Sweeper(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: SweeperProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        partition, region, account = stack.partition, stack.region, stack.account
        for code in props.customer_queues:
            keys.validate_customer_code(code)
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"

        self.task_role = iam.Role(
            self,
            "TaskRole",
            role_name=names.SWEEPER_ROLE_NAME,
            description="Transient-trigger sweeper: finds orphaned/stuck triggers and re-drives them",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account}:*"},
                }
            ),
        )
        for statement in (
            iam.PolicyStatement(sid="ListBucket", actions=["s3:ListBucket"], resources=[bucket_arn]),
            iam.PolicyStatement(
                sid="ReadArchiveAndTriggers",
                actions=["s3:GetObject"],
                resources=[f"{bucket_arn}/{keys.ARCHIVE_PREFIX}*", f"{bucket_arn}/{keys.CUSTOMERS_PREFIX}*"],
            ),
            iam.PolicyStatement(
                sid="DeleteAndTagTriggers",
                actions=["s3:DeleteObject", *SWEEPER_TAGGING_ACTIONS],
                resources=[f"{bucket_arn}/{keys.CUSTOMERS_PREFIX}*"],
            ),
            iam.PolicyStatement(
                sid="RedriveToCustomerQueues",
                actions=["sqs:SendMessage"],
                resources=[f"arn:{partition}:sqs:{region}:{account}:{names.QUEUE_NAME_PATTERN}"],
            ),
            iam.PolicyStatement(
                sid="EncryptForCustomerQueues",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[f"arn:{partition}:kms:{region}:{account}:key/*"],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
            ),
        ):
            self.task_role.add_to_policy(statement)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=names.SWEEPER_LOG_GROUP_NAME,
            retention=props.log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family="ttp-sweeper",
            cpu=props.cpu,
            memory_limit_mib=props.memory_limit_mib,
            task_role=self.task_role,
        )
        self.task_definition.add_volume(name="tmp")
        environment = settings_environment(
            OpsSettings,
            {
                "bucket_name": props.bucket_name,
                "metrics_namespace": props.metrics_namespace,
                "log_level": props.log_level,
                "customer_queues": dict(sorted(props.customer_queues.items())),
                "cluster_name": props.cluster.cluster_name,
            },
        )
        self.container = self.task_definition.add_container(
            "sweep",
            container_name="sweep",
            image=props.image,
            command=list(SWEEP_COMMAND),
            environment=dict(sorted(environment.items())),
            essential=True,
            readonly_root_filesystem=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="sweep", log_group=self.log_group),
        )
        self.container.add_mount_points(ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False))

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.cluster.vpc,
            description="Sweeper: no ingress, HTTPS egress only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")

        self.rule = events.Rule(
            self,
            "Schedule",
            rule_name="ttp-sweeper-schedule",
            description="Runs the transient-trigger sweeper",
            schedule=events.Schedule.rate(Duration.minutes(props.interval_minutes)),
            targets=[
                targets.EcsTask(
                    cluster=props.cluster,
                    task_definition=self.task_definition,
                    task_count=1,
                    subnet_selection=props.subnets
                    or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                    security_groups=[self.security_group],
                    assign_public_ip=False,
                    platform_version=ecs.FargatePlatformVersion.LATEST,
                )
            ],
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The TTP_* variables are non-secret configuration (runtime.settings.OpsSettings).",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"{bucket_arn}/{keys.ARCHIVE_PREFIX}*", f"{bucket_arn}/{keys.CUSTOMERS_PREFIX}*"],
            "The sweeper inspects every customer's triggers and their archive documents (DESIGN §6); "
            "object names are change ids, unknown in advance. It can delete only under customers/.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"arn:{partition}:sqs:{region}:{account}:{names.QUEUE_NAME_PATTERN}"],
            "Re-drives go to any customer's queue; the name pattern keeps onboarding from rewriting this role.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"arn:{partition}:kms:{region}:{account}:key/*"],
            "Queue keys have generated ids; use is limited to SQS in this account (kms:ViaService).",
        )
        execution_role = self.task_definition.execution_role
        if execution_role is not None:
            acknowledge_wildcard_resources(
                execution_role,
                ["*"],
                "ecr:GetAuthorizationToken has no resource-level permissions (CDK execution-role default).",
            )
        events_role = self.task_definition.node.try_find_child("EventsRole")
        if events_role is not None:
            acknowledge_wildcard_resources(
                events_role,
                [f"arn:{partition}:ecs:{region}:*:task/{props.cluster.cluster_name}/*"],
                "CDK's EcsTask target lets EventBridge tag the tasks it starts in this cluster (task ids are "
                "unknown in advance).",
            )
