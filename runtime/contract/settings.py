"""Configuration of the processor and the ops commands, from ``TTP_*`` environment variables.

One pydantic-settings model per kind of process. The worker validates everything at start and
stops with a message naming each bad variable, instead of failing on the first message. The
stacks set exactly these variables (a test compares the task definition with these fields).
AWS endpoints, region and credentials are *not* settings: boto3 reads ``AWS_REGION``,
``AWS_ENDPOINT_URL`` and friends itself, so the same worker runs against a local emulator unchanged.
"""

from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, SecretStr, StringConstraints, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from runtime.contract import names
from runtime.contract.keys import validate_customer_code
from runtime.contract.names import CLUSTER_NAME, DEFAULT_CONTACT_LIST_NAME, DEFAULT_METRICS_NAMESPACE, ENV_PREFIX
from runtime.contract.sqs_limits import MAX_VISIBILITY_TIMEOUT_SECONDS
from runtime.contract.thresholds import STUCK_AFTER_SECONDS

CustomerCode = Annotated[str, AfterValidator(validate_customer_code)]
AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$"
"""An AWS region name (``stacks/config.py`` validates ``ttp.accounts.region`` with it, the CLI ``--region``)."""


def _is_customer_code(code: object) -> bool:
    """Whether ``code`` is a valid customer code; an invalid one is left for the field's own validator to
    name, instead of failing inside a derivation."""
    if not isinstance(code, str):
        return False
    try:
        validate_customer_code(code)
    except ValueError:
        return False
    return True


# sts:ExternalId: 2-1224 characters of [\w+=,.@:/-] (AWS's own constraint); stacks/config.py uses these too.
EXTERNAL_ID_MIN_LENGTH = 2
EXTERNAL_ID_MAX_LENGTH = 1224
EXTERNAL_ID_CHARACTERS = r"[\w+=,.@:/-]"
EXTERNAL_ID_PATTERN = rf"^{EXTERNAL_ID_CHARACTERS}+$"


@dataclass(frozen=True)
class Bounds:
    """What :func:`describe_bounds` says of a field whose bounds its validator checks (not pydantic's
    ``ge``/``le``/``min_length`` metadata)."""

    text: str


def _valid_external_id(value: SecretStr) -> SecretStr:
    """A secret's length error in pydantic's own words counts "items" and may not name the rule; this
    one counts characters, names the rule and never echoes the value."""
    secret = value.get_secret_value()
    count = len(secret)
    if not EXTERNAL_ID_MIN_LENGTH <= count <= EXTERNAL_ID_MAX_LENGTH:
        plural = "" if count == 1 else "s"
        raise ValueError(
            f"must be {EXTERNAL_ID_MIN_LENGTH}-{EXTERNAL_ID_MAX_LENGTH} characters (an sts:ExternalId), "
            f"got {count} character{plural}"
        )
    if not re.fullmatch(EXTERNAL_ID_PATTERN, secret):
        raise ValueError("may contain only letters, digits and _+=,.@:/- (an sts:ExternalId)")
    return value


ExternalId = Annotated[
    SecretStr,
    AfterValidator(_valid_external_id),
    Bounds(f"{EXTERNAL_ID_MIN_LENGTH} to {EXTERNAL_ID_MAX_LENGTH} characters of `{EXTERNAL_ID_CHARACTERS}`"),
]


def _valid_plain_external_id(value: str) -> str:
    _valid_external_id(SecretStr(value))
    return value


PlainExternalId = Annotated[str, AfterValidator(_valid_plain_external_id)]
"""An ExternalId inside a mapping (per customer), checked like :data:`ExternalId`."""


def describe_bounds(field: FieldInfo) -> str:
    """The bounds of a setting as docs/configuration.md's tables state them ("≥ 30, ≤ 43200", "3 to 63 characters"),
    or "" when it has none. A test holds that page to this, so the tables follow the models."""
    metadata = list(field.metadata)
    for member in typing.get_args(field.annotation):  # ``ExternalId | None``: the Annotated member's
        metadata += list(getattr(member, "__metadata__", ()))
    for item in metadata:
        if isinstance(item, Bounds):
            return item.text
    lower = upper = ""
    shortest = longest = None
    for item in metadata:  # pydantic's annotated_types constraints, read by their attribute
        if getattr(item, "ge", None) is not None:
            lower = f"≥ {item.ge:g}"
        elif getattr(item, "gt", None) is not None:
            lower = f"> {item.gt:g}"
        elif getattr(item, "le", None) is not None:
            upper = f"≤ {item.le:g}"
        elif getattr(item, "lt", None) is not None:
            upper = f"< {item.lt:g}"
        elif getattr(item, "min_length", None) is not None:
            shortest = item.min_length
        elif getattr(item, "max_length", None) is not None:
            longest = item.max_length
    if shortest is not None or longest is not None:
        if longest is None:
            return "not empty" if shortest == 1 else f"at least {shortest} characters"
        return f"{shortest or 0} to {longest} characters"
    return ", ".join(part for part in (lower, upper) if part)


class ConfigurationError(RuntimeError):
    """Raised with a message naming every bad environment variable and how to fix it."""


class BucketSettings(BaseSettings):
    """What every command needs: the metadata bucket."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    bucket_name: str = Field(
        min_length=3, max_length=63, description="The metadata bucket (archive/, customers/, drafts/)."
    )
    metrics_namespace: str = Field(
        DEFAULT_METRICS_NAMESPACE, min_length=1, description="CloudWatch namespace of the EMF metrics."
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Log level.")


class SenderSettings(BucketSettings):
    """What processing a trigger needs: the bucket plus the customer's SES sender identity."""

    customer_code: CustomerCode = Field(description="The customer this processor serves (its queue, its triggers).")
    sender_role_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
        description="Role in the customer account used to send through SES.",
    )
    sender_external_id: ExternalId = Field(description="ExternalId required by the sender role's trust policy.")
    ses_region: str | None = Field(None, description="Region of the customer's SES (default: AWS_REGION).")
    from_address: str = Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$", description="Verified SES sender address.")
    contact_list_name: str = Field(
        DEFAULT_CONTACT_LIST_NAME, min_length=1, description="SES contact list in the customer account."
    )
    send_rate_per_second: float = Field(
        10.0, gt=0, le=500, description="Max SendEmail calls per second (keep under the SES account's rate)."
    )
    visibility_timeout_seconds: int = Field(
        300,
        ge=30,
        le=MAX_VISIBILITY_TIMEOUT_SECONDS,
        description="The queue's visibility timeout; also the lease length.",
    )
    contact_cache_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="How long a worker reuses a topic's subscriber list read from SES (0: read it per trigger).",
    )
    configuration_set: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="SES configuration set every email is sent with (its event destination publishes the "
        "delivery events); unset: emails are sent without one.",
    )


class WorkerSettings(SenderSettings):
    """The long-running queue worker (``python -m runtime worker``)."""

    queue_url: str = Field(pattern=r"^https?://\S+$", description="URL of this customer's SQS queue.")
    max_concurrency: int = Field(4, ge=1, le=64, description="Messages processed at once.")
    receive_wait_seconds: int = Field(20, ge=0, le=20, description="SQS long-poll wait.")
    retry_base_seconds: float = Field(
        30.0, ge=0, le=900, description="First backoff of a failed message (doubles per receive)."
    )
    drain_seconds: float = Field(
        90.0, ge=0, le=115, description="On SIGTERM, how long in-flight work may finish (below the ECS stop timeout)."
    )

    @model_validator(mode="after")
    def _drain_fits_visibility(self) -> WorkerSettings:
        if self.drain_seconds >= self.visibility_timeout_seconds:
            raise ValueError("TTP_DRAIN_SECONDS must be smaller than TTP_VISIBILITY_TIMEOUT_SECONDS")
        return self


def _same_as_worker(name: str, description: str | None = None) -> Any:
    """A field defined like :class:`WorkerSettings`' (same default and bounds): one definition of each."""
    field = copy.deepcopy(WorkerSettings.model_fields[name])
    if description is not None:
        field.description = description
    return field


class CoordinatorSettings(BucketSettings):
    """The change coordinator (``python -m runtime coordinator``): folds results, owns the meetings.

    Its queue receives the ``archive/`` and ``processing/`` object events of the bucket. Graph access
    comes from :class:`MeetingSettings`; the customers' ``aws-calendar`` subscribers are read with
    ``contact_list_name`` in ``ses_region``.
    """

    queue_url: str = _same_as_worker("queue_url", "URL of the coordinator's SQS queue.")
    max_concurrency: int = Field(
        32,
        ge=1,
        le=64,
        description=(
            "Messages handled at once. Higher than a worker's: a result's message waits out the fold's linger "
            "in its thread, so throughput is about max_concurrency / (linger + a few requests) messages a second."
        ),
    )
    receive_wait_seconds: int = _same_as_worker("receive_wait_seconds")
    retry_base_seconds: float = _same_as_worker("retry_base_seconds")
    drain_seconds: float = _same_as_worker("drain_seconds")
    visibility_timeout_seconds: int = _same_as_worker("visibility_timeout_seconds", "The queue's visibility timeout.")
    fold_linger_seconds: float = Field(
        0.5,
        ge=0,
        le=30,
        description="How long the coordinator collects results of one change before one archive write folds them.",
    )
    contact_list_name: str = _same_as_worker("contact_list_name")
    ses_region: str | None = _same_as_worker("ses_region", "Region of the customers' SES (default: AWS_REGION).")
    delivery_queue_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="URL of the SES delivery-events queue; unset: the coordinator does not consume delivery events.",
    )
    customer_accounts: dict[CustomerCode, AccountId] = Field(
        default_factory=dict,
        description="JSON object: customer code -> the AWS account its SES sends from; a delivery event is "
        "accepted only from its customer's account (required with TTP_DELIVERY_QUEUE_URL).",
    )

    @model_validator(mode="after")
    def _delivery_events_name_their_accounts(self) -> CoordinatorSettings:
        if self.delivery_queue_url and not self.customer_accounts:
            raise ValueError(
                "TTP_CUSTOMER_ACCOUNTS is required with TTP_DELIVERY_QUEUE_URL: without it any account admitted "
                'to the bus could report on another customer\'s emails (set {"customer-code": "123456789012"})'
            )
        return self

    @model_validator(mode="after")
    def _drain_fits_visibility(self) -> CoordinatorSettings:
        if self.drain_seconds >= self.visibility_timeout_seconds:
            raise ValueError("TTP_DRAIN_SECONDS must be smaller than TTP_VISIBILITY_TIMEOUT_SECONDS")
        return self


class MeetingSettings(BaseSettings):
    """Microsoft Graph access for meetings. All optional: without a tenant, meetings are disabled.

    ``TTP_GRAPH_CLIENT_SECRET`` is injected by ECS from Secrets Manager, never set in plain text.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    graph_tenant_id: str | None = Field(None, description="Entra ID tenant of the meeting organizer.")
    graph_client_id: str | None = Field(None, description="App registration (client id) with Calendars.ReadWrite.")
    graph_client_secret: SecretStr | None = Field(None, description="Client secret (ECS secret from Secrets Manager).")
    meeting_organizer: str | None = Field(None, description="Mailbox (UPN) that organizes the meetings.")
    graph_base_url: str = Field(
        "https://graph.microsoft.com/v1.0", pattern=r"^https?://\S+$", description="Graph endpoint."
    )
    graph_authority_host: str = Field(
        "https://login.microsoftonline.com", pattern=r"^https?://\S+$", description="Token authority host."
    )
    calendar_contact_roles: dict[CustomerCode, str] = Field(
        default_factory=dict,
        description="JSON object: customer code -> read-only contact role ARN (aws-calendar subscribers); "
        "a customer of TTP_CUSTOMER_ACCOUNTS not named here reads through its account's contact-reader "
        "role (names.contact_reader_role_name; the platform lists only roles of another name).",
    )
    customer_accounts: dict[CustomerCode, AccountId] = Field(
        default_factory=dict,
        description="JSON object: customer code -> the customer's AWS account (the coordinator's "
        "TTP_CUSTOMER_ACCOUNTS); each one's contact-reader role ARN is derived from it.",
    )
    partition: str = Field("aws", min_length=1, description="AWS partition of the derived contact-reader role ARNs.")
    contact_reader_external_id: ExternalId | None = Field(None, description="ExternalId of the contact-reader roles.")
    contact_reader_external_ids: dict[CustomerCode, PlainExternalId] = Field(
        default_factory=dict,
        description="JSON object: customer code -> the ExternalId of that customer's own contact-reader role "
        "(wins over TTP_CONTACT_READER_EXTERNAL_ID for that customer).",
    )

    @property
    def enabled(self) -> bool:
        return self.graph_tenant_id is not None

    @model_validator(mode="before")
    @classmethod
    def _derive_contact_roles(cls, data: Any) -> Any:
        """A task definition listing every customer's role ARN outgrows ECS's 64 KiB at ~650 customers, so
        the roles are derived from ``TTP_CUSTOMER_ACCOUNTS`` (one definition: ``names.contact_reader_role_name``);
        an explicit ``TTP_CALENDAR_CONTACT_ROLES`` entry (an older task definition lists all) wins. Without
        Graph settings (meetings off) nothing is derived: the accounts are then the delivery events' only."""
        if not isinstance(data, dict) or not isinstance(data.get("customer_accounts"), dict):
            return data
        if data.get("graph_tenant_id") is None:
            return data
        explicit = data.get("calendar_contact_roles") or {}
        if not isinstance(explicit, dict):
            return data
        partition = data.get("partition") or "aws"
        derived = {
            code: names.role_arn(str(account), names.contact_reader_role_name(code), str(partition))
            for code, account in data["customer_accounts"].items()
            if code not in explicit and _is_customer_code(code)
        }
        return {**data, "calendar_contact_roles": {**derived, **explicit}}

    @model_validator(mode="after")
    def _all_or_nothing(self) -> MeetingSettings:
        required = ("graph_client_id", "graph_client_secret", "meeting_organizer")
        if self.graph_tenant_id is not None:
            missing = [env_var(name) for name in required if getattr(self, name) is None]
            if missing:
                raise ValueError(f"TTP_GRAPH_TENANT_ID is set, so {', '.join(missing)} must be set too")
        role_arn = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/.+")
        bad = [code for code, arn in self.calendar_contact_roles.items() if not role_arn.fullmatch(arn)]
        if bad:
            raise ValueError(f"TTP_CALENDAR_CONTACT_ROLES: the value of {', '.join(bad)} is not an IAM role ARN")
        without_id = [code for code in self.calendar_contact_roles if code not in self.contact_reader_external_ids]
        if without_id and self.contact_reader_external_id is None:
            raise ValueError(
                f"TTP_CALENDAR_CONTACT_ROLES names {', '.join(without_id)} without an entry in "
                "TTP_CONTACT_READER_EXTERNAL_IDS, so TTP_CONTACT_READER_EXTERNAL_ID must be set too"
            )
        return self


class OpsSettings(BucketSettings):
    """The sweeper and the ops commands: every customer's queue, the ECS cluster."""

    customer_codes: tuple[CustomerCode, ...] = Field(
        default=(),
        description="JSON list of customer codes: each one's queue URL is derived from TTP_QUEUE_REGION and "
        "TTP_QUEUE_ACCOUNT (names.queue_url).",
    )
    queue_region: str | None = Field(None, min_length=1, description="Region of the customers' queues.")
    queue_account: AccountId | None = Field(None, description="AWS account of the customers' queues.")
    customer_queues: dict[CustomerCode, str] = Field(
        default_factory=dict,
        description="JSON object: customer code -> SQS queue URL, for a queue of another name or place (wins "
        "over the derived URL); older task definitions list every customer here.",
    )
    cluster_name: str = Field(CLUSTER_NAME, min_length=1, description="ECS cluster running the processors.")
    stuck_after_seconds: int = Field(
        STUCK_AFTER_SECONDS, ge=60, description="A trigger older than this is stuck (the critical trigger-age alarm)."
    )
    max_redrive_attempts: int = Field(
        3, ge=0, le=20, description="How often the sweeper re-sends a stuck trigger's event."
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_customer_queues(cls, data: Any) -> Any:
        """Listing every queue URL outgrows ECS's 64 KiB task definition at ~750 customers, so the sweeper's
        task lists codes and the URLs are derived here (one definition: ``names.queue_url``)."""
        if not isinstance(data, dict):
            return data
        codes = data.get("customer_codes") or ()
        if not isinstance(codes, list | tuple) or not codes:
            return data  # not a list: the field's own validator names it
        explicit = data.get("customer_queues") or {}
        if not isinstance(explicit, dict):
            return data
        missing = [code for code in codes if code not in explicit]
        if not missing:
            return data
        region, account = data.get("queue_region"), data.get("queue_account")
        if not region or not account:
            unset = [
                env_var(name) for name, value in (("queue_region", region), ("queue_account", account)) if not value
            ]
            raise ValueError(
                f"TTP_CUSTOMER_CODES lists customers without a TTP_CUSTOMER_QUEUES entry, so {' and '.join(unset)} "
                "must be set (the region and account of their queues)"
            )
        derived = {
            code: names.queue_url(str(region), str(account), code) for code in missing if _is_customer_code(code)
        }
        return {**data, "customer_queues": {**derived, **explicit}}

    @model_validator(mode="after")
    def _customers_are_named(self) -> OpsSettings:
        if not self.model_fields_set & {"customer_codes", "customer_queues"}:
            raise ValueError(
                "TTP_CUSTOMER_CODES is required but not set (a JSON list of customer codes, with TTP_QUEUE_REGION "
                "and TTP_QUEUE_ACCOUNT; or TTP_CUSTOMER_QUEUES: a JSON object of code -> queue URL)"
            )
        return self


def env_var(field_name: str) -> str:
    return f"{ENV_PREFIX}{field_name.upper()}"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load(model: type[SettingsT], **overrides: object) -> SettingsT:
    """Build ``model`` from the environment, turning validation errors into one readable message."""
    try:
        return model(**overrides)  # type: ignore[arg-type]
    except SettingsError as exc:  # a JSON-valued variable (an object) that is not JSON: it names the field only
        found = re.search(r'field "([^"]+)"', str(exc))
        field = found.group(1) if found else ""
        described = model.model_fields.get(field)
        hint = f" ({described.description})" if described is not None and described.description else ""
        name = env_var(field) if field else "configuration"
        raise ConfigurationError(f"invalid configuration:\n  {name}: is not valid JSON{hint}") from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = env_var(field) if field else "configuration"
            detail = "is required but not set" if error["type"] == "missing" else error["msg"]
            detail = detail.removeprefix("Value error, ")
            described = model.model_fields.get(field)
            hint = f" ({described.description})" if described is not None and described.description else ""
            problems.append(f"  {name}: {detail}{hint}")
        raise ConfigurationError("invalid configuration:\n" + "\n".join(problems)) from None
