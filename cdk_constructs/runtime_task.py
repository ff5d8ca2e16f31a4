"""The base of every construct that runs the runtime image (``runtime/``) as a Fargate task.

Like ``aws_ecs_patterns`` (a ``...ServiceBase`` and thin ``Fargate...`` variants), the shared part lives
here and the variants add what makes them differ: :class:`~cdk_constructs.customer_processor.CustomerProcessor`
adds a scaled ``FargateService`` on a queue, :class:`~cdk_constructs.sweeper.Sweeper` an EventBridge schedule.

What every runtime task has, built by :class:`RuntimeTaskBase` as children of the variant itself
(so the construct paths, and with them the logical ids, are the variant's ``Logs``, ``TaskRole``,
``TaskDefinition``, ``SecurityGroup``):

* a log group with a deterministic name (``runtime.contract.names``) and the platform's retention;
* a task role that only ECS tasks of this account and region may assume (``aws:SourceAccount`` and
  ``aws:SourceArn`` conditions against the confused deputy);
* a Fargate task definition for Linux on ``cpu_architecture`` (the default image is built for the same
  platform) with a writable ``/tmp`` volume and a read-only root file system, one
  essential container running ``python -m runtime <command>`` from the runtime image;
* the container environment: exactly the fields of the runtime's settings models
  (``runtime.contract.settings``) as ``TTP_*`` (:func:`cdk_support.environment.settings_environment`),
  the :class:`~runtime.contract.settings.BucketSettings` fields taken from the props;
* an init process in the container (``initProcessEnabled``): it forwards signals to ``python`` and reaps
  children, so the runtime never runs as PID 1 (which the kernel spares SIGTERM's default action);
* for a long-running service (``RuntimeTaskSpec.long_running``, not the one-shot sweeper): a container
  health check, ``python -m runtime healthcheck``, that fails when the worker's receive loop has stopped
  iterating (:mod:`runtime.worker.liveness`), with a start period as the startup grace;
* for a service that scales in (``RuntimeTaskSpec.scale_in_protection``: the customer processor): the task
  role's permission for the ECS agent's task scale-in protection endpoint
  (:mod:`runtime.worker.task_protection`), only on tasks carrying the variant's ``task_tags`` (which the
  variant's service propagates to its tasks);
* a security group without ingress and with HTTPS egress only;
* the cdk-nag acknowledgements every such task needs (non-secret environment, ECR's ``*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic import BaseModel

from cdk_support import defaults
from cdk_support.environment import setting_default, settings_environment
from cdk_support.log_retention import DEFAULT_LOG_RETENTION_DAYS, retention
from cdk_support.nag import acknowledge, acknowledge_wildcard_resources
from cdk_support.stack_facts import StackFacts, stack_facts
from runtime.contract.settings import BucketSettings

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"
DEFAULT_LOG_RETENTION = retention(DEFAULT_LOG_RETENTION_DAYS)
"""The platform's default log retention as the ``aws_logs`` member the constructs take."""


IMAGE_PLATFORMS: Mapping[defaults.CpuArchitectureName, ecr_assets.Platform] = {
    "X86_64": ecr_assets.Platform.LINUX_AMD64,
    "ARM64": ecr_assets.Platform.LINUX_ARM64,
}
"""The platform ``docker build`` targets for each task CPU architecture."""


RUNTIME_IMAGE_EXCLUDE = ("**/__pycache__", "**/*.pyc", ".pytest_cache", ".mypy_cache")
"""Paths of ``runtime/`` left out of the image's build context (and of its asset hash)."""


def runtime_image(
    directory: Path = RUNTIME_DIR, cpu_architecture: defaults.CpuArchitectureName = defaults.CPU_ARCHITECTURE
) -> ecs.ContainerImage:
    """The runtime image built from ``runtime/`` for ``cpu_architecture`` (staged at synth; built by
    ``cdk deploy``). The platform is pinned: built on another architecture (Apple Silicon, Graviton CI)
    an unpinned image fails in the task with "exec format error"."""
    if not (directory / "Dockerfile").is_file():
        raise FileNotFoundError(f"{directory / 'Dockerfile'} is missing: the processor image is built from it")
    return ecs.ContainerImage.from_asset(
        str(directory),
        exclude=list(RUNTIME_IMAGE_EXCLUDE),
        platform=IMAGE_PLATFORMS[cpu_architecture],
    )


HEALTH_CHECK_INTERVAL = Duration.seconds(30)
"""How often ECS runs the health check (the ECS default)."""
HEALTH_CHECK_TIMEOUT = Duration.seconds(5)
"""One check reads one small file (well under a second); slower means the container is starved."""
HEALTH_CHECK_RETRIES = 3
"""Failed checks in a row before the container is UNHEALTHY: a stuck loop is replaced about
``LIVENESS_MARGIN_SECONDS`` + receive wait + 3 checks 30 s apart after its last iteration."""
HEALTH_CHECK_START_PERIOD = Duration.seconds(60)
"""Startup grace: failures in the first minute (settings, clients, before the first loop iteration
writes the record) do not count. This, not the service's ``healthCheckGracePeriod``, is the grace a
task without a load balancer needs (docs/infrastructure.md)."""


def runtime_command(command: str) -> list[str]:
    """The container command of a runtime entry point: ``python -m runtime <command>``."""
    return ["python", "-m", "runtime", command]


@dataclass(frozen=True, kw_only=True)
class RuntimeTaskBaseProps:
    """What every task running the runtime image takes (the variants' props extend it)."""

    cluster: ecs.ICluster
    """The ECS cluster the task runs in (its VPC hosts the security group). Required."""
    bucket_name: str
    """The metadata bucket (``TTP_BUCKET_NAME``). Required."""
    cpu_architecture: defaults.CpuArchitectureName = defaults.CPU_ARCHITECTURE
    """CPU architecture of the task (``"ARM64"``: Graviton) and the platform the default image is built
    for; one property, so the two cannot differ. Default: ``cdk_support.defaults.CPU_ARCHITECTURE`` (``"X86_64"``)."""
    image: ecs.ContainerImage | None = None
    """The runtime image; one you give must be built for ``cpu_architecture``.
    Default: built from ``runtime/`` for ``cpu_architecture`` (:func:`runtime_image`)."""
    execution_role: iam.IRole | None = None
    """The ECS agent's role (image pull, log writes); one you give must already allow both, since grants to an
    imported role add nothing (``TtpCustomer`` gives the platform's shared
    :class:`~cdk_constructs.task_execution_role.TaskExecutionRole`). Default: None (CDK creates one for the
    task definition, granted what the image and the log group need)."""
    subnets: ec2.SubnetSelection | None = None
    """Subnets of the tasks (no public IP). Default: the cluster VPC's private subnets with egress."""
    metrics_namespace: str = str(setting_default(BucketSettings, "metrics_namespace"))
    """CloudWatch namespace of the EMF metrics (``TTP_METRICS_NAMESPACE``).
    Default: the default of ``BucketSettings.metrics_namespace``."""
    log_level: str = str(setting_default(BucketSettings, "log_level"))
    """Log level (``TTP_LOG_LEVEL``). Default: the default of ``BucketSettings.log_level``."""
    cpu: int = defaults.TASK_CPU
    """Fargate CPU units of the task. Default: ``cdk_support.defaults.TASK_CPU`` (0.25 vCPU)."""
    memory_mib: int = defaults.TASK_MEMORY_MIB
    """Fargate memory of the task (MiB; must fit ``cpu``). Default: ``cdk_support.defaults.TASK_MEMORY_MIB``."""
    log_retention: logs.RetentionDays = DEFAULT_LOG_RETENTION
    """Retention of the task's log group. Default: ``DEFAULT_LOG_RETENTION``
    (``cdk_support.log_retention.DEFAULT_LOG_RETENTION_DAYS``)."""
    log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
    """What happens to the log group when the construct is removed. Default:
    ``RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE``: kept on update and delete, but removed when the stack's
    first create rolls back, so the retry does not fail on a fixed log group name that "already exists"."""


@dataclass(frozen=True)
class TaskSettings:
    """One runtime settings model and the values the infrastructure sets (the rest: model defaults)."""

    model: type[BaseModel]
    """A model of ``runtime.contract.settings``; every field becomes a ``TTP_*`` variable. Required."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Field values known to the infrastructure. Default: none (``BucketSettings`` fields come from the props)."""
    exclude: tuple[str, ...] = ()
    """Fields set another way (ECS secrets). Default: none."""


@dataclass(frozen=True)
class RuntimeTaskSpec:
    """What a variant decides about its task (not props: a user of the variant does not choose these)."""

    role_name: str
    """Physical name of the task role (``runtime.contract.names``). Required."""
    role_description: str
    """Description of the task role. Required."""
    log_group_name: str
    """Physical name of the log group (``runtime.contract.names``). Required."""
    family: str
    """Task definition family. Required."""
    container_name: str
    """Id and name of the container, and the prefix of its log streams. Required."""
    command: Sequence[str]
    """The container command (:func:`runtime_command`). Required."""
    settings: Sequence[TaskSettings]
    """The settings models whose fields make up the container environment. Required."""
    environment_reason: str
    """Why the plain-text ``TTP_*`` variables are fine (cdk-nag ``AwsSolutions-ECS2``). Required."""
    security_group_description: str
    """Description of the security group (no ingress). Required."""
    egress_description: str
    """Description of its one egress rule (HTTPS to anywhere). Required."""
    secrets: Mapping[str, ecs.Secret] = field(default_factory=dict)
    """Environment variables injected by ECS from Secrets Manager. Default: none."""
    stop_timeout: Duration | None = None
    """Time between SIGTERM and SIGKILL. Default: the ECS default (30 s)."""
    long_running: bool = True
    """A long-running service task running the worker's receive loop (processor, coordinator): it gets the
    liveness health check. Default: True; False for a one-shot task (the sweeper), which has no loop to
    watch."""
    scale_in_protection: bool = False
    """The task protects itself from scale-in while busy (the processor, whose service scales on its
    queue): its role may call the agent's task-protection endpoint. Default: False (the coordinator runs
    one task without scaling; protecting it would only hold back its deployments)."""
    task_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags every task of the variant's service carries: the variant tags its service with them and the
    service propagates them to the tasks it starts (``PropagatedTagSource.SERVICE``). The scale-in
    protection grant holds only on tasks with these tags, so one customer's processor cannot protect
    another's tasks. Default: none; required with ``scale_in_protection``."""
    log_group_first: bool = True
    """Create the log group before the task role (construct order = resource order in the template).
    Default: True. The sweeper, older than this base, creates its role first."""


class RuntimeTaskBase(Construct):
    """The shared part of a construct running the runtime image; subclass it (see the module docstring).

    Attributes for the variants: ``log_group``, ``task_role``, ``task_definition``, ``container``,
    ``security_group`` and ``task_subnets``.
    """

    def __init__(self, scope: Construct, construct_id: str, props: RuntimeTaskBaseProps, spec: RuntimeTaskSpec) -> None:
        super().__init__(scope, construct_id)
        stack = stack_facts(scope, construct=self)
        if spec.log_group_first:
            self.log_group = self._create_log_group(props, spec)
            self.task_role = self._create_task_role(stack, spec)
        else:
            self.task_role = self._create_task_role(stack, spec)
            self.log_group = self._create_log_group(props, spec)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=spec.family,
            cpu=props.cpu,
            memory_limit_mib=props.memory_mib,
            task_role=self.task_role,
            execution_role=props.execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=getattr(ecs.CpuArchitecture, props.cpu_architecture),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.task_definition.add_volume(name="tmp")
        self.container = self.task_definition.add_container(
            spec.container_name,
            container_name=spec.container_name,
            image=props.image or runtime_image(cpu_architecture=props.cpu_architecture),
            command=list(spec.command),
            environment=self._environment(props, spec),
            secrets=dict(spec.secrets) or None,
            essential=True,
            stop_timeout=spec.stop_timeout,
            readonly_root_filesystem=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=spec.container_name, log_group=self.log_group),
            linux_parameters=ecs.LinuxParameters(self, "LinuxParameters", init_process_enabled=True),
            health_check=self._health_check() if spec.long_running else None,
        )
        self.container.add_mount_points(ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False))

        if spec.scale_in_protection:
            self._allow_task_protection(stack, spec.task_tags)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.cluster.vpc,
            description=spec.security_group_description,
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), spec.egress_description)
        self.task_subnets = props.subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        acknowledge(self.task_definition, "AwsSolutions-ECS2", spec.environment_reason)
        execution_role = self.task_definition.execution_role
        if execution_role is not None and props.execution_role is None:
            acknowledge_wildcard_resources(
                execution_role,
                ["*"],
                "ecr:GetAuthorizationToken has no resource-level permissions (CDK execution-role default).",
            )

    @staticmethod
    def _health_check() -> ecs.HealthCheck:
        return ecs.HealthCheck(
            command=["CMD", *runtime_command("healthcheck")],
            interval=HEALTH_CHECK_INTERVAL,
            timeout=HEALTH_CHECK_TIMEOUT,
            retries=HEALTH_CHECK_RETRIES,
            start_period=HEALTH_CHECK_START_PERIOD,
        )

    def _allow_task_protection(self, stack: StackFacts, task_tags: Mapping[str, str]) -> None:
        """The ECS agent sets scale-in protection with the task role's credentials (``UpdateTaskProtection``,
        and ``GetTaskProtection`` for the endpoint's GET). A task's ARN is known only once it runs and
        names its cluster, never its service (``task/${ClusterName}/${TaskId}``), so the resource is every
        task of this account and region (the cluster's name is a cross-stack reference in the customer
        stacks, which a cdk-nag acknowledgement cannot name) and the scope is the condition: the task must
        carry ``task_tags``, which only this variant's service gives its tasks.

        The Service Authorization Reference ("Actions, resources, and condition keys for Amazon Elastic
        Container Service") lists for both actions the resource type ``task*`` with the condition keys
        ``aws:ResourceTag/${TagKey}`` and ``ecs:cluster`` (no ``ecs:service``):
        https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
        """
        if not task_tags:
            raise ValueError(
                "scale_in_protection needs task_tags: without them the grant would cover every task of the "
                "account (RuntimeTaskSpec.task_tags, propagated by the variant's service)"
            )
        tasks = f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:task/*"
        self.task_role.add_to_policy(
            iam.PolicyStatement(
                sid="ScaleInProtectionOfItsOwnTask",
                actions=["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                resources=[tasks],
                conditions={"StringEquals": {f"aws:ResourceTag/{key}": value for key, value in task_tags.items()}},
            )
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [tasks],
            "Scale-in protection of the task itself, whose ARN is known only once it runs (ECS agent endpoint); "
            "limited to tasks tagged as this service's own (aws:ResourceTag condition).",
        )

    def _fargate_service(
        self, service_name: str, cluster: ecs.ICluster, desired_count: int | None = None
    ) -> ecs.FargateService:
        """The variant's service (construct id ``Service``), deployed alike for every long-running task: a
        new task replaces an old one only once it runs (min 100 %, circuit breaker with rollback), in the
        task subnets and security group, its tags propagated from the service to its tasks."""
        return ecs.FargateService(
            self,
            "Service",
            service_name=service_name,
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=desired_count,
            assign_public_ip=False,
            vpc_subnets=self.task_subnets,
            security_groups=[self.security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            enable_ecs_managed_tags=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            platform_version=ecs.FargatePlatformVersion.LATEST,
        )

    def _create_log_group(self, props: RuntimeTaskBaseProps, spec: RuntimeTaskSpec) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=spec.log_group_name,
            retention=props.log_retention,
            removal_policy=props.log_removal_policy,
        )

    def _create_task_role(self, stack: StackFacts, spec: RuntimeTaskSpec) -> iam.Role:
        return iam.Role(
            self,
            "TaskRole",
            role_name=spec.role_name,
            description=spec.role_description,
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:*"},
                }
            ),
        )

    @staticmethod
    def _environment(props: RuntimeTaskBaseProps, spec: RuntimeTaskSpec) -> dict[str, str]:
        bucket = {
            "bucket_name": props.bucket_name,
            "metrics_namespace": props.metrics_namespace,
            "log_level": props.log_level,
        }
        environment: dict[str, str] = {}
        for settings in spec.settings:
            values = dict(settings.values)
            if issubclass(settings.model, BucketSettings):
                values = {**bucket, **values}
            environment.update(settings_environment(settings.model, values, exclude=settings.exclude))
        return dict(sorted(environment.items()))
