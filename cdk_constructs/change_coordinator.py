"""The change coordinator: one Fargate service running ``python -m runtime coordinator`` (docs/design.md §1, §5).

A thin variant of :class:`~cdk_constructs.runtime_task.RuntimeTaskBase` (log group, task role, task
definition, environment, security group) that adds its own queue and a one-task service:

* Queue ``ttp-change-coordinator`` + DLQ (:class:`~cdk_constructs.event_queue.EventQueue`: KMS key whose
  policy lets only the bucket's S3 notifications / EventBridge rule use it, SSL enforced, redrive,
  source conditions). The bucket routes ``archive/``, ``processing/`` and ``delivery/`` object-created events to it
  (:class:`~cdk_constructs.metadata_bucket.MetadataBucket`).
* Task role ``ttp-change-coordinator`` (``runtime.contract.names``). It may: consume only its queue;
  list the bucket; read ``archive/*`` and ``processing/*``; write ``archive/*`` **only conditionally**
  (``If-Match`` or ``If-None-Match``: the coordinator folds results by compare-and-swap); with delivery
  events, read and conditionally write ``delivery/*`` (its delivery-event consumer is the only writer);
  with meetings, assume the customers' contact-reader roles (``ttp-contact-reader-*``). It cannot delete
  anything, write ``processing/`` or ``customers/`` (the sweeper re-creates a missing trigger), or touch
  ``drafts/``.
* With ``delivery_customer_accounts``: the SES delivery-events bus, rule and queue
  (:class:`~cdk_constructs.delivery_events.DeliveryEvents`); the task consumes that queue too
  (``TTP_DELIVERY_QUEUE_URL``).
* Container environment: exactly the fields of ``runtime.contract.settings.CoordinatorSettings`` (plus
  ``MeetingSettings`` with meetings) as ``TTP_*``; ``TTP_GRAPH_CLIENT_SECRET`` is an ECS secret from
  Secrets Manager, read by the *execution* role at task start.
* Service ``ttp-change-coordinator``: desired count 1 (its writes are compare-and-swap and idempotent,
  so the second task of a rolling deployment is harmless), circuit breaker with rollback, private
  subnets, no public IP, HTTPS-only egress; stop timeout 120 s > ``TTP_DRAIN_SECONDS``.

Usable alone with any ``ecs.ICluster``; the queue is created here (its name is fixed: the bucket in
the management account targets it by ARN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_constructs.delivery_events import DeliveryEvents, DeliveryEventsProps, delivery_events_queue_url
from cdk_constructs.event_queue import (
    COORDINATOR_EVENT_RULE_NAME,
    EventQueue,
    EventQueueProps,
    EventQueueSpec,
    RoutingMode,
)
from cdk_constructs.runtime_task import (
    RuntimeTaskBase,
    RuntimeTaskBaseProps,
    RuntimeTaskSpec,
    TaskSettings,
    runtime_command,
)
from cdk_support import defaults
from cdk_support.bucket_policy import conditional_writes, object_grant, objects_under
from cdk_support.capacity import MAX_FARGATE_STOP_TIMEOUT, check_shutdown
from cdk_support.environment import Deferred, render, setting_default
from cdk_support.forwarding import check_fields, forwarded
from cdk_support.lazy import lazy_string
from cdk_support.nag import acknowledge_wildcard_resources
from runtime.contract import keys, names
from runtime.contract.settings import CoordinatorSettings, MeetingSettings, env_var

COORDINATOR_COMMAND = tuple(runtime_command("coordinator"))
COORDINATOR_KEY_ALIAS = f"alias/ttp/{names.COORDINATOR_QUEUE_NAME}"
"""Alias of the coordinator queue's KMS key (like the customers' ``alias/ttp/<queue name>``)."""


@dataclass(frozen=True)
class CoordinatorMeetings:
    """Microsoft Graph settings for meetings; the client secret stays in Secrets Manager."""

    graph_tenant_id: str
    """Entra ID tenant of the meeting organizer (``TTP_GRAPH_TENANT_ID``). Required."""
    graph_client_id: str
    """App registration with Calendars.ReadWrite (``TTP_GRAPH_CLIENT_ID``). Required."""
    meeting_organizer: str
    """Mailbox (UPN) that organizes the meetings (``TTP_MEETING_ORGANIZER``). Required."""
    graph_client_secret: secretsmanager.ISecret
    """The app's client secret, injected by ECS as ``TTP_GRAPH_CLIENT_SECRET``. Required."""
    contact_reader_external_id: str
    """ExternalId of the contact-reader roles of customers without their own. Required."""
    calendar_contact_roles: Mapping[str, str] = field(default_factory=dict)
    """Customer code -> contact-reader role ARN (``TTP_CALENDAR_CONTACT_ROLES``). Default: none."""
    contact_reader_external_ids: Mapping[str, str] = field(default_factory=dict)
    """Customer code -> the ExternalId of that customer's own contact-reader role
    (``TTP_CONTACT_READER_EXTERNAL_IDS``). Default: none (every role uses ``contact_reader_external_id``)."""
    graph_base_url: str = str(setting_default(MeetingSettings, "graph_base_url"))
    """Graph endpoint. Default: the default of ``MeetingSettings.graph_base_url``."""
    graph_authority_host: str = str(setting_default(MeetingSettings, "graph_authority_host"))
    """Token authority host. Default: the default of ``MeetingSettings.graph_authority_host``."""


@dataclass(frozen=True, kw_only=True)
class ChangeCoordinatorProps(RuntimeTaskBaseProps):
    """Props of :class:`ChangeCoordinator` (plus those of :class:`RuntimeTaskBaseProps`)."""

    source_account: str
    """The account of the metadata bucket (and of its default event bus): the only event source. Required."""
    routing: RoutingMode = "s3"
    """How ``archive/`` / ``processing/`` events reach the queue: S3 notifications or an EventBridge rule.
    Default: ``"s3"``."""
    visibility_timeout_seconds: int = int(setting_default(CoordinatorSettings, "visibility_timeout_seconds"))
    """The queue's visibility timeout, also ``TTP_VISIBILITY_TIMEOUT_SECONDS``.
    Default: the default of ``CoordinatorSettings.visibility_timeout_seconds``."""
    max_receive_count: int = defaults.MAX_RECEIVE_COUNT
    """Receives before a message moves to the DLQ. Default: ``cdk_support.defaults.MAX_RECEIVE_COUNT``."""
    max_concurrency: int = int(setting_default(CoordinatorSettings, "max_concurrency"))
    """Messages the task handles at once. Default: the default of ``CoordinatorSettings.max_concurrency``."""
    drain_seconds: float = float(setting_default(CoordinatorSettings, "drain_seconds"))
    """SIGTERM drain, below ``stop_timeout_seconds`` and the visibility timeout.
    Default: the default of ``CoordinatorSettings.drain_seconds``."""
    fold_linger_seconds: float = float(setting_default(CoordinatorSettings, "fold_linger_seconds"))
    """How long results of one change are collected before one archive write folds them.
    Default: the default of ``CoordinatorSettings.fold_linger_seconds``."""
    contact_list_name: str = str(setting_default(CoordinatorSettings, "contact_list_name"))
    """The customers' SES contact list (``aws-calendar`` subscribers are read from it).
    Default: the default of ``CoordinatorSettings.contact_list_name``."""
    ses_region: str | None = None
    """Region of the customers' SES. Default: the stack's region."""
    stop_timeout_seconds: int = MAX_FARGATE_STOP_TIMEOUT
    """Time between SIGTERM and SIGKILL. Default: ``MAX_FARGATE_STOP_TIMEOUT``, the Fargate maximum."""
    meetings: CoordinatorMeetings | None = None
    """Microsoft Graph settings; None disables meetings. Default: None."""
    delivery_customer_accounts: Mapping[str, str] = field(default_factory=dict)
    """Customer code -> the AWS account its SES sends from, for the customers whose SES delivery events the
    coordinator consumes: with any, the construct adds :class:`~cdk_constructs.delivery_events.DeliveryEvents`
    (bus admitting exactly those accounts, rule, queue), sets ``TTP_DELIVERY_QUEUE_URL`` and
    ``TTP_CUSTOMER_ACCOUNTS`` (an event is accepted only from its customer's account) and lets the task
    consume that queue. A live mapping (``cdk_support.lazy.LiveMapping``) is read again at synthesis.
    Default: none (no delivery events)."""
    delivery_events: bool | None = None
    """Consume the customers' SES delivery events (bus, rule, queue). Give True when
    ``delivery_customer_accounts`` is a live mapping filled after this construct (the platform's registry).
    Default: None (on when ``delivery_customer_accounts`` has an entry at construction)."""

    delivery_organization_id: str | None = None
    """AWS Organizations id of the customer accounts: the delivery-events bus admits the organization instead
    of each account (``DeliveryEventsProps.organization_id``). Default: None."""

    @property
    def delivery_event_accounts(self) -> tuple[str, ...]:
        """The distinct accounts of :attr:`delivery_customer_accounts`, sorted (as they are now)."""
        return tuple(sorted(set(self.delivery_customer_accounts.values())))

    @property
    def with_delivery_events(self) -> bool:
        """Whether the coordinator consumes SES delivery events."""
        return bool(self.delivery_customer_accounts) if self.delivery_events is None else self.delivery_events


def _sorted(mapping: Mapping[str, str]) -> object:
    """The mapping sorted by code; a live one (rendered at synthesis, ``render`` sorts then) as it is."""
    return mapping if isinstance(mapping, Deferred) else dict(sorted(mapping.items()))


class ChangeCoordinator(RuntimeTaskBase):
    """The change coordinator: the runtime task, its event queue and a one-task Fargate service."""

    def __init__(self, scope: Construct, construct_id: str, props: ChangeCoordinatorProps) -> None:
        check_fields(check_shutdown, props)
        stack = Stack.of(scope)
        settings = [TaskSettings(CoordinatorSettings, self._coordinator_settings(props, stack))]
        secrets: dict[str, ecs.Secret] = {}
        if props.meetings is not None:
            settings.append(self._meeting_settings(props, props.meetings, stack))
            secrets[env_var("graph_client_secret")] = ecs.Secret.from_secrets_manager(
                props.meetings.graph_client_secret
            )
        super().__init__(scope, construct_id, props, self._spec(props, settings, secrets))
        self.props = props
        self._queues(props)
        self._grant(props, stack.partition)
        self.service = self._service(props)

    @classmethod
    def _meeting_settings(cls, props: ChangeCoordinatorProps, m: CoordinatorMeetings, stack: Stack) -> TaskSettings:
        """``MeetingSettings`` of the task (its secret goes to ECS, its accounts are the coordinator's)."""
        for code in m.calendar_contact_roles:
            keys.validate_customer_code(code)
        return TaskSettings(
            MeetingSettings,
            {
                "graph_tenant_id": m.graph_tenant_id,
                "graph_client_id": m.graph_client_id,
                "meeting_organizer": m.meeting_organizer,
                "graph_base_url": m.graph_base_url,
                "graph_authority_host": m.graph_authority_host,
                "calendar_contact_roles": cls._contact_roles_elsewhere(
                    m.calendar_contact_roles, props.delivery_customer_accounts, stack.partition
                ),
                "partition": stack.partition,
                "contact_reader_external_id": m.contact_reader_external_id,
                "contact_reader_external_ids": _sorted(m.contact_reader_external_ids),
            },
            exclude=("graph_client_secret", "customer_accounts"),  # the secret: ECS; accounts: above
        )

    @staticmethod
    def _spec(
        props: ChangeCoordinatorProps, settings: list[TaskSettings], secrets: dict[str, ecs.Secret]
    ) -> RuntimeTaskSpec:
        """The runtime task the base builds: ``python -m runtime coordinator`` in a service."""
        return RuntimeTaskSpec(
            role_name=names.COORDINATOR_ROLE_NAME,
            role_description="Change coordinator: folds customers' results into the archive, owns the meetings",
            log_group_name=names.COORDINATOR_LOG_GROUP_NAME,
            family=names.COORDINATOR_SERVICE_NAME,
            container_name="coordinator",
            command=COORDINATOR_COMMAND,
            settings=settings,
            secrets=secrets,
            stop_timeout=Duration.seconds(props.stop_timeout_seconds),
            environment_reason="The TTP_* variables are non-secret configuration the runtime validates at "
            "start (runtime.contract.settings); the one secret, TTP_GRAPH_CLIENT_SECRET, is injected from "
            "Secrets Manager.",
            security_group_description="Change coordinator: no ingress, HTTPS egress only",
            egress_description="HTTPS to AWS APIs and Graph",
        )

    def _queues(self, props: ChangeCoordinatorProps) -> None:
        """The coordinator's event queue (bucket events) and, with delivery events, their queues."""
        self.events = EventQueue(
            self,
            "Queue",
            forwarded(EventQueueProps, props),
            EventQueueSpec(
                queue_name=names.COORDINATOR_QUEUE_NAME,
                dead_letter_queue_name=names.COORDINATOR_DLQ_NAME,
                key_alias=COORDINATOR_KEY_ALIAS,
                key_description="Encrypts the change coordinator's queue and DLQ",
                event_rule_name=COORDINATOR_EVENT_RULE_NAME,
            ),
        )
        self.queue = self.events.queue
        self.dead_letter_queue = self.events.dead_letter_queue
        self.delivery: DeliveryEvents | None = None
        if props.with_delivery_events:
            self.delivery = DeliveryEvents(
                self,
                "DeliveryEvents",
                DeliveryEventsProps(
                    customer_accounts=props.delivery_customer_accounts.values(),
                    visibility_timeout_seconds=props.visibility_timeout_seconds,
                    max_receive_count=props.max_receive_count,
                    organization_id=props.delivery_organization_id,
                ),
            )

    def _service(self, props: ChangeCoordinatorProps) -> ecs.FargateService:
        """One task, replaced only after its successor runs (min 100 %, circuit breaker with rollback)."""
        return self._fargate_service(names.COORDINATOR_SERVICE_NAME, props.cluster, desired_count=1)

    @staticmethod
    def _coordinator_settings(props: ChangeCoordinatorProps, stack: Stack) -> dict[str, object]:
        """``CoordinatorSettings`` values (the ``BucketSettings`` fields come from the base)."""
        return {
            "queue_url": names.coordinator_queue_url(stack.region, stack.account),
            "visibility_timeout_seconds": props.visibility_timeout_seconds,
            "max_concurrency": props.max_concurrency,
            "drain_seconds": props.drain_seconds,
            "fold_linger_seconds": props.fold_linger_seconds,
            "contact_list_name": props.contact_list_name,
            "ses_region": props.ses_region or stack.region,
            "delivery_queue_url": delivery_events_queue_url(stack.region, stack.account)
            if props.with_delivery_events
            else None,
            "customer_accounts": _sorted(props.delivery_customer_accounts),
        }

    @staticmethod
    def _contact_roles_elsewhere(roles: Mapping[str, str], accounts: Mapping[str, str], partition: str) -> str:
        """Only the roles the runtime cannot derive from ``TTP_CUSTOMER_ACCOUNTS`` (``names.contact_reader_role_name``
        in the customer's account): an ARN per customer outgrows ECS's 64 KiB task definition at ~650
        customers. Rendered at synthesis, so live mappings (the platform's registry) are complete."""

        def elsewhere() -> dict[str, str]:
            return {
                code: arn
                for code, arn in sorted(roles.items())
                if code not in accounts
                or arn != names.role_arn(accounts[code], names.contact_reader_role_name(code), partition)
            }

        return lazy_string(lambda: render(elsewhere()))

    def _grant(self, props: ChangeCoordinatorProps, partition: str) -> None:
        bucket_arn = f"arn:{partition}:s3:::{props.bucket_name}"
        archive_and_processing = objects_under(bucket_arn, keys.ARCHIVE_PREFIX, keys.PROCESSING_PREFIX)
        self.events.grant_consume(self.task_role)
        if self.delivery is not None:
            self.delivery.events.grant_consume(self.task_role)
        statements = [
            iam.PolicyStatement(sid="ListBucketFor404", actions=["s3:ListBucket"], resources=[bucket_arn]),
            iam.PolicyStatement(
                sid="ReadArchiveAndProcessing", actions=["s3:GetObject"], resources=archive_and_processing
            ),
            *conditional_writes("Archive", bucket_arn, keys.ARCHIVE_PREFIX),
        ]
        if self.delivery is not None:
            statements += [
                # delivery/{code}/{id}.json: the delivery-event consumer (in this task) is its only writer, by
                # compare-and-swap like the archive.
                object_grant("ReadDelivery", ["s3:GetObject"], bucket_arn, keys.DELIVERY_PREFIX),
                *conditional_writes("Delivery", bucket_arn, keys.DELIVERY_PREFIX),
            ]
        contact_readers = f"arn:{partition}:iam::*:role/{names.CONTACT_READER_ROLE_PREFIX}*"
        if props.meetings is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="AssumeContactReaderRoles", actions=["sts:AssumeRole"], resources=[contact_readers]
                )
            )
        for statement in statements:
            self.task_role.add_to_policy(statement)

        acknowledge_wildcard_resources(
            self.task_role,
            archive_and_processing,
            "docs/design.md §1: the coordinator reads every change and every customer's processing object and folds "
            "results into any archive/{changeId}.json (compare-and-swap); object names are change ids.",
        )
        if self.delivery is not None:
            acknowledge_wildcard_resources(
                self.task_role,
                objects_under(bucket_arn, keys.DELIVERY_PREFIX),
                "The coordinator's delivery-event consumer records every customer's per-recipient delivery "
                "status in delivery/{code}/{changeId}.json (compare-and-swap only); it is the only writer.",
            )
        if props.meetings is not None:
            acknowledge_wildcard_resources(
                self.task_role,
                [contact_readers],
                "Meeting attendees come from every customer's read-only contact-reader role; each role trusts "
                "only the coordinator role of the governance account with the agreed ExternalId, and listing "
                "200 ARNs would exceed the IAM inline policy size limit.",
            )
