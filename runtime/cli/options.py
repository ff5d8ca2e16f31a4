"""Options shared by the ops commands and their validation: a bad value stops the command with exit 2
and a message naming the option or the ``TTP_*`` variable, before any AWS call."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from runtime.cli.errors import fail
from runtime.cli.exit_codes import EXIT_USAGE
from runtime.contract import keys
from runtime.contract.settings import ConfigurationError, OpsSettings, SettingsT, load
from runtime.ops.durations import parse_duration

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
CustomerOption = Annotated[str, typer.Option("--customer", "-c", help="Customer code (a key of TTP_CUSTOMER_QUEUES).")]


def settings(model: type[SettingsT]) -> SettingsT:
    try:
        return load(model)
    except ConfigurationError as exc:
        fail(f"{exc}\n{WHERE_VARIABLES_COME_FROM}", EXIT_USAGE)


WHERE_VARIABLES_COME_FROM = (
    "Set them and run again. Deployed: the sweeper's task definition holds every ops variable "
    "(aws ecs describe-task-definition --task-definition <the TtpPlatform sweeper's family> "
    "--query 'taskDefinition.containerDefinitions[0].environment'); locally, `make emulator` prints the "
    "exports; docs/runbook.md lists each variable."
)


def duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", EXIT_USAGE)


def configured_customer(ops_settings: OpsSettings, code: str) -> str:
    """``code`` if it is valid and one of ``TTP_CUSTOMER_QUEUES``."""
    try:
        keys.validate_customer_code(code)
    except keys.InvalidKeyError as exc:
        fail(f"--customer: {exc}", EXIT_USAGE)
    if code not in ops_settings.customer_queues:
        known = ", ".join(sorted(ops_settings.customer_queues)) or "none"
        fail(f"--customer {code} is not in TTP_CUSTOMER_QUEUES (configured: {known})", EXIT_USAGE)
    return code
