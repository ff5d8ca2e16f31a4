"""The metadata bucket's policy (:class:`~cdk_constructs.metadata_bucket.MetadataBucket`), statement by statement.

The policy does not grow with customers (docs/design.md §1, one writer per object): processors are matched
by ``aws:PrincipalArn`` (``ttp-processor-*`` in the governance account) and may read ``archive/*``,
read/write ``processing/${aws:PrincipalTag/customer_code}/*`` and read/delete
``customers/${aws:PrincipalTag/customer_code}/*`` (policy variables only where AWS documents them: in
``Resource`` and ``Condition``); explicit denies keep them off every object outside ``archive/``,
``customers/`` and ``processing/`` (``drafts/``, ``delivery/``), an untagged processor off triggers and
processing objects, and every processor from writing ``archive/*``. The coordinator
(``ttp-change-coordinator``) reads ``archive/*`` and ``processing/*``, writes ``archive/*`` only
conditionally (``If-Match`` / ``If-None-Match``), reads and conditionally writes ``delivery/*``. The sweeper
(``ttp-sweeper``) reads ``archive/*``, ``customers/*`` and ``processing/*``, deletes and tags triggers, and
creates a missing trigger only with ``If-None-Match``. The operator gets what the runbook's commands need;
the write guards deny every principal unconditional writes and non-SSE-S3 archive writes.

A module of its own because the statements are one job (who may do what to which prefix) and the bucket's
construct another (buckets, logging, routing); the statements' order is the rendered policy's order.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam

from cdk_support.iam_actions import CONDITIONAL_WRITE_KEYS, PROCESSOR_DENIED_OBJECT_ACTIONS, TRIGGER_TAGGING_ACTIONS
from runtime.contract import keys, names

CONDITIONAL_DELETE_KEY = "s3:if-match"
"""S3 condition key of the ``If-Match`` header of a conditional DELETE (general purpose buckets)."""
ENCRYPTION_KEY = "s3:x-amz-server-side-encryption"
"""S3 condition key of the ``x-amz-server-side-encryption`` header of a PUT."""
ARCHIVE_ENCRYPTION = "AES256"
"""The only server-side encryption an archive write may ask for (SSE-S3, the bucket default)."""


def objects_under(bucket_arn: str, *prefixes: str) -> list[str]:
    """The ARNs of every object under each of ``prefixes`` of the bucket: ``{bucket_arn}/{prefix}*``."""
    return [f"{bucket_arn}/{prefix}*" for prefix in prefixes]


def object_grant(
    sid: str, actions: list[str], bucket_arn: str, *prefixes: str, conditions: dict[str, Any] | None = None
) -> iam.PolicyStatement:
    """A role's statement allowing ``actions`` on the objects under ``prefixes`` (``conditions`` as IAM's)."""
    return iam.PolicyStatement(
        sid=sid, actions=actions, resources=objects_under(bucket_arn, *prefixes), conditions=conditions
    )


def conditional_writes(name: str, bucket_arn: str, prefix: str) -> list[iam.PolicyStatement]:
    """``Write{name}IfMatch`` and ``Create{name}IfNoneMatch``: a role's PUTs under ``prefix`` only with one of
    the two headers (conditions in one statement are ANDed: one statement per header makes the OR)."""
    if_match, if_none_match = CONDITIONAL_WRITE_KEYS
    return [
        object_grant(sid, ["s3:PutObject"], bucket_arn, prefix, conditions={"Null": {key: "false"}})
        for sid, key in ((f"Write{name}IfMatch", if_match), (f"Create{name}IfNoneMatch", if_none_match))
    ]


def bucket_policy_statements(bucket_arn: str, governance_account: str, partition: str) -> list[iam.PolicyStatement]:
    """Every statement of the metadata bucket's policy, in the order the bucket adds them."""
    return _BucketPolicy(bucket_arn, governance_account, partition).statements()


class _BucketPolicy:
    """The principals' conditions and the prefixes' ARNs the statements share."""

    def __init__(self, bucket_arn: str, governance_account: str, partition: str) -> None:
        self.bucket_arn = bucket_arn
        self.governance_account = governance_account
        self.partition = partition
        gov = governance_account
        self.processors = {"ArnLike": {"aws:PrincipalArn": names.processor_role_arn_pattern(gov, partition)}}
        self.sweeper = {"ArnEquals": {"aws:PrincipalArn": names.role_arn(gov, names.SWEEPER_ROLE_NAME, partition)}}
        self.coordinator = {
            "ArnEquals": {"aws:PrincipalArn": names.role_arn(gov, names.COORDINATOR_ROLE_NAME, partition)}
        }
        self.archive = self._objects(keys.ARCHIVE_PREFIX)
        self.gov_root = iam.AccountPrincipal(gov)

    def _objects(self, prefix: str) -> str:
        return f"{self.bucket_arn}/{prefix}*"

    def statements(self) -> list[iam.PolicyStatement]:
        return [
            *self._processor_and_sweeper_grants(),
            *self._processor_denies(),
            *self._coordinator_grants(),
            *self._operator_statements(),
            *self._write_guards(),
        ]

    def _processor_and_sweeper_grants(self) -> list[iam.PolicyStatement]:
        gov, gov_root, processors, sweeper, archive = (
            self.governance_account,
            self.gov_root,
            self.processors,
            self.sweeper,
            self.archive,
        )
        own_tag = f"${{aws:PrincipalTag/{names.CUSTOMER_TAG_KEY}}}/"
        own_triggers = self._objects(f"{keys.CUSTOMERS_PREFIX}{own_tag}")
        own_processing = self._objects(f"{keys.PROCESSING_PREFIX}{own_tag}")
        # A processor without the tag must not match "customers//*" or "processing//*".
        tagged = {"Null": {f"aws:PrincipalTag/{names.CUSTOMER_TAG_KEY}": "false"}}
        return [
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
                resources=[self.bucket_arn],
                conditions={
                    "ArnLike": {
                        "aws:PrincipalArn": [
                            names.processor_role_arn_pattern(gov, self.partition),
                            names.role_arn(gov, names.SWEEPER_ROLE_NAME, self.partition),
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
        ]

    def _processor_denies(self) -> list[iam.PolicyStatement]:
        gov_root, processors, archive = self.gov_root, self.processors, self.archive
        return [
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
        ]

    def _coordinator_grants(self) -> list[iam.PolicyStatement]:
        gov_root, coordinator, archive = self.gov_root, self.coordinator, self.archive
        return [
            iam.PolicyStatement(
                sid="CoordinatorList",
                principals=[gov_root],
                actions=["s3:ListBucket"],
                resources=[self.bucket_arn],
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
        ]

    def _operator_statements(self) -> list[iam.PolicyStatement]:
        """The operator (``ttp-operator`` in the governance account, docs/runbook.md): what the runbook's
        commands do to the bucket. Across accounts the bucket policy must allow too, so without these
        grants every ``python -m runtime`` command of a governance-account operator is AccessDenied on S3.
        The write guards below still hold (archive writes compare-and-swap, SSE-S3 only)."""
        gov_root, archive = self.gov_root, self.archive
        operator = {"ArnEquals": {"aws:PrincipalArn": names.operator_arns(self.governance_account, self.partition)}}
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
                resources=[self.bucket_arn, self._objects("")],
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

    def _write_guards(self) -> list[iam.PolicyStatement]:
        """Explicit denies that hold whatever an IAM policy allows (also in one account, where either
        policy may allow): archive and processing writes are compare-and-swap only, a processor deletes a
        trigger only if it is still the one it read, and archive objects are encrypted with SSE-S3 only.

        Condition keys from the S3 user guide ("Enforce conditional writes", "Enforce conditional
        deletes"; see docs/infrastructure.md). ``s3:PutObject`` also authorizes multipart uploads, which
        take no conditional header: the runtime writes these small JSON documents with one PUT.
        """
        processors, archive = self.processors, self.archive
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
                principals=[iam.AccountPrincipal(self.governance_account)],
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
