"""One customer's queue processor: a Fargate service running ``python -m runtime worker``.

A thin variant of :class:`~cdk_constructs.runtime_task.RuntimeTaskBase` (log group, task role, task
definition, environment, security group) that adds the service and its scaling:

* Task role ``ttp-processor-{code}`` (``runtime.contract.names``), tagged ``customer_code={code}`` (the bucket
  policy matches the tag). It may: consume only this customer's queue (and decrypt with its key);
  read ``archive/*`` (never write it: the change coordinator folds results), read/write
  ``processing/{code}/*`` (its own processing objects), read/delete ``customers/{code}/*``; list the
  bucket (404 instead of 403 for missing keys); assume only this customer's sender role; set scale-in
  protection only on tasks tagged ``customer_code={code}``, which only its own service propagates to its
  tasks (a task ARN does not name its service). Nothing else: no Graph secret, no contact-reader roles
  (meetings are the coordinator's, docs/design.md §5).
* Container environment: exactly the fields of ``runtime.contract.settings.WorkerSettings`` as ``TTP_*``
  (no secret).
* Stop timeout 120 s (the Fargate maximum) > ``TTP_DRAIN_SECONDS`` (SIGTERM drain).
* Step scaling on the queue: +1 task as soon as a message waits (also from zero with
  ``scale_to_zero``), +2 when the backlog passes ``burst_backlog``; -1 after ``scale_in_idle_minutes``
  with nothing visible or in flight.
* Rolling deployments with the circuit breaker (rollback), private subnets, no public IP, HTTPS-only egress.

Usable alone: the queue is any ``sqs.IQueue`` (with its visibility timeout given in the props), the
cluster any ``ecs.ICluster``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Tags
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
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
from cdk_support.capacity import MAX_FARGATE_STOP_TIMEOUT, check_processor_capacity, check_shutdown
from cdk_support.environment import setting_default
from cdk_support.forwarding import check_fields
from cdk_support.iam_actions import PROCESSOR_DENIED_OBJECT_ACTIONS
from cdk_support.nag import acknowledge_wildcard_resources
from cdk_support.stack_facts import StackFacts, minutes, seconds, stack_facts
from runtime.contract import keys, names
from runtime.contract.settings import WorkerSettings

WORKER_COMMAND = tuple(runtime_command("worker"))


@dataclass(frozen=True, kw_only=True)
class CustomerProcessorProps(RuntimeTaskBaseProps):
    """Props of :class:`CustomerProcessor` (plus those of :class:`RuntimeTaskBaseProps`)."""

    customer_code: str
    """The customer (``runtime.contract.keys`` rules); role, service and log group names derive from it. Required."""
    queue: sqs.IQueue
    """The customer's trigger queue: consumed by the tasks, its depth scales the service. Required."""
    customer_account: str
    """The customer's AWS account, home of its SES sender role. Required."""
    from_address: str
    """Verified SES identity used as From address (``TTP_FROM_ADDRESS``). Required."""
    sender_external_id: str
    """ExternalId the sender role requires (``TTP_SENDER_EXTERNAL_ID``). Required."""
    queue_url: str | None = None
    """URL the worker polls (``TTP_QUEUE_URL``). Default: ``queue.queue_url``."""
    visibility_timeout_seconds: int = int(setting_default(WorkerSettings, "visibility_timeout_seconds"))
    """The queue's visibility timeout: give the one the queue was created with (``IQueue`` does not expose it).
    Default: the default of ``WorkerSettings.visibility_timeout_seconds``."""
    contact_list_name: str = str(setting_default(WorkerSettings, "contact_list_name"))
    """SES contact list in the customer account. Default: the default of ``WorkerSettings.contact_list_name``."""
    send_rate_per_second: float = float(setting_default(WorkerSettings, "send_rate_per_second"))
    """Max SendEmail calls per second. Default: the default of ``WorkerSettings.send_rate_per_second``."""
    ses_region: str | None = None
    """Region of the customer's SES. Default: the stack's region."""
    configuration_set: str | None = None
    """SES configuration set every email is sent with (``TTP_CONFIGURATION_SET``): the customer's own.
    Default: None (``runtime.contract.names.configuration_set_name(customer_code)``, the platform's)."""
    max_concurrency: int = int(setting_default(WorkerSettings, "max_concurrency"))
    """Messages one task processes at once. Default: the default of ``WorkerSettings.max_concurrency``."""
    drain_seconds: float = float(setting_default(WorkerSettings, "drain_seconds"))
    """SIGTERM drain, below ``stop_timeout_seconds`` and the visibility timeout.
    Default: the default of ``WorkerSettings.drain_seconds``."""
    stop_timeout_seconds: int = MAX_FARGATE_STOP_TIMEOUT
    """Time between SIGTERM and SIGKILL. Default: ``MAX_FARGATE_STOP_TIMEOUT``, the Fargate maximum."""
    min_tasks: int = defaults.MIN_PROCESSOR_TASKS
    """Fewest running tasks (0 needs ``scale_to_zero``). Default: ``cdk_support.defaults.MIN_PROCESSOR_TASKS``."""
    max_tasks: int = defaults.MAX_PROCESSOR_TASKS
    """Most running tasks under backlog (>= max(1, ``min_tasks``)).
    Default: ``cdk_support.defaults.MAX_PROCESSOR_TASKS``."""
    scale_to_zero: bool = False
    """Run no task while the queue is empty (needs ``min_tasks=0``). Default: False."""
    burst_backlog: int = 20
    """Waiting messages from which the service adds two tasks at once instead of one. Default: 20."""
    scale_in_idle_minutes: int = 10
    """Minutes with nothing visible or in flight before one task is removed. Default: 10."""


class CustomerProcessor(RuntimeTaskBase):
    """One customer's queue worker: the runtime task plus a Fargate service scaled on the queue."""

    def __init__(self, scope: Construct, construct_id: str, props: CustomerProcessorProps) -> None:
        code = keys.validate_customer_code(props.customer_code)
        self._validate(props)
        stack = stack_facts(scope, construct=self)
        partition = stack.partition
        settings = [TaskSettings(WorkerSettings, self._worker_settings(props, stack))]
        task_tags = {names.CUSTOMER_TAG_KEY: code}
        super().__init__(
            scope,
            construct_id,
            props,
            RuntimeTaskSpec(
                role_name=names.processor_role_name(code),
                role_description=f"Queue processor of customer {code}",
                log_group_name=names.log_group_name(code),
                family=names.service_name(code),
                container_name="worker",
                command=WORKER_COMMAND,
                settings=settings,
                stop_timeout=seconds(props.stop_timeout_seconds),
                scale_in_protection=True,  # the service scales in on its queue: never in the middle of a send
                task_tags=task_tags,
                environment_reason="The TTP_* variables are non-secret configuration the runtime validates at "
                "start (runtime.contract.settings); a processor holds no secret (no Graph access).",
                security_group_description=f"Processor of customer {code}: no ingress, HTTPS egress only",
                # Text unchanged since v1 (processors no longer call Graph): upgrades leave the groups alone.
                egress_description="HTTPS to AWS APIs and Graph",
            ),
        )
        self.props = props
        Tags.of(self.task_role).add(names.CUSTOMER_TAG_KEY, code)
        self._grant(props, partition)

        self.service = self._fargate_service(names.service_name(code), props.cluster)
        # The tasks carry the customer tag (PropagateTags SERVICE): the scale-in protection grant requires it.
        # A tag change is an in-place update of the service (never a replacement); tasks started before it
        # get the tag at their next deployment.
        service = self.service.node.default_child
        assert isinstance(service, ecs.CfnService)
        for key, value in task_tags.items():
            Tags.of(service).add(key, value)  # the service only, not its scaling target and alarms
        self._autoscale(props)
        self._acknowledge(props)

    @staticmethod
    def _worker_settings(props: CustomerProcessorProps, stack: StackFacts) -> dict[str, object]:
        """``WorkerSettings`` values (the ``BucketSettings`` fields come from the base)."""
        code = props.customer_code
        return {
            "customer_code": code,
            "sender_role_arn": names.role_arn(props.customer_account, names.sender_role_name(code), stack.partition),
            "sender_external_id": props.sender_external_id,
            "ses_region": props.ses_region or stack.region,
            "configuration_set": props.configuration_set or names.configuration_set_name(code),
            "from_address": props.from_address,
            "contact_list_name": props.contact_list_name,
            "send_rate_per_second": props.send_rate_per_second,
            "visibility_timeout_seconds": props.visibility_timeout_seconds,
            "queue_url": props.queue_url or props.queue.queue_url,
            "max_concurrency": props.max_concurrency,
            "drain_seconds": props.drain_seconds,
        }

    @staticmethod
    def _validate(props: CustomerProcessorProps) -> None:
        check_fields(check_shutdown, props)
        check_processor_capacity(
            min_tasks=props.min_tasks, max_tasks=props.max_tasks, scale_to_zero=props.scale_to_zero
        )

    def _grant(self, props: CustomerProcessorProps, partition: str) -> None:
        code = props.customer_code
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"
        own_processing, own_triggers = keys.processing_prefix(code), keys.trigger_prefix(code)
        props.queue.grant_consume_messages(self.task_role)
        statements = [
            object_grant("ReadArchive", ["s3:GetObject"], bucket_arn, keys.ARCHIVE_PREFIX),
            object_grant("ReadWriteOwnProcessing", ["s3:GetObject", "s3:PutObject"], bucket_arn, own_processing),
            object_grant("ReadDeleteOwnTriggers", ["s3:GetObject", "s3:DeleteObject"], bucket_arn, own_triggers),
            iam.PolicyStatement(
                # Whatever else this policy allows, no object outside archive/ and the customer's own two
                # prefixes. Literal prefixes: AWS documents NotResource, and policy variables only in
                # Resource and Condition (the bucket policy's grants; see MetadataBucket). In one account
                # either policy may allow, so this deny is what keeps customers apart there.
                sid="DenyObjectsOutsideOwnPrefixes",
                effect=iam.Effect.DENY,
                actions=list(PROCESSOR_DENIED_OBJECT_ACTIONS),
                not_resources=objects_under(bucket_arn, keys.ARCHIVE_PREFIX, own_processing, own_triggers),
            ),
            iam.PolicyStatement(sid="ListBucketFor404", actions=["s3:ListBucket"], resources=[bucket_arn]),
            iam.PolicyStatement(
                sid="AssumeOwnSenderRole",
                actions=["sts:AssumeRole"],
                resources=[names.role_arn(props.customer_account, names.sender_role_name(code), partition)],
            ),
        ]
        for statement in statements:
            self.task_role.add_to_policy(statement)

    def _autoscale(self, props: CustomerProcessorProps) -> None:
        queue = props.queue
        one_minute = minutes(1)
        visible = queue.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum")
        in_flight = queue.metric_approximate_number_of_messages_not_visible(period=one_minute, statistic="Maximum")
        backlog = cloudwatch.MathExpression(
            expression="FILL(visible, 0) + FILL(inflight, 0)",
            using_metrics={"visible": visible, "inflight": in_flight},
            label="messages waiting or in flight",
            period=one_minute,
        )
        self.scaling = self.service.auto_scale_task_count(min_capacity=props.min_tasks, max_capacity=props.max_tasks)
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
            cooldown=seconds(60),
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
            cooldown=seconds(300),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )

    def _acknowledge(self, props: CustomerProcessorProps) -> None:
        partition = stack_facts(self).partition
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"
        acknowledge_wildcard_resources(
            self.task_role,
            [f"{bucket_arn}/{keys.ARCHIVE_PREFIX}*"],
            "docs/design.md §1: every processor reads (never writes) any archive/{changeId}.json (a change spans "
            "several customers); object names are not known in advance.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"{bucket_arn}/{keys.processing_prefix(props.customer_code)}*"],
            "Only this customer's own processing prefix; object names are change ids, unknown in advance.",
        )
        acknowledge_wildcard_resources(
            self.task_role,
            [f"{bucket_arn}/{keys.trigger_prefix(props.customer_code)}*"],
            "Only this customer's own trigger prefix; trigger names are change ids, unknown in advance.",
        )
