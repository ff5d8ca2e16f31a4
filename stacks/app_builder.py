"""The ``cdk.json`` path: a thin loop over the public construct API (used by app.py, the tests and the
benchmark).

:func:`build_pipeline` turns a validated :class:`~stacks.config.PlatformConfig` into one
:class:`~cdk_constructs.platform.TtpPlatform` and one :class:`~cdk_constructs.customer.TtpCustomer` per
``customers[]`` entry, with the same setting names; everything else (the platform-wide lists, the stack
dependencies) is the constructs' own work. An app that does not read ``cdk.json`` uses those two
constructs directly (docs/infrastructure.md, "Your own app.py").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App, Stack, Validations
from cdk_nag import AwsSolutionsChecks

from cdk_constructs import (
    PLATFORM_STACK,
    STORAGE_STACK,
    ImportedVpc,
    PlatformAccounts,
    PlatformMeetings,
    SiteOidc,
    TtpCustomer,
    TtpCustomerProps,
    TtpPlatform,
    TtpPlatformProps,
    customer_account_stack_name,
    customer_stack_name,
)
from cdk_support.forwarding import forwarded
from cdk_support.quotas import RAISED_QUOTAS_KEY, QuotaValidation, raised_quotas
from stacks.config import (
    CONTEXT_KEY,
    ROUTING_KEY,
    SAMPLE_CUSTOMERS_KEY,
    Customer,
    PlatformConfig,
    config_from_context,
    load_cdk_json,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = REPO_ROOT / "cdk.json"

__all__ = [
    "CDK_JSON",
    "PLATFORM_STACK",
    "REPO_ROOT",
    "STORAGE_STACK",
    "Pipeline",
    "build_app",
    "build_pipeline",
    "customer_account_stack_name",
    "customer_props",
    "customer_stack_name",
    "default_context",
    "platform_props",
]


@dataclass
class Pipeline:
    """What :func:`build_pipeline` built: the app, the config, the platform and its customers (by code)."""

    app: App
    config: PlatformConfig
    platform_construct: TtpPlatform
    customer_constructs: dict[str, TtpCustomer] = field(default_factory=dict)

    @property
    def storage(self) -> Stack:
        return self.platform_construct.storage_stack

    @property
    def platform(self) -> Stack:
        return self.platform_construct.platform_stack

    @property
    def customers(self) -> dict[str, Stack]:
        """Customer code -> its governance-account stack."""
        return {code: c.governance_stack for code, c in self.customer_constructs.items()}

    @property
    def customer_accounts(self) -> dict[str, Stack]:
        """Customer code -> the stack in its own account."""
        return {code: c.account_stack for code, c in self.customer_constructs.items()}

    @property
    def stacks(self) -> list[Stack]:
        return [self.storage, self.platform, *self.customers.values(), *self.customer_accounts.values()]


def default_context() -> dict[str, Any]:
    """The context of cdk.json (feature flags, availability zones, the sample ``ttp`` config)."""
    return load_cdk_json(CDK_JSON)


def platform_props(config: PlatformConfig) -> TtpPlatformProps:
    """The platform's props from ``ttp`` (the same names)."""
    vpc = config.vpc
    meetings = config.meetings
    return forwarded(
        TtpPlatformProps,
        config,
        accounts=PlatformAccounts(**config.accounts.model_dump()),
        meetings=None if meetings is None else PlatformMeetings(**meetings.model_dump()),
        vpc=None if vpc is None else ImportedVpc(**vpc.model_dump()),
        alarm_emails=dict(config.alarm_emails),
        site=None if config.site is None else SiteOidc(**config.site.model_dump()),
        # Delivery events need a customer account for the bus to admit; a platform without customers has none.
        delivery_events=bool(config.customers),
    )


def customer_props(platform: TtpPlatform, customer: Customer) -> TtpCustomerProps:
    """A customer's props from its ``ttp.customers[]`` entry (the same names)."""
    return TtpCustomerProps(platform=platform, **customer.model_dump())


def build_pipeline(app: App, config: PlatformConfig) -> Pipeline:
    """Build the platform and every customer of ``config`` in ``app``: the loop an own ``app.py`` writes."""
    platform = TtpPlatform(app, "Ttp", platform_props(config))
    pipeline = Pipeline(app=app, config=config, platform_construct=platform)
    for customer in config.customers:
        pipeline.customer_constructs[customer.code] = TtpCustomer(
            app, customer.code, customer_props(platform, customer)
        )
    return pipeline


def build_app(
    context: dict[str, Any] | None = None,
    *,
    config: PlatformConfig | None = None,
    outdir: str | None = None,
    nag: bool = True,
    quotas: bool = True,
    builtin_validation: bool = True,
) -> Pipeline:
    """An app with every stack; ``context`` defaults to cdk.json's, ``config`` to the context's ``ttp``.

    ``quotas``: the synth fails when a template exceeds an AWS default quota (``cdk_support/quotas.py``),
    or the raised value given in the context key ``ttp:raised-quotas``. ``builtin_validation=False`` skips
    aws-cdk-lib's built-in CloudFormation validation (as ``cdk synth --no-validation`` does): the tests'
    syntheses other than the sample's, which cfn-lint checks too; an operator's synth keeps it."""
    ctx = default_context() if context is None else context
    # Set only to turn it off: None leaves it unset, so CDK_VALIDATION and `cdk synth --no-validation` decide.
    app = App(context=ctx, outdir=outdir, builtin_cloud_formation_validation=None if builtin_validation else False)
    if config is None:
        merged = {**ctx, **{k: app.node.try_get_context(k) for k in (CONTEXT_KEY, SAMPLE_CUSTOMERS_KEY, ROUTING_KEY)}}
        config = config_from_context(merged)
    pipeline = build_pipeline(app, config)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    if quotas:
        limits = raised_quotas(app.node.try_get_context(RAISED_QUOTAS_KEY))
        Validations.of(app).add_plugins(QuotaValidation(app, limits))
    return pipeline
