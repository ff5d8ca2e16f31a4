"""One customer's queue processor: a Fargate service running ``python -m runtime worker``.

* Task role ``ttp-processor-{code}`` (``runtime.contract.names``), tagged ``customer_code={code}`` (the bucket
  policy matches the tag). It may: consume only this customer's queue (and decrypt with its key);
  read/write ``archive/*`` and read/delete ``customers/{code}/*``; list the bucket (404 instead of 403
  for missing keys); assume only this customer's sender role (and, with meetings, the contact-reader
  roles ``ttp-contact-reader-*``). Nothing else.
* Container environment: exactly the fields of ``runtime.settings.WorkerSettings`` (plus
  ``MeetingSettings`` with meetings) as ``TTP_*``; ``TTP_GRAPH_CLIENT_SECRET`` is an ECS secret from
  Secrets Manager, read by the *execution* role at task start (the task role cannot read it).
* Stop timeout 120 s (the Fargate maximum) > ``TTP_DRAIN_SECONDS`` (SIGTERM drain).
* Step scaling on the queue: +1 task as soon as a message waits (also from zero with
  ``scale_to_zero``), +2 when the backlog passes ``burst_backlog``; -1 after ``scale_in_idle_minutes``
  with nothing visible or in flight.
* Rolling deployments with the circuit breaker (rollback), private subnets, no public IP, HTTPS-only egress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_constructs.customer_queue import CustomerQueue
from cdk_support.environment import settings_environment
from cdk_support.nag import acknowledge, acknowledge_wildcard_resources
from runtime.contract import keys, names
from runtime.contract.settings import MeetingSettings, WorkerSettings

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"
WORKER_COMMAND = ("python", "-m", "runtime", "worker")
MAX_FARGATE_STOP_TIMEOUT = 120
_DEFAULT_DRAIN = float(WorkerSettings.model_fields["drain_seconds"].default)


def runtime_image(directory: Path = RUNTIME_DIR) -> ecs.ContainerImage:
    """The processor image built from ``runtime/`` (staged at synth; built by ``cdk deploy``)."""
    if not (directory / "Dockerfile").is_file():
        raise FileNotFoundError(f"{directory / 'Dockerfile'} is missing: the processor image is built from it")
    return ecs.ContainerImage.from_asset(
        str(directory), exclude=["**/__pycache__", "**/*.pyc", ".pytest_cache", ".mypy_cache"]
    )


@dataclass(frozen=True)
class ProcessorMeetings:
    """Microsoft Graph settings for meetings; the client secret stays in Secrets Manager."""

    tenant_id: str
    client_id: str
    organizer: str
    client_secret: secretsmanager.ISecret
    contact_reader_external_id: str
    calendar_contact_roles: Mapping[str, str] = field(default_factory=dict)
    graph_base_url: str = str(MeetingSettings.model_fields["graph_base_url"].default)
    graph_authority_host: str = str(MeetingSettings.model_fields["graph_authority_host"].default)


@dataclass(frozen=True)
class CustomerProcessorProps:
    customer_code: str
    cluster: ecs.ICluster
    queue: CustomerQueue
    bucket_name: str
    customer_account: str
    sender_address: str
    sender_external_id: str
    image: ecs.ContainerImage | None = None
    contact_list_name: str = names.DEFAULT_CONTACT_LIST_NAME
    send_rate_per_second: float = 10.0
    ses_region: str | None = None
    metrics_namespace: str = names.DEFAULT_METRICS_NAMESPACE
    log_level: str = "INFO"
    max_concurrency: int = 4
    drain_seconds: float = _DEFAULT_DRAIN
    stop_timeout_seconds: int = MAX_FARGATE_STOP_TIMEOUT
    cpu: int = 256
    memory_limit_mib: int = 512
    min_capacity: int = 1
    max_capacity: int = 2
    scale_to_zero: bool = False
    burst_backlog: int = 20
    scale_in_idle_minutes: int = 10
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    subnets: ec2.SubnetSelection | None = None
    meetings: ProcessorMeetings | None = None


class CustomerProcessor(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerProcessorProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.props = props
        stack = Stack.of(self)
        partition = stack.partition
        self._validate(props)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=names.log_group_name(code),
            retention=props.log_retention,
            removal_policy=props.log_removal_policy,
        )

        self.task_role = iam.Role(
            self,
            "TaskRole",
            role_name=names.processor_role_name(code),
            description=f"Queue processor of customer {code}",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{stack.region}:{stack.account}:*"},
                }
            ),
        )
        Tags.of(self.task_role).add(names.CUSTOMER_TAG_KEY, code)
        self._grant(props, partition)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=names.service_name(code),
            cpu=props.cpu,
            memory_limit_mib=props.memory_limit_mib,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.task_definition.add_volume(name="tmp")

        sender_role_arn = names.role_arn(props.customer_account, names.sender_role_name(code), partition)
        environment = settings_environment(
            WorkerSettings,
            {
                "bucket_name": props.bucket_name,
                "metrics_namespace": props.metrics_namespace,
                "log_level": props.log_level,
                "customer_code": code,
                "sender_role_arn": sender_role_arn,
                "sender_external_id": props.sender_external_id,
                "ses_region": props.ses_region or stack.region,
                "from_address": props.sender_address,
                "contact_list_name": props.contact_list_name,
                "send_rate_per_second": props.send_rate_per_second,
                "visibility_timeout_seconds": props.queue.props.visibility_timeout_seconds,
                "queue_url": names.queue_url(stack.region, stack.account, code),
                "max_concurrency": props.max_concurrency,
                "drain_seconds": props.drain_seconds,
            },
        )
        secrets: dict[str, ecs.Secret] = {}
        if props.meetings is not None:
            m = props.meetings
            environment.update(
                settings_environment(
                    MeetingSettings,
                    {
                        "graph_tenant_id": m.tenant_id,
                        "graph_client_id": m.client_id,
                        "meeting_organizer": m.organizer,
                        "graph_base_url": m.graph_base_url,
                        "graph_authority_host": m.graph_authority_host,
                        "calendar_contact_roles": dict(sorted(m.calendar_contact_roles.items())),
                        "contact_reader_external_id": m.contact_reader_external_id,
                    },
                    exclude=["graph_client_secret"],
                )
            )
            secrets["TTP_GRAPH_CLIENT_SECRET"] = ecs.Secret.from_secrets_manager(m.client_secret)

        self.container = self.task_definition.add_container(
            "worker",
            container_name="worker",
            image=props.image or runtime_image(),
            command=list(WORKER_COMMAND),
            environment=dict(sorted(environment.items())),
            secrets=secrets or None,
            essential=True,
            stop_timeout=Duration.seconds(props.stop_timeout_seconds),
            readonly_root_filesystem=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="worker", log_group=self.log_group),
        )
        self.container.add_mount_points(ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False))

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.cluster.vpc,
            description=f"Processor of customer {code}: no ingress, HTTPS egress only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and Graph")

        self.service = ecs.FargateService(
            self,
            "Service",
            service_name=names.service_name(code),
            cluster=props.cluster,
            task_definition=self.task_definition,
            assign_public_ip=False,
            vpc_subnets=props.subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            enable_ecs_managed_tags=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            platform_version=ecs.FargatePlatformVersion.LATEST,
        )
        self._autoscale(props)
        self._acknowledge(props)

    # ------------------------------------------------------------------------------------------------

    @staticmethod
    def _validate(props: CustomerProcessorProps) -> None:
        stop = props.stop_timeout_seconds
        if stop > MAX_FARGATE_STOP_TIMEOUT:
            raise ValueError(f"stop_timeout {stop}s exceeds the Fargate maximum of {MAX_FARGATE_STOP_TIMEOUT}s")
        if props.drain_seconds >= stop:
            raise ValueError(f"drain_seconds ({props.drain_seconds}) must be below the stop timeout ({stop}s)")
        if props.drain_seconds >= props.queue.props.visibility_timeout_seconds:
            raise ValueError("drain_seconds must be below the queue's visibility timeout")
        if props.scale_to_zero and props.min_capacity != 0:
            raise ValueError("scale_to_zero needs min_capacity=0")
        if not props.scale_to_zero and props.min_capacity < 1:
            raise ValueError("min_capacity 0 needs scale_to_zero=True")
        if props.max_capacity < max(1, props.min_capacity):
            raise ValueError("max_capacity must be >= max(1, min_capacity)")

    def _grant(self, props: CustomerProcessorProps, partition: str) -> None:
        code = props.customer_code
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"
        props.queue.grant_consume(self.task_role)
        statements = [
            iam.PolicyStatement(
                sid="ReadWriteArchive",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[f"{bucket_arn}/{keys.ARCHIVE_PREFIX}*"],
            ),
            iam.PolicyStatement(
                sid="ReadDeleteOwnTriggers",
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=[f"{bucket_arn}/{keys.trigger_prefix(code)}*"],
            ),
            iam.PolicyStatement(sid="ListBucketFor404", actions=["s3:ListBucket"], resources=[bucket_arn]),
            iam.PolicyStatement(
                sid="AssumeOwnSenderRole",
                actions=["sts:AssumeRole"],
                resources=[names.role_arn(props.customer_account, names.sender_role_name(code), partition)],
            ),
        ]
        if props.meetings is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="AssumeContactReaderRoles",
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{partition}:iam::*:role/{names.CONTACT_READER_ROLE_PREFIX}*"],
                )
            )
        for statement in statements:
            self.task_role.add_to_policy(statement)

    def _autoscale(self, props: CustomerProcessorProps) -> None:
        queue = props.queue.queue
        one_minute = Duration.minutes(1)
        visible = queue.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum")
        in_flight = queue.metric_approximate_number_of_messages_not_visible(period=one_minute, statistic="Maximum")
        backlog = cloudwatch.MathExpression(
            expression="FILL(visible, 0) + FILL(inflight, 0)",
            using_metrics={"visible": visible, "inflight": in_flight},
            label="messages waiting or in flight",
            period=one_minute,
        )
        self.scaling = self.service.auto_scale_task_count(
            min_capacity=props.min_capacity, max_capacity=props.max_capacity
        )
        self.scaling.scale_on_metric(
            "ScaleOutOnWaitingMessages",
            metric=visible,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            scaling_steps=[
                appscaling.ScalingInterval(upper=1, change=0),
                appscaling.ScalingInterval(lower=1, upper=props.burst_backlog, change=1),
                appscaling.ScalingInterval(lower=props.burst_backlog, change=2),
            ],
            evaluation_periods=1,
            datapoints_to_alarm=1,
            cooldown=Duration.seconds(60),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        self.scaling.scale_on_metric(
            "ScaleInWhenIdle",
            metric=backlog,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            scaling_steps=[
                appscaling.ScalingInterval(upper=0, change=-1),
                appscaling.ScalingInterval(lower=1, change=0),
            ],
            evaluation_periods=props.scale_in_idle_minutes,
            datapoints_to_alarm=props.scale_in_idle_minutes,
            cooldown=Duration.seconds(300),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )

    def _acknowledge(self, props: CustomerProcessorProps) -> None:
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The TTP_* variables are non-secret configuration the runtime validates at start "
            "(runtime.settings); the one secret, TTP_GRAPH_CLIENT_SECRET, is injected from Secrets Manager.",
        )
        partition = Stack.of(self).partition
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"
        acknowledge_wildcard_resources(
            self.task_role,
            [f"{bucket_arn}/{keys.ARCHIVE_PREFIX}*"],
            "DESIGN §7: every processor reads and conditionally rewrites any archive/{changeId}.json "
            "(a change spans several customers); object names are not known in advance.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"{bucket_arn}/{keys.trigger_prefix(props.customer_code)}*"],
            "Only this customer's own trigger prefix; trigger names are change ids, unknown in advance.",
        )
        if props.meetings is not None:
            acknowledge_wildcard_resources(
                self.task_role,
                [f"arn:{partition}:iam::*:role/{names.CONTACT_READER_ROLE_PREFIX}*"],
                "Meetings need every customer's read-only contact-reader role; each role trusts only "
                "ttp-processor-* of the governance account with the agreed ExternalId, and listing 200 ARNs "
                "would exceed the IAM inline policy size limit.",
            )
        execution_role = self.task_definition.execution_role
        if execution_role is not None:
            acknowledge_wildcard_resources(
                execution_role,
                ["*"],
                "ecr:GetAuthorizationToken has no resource-level permissions (CDK execution-role default).",
            )
