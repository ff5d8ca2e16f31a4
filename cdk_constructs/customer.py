"""One customer of the platform: one construct instance onboards it (the public construct API, issue 19).

``TtpCustomer`` creates (or takes) the customer's two stacks: ``TtpCustomer-{code}`` in the governance
account (queue + DLQ, processor, alarms, dashboard) and ``TtpCustomerAccount-{code}`` in the customer's
account (the SES sender and contact-reader roles, the SES configuration set and the forwarding of its
delivery events). It registers itself with the :class:`~cdk_constructs.platform.TtpPlatform` it is given,
which then routes its triggers, sweeps its queue, accepts its delivery events and reads its contacts
(rendered at synthesis: see ``cdk_constructs/platform.py``). The deploy order of docs/design.md §7 follows from
the stack dependencies it adds: platform, customer, customer account, storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_constructs.customer_alarms import CustomerAlarms, CustomerAlarmsProps
from cdk_constructs.customer_dashboard import CustomerDashboard, CustomerDashboardProps
from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_constructs.customer_ses_roles import CustomerSesRoles, CustomerSesRolesProps
from cdk_constructs.platform import RegisteredCustomer, TtpPlatform, project_stack
from cdk_constructs.ses_delivery_events import SesDeliveryEvents, SesDeliveryEventsProps
from cdk_constructs.sharded_routing import CustomerTriggerRule, CustomerTriggerRuleProps, bucket_routing, shard_of
from cdk_constructs.task_execution_role import shared_task_execution_role
from cdk_support import defaults
from cdk_support.capacity import check_processor_capacity
from cdk_support.environment import setting_default
from cdk_support.forwarding import check_fields, forwarded
from cdk_support.lazy import LiveMapping
from cdk_support.log_retention import retention
from cdk_support.stack_facts import stack_facts
from runtime.contract import keys, names
from runtime.contract.names import SEVERITIES, Severity
from runtime.contract.settings import WorkerSettings


def customer_stack_name(code: str) -> str:
    """Id and CloudFormation name of a customer's governance-account stack."""
    return f"TtpCustomer-{code}"


def customer_account_stack_name(code: str) -> str:
    """Id and CloudFormation name of the stack in a customer's own account."""
    return f"TtpCustomerAccount-{code}"


@dataclass(frozen=True, kw_only=True)
class TtpCustomerProps:
    """Props of :class:`TtpCustomer`; every name is the ``cdk.json`` key of the same setting
    (``ttp.customers[]``)."""

    platform: TtpPlatform
    """The platform the customer joins. Required."""
    code: str
    """Customer code (``runtime.contract.keys`` rules): queue, service and role names derive from it. Required."""
    account: str
    """The customer's AWS account (SES, contact list, sender role). Required."""
    from_address: str
    """Verified SES identity used as From address. Required."""
    sender_external_id: str
    """ExternalId the sender role requires (agree it with the customer). Required."""
    contact_list_name: str = names.DEFAULT_CONTACT_LIST_NAME
    """The customer's SES contact list. Default: ``names.DEFAULT_CONTACT_LIST_NAME``."""
    send_rate_per_second: float = float(setting_default(WorkerSettings, "send_rate_per_second"))
    """Max SendEmail calls per second. Default: the default of ``WorkerSettings.send_rate_per_second``."""
    min_tasks: int = defaults.MIN_PROCESSOR_TASKS
    """Fewest running processor tasks (0 needs ``scale_to_zero``). Default: ``defaults.MIN_PROCESSOR_TASKS``."""
    max_tasks: int = defaults.MAX_PROCESSOR_TASKS
    """Most processor tasks under backlog. Default: ``defaults.MAX_PROCESSOR_TASKS``."""
    scale_to_zero: bool = False
    """Run no task while the queue is empty (``min_tasks`` must be 0). Default: False."""
    ses_region: str | None = None
    """Region of the customer's SES. Default: None (the platform's region)."""
    configuration_set: str | None = None
    """The customer's own SES configuration set. Default: None (the platform creates ``ttp-<code>``)."""
    cpu: int = defaults.TASK_CPU
    """Fargate CPU units of the processor task. Default: ``defaults.TASK_CPU``."""
    memory_mib: int = defaults.TASK_MEMORY_MIB
    """Fargate memory (MiB) of the processor task. Default: ``defaults.TASK_MEMORY_MIB``."""
    max_concurrency: int = int(setting_default(WorkerSettings, "max_concurrency"))
    """Messages one task processes at once. Default: the default of ``WorkerSettings.max_concurrency``."""
    contact_reader_external_id: str | None = None
    """ExternalId of this customer's own contact-reader role (meetings).
    Default: None (the platform's ``meetings.contact_reader_external_id``)."""
    shares_ses_account_with: Sequence[str] = ()
    """The other customers that send from this customer's SES account (same account and region) and so can
    read its recipients in that account's one contact list; each must name this customer too. Default: none
    (two customers in one SES account are refused at synthesis)."""
    offboarding: bool = False
    """Step 1 of removing the customer: its triggers are no longer routed, its stacks stay. Default: False."""
    governance_stack: Stack | None = None
    """The governance-account stack to build queue, processor, alarms and dashboard in. Default: None (a
    ``TtpCustomer-<code>`` stack in the construct's scope)."""
    account_stack: Stack | None = None
    """The customer-account stack to build the SES roles and delivery events in. Default: None (a
    ``TtpCustomerAccount-<code>`` stack in the construct's scope)."""


class TtpCustomer(Construct):
    """One onboarded customer; attributes ``governance_stack``, ``account_stack``, ``queue``, ``processor``,
    ``alarms``, ``dashboard`` (None without customer dashboards), ``roles``, ``delivery_events``."""

    def __init__(self, scope: Construct, construct_id: str, props: TtpCustomerProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.code)
        check_fields(check_processor_capacity, props)
        self.props = props
        platform = props.platform
        p = platform.props
        region, governance = p.accounts.region, p.accounts.governance
        configuration_set = props.configuration_set or names.configuration_set_name(code)
        platform.register(
            RegisteredCustomer(
                code=code,
                account=props.account,
                contact_list_name=props.contact_list_name,
                configuration_set=configuration_set,
                contact_reader_external_id=props.contact_reader_external_id,
                routed=not props.offboarding,
                ses_region=props.ses_region,
                own_configuration_set=props.configuration_set is not None,
                shares_ses_account_with=tuple(props.shares_ses_account_with),
            ),
            self,
        )
        self.governance_stack = project_stack(
            scope,
            props.governance_stack,
            customer_stack_name(code),
            governance,
            region,
            f"Transient Trigger Pipeline: queue, processor, alarms of customer {code}",
        )
        self.account_stack = project_stack(
            scope,
            props.account_stack,
            customer_account_stack_name(code),
            props.account,
            region,
            f"Transient Trigger Pipeline: SES roles in the account of customer {code}",
        )
        self._build_governance(props, configuration_set)
        self._build_account(props)
        # docs/design.md §7 deploy order: governance stacks -> customer role stacks -> storage stack (S3 validates
        # notification destinations, so the queues and their policies must exist first).
        self.account_stack.add_stack_dependency(self.governance_stack, "deploy order: governance stacks first")
        if not props.offboarding and not platform.sharded:
            # Sharded routing: the storage stack names no customer, so it needs none of their stacks first.
            storage = platform.storage_stack
            storage.add_stack_dependency(self.governance_stack, "S3 validates the notification destination queues")
            storage.add_stack_dependency(self.account_stack, "deploy order: customer role stacks before storage")
        # Offboarding: the storage stack no longer routes to the customer nor depends on its stacks, so
        # `cdk deploy TtpStorage` removes the notification while the queue still exists, and destroying the
        # customer's stacks afterwards neither drags the storage stack along nor leaves it a destination
        # S3 can no longer validate.

    def _build_governance(self, props: TtpCustomerProps, configuration_set: str) -> None:
        self._build_queue(props)
        self._build_processor(props)
        self._build_monitoring(props)

    def _build_queue(self, props: TtpCustomerProps) -> None:
        """The customer's queue and, with sharded routing, the rule on its trigger bus that feeds it."""
        platform, code, stack = props.platform, props.code, self.governance_stack
        p = platform.props
        account = p.accounts.governance
        # Sharded routing: the queue is fed by the customer's own rule on its trigger bus (this account).
        bus = names.trigger_bus_name(shard_of(code, p.trigger_bus_shards)) if platform.sharded else "default"
        self.queue = CustomerQueue(
            stack,
            "Queue",
            CustomerQueueProps(
                customer_code=code,
                source_account=account if platform.sharded else p.accounts.management,
                bucket_name=platform.bucket_name,
                routing=bucket_routing(p.routing),
                visibility_timeout_seconds=p.visibility_timeout_seconds,
                max_receive_count=p.max_receive_count,
                event_bus_name=bus,
            ),
        )
        self.trigger_rule: CustomerTriggerRule | None = None
        if platform.sharded and not props.offboarding:
            self.trigger_rule = CustomerTriggerRule(
                stack,
                "TriggerRoute",
                CustomerTriggerRuleProps(
                    customer_code=code,
                    bucket_name=platform.bucket_name,
                    queue_arn=self.queue.queue.queue_arn,
                    shards=p.trigger_bus_shards,
                ),
            )

    def _build_processor(self, props: TtpCustomerProps) -> None:
        """The customer's processor: the runtime task that reads its queue."""
        platform, code, stack = props.platform, props.code, self.governance_stack
        p = platform.props
        region, account = p.accounts.region, p.accounts.governance
        self.processor = CustomerProcessor(
            stack,
            "Processor",
            forwarded(
                CustomerProcessorProps,
                props,
                customer_code=code,
                customer_account=props.account,
                send_rate_per_second=float(props.send_rate_per_second),  # 10 and 10.0: one rendering ("10.0")
                cluster=platform.cluster,
                subnets=platform.network.task_subnets,
                execution_role=shared_task_execution_role(stack, "TaskExecutionRole"),
                queue=self.queue.queue,
                queue_url=names.queue_url(region, account, code),
                bucket_name=platform.bucket_name,
                visibility_timeout_seconds=p.visibility_timeout_seconds,
                metrics_namespace=p.metrics_namespace,
                cpu_architecture=p.cpu_architecture,
                log_retention=retention(p.log_retention_days),
            ),
        )

    def _build_monitoring(self, props: TtpCustomerProps) -> None:
        """The customer's alarms (to the platform's topics, by ARN) and, if enabled, its dashboard."""
        platform, code, stack = props.platform, props.code, self.governance_stack
        p = platform.props
        region, account = p.accounts.region, p.accounts.governance
        partition = stack_facts(stack).partition
        topics: dict[Severity, sns.ITopic] = {
            severity: sns.Topic.from_topic_arn(
                stack,
                f"Topic{severity.capitalize()}",
                names.alarm_topic_arn(region, account, severity, partition),
            )
            for severity in SEVERITIES
        }
        self.alarms = CustomerAlarms(
            stack,
            "Alarms",
            CustomerAlarmsProps(customer_code=code, topics=topics, namespace=p.metrics_namespace),
        )
        self.dashboard: CustomerDashboard | None = None
        if p.customer_dashboards:
            self.dashboard = CustomerDashboard(
                stack,
                "Dashboard",
                CustomerDashboardProps(
                    customer_code=code,
                    namespace=p.metrics_namespace,
                    alarm_arns=tuple(self.alarms.alarm_arns()),
                ),
            )

    def _build_account(self, props: TtpCustomerProps) -> None:
        platform, code, stack = props.platform, props.code, self.account_stack
        p = platform.props
        self.roles = CustomerSesRoles(
            stack,
            "SesRoles",
            forwarded(
                CustomerSesRolesProps,
                props,
                customer_code=code,
                governance_account=p.accounts.governance,
                contact_reader_external_id=None
                if p.meetings is None
                else props.contact_reader_external_id or p.meetings.contact_reader_external_id,
            ),
        )
        # One forwarding rule per account (its name is fixed): the account's first customer owns it and
        # matches the configuration sets of the account's other customers, however many join later.
        first = platform.customers_in_account(props.account)[0].code == code
        others = LiveMapping(
            lambda: {
                c.code: c.configuration_set for c in platform.customers_in_account(props.account) if c.code != code
            }
        )
        self.delivery_events = SesDeliveryEvents(
            stack,
            "DeliveryEvents",
            SesDeliveryEventsProps(
                customer_code=code,
                governance_account=p.accounts.governance,
                governance_region=p.accounts.region,
                configuration_set=props.configuration_set,
                forward_rule=first,
                other_configuration_sets=others.values(),
            ),
        )
