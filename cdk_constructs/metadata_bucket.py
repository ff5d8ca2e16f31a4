"""The metadata bucket (management account): archive/, customers/, processing/, delivery/, drafts/.

* Versioned (archive recovery), all public access blocked, SSL enforced, ACLs disabled, server
  access logs to a separate, versioned bucket.
* Encryption: SSE-S3 (``S3_MANAGED``), SSE-C blocked. The readers and writers are roles in *other*
  accounts (processors, sweeper, submitters); SSE-KMS would add a cross-account key policy that must
  list them, a KMS request on every GET/PUT/HEAD, and one more thing that can lock the processors out
  of the archive, while protecting against nothing the bucket policy does not already cover.
* Lifecycle never touches ``archive/`` objects: it aborts incomplete multipart uploads, expires
  *noncurrent* versions of ``drafts/`` and ``customers/`` (deleted triggers) and their expired delete
  markers. Archive versions (current and noncurrent) are kept.
* Routing of ``customers/{code}/*.json`` object-created events to each customer's queue, by S3 event
  notifications (one queue configuration per customer, the default) or by EventBridge (one rule per
  customer on the default bus); and of ``archive/*.json``, ``processing/*.json`` and ``delivery/*.json``
  events to the change coordinator's queue (three more notifications, or one more rule). Queues live in the
  governance account and are referenced by their deterministic ARN (``runtime.contract.names``).
* The bucket policy (``cdk_support.bucket_policy``, where each statement is explained) does not grow
  with customers: processors are matched by ``aws:PrincipalArn`` and their customer tag, the coordinator,
  the sweeper and the operator by their role names; explicit denies for every principal keep archive,
  processing and delivery writes compare-and-swap and archive encryption SSE-S3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_constructs.event_queue import COORDINATOR_EVENT_RULE_NAME
from cdk_support.bucket_policy import (  # noqa: F401 (re-exported: their definitions moved there)
    ARCHIVE_ENCRYPTION,
    CONDITIONAL_DELETE_KEY,
    ENCRYPTION_KEY,
    bucket_policy_statements,
)
from cdk_support.event_rules import events_execution_principal, object_created_pattern
from cdk_support.lazy import lazy_any
from cdk_support.nag import acknowledge, acknowledge_wildcard_resources
from runtime.contract import keys, names

RoutingMode = Literal["s3", "eventbridge"]
COORDINATOR_PREFIXES = (keys.ARCHIVE_PREFIX, keys.PROCESSING_PREFIX, keys.DELIVERY_PREFIX)
"""Object-created events under these prefixes go to the change coordinator's queue."""


@dataclass(frozen=True)
class RoutedCustomer:
    """A customer whose triggers the bucket routes to ``customer-{code}-changes`` in ``queue_account``."""

    code: str
    """The customer (``runtime.contract.keys`` rules). Required."""
    queue_account: str
    """The account of its queue (the governance account). Required."""


@dataclass(frozen=True)
class MetadataBucketProps:
    governance_account: str
    """The account of the processors and the sweeper (named in the bucket policy). Required."""
    customers: Sequence[RoutedCustomer] = ()
    """Customers whose triggers are routed to their queue; more are added with
    :meth:`MetadataBucket.add_customer`. Default: none."""
    customer_queue_account: str | None = None
    """The account where customers added later (:meth:`MetadataBucket.add_customer`) have their queues: with
    EventBridge routing to another account the router role may send to its ``customer-*-changes`` queues
    from the start, so onboarding never rewrites the role. Default: None (only the accounts of ``customers``)."""
    routing: RoutingMode = "s3"
    """How trigger events reach the queues: S3 event notifications or EventBridge rules. Default: ``"s3"``."""
    coordinator_account: str | None = None
    """The account of the change coordinator's queue (``ttp-change-coordinator``): ``archive/`` and
    ``processing/`` and ``delivery/`` object-created events are routed to it. Default: None (no coordinator routing)."""
    bucket_name: str | None = None
    """Physical name of the bucket. Default: None (a CloudFormation-generated name)."""
    noncurrent_version_expiration_days: int = 30
    """Days noncurrent versions of ``drafts/`` and ``customers/`` are kept. Default: 30."""
    access_log_retention_days: int = 365
    """Days the server access logs are kept (and an overwritten or deleted log's old version). Default: 365."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
    """What happens to both buckets when the construct is removed. Default:
    ``RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE``: kept on update and delete, but removed when the stack's
    first create rolls back (a retry would otherwise fail on the fixed bucket name)."""


class MetadataBucket(Construct):
    """The bucket, its access-log bucket, its policy and the routing of trigger events."""

    def __init__(self, scope: Construct, construct_id: str, props: MetadataBucketProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        stack = Stack.of(self)
        self._partition = stack.partition
        self.customers: list[RoutedCustomer] = []
        """Every customer routed: ``props.customers`` and those added since (rendered at synthesis)."""

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write to SSE-KMS buckets
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Versioned: the server access logs are the only record of who wrote archive/; an overwritten
            # or deleted log stays recoverable for another retention period.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(props.access_log_retention_days),
                    noncurrent_version_expiration=Duration.days(props.access_log_retention_days),
                ),
                s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(1)),
                s3.LifecycleRule(id="expired-delete-markers", expired_object_delete_marker=True),
            ],
            removal_policy=props.removal_policy,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server-access-log bucket of the metadata bucket; logging it to itself would loop.",
        )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=props.bucket_name,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            blocked_encryption_types=[s3.BlockedEncryptionType.SSE_C],
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-multipart", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
                s3.LifecycleRule(
                    id="drafts-noncurrent-versions",
                    prefix=keys.DRAFTS_PREFIX,
                    noncurrent_version_expiration=Duration.days(props.noncurrent_version_expiration_days),
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(
                    id="triggers-noncurrent-versions",
                    prefix=keys.CUSTOMERS_PREFIX,
                    noncurrent_version_expiration=Duration.days(props.noncurrent_version_expiration_days),
                    expired_object_delete_marker=True,
                ),
            ],
            removal_policy=props.removal_policy,
        )
        self._log_to(self.access_logs, "metadata-bucket/")
        self._add_policies()
        self.rules: list[events.CfnRule] = []
        if props.routing == "s3":
            self._route_with_notifications()
        else:
            self._route_with_eventbridge()
        for customer in props.customers:
            self.add_customer(customer)

    def add_customer(self, customer: RoutedCustomer) -> None:
        """Route ``customers/{code}/*.json`` to the customer's queue: one more notification configuration
        (rendered with the others at synthesis) or one more EventBridge rule."""
        keys.validate_customer_code(customer.code)
        if any(known.code == customer.code for known in self.customers):
            raise ValueError(f"MetadataBucket: customer {customer.code!r} is routed already; add it once")
        if self.props.routing == "eventbridge":
            own_account = Stack.of(self).account
            if customer.queue_account != own_account and customer.queue_account not in self._router_accounts:
                raise ValueError(
                    f"MetadataBucket: customer {customer.code!r} has its queue in account {customer.queue_account}, "
                    "which the EventBridge router role does not reach; set MetadataBucketProps."
                    "customer_queue_account to it"
                )
            self.rules.append(self._customer_rule(customer))
        self.customers.append(customer)

    def _log_to(self, target: s3.Bucket, prefix: str) -> None:
        """Server access logs through a bucket policy, whatever the app's feature flags (no ACLs)."""
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=target.bucket_name, log_file_prefix=prefix
        )
        target.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3ServerAccessLogs",
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[target.arn_for_objects(f"{prefix}*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": self.bucket.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                },
            )
        )

    # -- access ---------------------------------------------------------------------------------

    def _add_policies(self) -> None:
        """The bucket policy's statements (``cdk_support.bucket_policy``), in their order."""
        statements = bucket_policy_statements(self.bucket.bucket_arn, self.props.governance_account, self._partition)
        for statement in statements:
            self.bucket.add_to_resource_policy(statement)

    # -- routing ----------------------------------------------------------------------------------

    def _route_with_notifications(self) -> None:
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            # The customers' configurations first, then the coordinator's: read at synthesis, so every
            # customer added by then (add_customer) has its own.
            queue_configurations=lazy_any(self._queue_configurations)
        )

    def _queue_configurations(self) -> list[s3.CfnBucket.QueueConfigurationProperty]:
        region = Stack.of(self).region
        routes = [
            (names.queue_arn(region, customer.queue_account, customer.code, self._partition), prefix)
            for customer in self.customers
            for prefix in (keys.trigger_prefix(customer.code),)
        ] + [
            (names.coordinator_queue_arn(region, account, self._partition), prefix)
            for account in self._coordinator_accounts()
            for prefix in COORDINATOR_PREFIXES
        ]
        return [
            s3.CfnBucket.QueueConfigurationProperty(
                event="s3:ObjectCreated:*",
                queue=queue,
                filter=s3.CfnBucket.NotificationFilterProperty(
                    s3_key=s3.CfnBucket.S3KeyFilterProperty(
                        rules=[
                            s3.CfnBucket.FilterRuleProperty(name="prefix", value=prefix),
                            s3.CfnBucket.FilterRuleProperty(name="suffix", value=keys.SUFFIX),
                        ]
                    )
                ),
            )
            for queue, prefix in routes
        ]

    def _coordinator_accounts(self) -> list[str]:
        return [] if self.props.coordinator_account is None else [self.props.coordinator_account]

    def _route_with_eventbridge(self) -> None:
        stack = Stack.of(self)
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
        )
        own_account = stack.account
        queue_accounts = sorted(
            {c.queue_account for c in self.props.customers if c.queue_account != own_account}
            | {a for a in (self.props.customer_queue_account,) if a is not None and a != own_account}
        )
        self._router_accounts = frozenset(queue_accounts)
        coordinator_cross_account = [a for a in self._coordinator_accounts() if a != own_account]
        self.router_role: iam.Role | None = None
        if queue_accounts or coordinator_cross_account:
            self.router_role = self._router_role(queue_accounts, coordinator_cross_account)
        for account in self._coordinator_accounts():
            self.coordinator_rule = self._coordinator_rule(account)

    def _router_role(self, queue_accounts: list[str], coordinator_accounts: list[str]) -> iam.Role:
        """EventBridge delivers to a queue in another account only through an execution role of the bus
        account; the queue policy (EventQueue) admits exactly this role."""
        stack = Stack.of(self)
        own_account, region = stack.account, stack.region
        role = iam.Role(
            self,
            "RouterRole",
            role_name=names.EVENTBRIDGE_ROUTER_ROLE_NAME,
            description="EventBridge execution role: delivers trigger events to the customer queues.",
            assumed_by=events_execution_principal(self._partition, region, own_account, names.EVENT_RULE_PREFIX),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                resources=[
                    *(
                        f"arn:{self._partition}:sqs:{region}:{account}:{names.QUEUE_NAME_PATTERN}"
                        for account in queue_accounts
                    ),
                    *(
                        names.coordinator_queue_arn(region, account, self._partition)
                        for account in coordinator_accounts
                    ),
                ],
            )
        )
        key_accounts = sorted({*queue_accounts, *coordinator_accounts})
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[f"arn:{self._partition}:kms:{region}:{account}:key/*" for account in key_accounts],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
            )
        )
        acknowledge_wildcard_resources(
            role,
            [f"arn:{self._partition}:sqs:{region}:{a}:{names.QUEUE_NAME_PATTERN}" for a in queue_accounts],
            "The router sends only to the platform's customer queues (deterministic names "
            "customer-<code>-changes); onboarding a customer must not rewrite this role.",
        )
        acknowledge_wildcard_resources(
            role,
            [f"arn:{self._partition}:kms:{region}:{a}:key/*" for a in key_accounts],
            "Queue keys have generated ids; use is limited to SQS (kms:ViaService) in the queue account.",
        )
        return role

    def _coordinator_rule(self, account: str) -> events.CfnRule:
        """``archive/``, ``processing/`` and ``delivery/`` objects to the change coordinator's queue in ``account``."""
        stack = Stack.of(self)
        own_account, region = stack.account, stack.region
        wildcards: list[object] = [{"wildcard": f"{prefix}*{keys.SUFFIX}"} for prefix in COORDINATOR_PREFIXES]
        return events.CfnRule(
            self,
            "RouteCoordinator",
            name=COORDINATOR_EVENT_RULE_NAME,
            description="archive/, processing/ and delivery/ objects to the change coordinator's queue",
            event_bus_name="default",
            state="ENABLED",
            event_pattern=object_created_pattern(self.bucket.bucket_name, wildcards),
            targets=[
                events.CfnRule.TargetProperty(
                    id="coordinator-queue",
                    arn=names.coordinator_queue_arn(region, account, self._partition),
                    role_arn=self.router_role.role_arn if account != own_account and self.router_role else None,
                )
            ],
        )

    def _customer_rule(self, customer: RoutedCustomer) -> events.CfnRule:
        stack = Stack.of(self)
        target = events.CfnRule.TargetProperty(
            id="customer-queue",
            arn=names.queue_arn(stack.region, customer.queue_account, customer.code, self._partition),
            role_arn=self.router_role.role_arn
            if customer.queue_account != stack.account and self.router_role
            else None,
        )
        return events.CfnRule(
            self,
            f"Route-{customer.code}",
            name=names.event_rule_name(customer.code),
            description=f"Trigger objects of customer {customer.code} to its queue",
            event_bus_name="default",
            state="ENABLED",
            event_pattern=object_created_pattern(
                self.bucket.bucket_name, [{"wildcard": f"{keys.trigger_prefix(customer.code)}*{keys.SUFFIX}"}]
            ),
            targets=[target],
        )
