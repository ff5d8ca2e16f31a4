"""The rules a ``ttp`` configuration (``stacks.config``) must satisfy beyond each field's own type: the
customer codes the platform's names reserve, the routing capacities the AWS quotas allow, the patterns of
the fields (with the hint each error shows), and the renamed keys a deployed cdk.json may still use.

Apart from the models because they are a job of their own (deriving and checking), and because other
modules and tests read them without a config; ``stacks.config`` re-exports every public name.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from cdk_support.environment import setting_default
from runtime.contract import names
from runtime.contract.keys import InvalidKeyError, validate_customer_code
from runtime.contract.settings import EXTERNAL_ID_PATTERN, REGION_PATTERN, WorkerSettings

# Amazon S3 quota "event notification configurations per bucket" (not adjustable). One per customer.
S3_MAX_NOTIFICATION_CONFIGURATIONS = 100
# Default quota "rules per event bus" (adjustable through Service Quotas).
EVENTBRIDGE_RULES_PER_BUS = 300
# The change coordinator's routes: S3 notification configurations (archive/, processing/) and EventBridge rules.
COORDINATOR_NOTIFICATION_CONFIGURATIONS = 3
COORDINATOR_EVENT_RULES = 1
# Customer codes whose derived names would collide with the coordinator's (its CustomerCode metric
# dimension, its ttp-change-coordinator-* alarms, its ttp-route-ttp-change-coordinator rule).
COORDINATOR_RESERVED_CODES = frozenset(
    {
        names.COORDINATOR_METRICS_DIMENSION_VALUE,
        names.COORDINATOR_NAME,
        names.COORDINATOR_NAME.split("-", 1)[1],
    }
)
CODE_DERIVED_NAMES: tuple[Callable[[str], str], ...] = (
    names.queue_name,
    names.dead_letter_queue_name,
    names.service_name,
    names.processor_role_name,
    names.sender_role_name,
    names.contact_reader_role_name,
    names.log_group_name,
    names.event_rule_name,
    names.queue_key_alias,
    names.customer_dashboard_name,
)
"""The physical names ``runtime.contract.names`` derives from a customer code."""


def platform_owned_names() -> frozenset[str]:
    """Every fixed name ``runtime.contract.names`` defines for the platform itself (its upper-case constants)."""
    return frozenset(value for key, value in vars(names).items() if key.isupper() and isinstance(value, str))


def codes_colliding_with_platform_names() -> dict[str, str]:
    """Customer code -> the platform name one of its derived names would equal (``sweeper`` ->
    ``/ecs/change-processor/sweeper``, the sweeper's log group). Derived, not listed: a platform name
    added to ``runtime.contract.names`` reserves its code here without another edit."""
    probe = "probe"
    colliding: dict[str, str] = {}
    for derive in CODE_DERIVED_NAMES:
        prefix, suffix = derive(probe).split(probe)
        for platform_name in platform_owned_names():
            if not (platform_name.startswith(prefix) and platform_name.endswith(suffix)):
                continue
            code = platform_name[len(prefix) : len(platform_name) - len(suffix)]
            if _is_customer_code(code):
                colliding[code] = platform_name
    return colliding


def _is_customer_code(code: str) -> bool:
    try:
        validate_customer_code(code)
    except InvalidKeyError:
        return False
    return True


RESERVED_CUSTOMER_CODES = (
    COORDINATOR_RESERVED_CODES
    | frozenset(codes_colliding_with_platform_names())
    | frozenset(names.PLATFORM_QUEUE_LABELS)
)
"""Codes a customer may not have: their derived names would be the platform's own."""
# The processors run with the worker's default drain (CustomerProcessorProps.drain_seconds).
WORKER_DRAIN_SECONDS = float(setting_default(WorkerSettings, "drain_seconds"))

ACCOUNT_PATTERN = r"^\d{12}$"
EMAIL_PATTERN = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
SUBNET_PATTERN = r"^subnet-[0-9a-f]{8,17}$"
VPC_PATTERN = r"^vpc-[0-9a-f]{8,17}$"
CONFIGURATION_SET_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ORGANIZATION_PATTERN = r"^o-[a-z0-9]{10,32}$"
PATTERN_HINTS = {
    ACCOUNT_PATTERN: "must be a 12-digit AWS account id, e.g. '222222222222'",
    REGION_PATTERN: "must be an AWS region name, e.g. 'us-east-1'",
    EMAIL_PATTERN: "must be an e-mail address, e.g. 'changes@example.com'",
    EXTERNAL_ID_PATTERN: "may contain only letters, digits and _+=,.@:/- (an sts:ExternalId)",
    BUCKET_PATTERN: "must be a valid S3 bucket name (3-63 lower-case letters, digits, '.', '-')",
    SUBNET_PATTERN: "must be a subnet id, e.g. 'subnet-0123456789abcdef0'",
    VPC_PATTERN: "must be a VPC id, e.g. 'vpc-0123456789abcdef0'",
    CONFIGURATION_SET_PATTERN: "must be an SES configuration set name: 1-64 letters, digits, '-' or '_'",
    ORGANIZATION_PATTERN: "must be an AWS Organizations id, e.g. 'o-a1b2c3d4e5'",
}


def check_unique_codes(codes: list[str]) -> None:
    """Each customer code once."""
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ValueError(f"customer codes must be unique; duplicated: {duplicates}")


def check_reserved_codes(codes: list[str]) -> None:
    """No customer code in :data:`RESERVED_CUSTOMER_CODES`; the error gives each code's reasons."""
    reserved = sorted(set(codes) & RESERVED_CUSTOMER_CODES)
    if reserved:
        clashes = codes_colliding_with_platform_names()
        details = ", ".join(
            f"{code!r} (ttp.customers[{codes.index(code)}].code: "
            + "; ".join(
                reason
                for reason, applies in (
                    (f"its names would equal the platform's {clashes.get(code)!r}", code in clashes),
                    (
                        f"the ops CLI's `--customer {code}` means the platform's "
                        f"{names.PLATFORM_QUEUE_LABELS.get(code)} queue",
                        code in names.PLATFORM_QUEUE_LABELS,
                    ),
                    ("reserved for the change coordinator", code in COORDINATOR_RESERVED_CODES),
                )
                if applies
            )
            + ")"
            for code in reserved
        )
        raise ValueError(f"customer codes {details} are reserved for the platform's own resources; choose another code")


_ROUTING_CAPACITY = {
    "s3": (
        S3_MAX_NOTIFICATION_CONFIGURATIONS - COORDINATOR_NOTIFICATION_CONFIGURATIONS,
        f"routing 's3' needs one bucket notification configuration per customer (plus "
        f"{COORDINATOR_NOTIFICATION_CONFIGURATIONS} for the change coordinator) and S3 allows "
        f"{S3_MAX_NOTIFICATION_CONFIGURATIONS} per bucket; with {{customers}} customers set "
        "routing: 'eventbridge'",
    ),
    "eventbridge": (
        EVENTBRIDGE_RULES_PER_BUS - COORDINATOR_EVENT_RULES,
        f"routing 'eventbridge' needs one rule per customer on the default bus (plus "
        f"{COORDINATOR_EVENT_RULES} for the change coordinator; default quota "
        f"{EVENTBRIDGE_RULES_PER_BUS}); raise the quota and split the customers, or keep <= "
        f"{EVENTBRIDGE_RULES_PER_BUS - COORDINATOR_EVENT_RULES} customers",
    ),
}
"""Routing -> (most customers it holds, the error beyond them); the sharded routing has no such bound."""


def check_routing_capacity(routing: str, customers: int) -> None:
    """The customers fit the routing: S3 notification configurations per bucket, EventBridge rules per bus."""
    if routing in _ROUTING_CAPACITY:
        most, error = _ROUTING_CAPACITY[routing]
        if customers > most:
            raise ValueError(error.format(customers=customers))


class ConfigDeprecationWarning(UserWarning):
    """A ``cdk.json`` key was renamed; the old one is still read (shown by default, unlike DeprecationWarning)."""


RENAMED_CUSTOMER_KEYS = {"external_id": "sender_external_id", "sender_address": "from_address"}
"""Old ``ttp.customers[]`` key -> its one name (construct props and runtime settings use the new one)."""
RENAMED_MEETINGS_KEYS = {
    "tenant_id": "graph_tenant_id",
    "client_id": "graph_client_id",
    "organizer": "meeting_organizer",
    "client_secret": "graph_client_secret",
}
"""Old ``ttp.meetings`` key -> its one name (``MeetingSettings``' field, ``TTP_`` + its upper case in the task)."""


def read_renamed_keys(data: Any, renamed: dict[str, str], where: str, detail: str = "") -> Any:
    """A deployed cdk.json's old key names read as the new ones, each with a deprecation warning naming the
    new key; both at once is an error (which one would win?)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, new in renamed.items():
        if old not in data:
            continue
        if new in data:
            raise ValueError(f"give {new} only: {old} is its old name")
        warnings.warn(
            f"cdk.json: {where} key {old!r}{detail} is deprecated: rename it to {new!r}, the name of the same "
            "setting in the construct props and the runtime settings; the old key is still read",
            ConfigDeprecationWarning,
            stacklevel=3,
        )
        data[new] = data.pop(old)
    return data
