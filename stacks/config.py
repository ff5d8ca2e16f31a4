"""The platform configuration: the ``ttp`` key of ``cdk.json`` context, validated with pydantic v2.

Every error names the field (``ttp.customers[2].external_id``) and says how to fix it. Context keys
that override the file for one synth (benchmarks, experiments):

* ``ttp:sample-customers=N`` replaces the customer list with N generated sample customers;
* ``ttp:routing=s3|eventbridge|eventbridge-sharded`` overrides ``routing``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cdk_support import defaults
from cdk_support.capacity import check_processor_capacity, check_shutdown
from cdk_support.environment import setting_default
from cdk_support.forwarding import check_fields
from cdk_support.log_retention import ALLOWED_DAYS, DEFAULT_LOG_RETENTION_DAYS
from cdk_support.ses_senders import SesSender, check_ses_senders
from runtime.contract import names
from runtime.contract.keys import validate_customer_code
from runtime.contract.names import default_bucket_name
from runtime.contract.settings import (
    EXTERNAL_ID_MAX_LENGTH,
    EXTERNAL_ID_MIN_LENGTH,
    EXTERNAL_ID_PATTERN,
    REGION_PATTERN,
    MeetingSettings,
    WorkerSettings,
)
from runtime.contract.sqs_limits import MAX_VISIBILITY_TIMEOUT_SECONDS
from stacks.config_rules import (  # noqa: F401 (re-exported: defined there since the split of issue 20)
    ACCOUNT_PATTERN,
    BUCKET_PATTERN,
    CODE_DERIVED_NAMES,
    CONFIGURATION_SET_PATTERN,
    COORDINATOR_EVENT_RULES,
    COORDINATOR_NOTIFICATION_CONFIGURATIONS,
    COORDINATOR_RESERVED_CODES,
    EMAIL_PATTERN,
    EVENTBRIDGE_RULES_PER_BUS,
    ORGANIZATION_PATTERN,
    PATTERN_HINTS,
    RENAMED_CUSTOMER_KEYS,
    RENAMED_MEETINGS_KEYS,
    RESERVED_CUSTOMER_CODES,
    S3_MAX_NOTIFICATION_CONFIGURATIONS,
    SUBNET_PATTERN,
    VPC_PATTERN,
    WORKER_DRAIN_SECONDS,
    ConfigDeprecationWarning,
    check_reserved_codes,
    check_routing_capacity,
    check_unique_codes,
    codes_colliding_with_platform_names,
    platform_owned_names,
    read_renamed_keys,
)

CONTEXT_KEY = "ttp"
SAMPLE_CUSTOMERS_KEY = "ttp:sample-customers"
ROUTING_KEY = "ttp:routing"


AccountId = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]
Region = Annotated[str, Field(pattern=REGION_PATTERN)]
CustomerCode = Annotated[str, AfterValidator(validate_customer_code)]
EmailAddress = Annotated[str, Field(pattern=EMAIL_PATTERN)]
# sts:ExternalId: the runtime's bounds (runtime/contract/settings.py), one definition for both.
ExternalId = Annotated[
    str, Field(min_length=EXTERNAL_ID_MIN_LENGTH, max_length=EXTERNAL_ID_MAX_LENGTH, pattern=EXTERNAL_ID_PATTERN)
]


class ConfigError(ValueError):
    """The ``ttp`` configuration is invalid; the message names every bad field and the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Accounts(_Model):
    management: AccountId = Field(description="Account of the metadata bucket (StorageStack).")
    governance: AccountId = Field(description="Account of queues, processors, alarms and dashboards.")
    region: Region = Field(description="Region of every stack (EventBridge and S3 routing stay in one region).")
    organization_id: str | None = Field(
        None,
        pattern=ORGANIZATION_PATTERN,
        description="AWS Organizations id of the customer accounts: the delivery-events bus admits the "
        "organization (aws:PrincipalOrgID) instead of one principal per account (needed past ~300 accounts).",
    )


class Customer(_Model):
    code: CustomerCode = Field(description="Customer code: queue, service and role names derive from it.")
    account: AccountId = Field(description="The customer's AWS account (SES, contact list, sender role).")
    from_address: EmailAddress = Field(
        description="Verified SES identity used as From address (TTP_FROM_ADDRESS); formerly sender_address."
    )
    sender_external_id: ExternalId = Field(
        description="ExternalId the sender role requires (agree it with the customer); formerly external_id."
    )
    contact_list_name: str = Field(names.DEFAULT_CONTACT_LIST_NAME, min_length=1, max_length=64)
    send_rate_per_second: float = Field(
        setting_default(WorkerSettings, "send_rate_per_second"),
        gt=0,
        le=500,
        description="Max SendEmail calls/s (below the SES rate).",
    )
    min_tasks: int = Field(
        defaults.MIN_PROCESSOR_TASKS,
        ge=0,
        le=50,
        description="Minimum running processor tasks (0 needs scale_to_zero).",
    )
    max_tasks: int = Field(
        defaults.MAX_PROCESSOR_TASKS, ge=1, le=50, description="Maximum processor tasks under queue backlog."
    )
    scale_to_zero: bool = Field(False, description="Run no task while the queue is empty (min_tasks must be 0).")
    ses_region: Region | None = Field(None, description="Region of the customer's SES (default: accounts.region).")
    configuration_set: str | None = Field(
        None,
        pattern=CONFIGURATION_SET_PATTERN,
        description="The customer's own SES configuration set: the worker sends with it and the platform adds its "
        "event destination (default: the platform creates ttp-<code>).",
    )
    cpu: int = Field(defaults.TASK_CPU, description="Fargate CPU units of the processor task.")
    memory_mib: int = Field(defaults.TASK_MEMORY_MIB, description="Fargate memory (MiB) of the processor task.")
    max_concurrency: int = Field(
        setting_default(WorkerSettings, "max_concurrency"),
        ge=1,
        le=64,
        description="Messages one task processes at once.",
    )
    contact_reader_external_id: ExternalId | None = Field(
        None,
        description="ExternalId of this customer's own contact-reader role (meetings); give each customer its "
        "own (default: meetings.contact_reader_external_id, shared by every customer without one).",
    )
    shares_ses_account_with: list[CustomerCode] = Field(
        default_factory=list,
        description="The other customers that send from this customer's SES account (same account and region) and "
        "so can read its recipients in that account's one contact list; each must name this customer too "
        "(default: none: two customers in one SES account are refused)",
    )
    offboarding: bool = Field(
        False,
        description="Step 1 of removing the customer: its triggers are no longer routed (the storage stack "
        "drops its notification or rule and no longer depends on its stacks) while its queue and processor "
        "stay; remove the entry only after deploying the storage stack (docs/infrastructure.md, Offboarding).",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Read a deployed cdk.json's old key names (with a deprecation warning naming the new one)."""
        code = data.get("code") if isinstance(data, dict) else None
        return read_renamed_keys(data, RENAMED_CUSTOMER_KEYS, "ttp.customers[]", f" (customer {code!r})")

    @property
    def external_id(self) -> str:
        """Deprecated name of :attr:`sender_external_id`."""
        return self.sender_external_id

    @property
    def sender_address(self) -> str:
        """Deprecated name of :attr:`from_address`."""
        return self.from_address

    @model_validator(mode="after")
    def _capacity(self) -> Customer:
        check_fields(check_processor_capacity, self)
        return self


class Meetings(_Model):
    graph_tenant_id: str = Field(
        min_length=1, description="Entra ID tenant of the meeting organizer; formerly tenant_id."
    )
    graph_client_id: str = Field(
        min_length=1, description="App registration (client id) with Calendars.ReadWrite; formerly client_id."
    )
    meeting_organizer: EmailAddress = Field(
        description="Mailbox (UPN) that organizes the meetings; formerly organizer."
    )
    graph_client_secret: str = Field(
        min_length=1,
        description="Secrets Manager secret in the governance account: its name, or its complete ARN "
        "(with the 6-character suffix); formerly client_secret.",
    )
    contact_reader_external_id: ExternalId = Field(
        description="ExternalId of the contact-reader role of every customer without its own "
        "(customers[].contact_reader_external_id)."
    )
    graph_base_url: str = Field(setting_default(MeetingSettings, "graph_base_url"), pattern=r"^https://\S+$")
    graph_authority_host: str = Field(
        setting_default(MeetingSettings, "graph_authority_host"), pattern=r"^https://\S+$"
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Read a deployed cdk.json's old key names (with a deprecation warning naming the new one)."""
        return read_renamed_keys(data, RENAMED_MEETINGS_KEYS, "ttp.meetings")

    @field_validator("graph_client_secret")
    @classmethod
    def _secret_reference(cls, value: str) -> str:
        if value.startswith("arn:") and not re.fullmatch(
            r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}", value
        ):
            raise ValueError("a secret ARN must be the complete ARN, ending in '-' and the 6-character suffix")
        if not value.startswith("arn:") and not re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,512}", value):
            raise ValueError("a secret name may contain only letters, digits and /_+=.@-")
        return value


class VpcImport(_Model):
    vpc_id: str = Field(pattern=VPC_PATTERN)
    availability_zones: list[str] = Field(min_length=2)
    private_subnet_ids: list[Annotated[str, Field(pattern=SUBNET_PATTERN)]] = Field(
        min_length=2, description="Private subnets with a route to the internet (NAT) or VPC endpoints."
    )

    @model_validator(mode="after")
    def _same_length(self) -> VpcImport:
        if len(self.availability_zones) != len(self.private_subnet_ids):
            raise ValueError(
                "give one private subnet id per availability zone (the two lists must have the same length)"
            )
        return self


class Site(_Model):
    """The submission site's OIDC provider (cdk_constructs.submission_site.SiteOidc; docs/infrastructure.md)."""

    issuer: str = Field(pattern=r"^https://", description="The provider's issuer URL (the ID tokens' iss).")
    client_id: str = Field(min_length=1, description="The site's client id at the provider (the tokens' aud).")
    authorize_url: str = Field(pattern=r"^https://", description="Where a signed-out viewer is sent to sign in.")
    token_url: str = Field(
        pattern=r"^https://", description="The provider's token endpoint (the edge exchanges the code with PKCE)."
    )
    jwks_url: str = Field(pattern=r"^https://", description="The provider's signing keys (JWKS).")


class PlatformConfig(_Model):
    accounts: Accounts
    customers: list[Customer] = Field(default_factory=list)
    routing: defaults.RoutingName = Field(
        "s3",
        description="How trigger events reach the queues: 's3' up to 97 customers, 'eventbridge-sharded' beyond "
        "(docs/infrastructure.md, Quotas).",
    )
    trigger_bus_shards: int = Field(
        defaults.TRIGGER_BUS_SHARDS,
        ge=1,
        le=29,
        description="Trigger buses of routing 'eventbridge-sharded' (each holds at most 300 customer rules).",
    )
    bucket_name: str | None = Field(
        None, pattern=BUCKET_PATTERN, description="Default: ttp-metadata-<account>-<region>."
    )
    metrics_namespace: str = Field(names.DEFAULT_METRICS_NAMESPACE, min_length=1, max_length=255)
    meetings: Meetings | None = None
    vpc: VpcImport | None = Field(None, description="Bring your own VPC (else the platform creates one).")
    alarm_emails: dict[Literal["critical", "warning", "info"], list[EmailAddress]] = Field(default_factory=dict)
    customer_dashboards: bool = Field(True, description="One CloudWatch dashboard per customer ($3/month each).")
    site: Site | None = Field(None, description="The change managers' submission site (absent: no site).")
    sweeper_interval_minutes: int = Field(defaults.SWEEP_INTERVAL_MINUTES, ge=1, le=60)
    cpu_architecture: defaults.CpuArchitectureName = Field(
        defaults.CPU_ARCHITECTURE,
        description="CPU architecture of every task and of the image built for them ('ARM64': Graviton).",
    )
    log_retention_days: int = Field(DEFAULT_LOG_RETENTION_DAYS)
    visibility_timeout_seconds: int = Field(
        setting_default(WorkerSettings, "visibility_timeout_seconds"), ge=60, le=MAX_VISIBILITY_TIMEOUT_SECONDS
    )
    max_receive_count: int = Field(defaults.MAX_RECEIVE_COUNT, ge=1, le=1000)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in ALLOWED_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {list(ALLOWED_DAYS)} days")
        return value

    @model_validator(mode="after")
    def _platform(self) -> PlatformConfig:
        codes = [c.code for c in self.customers]
        check_unique_codes(codes)
        check_reserved_codes(codes)
        check_ses_senders(
            [
                SesSender(
                    code=c.code,
                    account=c.account,
                    ses_region=c.ses_region,
                    configuration_set=c.configuration_set,
                    shares_ses_account_with=tuple(c.shares_ses_account_with),
                )
                for c in self.customers
            ],
            self.accounts.region,
        )
        check_routing_capacity(self.routing, len(self.customers))
        # The worker's drain must stay below the visibility timeout (the lease length).
        check_shutdown(drain_seconds=WORKER_DRAIN_SECONDS, visibility_timeout_seconds=self.visibility_timeout_seconds)
        return self

    def ses_account_of(self, customer: Customer) -> tuple[str, str]:
        """The SES account the customer sends from: its account and SES's region."""
        return customer.account, customer.ses_region or self.accounts.region

    @property
    def metadata_bucket_name(self) -> str:
        return self.bucket_name or default_bucket_name(self.accounts.management, self.accounts.region)

    @property
    def single_account(self) -> bool:
        accounts = {self.accounts.management, self.accounts.governance, *(c.account for c in self.customers)}
        return len(accounts) == 1

    @property
    def routed_customers(self) -> list[Customer]:
        """The customers whose triggers the bucket routes to their queue (all but those offboarding)."""
        return [c for c in self.customers if not c.offboarding]

    def contact_reader_external_id(self, customer: Customer) -> str | None:
        """The ExternalId the customer's contact-reader role requires: its own, else the shared one
        (None without meetings: there is no contact-reader role)."""
        if self.meetings is None:
            return None
        return customer.contact_reader_external_id or self.meetings.contact_reader_external_id

    def customer(self, code: str) -> Customer:
        for candidate in self.customers:
            if candidate.code == code:
                return candidate
        raise KeyError(code)


def _location(loc: tuple[int | str, ...]) -> str:
    path = CONTEXT_KEY
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after", "function-before", "function-wrap"} or "[" in str(part):
            continue
        else:
            path += f".{part}"
    return path


def _describe(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """The field's description (the fix hint), following the location through nested models."""
    current: Any = model
    field = None
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", {})
        field = fields.get(part)
        if field is None:
            return ""
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        nested = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = nested[0] if nested else None
    return field.description if field is not None and field.description else ""


def parse_config(raw: Any) -> PlatformConfig:
    """Validate the raw ``ttp`` mapping; raise :class:`ConfigError` naming every bad field."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"cdk.json context key {CONTEXT_KEY!r} is missing or not an object; "
            "copy the sample from docs/infrastructure.md"
        )
    try:
        return PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = _location(tuple(error["loc"]))
            if error["type"] == "missing":
                detail = "is required but missing"
            elif error["type"] == "extra_forbidden":
                detail = "is not a known setting (check the spelling)"
            elif error["type"] == "string_pattern_mismatch":
                pattern = str(error.get("ctx", {}).get("pattern", ""))
                detail = f"{error['input']!r} " + PATTERN_HINTS.get(pattern, f"does not match {pattern}")
            else:
                detail = str(error["msg"]).removeprefix("Value error, ")
            hint = _describe(PlatformConfig, tuple(error["loc"]))
            lines.append(f"  {where}: {detail}" + (f" ({hint})" if hint else ""))
        raise ConfigError("invalid cdk.json context 'ttp':\n" + "\n".join(lines)) from None


def sample_customers(count: int, accounts: tuple[str, ...] = ("333333333333", "444444444444")) -> list[dict[str, Any]]:
    """``count`` generated customers (c0001 …) for benchmarks and scale tests, spread over ``accounts``; the
    customers of one account name each other in ``shares_ses_account_with`` (they share its SES)."""
    codes = [f"c{i:04d}" for i in range(1, count + 1)]
    account_of = {code: accounts[i % len(accounts)] for i, code in enumerate(codes, start=1)}
    return [
        {
            "code": code,
            "account": account_of[code],
            "from_address": f"changes@{code}.example.com",
            "sender_external_id": f"ttp-{code}-external",
            **(
                {"shares_ses_account_with": shared}
                if (shared := [c for c in codes if c != code and account_of[c] == account_of[code]])
                else {}
            ),
        }
        for code in codes
    ]


def config_from_context(context: dict[str, Any]) -> PlatformConfig:
    """The config of an app: the ``ttp`` context value plus the ``ttp:*`` overrides."""
    raw = context.get(CONTEXT_KEY)
    if isinstance(raw, str):  # -c ttp='{"...": ...}' on the command line arrives as a string
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context {CONTEXT_KEY!r} is not valid JSON: {exc}") from None
    if isinstance(raw, dict):
        raw = dict(raw)
        count = context.get(SAMPLE_CUSTOMERS_KEY)
        if count is not None:
            try:
                number = int(count)
            except (TypeError, ValueError):
                raise ConfigError(f"context {SAMPLE_CUSTOMERS_KEY!r} must be an integer, got {count!r}") from None
            raw["customers"] = sample_customers(number)
        routing = context.get(ROUTING_KEY)
        if routing is not None:
            raw["routing"] = routing
    return parse_config(raw)


def load_cdk_json(path: Path | str) -> dict[str, Any]:
    """The ``context`` object of a cdk.json file."""
    data = json.loads(Path(path).read_text())
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: 'context' must be an object")
    return context
