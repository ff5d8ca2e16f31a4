"""Builds the whole CDK app from the ``ttp`` configuration (used by app.py, the tests and the benchmark)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import PlatformConfig, config_from_context, load_cdk_json
from stacks.customer_account_stack import CustomerAccountStack
from stacks.customer_stack import CustomerStack
from stacks.platform_stack import PlatformStack
from stacks.storage_stack import StorageStack

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = REPO_ROOT / "cdk.json"
STORAGE_STACK = "TtpStorage"
PLATFORM_STACK = "TtpPlatform"


def customer_stack_name(code: str) -> str:
    return f"TtpCustomer-{code}"


def customer_account_stack_name(code: str) -> str:
    return f"TtpCustomerAccount-{code}"


@dataclass
class Pipeline:
    app: App
    config: PlatformConfig
    storage: StorageStack
    platform: PlatformStack
    customers: dict[str, CustomerStack] = field(default_factory=dict)
    customer_accounts: dict[str, CustomerAccountStack] = field(default_factory=dict)

    @property
    def stacks(self) -> list[Any]:
        return [self.storage, self.platform, *self.customers.values(), *self.customer_accounts.values()]


def default_context() -> dict[str, Any]:
    """The context of cdk.json (feature flags, availability zones, the sample ``ttp`` config)."""
    return load_cdk_json(CDK_JSON)


def build_pipeline(app: App, config: PlatformConfig) -> Pipeline:
    region = config.accounts.region
    gov = Environment(account=config.accounts.governance, region=region)
    platform = PlatformStack(
        app,
        PLATFORM_STACK,
        stack_name=PLATFORM_STACK,
        env=gov,
        config=config,
        description="Transient Trigger Pipeline: network, cluster, alarm topics, overview dashboard, sweeper",
    )
    storage = StorageStack(
        app,
        STORAGE_STACK,
        stack_name=STORAGE_STACK,
        env=Environment(account=config.accounts.management, region=region),
        config=config,
        description="Transient Trigger Pipeline: metadata bucket and trigger routing",
    )
    pipeline = Pipeline(app=app, config=config, storage=storage, platform=platform)
    # The bucket notifications also target the change coordinator's queue (platform stack).
    storage.add_stack_dependency(platform, "S3 validates the coordinator's queue as a notification destination")
    for customer in config.customers:
        customer_stack = CustomerStack(
            app,
            customer_stack_name(customer.code),
            stack_name=customer_stack_name(customer.code),
            env=gov,
            config=config,
            customer=customer,
            platform=platform,
            description=f"Transient Trigger Pipeline: queue, processor, alarms of customer {customer.code}",
        )
        account_stack = CustomerAccountStack(
            app,
            customer_account_stack_name(customer.code),
            stack_name=customer_account_stack_name(customer.code),
            env=Environment(account=customer.account, region=region),
            config=config,
            customer=customer,
            description=f"Transient Trigger Pipeline: SES roles in the account of customer {customer.code}",
        )
        # DESIGN §7 deploy order: governance stacks -> customer role stacks -> storage stack (S3 validates
        # notification destinations, so the queues and their policies must exist first).
        account_stack.add_stack_dependency(customer_stack, "deploy order: governance stacks first")
        if not customer.offboarding:
            storage.add_stack_dependency(customer_stack, "S3 validates the notification destination queues")
            storage.add_stack_dependency(account_stack, "deploy order: customer role stacks before storage")
        # Offboarding: the storage stack no longer routes to the customer nor depends on its stacks, so
        # `cdk deploy TtpStorage` removes the notification while the queue still exists, and destroying the
        # customer's stacks afterwards neither drags the storage stack along nor leaves it a destination
        # S3 can no longer validate.
        pipeline.customers[customer.code] = customer_stack
        pipeline.customer_accounts[customer.code] = account_stack
    Tags.of(app).add("project", "transient-trigger-pipeline")
    return pipeline


def build_app(
    context: dict[str, Any] | None = None,
    *,
    config: PlatformConfig | None = None,
    outdir: str | None = None,
    nag: bool = True,
) -> Pipeline:
    """An app with every stack; ``context`` defaults to cdk.json's, ``config`` to the context's ``ttp``."""
    ctx = default_context() if context is None else context
    app = App(context=ctx, outdir=outdir)
    if config is None:
        merged = {**ctx, **{k: app.node.try_get_context(k) for k in _override_keys(ctx)}}
        config = config_from_context(merged)
    pipeline = build_pipeline(app, config)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return pipeline


def _override_keys(ctx: dict[str, Any]) -> list[str]:
    from stacks.config import CONTEXT_KEY, ROUTING_KEY, SAMPLE_CUSTOMERS_KEY

    return [CONTEXT_KEY, SAMPLE_CUSTOMERS_KEY, ROUTING_KEY]
