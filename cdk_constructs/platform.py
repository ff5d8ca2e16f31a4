"""The platform: everything the customers share, in two stacks (the public construct API, issue 19).

``TtpPlatform`` creates (or takes) the management-account stack ``TtpStorage`` (the metadata bucket and
its routing) and the governance-account stack ``TtpPlatform`` (network, cluster, alarm topics, overview
dashboard, sweeper, change coordinator with its SES delivery events). Customers are onboarded with
:class:`~cdk_constructs.customer.TtpCustomer`, one instance per customer, which registers itself here
(:meth:`TtpPlatform.register`). The platform-wide lists that grow with the customers are rendered lazily
from that registry at synthesis, so none is computed by hand and a customer added at any time appears
in each:

* the bucket's routes (one notification configuration, or one EventBridge rule, per routed customer);
* the sweeper's ``TTP_CUSTOMER_QUEUES``;
* the coordinator's ``TTP_CUSTOMER_ACCOUNTS`` and the delivery-events bus policy and rule (one account each);
* with meetings, the coordinator's ``TTP_CALENDAR_CONTACT_ROLES`` and ``TTP_CONTACT_READER_EXTERNAL_IDS``;
* the coordinator's contact list name (the customers' common list, else the default);
* each customer account's SES forwarding rule (its first customer's stack matches the account's other
  customers' configuration sets).

The two stacks are created beside this construct (in its scope, with the stack names as ids), so their
construct paths, artifact ids and every logical id are those of the stacks the ``cdk.json`` path always
built: an existing deployment upgrades without a replacement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jsii
from aws_cdk import Environment, Stack, Tags
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IValidation

from cdk_constructs.alarm_topics import AlarmTopics, AlarmTopicsProps
from cdk_constructs.change_coordinator import ChangeCoordinator, ChangeCoordinatorProps, CoordinatorMeetings
from cdk_constructs.coordinator_alarms import CoordinatorAlarms, CoordinatorAlarmsProps
from cdk_constructs.metadata_bucket import MetadataBucket, MetadataBucketProps, RoutedCustomer
from cdk_constructs.overview_dashboard import OverviewDashboard, OverviewDashboardProps
from cdk_constructs.platform_network import ImportedVpc, PlatformNetwork, PlatformNetworkProps
from cdk_constructs.sharded_routing import (
    DEFAULT_TRIGGER_BUS_SHARDS,
    PlatformRouting,
    TriggerBuses,
    TriggerBusesProps,
    TriggerForwarding,
    TriggerForwardingProps,
    bucket_routing,
)
from cdk_constructs.submission_site import SiteOidc, SubmissionSite, SubmissionSiteProps
from cdk_constructs.sweeper import Sweeper, SweeperProps
from cdk_constructs.task_execution_role import TaskExecutionRole, TaskExecutionRoleProps
from cdk_support import defaults
from cdk_support.environment import setting_default
from cdk_support.forwarding import forwarded
from cdk_support.lazy import LiveMapping, lazy_string
from cdk_support.log_retention import DEFAULT_LOG_RETENTION_DAYS, retention
from cdk_support.ses_senders import SesSender, check_ses_senders
from runtime.contract import keys, names
from runtime.contract.names import Severity, default_bucket_name
from runtime.contract.settings import MeetingSettings, WorkerSettings

if TYPE_CHECKING:
    from cdk_constructs.customer import TtpCustomer

STORAGE_STACK = "TtpStorage"
"""Default id and CloudFormation name of the management-account stack."""
PLATFORM_STACK = "TtpPlatform"
"""Default id and CloudFormation name of the governance-account stack."""
PROJECT_TAG = ("project", "transient-trigger-pipeline")
"""The tag on every stack and resource of the pipeline."""


def project_stack(
    scope: Construct, stack: Stack | None, name: str, account: str, region: str, description: str
) -> Stack:
    """``stack`` (a stack the caller built) or a new one in ``account`` and ``region`` whose construct id
    and CloudFormation name are ``name``; either way tagged with :data:`PROJECT_TAG`."""
    if stack is None:
        stack = Stack(
            scope,
            name,
            stack_name=name,
            env=Environment(account=account, region=region),
            description=description,
        )
    Tags.of(stack).add(*PROJECT_TAG)
    return stack


@dataclass(frozen=True)
class PlatformAccounts:
    """Where the platform lives (``cdk.json``: ``ttp.accounts``)."""

    management: str
    """Account of the metadata bucket (the storage stack). Required."""
    governance: str
    """Account of queues, processors, coordinator, sweeper, alarms and dashboards. Required."""
    region: str
    """Region of every stack (EventBridge and S3 routing stay in one region). Required."""
    organization_id: str | None = None
    """AWS Organizations id of the customer accounts: the delivery-events bus then admits the organization
    instead of one principal per account (the bus policy's 10,240 characters hold about 300 accounts).
    Default: None (one principal per customer account)."""


@dataclass(frozen=True, kw_only=True)
class PlatformMeetings:
    """Microsoft Graph meetings (``cdk.json``: ``ttp.meetings``); the client secret stays in Secrets Manager."""

    graph_tenant_id: str
    """Entra ID tenant of the meeting organizer. Required."""
    graph_client_id: str
    """App registration (client id) with Calendars.ReadWrite. Required."""
    meeting_organizer: str
    """Mailbox (UPN) that organizes the meetings. Required."""
    graph_client_secret: str
    """Secrets Manager secret in the governance account: its name, or its complete ARN. Required."""
    contact_reader_external_id: str
    """ExternalId of the contact-reader role of every customer without its own. Required."""
    graph_base_url: str = str(setting_default(MeetingSettings, "graph_base_url"))
    """Graph endpoint. Default: the default of ``MeetingSettings.graph_base_url``."""
    graph_authority_host: str = str(setting_default(MeetingSettings, "graph_authority_host"))
    """Token authority host. Default: the default of ``MeetingSettings.graph_authority_host``."""


@dataclass(frozen=True, kw_only=True)
class TtpPlatformProps:
    """Props of :class:`TtpPlatform`; every name is the ``cdk.json`` key of the same setting (``ttp.*``)."""

    accounts: PlatformAccounts
    """Management and governance accounts and the region. Required."""
    routing: PlatformRouting = "s3"
    """How trigger events reach the queues: S3 notifications (up to 97 customers), EventBridge rules on the
    bucket account's default bus (up to 29: 30 wildcard rules per bus), or ``"eventbridge-sharded"`` (each
    customer's rule on one of ``trigger_bus_shards`` governance-account buses, in its own stack: 1,000
    customers and more; ``cdk_constructs/sharded_routing.py``). Default: ``"s3"``."""
    trigger_bus_shards: int = DEFAULT_TRIGGER_BUS_SHARDS
    """Trigger buses of ``"eventbridge-sharded"`` routing (at most 300 customer rules each).
    Default: ``cdk_constructs.sharded_routing.DEFAULT_TRIGGER_BUS_SHARDS``."""
    bucket_name: str | None = None
    """Physical name of the metadata bucket. Default: None (``ttp-metadata-<management>-<region>``)."""
    metrics_namespace: str = names.DEFAULT_METRICS_NAMESPACE
    """CloudWatch namespace of the runtime's metrics. Default: ``names.DEFAULT_METRICS_NAMESPACE``."""
    meetings: PlatformMeetings | None = None
    """Microsoft Graph meetings of the coordinator. Default: None (no meetings)."""
    vpc: ImportedVpc | None = None
    """Your own VPC. Default: None (the platform creates one)."""
    alarm_emails: Mapping[Severity, Sequence[str]] = field(default_factory=dict)
    """E-mail subscriptions per alarm severity. Default: none."""
    customer_dashboards: bool = True
    """One CloudWatch dashboard per customer ($3/month each). Default: True."""
    sweeper_interval_minutes: int = defaults.SWEEP_INTERVAL_MINUTES
    """Minutes between two sweeps. Default: ``cdk_support.defaults.SWEEP_INTERVAL_MINUTES``."""
    cpu_architecture: defaults.CpuArchitectureName = defaults.CPU_ARCHITECTURE
    """CPU architecture of every task and of its image. Default: ``cdk_support.defaults.CPU_ARCHITECTURE``."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Days the task logs are kept. Default: ``cdk_support.log_retention.DEFAULT_LOG_RETENTION_DAYS``."""
    visibility_timeout_seconds: int = int(setting_default(WorkerSettings, "visibility_timeout_seconds"))
    """Visibility timeout of every queue (the workers' lease).
    Default: the default of ``WorkerSettings.visibility_timeout_seconds``."""
    max_receive_count: int = defaults.MAX_RECEIVE_COUNT
    """Receives before a message moves to a DLQ. Default: ``cdk_support.defaults.MAX_RECEIVE_COUNT``."""
    delivery_events: bool = True
    """The coordinator consumes the customers' SES delivery events; then at least one customer must be
    added by synthesis (the bus admits the customer accounts). Default: True."""
    storage_stack: Stack | None = None
    """The management-account stack to build the bucket in. Default: None (a ``TtpStorage`` stack in the
    construct's scope, in ``accounts.management``)."""
    site: SiteOidc | None = None
    """The change managers' submission site (``SubmissionSite``) in the storage stack, authenticated
    against this OIDC provider. Default: None (no site)."""
    platform_stack: Stack | None = None
    """The governance-account stack to build the shared services in. Default: None (a ``TtpPlatform`` stack
    in the construct's scope, in ``accounts.governance``)."""


@dataclass(frozen=True)
class RegisteredCustomer:
    """What the platform records of a customer (:meth:`TtpPlatform.register`)."""

    code: str
    """The customer code. Required."""
    account: str
    """Its AWS account (SES, roles). Required."""
    contact_list_name: str
    """Its SES contact list. Required."""
    configuration_set: str
    """The SES configuration set its emails are sent with (its own or ``ttp-<code>``). Required."""
    contact_reader_external_id: str | None = None
    """Its own contact-reader ExternalId. Default: None (the meetings' shared one)."""
    routed: bool = True
    """Its triggers are routed to its queue (False while offboarding). Default: True."""
    ses_region: str | None = None
    """Its SES region. Default: None (the platform's region)."""
    own_configuration_set: bool = False
    """``configuration_set`` is the customer's own (not the platform's ``ttp-<code>``). Default: False."""
    shares_ses_account_with: tuple[str, ...] = ()
    """The other customers allowed to send from its SES account. Default: none."""


class TtpPlatform(Construct):
    """The shared platform; attributes ``storage_stack``, ``platform_stack``, ``metadata`` (the bucket),
    ``network``, ``cluster``, ``task_execution_role``, ``alarm_topics``, ``overview``, ``sweeper``, ``coordinator``,
    ``coordinator_alarms``, ``customers`` (registered, by code)."""

    def __init__(self, scope: Construct, construct_id: str, props: TtpPlatformProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self.customers: dict[str, RegisteredCustomer] = {}
        self.customer_constructs: dict[str, TtpCustomer] = {}
        # The checks across customers (one SES account, one configuration set) run on every customer
        # registered by synthesis: the same function as the cdk.json model's.
        self.node.add_validation(_SesSendersValidation(self))
        accounts = props.accounts
        self.platform_stack = project_stack(
            scope,
            props.platform_stack,
            PLATFORM_STACK,
            accounts.governance,
            accounts.region,
            "Transient Trigger Pipeline: network, cluster, alarm topics, overview dashboard, sweeper",
        )
        self.storage_stack = project_stack(
            scope,
            props.storage_stack,
            STORAGE_STACK,
            accounts.management,
            accounts.region,
            "Transient Trigger Pipeline: metadata bucket and trigger routing",
        )
        # The bucket notifications also target the change coordinator's queue (platform stack).
        self.storage_stack.add_stack_dependency(
            self.platform_stack, "S3 validates the coordinator's queue as a notification destination"
        )
        self._build_shared(props)
        self.sharded = props.routing == "eventbridge-sharded"
        self.metadata = MetadataBucket(
            self.storage_stack,
            "Metadata",
            MetadataBucketProps(
                governance_account=accounts.governance,
                routing=bucket_routing(props.routing),
                coordinator_account=accounts.governance,
                bucket_name=self.bucket_name,
                # Sharded: no customer is routed from the bucket's account (the forwarding rules are).
                customer_queue_account=None if self.sharded else accounts.governance,
            ),
        )
        self.trigger_buses: TriggerBuses | None = None
        self.trigger_forwarding: TriggerForwarding | None = None
        if self.sharded:
            self.trigger_buses = TriggerBuses(
                self.platform_stack,
                "TriggerBuses",
                TriggerBusesProps(source_account=accounts.management, shards=props.trigger_bus_shards),
            )
            self.trigger_forwarding = TriggerForwarding(
                self.storage_stack,
                "TriggerForwarding",
                TriggerForwardingProps(
                    bucket_name=self.bucket_name,
                    governance_account=accounts.governance,
                    shards=props.trigger_bus_shards,
                ),
            )
        self.site = None
        if props.site is not None:
            site_props = SubmissionSiteProps(self.bucket_name, props.site, customers=lambda: list(self.customers))
            self.site = SubmissionSite(self.storage_stack, "Site", site_props)

    @property
    def bucket_name(self) -> str:
        """The metadata bucket's physical name."""
        accounts = self.props.accounts
        return self.props.bucket_name or default_bucket_name(accounts.management, accounts.region)

    def _build_shared(self, props: TtpPlatformProps) -> None:
        stack, region, account = self.platform_stack, props.accounts.region, props.accounts.governance
        log_retention = retention(props.log_retention_days)
        self.network = PlatformNetwork(
            stack, "Network", PlatformNetworkProps(existing_vpc=props.vpc, flow_log_retention=log_retention)
        )
        self.cluster = ecs.Cluster(
            stack,
            "Cluster",
            cluster_name=names.CLUSTER_NAME,
            vpc=self.network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        # The ECS agent's role of every customer's processor (one role, not one per customer: IAM roles quota).
        self.task_execution_role = TaskExecutionRole(
            stack, "TaskExecutionRole", TaskExecutionRoleProps(cpu_architecture=props.cpu_architecture)
        )
        self.alarm_topics = AlarmTopics(stack, "AlarmTopics", AlarmTopicsProps(alarm_emails=dict(props.alarm_emails)))
        self.overview = OverviewDashboard(
            stack,
            "Overview",
            OverviewDashboardProps(namespace=props.metrics_namespace, cluster_name=names.CLUSTER_NAME),
        )
        self.sweeper = Sweeper(
            stack,
            "Sweeper",
            forwarded(
                SweeperProps,
                props,
                cluster=self.cluster,
                bucket_name=self.bucket_name,
                customer_queues=LiveMapping(
                    lambda: {code: names.queue_url(region, account, code) for code in self.customers}
                ),
                subnets=self.network.task_subnets,
                log_retention=log_retention,
            ),
        )
        self.coordinator = ChangeCoordinator(
            stack,
            "Coordinator",
            forwarded(
                ChangeCoordinatorProps,
                props,
                cluster=self.cluster,
                bucket_name=self.bucket_name,
                source_account=props.accounts.management,
                routing=bucket_routing(props.routing),
                contact_list_name=lazy_string(self._contact_list_name),
                subnets=self.network.task_subnets,
                log_retention=log_retention,
                meetings=self._meetings(props.meetings),
                delivery_customer_accounts=LiveMapping(lambda: {c.code: c.account for c in self.customers.values()}),
                delivery_organization_id=props.accounts.organization_id,
            ),
        )
        self.coordinator_alarms = CoordinatorAlarms(
            stack,
            "CoordinatorAlarms",
            CoordinatorAlarmsProps(topics=dict(self.alarm_topics.topics), namespace=props.metrics_namespace),
        )

    def _meetings(self, meetings: PlatformMeetings | None) -> CoordinatorMeetings | None:
        if meetings is None:
            return None
        stack = self.platform_stack
        secret = (
            secretsmanager.Secret.from_secret_complete_arn(stack, "GraphClientSecret", meetings.graph_client_secret)
            if meetings.graph_client_secret.startswith("arn:")
            else secretsmanager.Secret.from_secret_name_v2(stack, "GraphClientSecret", meetings.graph_client_secret)
        )
        partition = stack.partition
        return CoordinatorMeetings(
            graph_tenant_id=meetings.graph_tenant_id,
            graph_client_id=meetings.graph_client_id,
            meeting_organizer=meetings.meeting_organizer,
            graph_client_secret=secret,
            contact_reader_external_id=meetings.contact_reader_external_id,
            calendar_contact_roles=LiveMapping(
                lambda: {
                    c.code: names.role_arn(c.account, names.contact_reader_role_name(c.code), partition)
                    for c in self.customers.values()
                }
            ),
            contact_reader_external_ids=LiveMapping(
                lambda: {
                    c.code: c.contact_reader_external_id
                    for c in self.customers.values()
                    if c.contact_reader_external_id
                }
            ),
            graph_base_url=meetings.graph_base_url,
            graph_authority_host=meetings.graph_authority_host,
        )

    def _contact_list_name(self) -> str:
        """The customers' common contact list (the coordinator reads every customer's ``aws-calendar``
        subscribers from one list name); the default when there are none or they differ."""
        lists = {c.contact_list_name for c in self.customers.values()}
        return lists.pop() if len(lists) == 1 else names.DEFAULT_CONTACT_LIST_NAME

    # -- registration ------------------------------------------------------------------------------

    def register(self, customer: RegisteredCustomer, construct: TtpCustomer | None = None) -> None:
        """Add a customer to every platform-wide list (rendered at synthesis) and, unless it is offboarding,
        route its triggers to its queue. :class:`~cdk_constructs.customer.TtpCustomer` calls this."""
        keys.validate_customer_code(customer.code)
        if customer.code in self.customers:
            raise ValueError(f"TtpPlatform: customer {customer.code!r} is onboarded twice; give each code once")
        self.customers[customer.code] = customer
        if construct is not None:
            self.customer_constructs[customer.code] = construct
        if customer.routed and not self.sharded:  # sharded: the customer's own stack holds its rule
            self.metadata.add_customer(RoutedCustomer(customer.code, self.props.accounts.governance))

    def customers_in_account(self, account: str) -> list[RegisteredCustomer]:
        """The registered customers of one AWS account, in onboarding order."""
        return [c for c in self.customers.values() if c.account == account]


@jsii.implements(IValidation)
class _SesSendersValidation:
    def __init__(self, platform: TtpPlatform) -> None:
        self._platform = platform

    def validate(self) -> list[str]:
        senders = [
            SesSender(
                code=c.code,
                account=c.account,
                ses_region=c.ses_region,
                configuration_set=c.configuration_set if c.own_configuration_set else None,
                shares_ses_account_with=c.shares_ses_account_with,
            )
            for c in self._platform.customers.values()
        ]
        try:
            check_ses_senders(senders, self._platform.props.accounts.region)
        except ValueError as exc:
            return [f"TtpPlatform: {exc}"]
        return []
