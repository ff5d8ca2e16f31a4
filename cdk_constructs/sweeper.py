"""The sweeper: a scheduled Fargate task (``python -m runtime sweep``) every few minutes.

It lists ``customers/``, emits ``OrphanedTriggers`` / ``OldestTriggerAge`` per customer (EMF, through
its log group: no CloudWatch permission needed), deletes triggers whose archive already records the
result, re-drives stuck triggers by sending their event to the customer's queue again, and re-creates
the triggers a submission did not write (fan-out repair, ``TriggersRecreated``).

Role ``ttp-sweeper`` (deterministic: the bucket policy in the management account names it): list the
bucket, read ``archive/*``, ``customers/*`` and ``processing/*``, delete and tag ``customers/*``
(re-drive attempts), create ``customers/*`` only with ``If-None-Match`` (never an overwrite);
``sqs:SendMessage`` to the customer queues (name pattern ``customer-*-changes``, so onboarding does not
rewrite the policy) and the use of their keys only (alias ``alias/ttp/customer-*-changes``), through
SQS only. Environment: exactly ``runtime.contract.settings.OpsSettings``.

A thin variant of :class:`~cdk_constructs.runtime_task.RuntimeTaskBase` (log group, task role, task
definition, environment, security group) that adds the role's grants and the schedule; usable alone
with any ``ecs.ICluster``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_constructs.runtime_task import (
    RuntimeTaskBase,
    RuntimeTaskBaseProps,
    RuntimeTaskSpec,
    TaskSettings,
    runtime_command,
)
from cdk_support import defaults
from cdk_support.bucket_policy import object_grant, objects_under
from cdk_support.environment import render
from cdk_support.iam_actions import CONDITIONAL_WRITE_KEYS, TRIGGER_TAGGING_ACTIONS
from cdk_support.lazy import lazy_string
from cdk_support.nag import acknowledge_wildcard_resources
from runtime.contract import keys, names
from runtime.contract.settings import OpsSettings

SWEEP_COMMAND = tuple(runtime_command("sweep"))
IF_NONE_MATCH_KEY = CONDITIONAL_WRITE_KEYS[1]
"""The sweeper writes triggers only with ``If-None-Match`` (create-only); the role demands the header."""
# The task family and the schedule are named after the sweeper's role (``runtime.contract.names`` has
# no constant of their own).
SWEEPER_TASK_FAMILY = names.SWEEPER_ROLE_NAME
SWEEPER_SCHEDULE_RULE_NAME = f"{names.SWEEPER_ROLE_NAME}-schedule"
QUEUE_KEY_ALIAS_PATTERN = names.queue_key_alias("probe").replace(names.queue_name("probe"), names.QUEUE_NAME_PATTERN)
"""The aliases of the customers' queue keys (``alias/ttp/customer-*-changes``): the sweeper may use only
keys carrying one (``kms:ResourceAliases``); their ids are generated in the customers' stacks."""


@dataclass(frozen=True, kw_only=True)
class SweeperProps(RuntimeTaskBaseProps):
    """Props of :class:`Sweeper` (plus those of :class:`RuntimeTaskBaseProps`)."""

    customer_queues: Mapping[str, str]
    """Customer code -> queue URL (``TTP_CUSTOMER_QUEUES``): the customers swept and where re-drives go; a live
    mapping (``cdk_support.lazy.LiveMapping``) is read at synthesis. Required."""
    sweeper_interval_minutes: int = defaults.SWEEP_INTERVAL_MINUTES
    """Minutes between two sweeps (EventBridge rate). Default: ``cdk_support.defaults.SWEEP_INTERVAL_MINUTES``."""


class Sweeper(RuntimeTaskBase):
    """The transient-trigger sweeper: the runtime task plus its grants and an EventBridge schedule."""

    @staticmethod
    def _customer_settings(scope: Construct, queues: Mapping[str, str]) -> dict[str, str]:
        """The customers as codes, their queue URLs derived by the runtime from the stack's region and account
        (``names.queue_url``): a URL per customer outgrows ECS's 64 KiB task definition at ~750 customers.
        Only a URL of another name or place is listed (``TTP_CUSTOMER_QUEUES``). Rendered at synthesis, so a
        live mapping (the platform's registry) is complete."""
        stack = Stack.of(scope)
        region, account = stack.region, stack.account

        def elsewhere() -> dict[str, str]:
            return {code: url for code, url in sorted(queues.items()) if url != names.queue_url(region, account, code)}

        return {
            "customer_codes": lazy_string(lambda: render(sorted(queues))),
            "queue_region": region,
            "queue_account": account,
            "customer_queues": lazy_string(lambda: render(elsewhere())),
        }

    def __init__(self, scope: Construct, construct_id: str, props: SweeperProps) -> None:
        for code in props.customer_queues:
            keys.validate_customer_code(code)
        super().__init__(scope, construct_id, props, self._spec(scope, props))
        self.props = props
        stack = Stack.of(self)
        partition, region, account = stack.partition, stack.region, stack.account
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"
        self._grant(bucket_arn, partition, region, account)
        self.rule = events.Rule(
            self,
            "Schedule",
            rule_name=SWEEPER_SCHEDULE_RULE_NAME,
            description="Runs the transient-trigger sweeper",
            schedule=events.Schedule.rate(Duration.minutes(props.sweeper_interval_minutes)),
            targets=[
                targets.EcsTask(
                    cluster=props.cluster,
                    task_definition=self.task_definition,
                    task_count=1,
                    subnet_selection=self.task_subnets,
                    security_groups=[self.security_group],
                    assign_public_ip=False,
                    platform_version=ecs.FargatePlatformVersion.LATEST,
                )
            ],
        )
        self._acknowledge_wildcards(bucket_arn, partition, region, account)

    @classmethod
    def _spec(cls, scope: Construct, props: SweeperProps) -> RuntimeTaskSpec:
        """The runtime task the base builds: ``python -m runtime sweep`` with exactly ``OpsSettings``."""
        return RuntimeTaskSpec(
            role_name=names.SWEEPER_ROLE_NAME,
            role_description="Transient-trigger sweeper: finds orphaned/stuck triggers and re-drives them",
            log_group_name=names.SWEEPER_LOG_GROUP_NAME,
            family=SWEEPER_TASK_FAMILY,
            container_name="sweep",
            command=SWEEP_COMMAND,
            settings=[
                TaskSettings(
                    OpsSettings,
                    {
                        **cls._customer_settings(scope, props.customer_queues),
                        "cluster_name": props.cluster.cluster_name,
                    },
                )
            ],
            environment_reason="The TTP_* variables are non-secret configuration (runtime.settings.OpsSettings).",
            security_group_description="Sweeper: no ingress, HTTPS egress only",
            egress_description="HTTPS to AWS APIs",
            long_running=False,  # one pass per schedule, not in a service: no liveness, no protection
            log_group_first=False,
        )

    def _grant(self, bucket_arn: str, partition: str, region: str, account: str) -> None:
        """The task role's grants: the bucket (read, tag and delete triggers, create them only with
        ``If-None-Match``) and the customer queues (send, and their keys through SQS only)."""
        for statement in (
            iam.PolicyStatement(sid="ListBucket", actions=["s3:ListBucket"], resources=[bucket_arn]),
            object_grant(
                "ReadArchiveTriggersAndProcessing",
                ["s3:GetObject"],
                bucket_arn,
                keys.ARCHIVE_PREFIX,
                keys.CUSTOMERS_PREFIX,
                keys.PROCESSING_PREFIX,
            ),
            object_grant(
                "DeleteAndTagTriggers", ["s3:DeleteObject", *TRIGGER_TAGGING_ACTIONS], bucket_arn, keys.CUSTOMERS_PREFIX
            ),
            # Fan-out repair: re-create a trigger a submission did not write, create-only (If-None-Match),
            # so no trigger is ever overwritten.
            object_grant(
                "CreateMissingTriggers",
                ["s3:PutObject"],
                bucket_arn,
                keys.CUSTOMERS_PREFIX,
                conditions={"Null": {IF_NONE_MATCH_KEY: "false"}},
            ),
            iam.PolicyStatement(
                sid="RedriveToCustomerQueues",
                actions=["sqs:SendMessage"],
                resources=[f"arn:{partition}:sqs:{region}:{account}:{names.QUEUE_NAME_PATTERN}"],
            ),
            iam.PolicyStatement(
                # Only the platform's queue keys (alias alias/ttp/customer-<code>-changes), only through SQS.
                sid="EncryptForCustomerQueues",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[f"arn:{partition}:kms:{region}:{account}:key/*"],
                conditions={
                    "StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"},
                    "ForAnyValue:StringLike": {"kms:ResourceAliases": QUEUE_KEY_ALIAS_PATTERN},
                },
            ),
        ):
            self.task_role.add_to_policy(statement)

    def _acknowledge_wildcards(self, bucket_arn: str, partition: str, region: str, account: str) -> None:
        """The cdk-nag acknowledgements of the grants' wildcards, each with its reason."""
        acknowledge_wildcard_resources(
            self.task_role,
            objects_under(bucket_arn, keys.ARCHIVE_PREFIX, keys.CUSTOMERS_PREFIX),
            "The sweeper inspects every customer's triggers and their archive documents (docs/design.md §6); "
            "object names are change ids, unknown in advance. It can delete, tag and create (only with "
            "If-None-Match: never an overwrite) only under customers/.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            objects_under(bucket_arn, keys.PROCESSING_PREFIX),
            "The sweeper reads every customer's processing objects (read-only) to tell a recorded result, "
            "whose trigger it may delete, from a live lease it must leave alone (docs/design.md §6).",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"arn:{partition}:sqs:{region}:{account}:{names.QUEUE_NAME_PATTERN}"],
            "Re-drives go to any customer's queue; the name pattern keeps onboarding from rewriting this role.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"arn:{partition}:kms:{region}:{account}:key/*"],
            "Queue keys have generated ids (created in the customer stacks); use is limited to keys aliased "
            "alias/ttp/customer-*-changes (kms:ResourceAliases), through SQS in this account (kms:ViaService).",
        )
        events_role = self.task_definition.node.try_find_child("EventsRole")
        if events_role is not None:
            acknowledge_wildcard_resources(
                events_role,
                [f"arn:{partition}:ecs:{region}:*:task/{self.props.cluster.cluster_name}/*"],
                "CDK's EcsTask target lets EventBridge tag the tasks it starts in this cluster (task ids are "
                "unknown in advance).",
            )
