"""The AWS quotas the platform consumes per customer: one :class:`Quota` per row, its default limit, what it
is counted over and the fix when it binds (docs/infrastructure.md, "Quotas at 1,000 customers").

The table is data, read row by row; measuring the templates against it and failing the synth is
``cdk_support.quotas``, which re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """One AWS quota (its default value) and what to do when the platform reaches it."""

    key: str
    """Stable id (``cloudformation.resources``); limits are overridden by it."""
    name: str
    """The quota as AWS's quota pages name it."""
    limit: int
    """The default value."""
    per: str
    """What it is counted over: ``stack``, ``bus``, ``rule``, ``bucket``, ``key``, ``role``, ``task definition``,
    ``account``."""
    unit: str
    adjustable: bool
    fix: str
    """What to change when it binds."""


_QUOTAS = (
    Quota(
        "cloudformation.resources",
        "CloudFormation resources per stack",
        500,
        "stack",
        "resources",
        False,
        "move what grows per customer out of this stack into the customer's own stack "
        "(routing 'eventbridge-sharded': each customer's rule lives in TtpCustomer-<code>)",
    ),
    Quota(
        "cloudformation.template-bytes",
        "CloudFormation template body size (S3 object)",
        1_000_000,
        "stack",
        "bytes",
        False,
        "move per-customer properties out of this stack (routing 'eventbridge-sharded' puts no customer in the "
        "storage stack)",
    ),
    Quota(
        "cloudformation.outputs",
        "CloudFormation outputs per stack",
        200,
        "stack",
        "outputs",
        False,
        "pass values between stacks by deterministic name (runtime.contract.names), not by cross-stack reference",
    ),
    Quota(
        "cloudformation.parameters",
        "CloudFormation parameters per stack",
        200,
        "stack",
        "parameters",
        False,
        "fewer parameters (context values are resolved at synth time)",
    ),
    Quota(
        "cloudformation.stacks",
        "CloudFormation stacks per account and region",
        2000,
        "account",
        "stacks",
        True,
        "request an increase (Service Quotas, AWS CloudFormation 'Stack count') before onboarding more customers",
    ),
    Quota(
        "events.rules-per-bus",
        "EventBridge rules per event bus",
        300,
        "bus",
        "rules",
        True,
        "spread the customers over more trigger buses: routing 'eventbridge-sharded' with more "
        "trigger_bus_shards (each shard bus holds its customers' rules)",
    ),
    Quota(
        "events.wildcard-rules-per-bus",
        "EventBridge rules containing wildcards per event bus",
        30,
        "bus",
        "rules",
        False,
        "match keys with 'prefix' instead of 'wildcard' (routing 'eventbridge-sharded' does)",
    ),
    Quota(
        "events.pattern-size",
        "EventBridge event pattern size",
        2048,
        "rule",
        "characters",
        True,
        "match fewer values in one rule: one rule per customer, or an account-independent condition",
    ),
    Quota(
        "events.bus-policy-size",
        "EventBridge event bus policy size",
        10_240,
        "bus",
        "characters",
        True,
        "set accounts.organization_id (ttp.accounts in cdk.json; PlatformAccounts.organization_id): the bus then "
        "admits the organization (aws:PrincipalOrgID) instead of one principal per customer account",
    ),
    Quota(
        "s3.notification-configurations",
        "S3 event notification configurations per bucket",
        100,
        "bucket",
        "configurations",
        False,
        "above 97 customers set routing: 'eventbridge-sharded' (S3 routing spends one configuration per customer)",
    ),
    Quota(
        "s3.bucket-policy-size",
        "S3 bucket policy size",
        20_480,
        "bucket",
        "bytes",
        False,
        "grant by principal tag and policy variables (one statement for every customer), never one per customer",
    ),
    Quota(
        "kms.key-policy-size",
        "KMS key policy size",
        32_768,
        "key",
        "bytes",
        False,
        "one key per customer queue (EventQueue), never one statement per customer in a shared key",
    ),
    Quota(
        "iam.role-inline-policy-size",
        "IAM role policy size (all inline policies of a role)",
        10_240,
        "role",
        "characters",
        False,
        "grant by name pattern (customer-*-changes, ttp-processor-*) instead of one ARN per customer",
    ),
    Quota(
        "iam.trust-policy-size",
        "IAM role trust policy length",
        2048,
        "role",
        "characters",
        True,
        "trust by a principal pattern (aws:PrincipalArn) instead of listing each principal",
    ),
    Quota(
        "iam.managed-policy-size",
        "IAM managed policy size",
        6144,
        "managed policy",
        "characters",
        False,
        "grant by name pattern instead of one ARN per customer",
    ),
    Quota(
        "iam.roles-per-account",
        "IAM roles per account",
        1000,
        "account",
        "roles",
        True,
        "request an increase (IAM 'Roles per account', up to 5,000) or give customers their own accounts",
    ),
    Quota(
        "ecs.task-definition-size",
        "ECS task definition size",
        65_536,
        "task definition",
        "bytes",
        False,
        "keep per-customer lists out of task environments: derive them from names (runtime.contract.names)",
    ),
)
QUOTAS: dict[str, Quota] = {quota.key: quota for quota in _QUOTAS}
"""Every quota checked, by key."""
