"""The task *execution* role every customer's processor shares (issue 19: IAM roles per account).

ECS uses two roles per task: the *task* role is the container's only AWS identity (per customer, the
principal the bucket policy, the queue key policies and the sender roles decide on), and the *execution*
role is the ECS agent's, used before and around the container: pull the image, write the container's logs.
CDK creates one execution role per task definition; at 1,000 customers that doubled the governance
account's roles (2,007 against the default quota of 1,000). One execution role for every processor:

* named ``ttp-task-execution`` (``runtime.contract.names.TASK_EXECUTION_ROLE_NAME``), so each customer stack
  names it by ARN (no cross-stack export; the customer stacks already deploy after the platform stack);
* trusted by ``ecs-tasks.amazonaws.com`` only (as CDK's default execution role);
* may pull the runtime image from the CDK assets repository and create streams / put events in the
  processors' log groups (``names.LOG_GROUP_PREFIX``): nothing a container could use, since no container
  ever receives this role's credentials.

It gives a customer no access to another's data: what a processor may do is its task role's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_constructs.runtime_task import IMAGE_PLATFORMS, RUNTIME_DIR, RUNTIME_IMAGE_EXCLUDE
from cdk_support import defaults
from cdk_support.nag import acknowledge_wildcard_resources
from runtime.contract import names


@dataclass(frozen=True, kw_only=True)
class TaskExecutionRoleProps:
    """Props of :class:`TaskExecutionRole`."""

    cpu_architecture: defaults.CpuArchitectureName = defaults.CPU_ARCHITECTURE
    """The architecture the processors' runtime image is built for (its asset's repository is granted).
    Default: ``cdk_support.defaults.CPU_ARCHITECTURE``."""


class TaskExecutionRole(Construct):
    """The shared execution role; attribute ``role``. :func:`shared_task_execution_role` names it elsewhere."""

    def __init__(self, scope: Construct, construct_id: str, props: TaskExecutionRoleProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.TASK_EXECUTION_ROLE_NAME,
            description="ECS agent of every customer processor: image pull and log writes (no task permissions)",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        # The repository the processors' image asset is published to (the same asset as theirs: same source,
        # same platform, same hash), granted as CDK grants a task definition's own execution role.
        image = ecr_assets.DockerImageAsset(
            self,
            "RuntimeImage",
            directory=str(RUNTIME_DIR),
            exclude=list(RUNTIME_IMAGE_EXCLUDE),
            platform=IMAGE_PLATFORMS[props.cpu_architecture],
        )
        image.repository.grant_pull(self.role)
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{names.LOG_GROUP_PREFIX}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteProcessorLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_groups],
            )
        )
        acknowledge_wildcard_resources(
            self.role,
            ["*"],
            "ecr:GetAuthorizationToken has no resource-level permissions (CDK execution-role default).",
        )
        acknowledge_wildcard_resources(
            self.role,
            [log_groups],
            "The log groups of every customer's processor (names.LOG_GROUP_PREFIX + code), one pattern for "
            "all customers; only the ECS agent uses this role, never a container.",
        )


def shared_task_execution_role(scope: Construct, construct_id: str) -> iam.IRole:
    """The platform's :class:`TaskExecutionRole` in the stack of ``scope`` (same account), by name."""
    return iam.Role.from_role_name(scope, construct_id, names.TASK_EXECUTION_ROLE_NAME, mutable=False)
