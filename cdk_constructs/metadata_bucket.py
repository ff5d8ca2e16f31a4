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
* The bucket policy does not grow with customers (docs/design.md §1, one writer per object): processors are
  matched by ``aws:PrincipalArn`` (``ttp-processor-*`` in the governance account) and may read
  ``archive/*``, read/write ``processing/${aws:PrincipalTag/customer_code}/*`` and read/delete
  ``customers/${aws:PrincipalTag/customer_code}/*`` (policy variables only where AWS documents them: in
  ``Resource`` and ``Condition``); explicit denies keep them off every object outside ``archive/``,
  ``customers/`` and ``processing/`` (``drafts/``, ``delivery/``), an untagged processor off triggers and
  processing objects, and every processor from writing ``archive/*``. Another customer's triggers and
  processing objects are not granted (across accounts both policies must allow) and are denied by each
  processor's own policy (literal prefixes in ``NotResource``, :class:`CustomerProcessor`). The
  coordinator (``ttp-change-coordinator``) reads ``archive/*`` and ``processing/*``, writes ``archive/*``
  only conditionally (``If-Match`` / ``If-None-Match``), reads and conditionally writes ``delivery/*``
  (its delivery-event consumer is the only writer; processors and the sweeper have no access). The
  sweeper (``ttp-sweeper``) reads ``archive/*``, ``customers/*`` and ``processing/*``, deletes and tags
  triggers, and creates a missing trigger only with ``If-None-Match`` (never an overwrite).
* Explicit denies for every principal, whatever its IAM policy: a PUT to ``archive/``, ``processing/``
  or ``delivery/`` without ``If-Match`` / ``If-None-Match``, a processor's DELETE of a trigger without
  ``If-Match``, and an archive PUT asking for an encryption other than SSE-S3 (``AES256``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_constructs.event_queue import COORDINATOR_EVENT_RULE_NAME
from cdk_support.iam_actions import CONDITIONAL_WRITE_KEYS, PROCESSOR_DENIED_OBJECT_ACTIONS, TRIGGER_TAGGING_ACTIONS
from cdk_support.lazy import lazy_any
from cdk_support.nag import acknowledge, acknowledge_wildcard_resources
from runtime.contract import keys, names

RoutingMode = Literal["s3", "eventbridge"]
COORDINATOR_PREFIXES = (keys.ARCHIVE_PREFIX, keys.PROCESSING_PREFIX, keys.DELIVERY_PREFIX)
"""Object-created events under these prefixes go to the change coordinator's queue."""
CONDITIONAL_DELETE_KEY = "s3:if-match"
"""S3 condition key of the ``If-Match`` header of a conditional DELETE (general purpose buckets)."""
ENCRYPTION_KEY = "s3:x-amz-server-side-encryption"
"""S3 condition key of the ``x-amz-server-side-encryption`` header of a PUT."""
ARCHIVE_ENCRYPTION = "AES256"
"""The only server-side encryption an archive write may ask for (SSE-S3, the bucket default)."""


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

    def _objects(self, prefix: str) -> str:
        return f"{self.bucket.bucket_arn}/{prefix}*"

    def _add_policies(self) -> None:
        gov = self.props.governance_account
        processors = {"ArnLike": {"aws:PrincipalArn": names.processor_role_arn_pattern(gov, self._partition)}}
        sweeper = {"ArnEquals": {"aws:PrincipalArn": names.role_arn(gov, names.SWEEPER_ROLE_NAME, self._partition)}}
        coordinator = {
            "ArnEquals": {"aws:PrincipalArn": names.role_arn(gov, names.COORDINATOR_ROLE_NAME, self._partition)}
        }
        own_tag = f"${{aws:PrincipalTag/{names.CUSTOMER_TAG_KEY}}}/"
        own_triggers = self._objects(f"{keys.CUSTOMERS_PREFIX}{own_tag}")
        own_processing = self._objects(f"{keys.PROCESSING_PREFIX}{own_tag}")
        # A processor without the tag must not match "customers//*" or "processing//*".
        tagged = {"Null": {f"aws:PrincipalTag/{names.CUSTOMER_TAG_KEY}": "false"}}
        archive = self._objects(keys.ARCHIVE_PREFIX)
        gov_root = iam.AccountPrincipal(gov)
        statements = [
            iam.PolicyStatement(
                # docs/design.md §1: processors read the archive, never write it (the coordinator folds their results).
                sid="ProcessorsReadArchive",
                principals=[gov_root],
                actions=["s3:GetObject"],
                resources=[archive],
                conditions=processors,
            ),
            iam.PolicyStatement(
                sid="ProcessorsReadDeleteOwnTriggers",
                principals=[gov_root],
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=[own_triggers],
                conditions={**processors, **tagged},
            ),
            iam.PolicyStatement(
                # s3:ListBucket turns HEAD/GET of a missing key into 404 instead of 403 (the worker's
                # "trigger already gone" signal). Key names are change ids, all readable in archive/ anyway.
                sid="ProcessorsAndSweeperList",
                principals=[gov_root],
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={
                    "ArnLike": {
                        "aws:PrincipalArn": [
                            names.processor_role_arn_pattern(gov, self._partition),
                            names.role_arn(gov, names.SWEEPER_ROLE_NAME, self._partition),
                        ]
                    }
                },
            ),
            iam.PolicyStatement(
                sid="SweeperReadArchiveTriggersAndProcessing",
                principals=[gov_root],
                actions=["s3:GetObject"],
                resources=[
                    self._objects(keys.ARCHIVE_PREFIX),
                    self._objects(keys.CUSTOMERS_PREFIX),
                    self._objects(keys.PROCESSING_PREFIX),
                ],
                conditions=sweeper,
            ),
            iam.PolicyStatement(
                sid="SweeperDeleteAndTagTriggers",
                principals=[gov_root],
                actions=["s3:DeleteObject", *TRIGGER_TAGGING_ACTIONS],
                resources=[self._objects(keys.CUSTOMERS_PREFIX)],
                conditions=sweeper,
            ),
            iam.PolicyStatement(
                # Fan-out repair: the sweeper re-creates a trigger a submission did not write, create-only.
                sid="SweeperCreateMissingTriggers",
                principals=[gov_root],
                actions=["s3:PutObject"],
                resources=[self._objects(keys.CUSTOMERS_PREFIX)],
                conditions={**sweeper, "Null": {"s3:if-none-match": "false"}},
            ),
            iam.PolicyStatement(
                sid="ProcessorsReadWriteOwnProcessing",
                principals=[gov_root],
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[own_processing],
                conditions={**processors, **tagged},
            ),
            # Only documented policy forms keep processors apart. The IAM User Guide ("IAM policy elements:
            # Variables and tags", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html)
            # says: "You can use policy variables in the Resource element and in string comparisons in the
            # Condition element" -- not in NotResource, where an unsubstituted variable would deny every
            # processor its own objects. So the tag variable appears only in the grants' Resource above and
            # in Condition keys; the NotResource below lists literal prefixes ("IAM JSON policy elements:
            # NotResource", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html),
            # and the line between one customer's prefixes and another's is drawn by the grants (across
            # accounts both policies must allow) and by each processor's own explicit deny with its literal
            # prefixes (CustomerProcessor), which holds in one account too.
            iam.PolicyStatement(
                # Outside archive/, customers/ and processing/ (drafts/, delivery/, any later prefix) a
                # processor can do nothing to any object, whatever its IAM policy says.
                sid="DenyProcessorsOutsideTheirPrefixes",
                effect=iam.Effect.DENY,
                principals=[gov_root],
                actions=list(PROCESSOR_DENIED_OBJECT_ACTIONS),
                not_resources=[archive, self._objects(keys.CUSTOMERS_PREFIX), self._objects(keys.PROCESSING_PREFIX)],
                conditions=processors,
            ),
            iam.PolicyStatement(
                # A processor role without the customer tag has no customer: no trigger, no processing object.
                sid="DenyUntaggedProcessorsTriggersAndProcessing",
                effect=iam.Effect.DENY,
                principals=[gov_root],
                actions=list(PROCESSOR_DENIED_OBJECT_ACTIONS),
                resources=[self._objects(keys.CUSTOMERS_PREFIX), self._objects(keys.PROCESSING_PREFIX)],
                conditions={**processors, "Null": {f"aws:PrincipalTag/{names.CUSTOMER_TAG_KEY}": "true"}},
            ),
            iam.PolicyStatement(
                sid="DenyProcessorsWriteArchive",
                effect=iam.Effect.DENY,
                principals=[gov_root],
                actions=[a for a in PROCESSOR_DENIED_OBJECT_ACTIONS if not a.startswith("s3:Get")],
                resources=[archive],
                conditions=processors,
            ),
            iam.PolicyStatement(
                sid="CoordinatorList",
                principals=[gov_root],
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions=coordinator,
            ),
            iam.PolicyStatement(
                sid="CoordinatorReadArchiveAndProcessing",
                principals=[gov_root],
                actions=["s3:GetObject"],
                resources=[archive, self._objects(keys.PROCESSING_PREFIX)],
                conditions=coordinator,
            ),
            # Conditional writes only (If-Match or If-None-Match): the coordinator folds by compare-and-swap.
            *(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[gov_root],
                    actions=["s3:PutObject"],
                    resources=[archive],
                    conditions={**coordinator, "Null": {header: "false"}},
                )
                for sid, header in (
                    ("CoordinatorWriteArchiveIfMatch", "s3:if-match"),
                    ("CoordinatorCreateArchiveIfNoneMatch", "s3:if-none-match"),
                )
            ),
            iam.PolicyStatement(
                sid="CoordinatorReadDelivery",
                principals=[gov_root],
                actions=["s3:GetObject"],
                resources=[self._objects(keys.DELIVERY_PREFIX)],
                conditions=coordinator,
            ),
            # delivery/: the coordinator's delivery-event consumer is the only writer, compare-and-swap only.
            *(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[gov_root],
                    actions=["s3:PutObject"],
                    resources=[self._objects(keys.DELIVERY_PREFIX)],
                    conditions={**coordinator, "Null": {header: "false"}},
                )
                for sid, header in (
                    ("CoordinatorWriteDeliveryIfMatch", "s3:if-match"),
                    ("CoordinatorCreateDeliveryIfNoneMatch", "s3:if-none-match"),
                )
            ),
            *self._operator_statements(gov_root, archive),
            *self._write_guards(processors, archive),
        ]
        for statement in statements:
            self.bucket.add_to_resource_policy(statement)

    def _operator_statements(self, gov_root: iam.IPrincipal, archive: str) -> list[iam.PolicyStatement]:
        """The operator (``ttp-operator`` in the governance account, docs/runbook.md): what the runbook's
        commands do to the bucket. Across accounts the bucket policy must allow too, so without these
        grants every ``python -m runtime`` command of a governance-account operator is AccessDenied on S3.
        The write guards below still hold (archive writes compare-and-swap, SSE-S3 only)."""
        operator = {
            "ArnEquals": {"aws:PrincipalArn": names.operator_arns(self.props.governance_account, self._partition)}
        }
        triggers = self._objects(keys.CUSTOMERS_PREFIX)
        return [
            iam.PolicyStatement(
                sid="OperatorListAndRead",  # health, verify, stuck, restore: every prefix, every version
                principals=[gov_root],
                actions=[
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:GetObjectTagging",
                    "s3:GetObjectVersionTagging",
                ],
                resources=[self.bucket.bucket_arn, self._objects("")],
                conditions=operator,
            ),
            iam.PolicyStatement(
                sid="OperatorSubmitAndRestore",  # submit (archive, then triggers), restore (archive)
                principals=[gov_root],
                actions=["s3:PutObject"],
                resources=[archive, triggers],
                conditions=operator,
            ),
            iam.PolicyStatement(
                sid="OperatorCleanUpAndSweepTriggers",  # cleanup, sweep
                principals=[gov_root],
                actions=["s3:DeleteObject", *TRIGGER_TAGGING_ACTIONS],
                resources=[triggers],
                conditions=operator,
            ),
        ]

    def _write_guards(self, processors: dict[str, Any], archive: str) -> list[iam.PolicyStatement]:
        """Explicit denies that hold whatever an IAM policy allows (also in one account, where either
        policy may allow): archive and processing writes are compare-and-swap only, a processor deletes a
        trigger only if it is still the one it read, and archive objects are encrypted with SSE-S3 only.

        Condition keys from the S3 user guide ("Enforce conditional writes", "Enforce conditional
        deletes"; see docs/infrastructure.md). ``s3:PutObject`` also authorizes multipart uploads, which
        take no conditional header: the runtime writes these small JSON documents with one PUT.
        """
        return [
            iam.PolicyStatement(
                sid="DenyUnconditionalArchiveAndProcessingWrites",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[archive, self._objects(keys.PROCESSING_PREFIX), self._objects(keys.DELIVERY_PREFIX)],
                # Both headers absent (the keys of one Null block are ANDed).
                conditions={"Null": {key: "true" for key in CONDITIONAL_WRITE_KEYS}},
            ),
            iam.PolicyStatement(
                sid="DenyProcessorsUnconditionalTriggerDeletes",
                effect=iam.Effect.DENY,
                principals=[iam.AccountPrincipal(self.props.governance_account)],
                actions=["s3:DeleteObject"],
                resources=[self._objects(keys.CUSTOMERS_PREFIX)],
                conditions={**processors, "Null": {CONDITIONAL_DELETE_KEY: "true"}},
            ),
            iam.PolicyStatement(
                # Without the header the bucket's default encryption (SSE-S3) applies; with it, only AES256.
                sid="DenyArchiveWritesWithOtherEncryption",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[archive],
                conditions={
                    "StringNotEquals": {ENCRYPTION_KEY: ARCHIVE_ENCRYPTION},
                    "Null": {ENCRYPTION_KEY: "false"},
                },
            ),
        ]

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
            # EventBridge delivers to a queue in another account only through an execution role of
            # the bus account; the queue policy (EventQueue) admits exactly this role.
            self.router_role = iam.Role(
                self,
                "RouterRole",
                role_name=names.EVENTBRIDGE_ROUTER_ROLE_NAME,
                description="EventBridge execution role: delivers trigger events to the customer queues.",
                assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                    {
                        "StringEquals": {"aws:SourceAccount": own_account},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:{self._partition}:events:{stack.region}:{own_account}:rule/"
                            f"{names.EVENT_RULE_PREFIX}*"
                        },
                    }
                ),
            )
            self.router_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage"],
                    resources=[
                        *(
                            f"arn:{self._partition}:sqs:{stack.region}:{account}:{names.QUEUE_NAME_PATTERN}"
                            for account in queue_accounts
                        ),
                        *(
                            names.coordinator_queue_arn(stack.region, account, self._partition)
                            for account in coordinator_cross_account
                        ),
                    ],
                )
            )
            key_accounts = sorted({*queue_accounts, *coordinator_cross_account})
            self.router_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[f"arn:{self._partition}:kms:{stack.region}:{account}:key/*" for account in key_accounts],
                    conditions={"StringEquals": {"kms:ViaService": f"sqs.{stack.region}.amazonaws.com"}},
                )
            )
            acknowledge_wildcard_resources(
                self.router_role,
                [f"arn:{self._partition}:sqs:{stack.region}:{a}:{names.QUEUE_NAME_PATTERN}" for a in queue_accounts],
                "The router sends only to the platform's customer queues (deterministic names "
                "customer-<code>-changes); onboarding a customer must not rewrite this role.",
            )
            acknowledge_wildcard_resources(
                self.router_role,
                [f"arn:{self._partition}:kms:{stack.region}:{a}:key/*" for a in key_accounts],
                "Queue keys have generated ids; use is limited to SQS (kms:ViaService) in the queue account.",
            )
        for account in self._coordinator_accounts():
            wildcards: list[object] = [{"wildcard": f"{prefix}*{keys.SUFFIX}"} for prefix in COORDINATOR_PREFIXES]
            self.coordinator_rule = events.CfnRule(
                self,
                "RouteCoordinator",
                name=COORDINATOR_EVENT_RULE_NAME,
                description="archive/, processing/ and delivery/ objects to the change coordinator's queue",
                event_bus_name="default",
                state="ENABLED",
                event_pattern={
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [self.bucket.bucket_name]},
                        "object": {"key": wildcards},
                    },
                },
                targets=[
                    events.CfnRule.TargetProperty(
                        id="coordinator-queue",
                        arn=names.coordinator_queue_arn(stack.region, account, self._partition),
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
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [self.bucket.bucket_name]},
                    "object": {"key": [{"wildcard": f"{keys.trigger_prefix(customer.code)}*{keys.SUFFIX}"}]},
                },
            },
            targets=[target],
        )
