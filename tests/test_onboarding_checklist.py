"""``docs/onboarding.md`` names every step the code requires of a new customer, in a form that works.

An onboarding checklist that names a policy file that moved, a ``cdk.json`` key that was renamed or a
CLI option that does not exist sends the operator into an error halfway through a customer's setup.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from stacks.config import Customer

ROOT = Path(__file__).resolve().parent.parent
CHECKLIST = (ROOT / "docs" / "onboarding.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", CHECKLIST, re.S)


def _cli_lines() -> list[list[str]]:
    return [
        shlex.split(line.split("#", 1)[0])[3:]
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.startswith("python -m runtime ")
    ]


def test_every_policy_file_it_names_exists() -> None:
    named = set(re.findall(r"docs/policies/[\w.-]+\.json", CHECKLIST))
    assert "docs/policies/cdk-execution-customer-account.json" in named
    assert [p for p in sorted(named) if not (ROOT / p).is_file()] == []


def test_the_cdk_json_entry_is_valid_and_names_every_required_field() -> None:
    (entry,) = _blocks("json")
    customer = Customer.model_validate_json(entry)
    required = {name for name, field in Customer.model_fields.items() if field.is_required()}
    assert required <= set(re.findall(r'"(\w+)":', entry)), "a required ttp.customers key is missing"
    assert customer.contact_list_name in CHECKLIST


def test_it_names_the_steps_the_code_requires() -> None:
    from runtime.contract.names import CALENDAR_TOPIC

    for step in (
        "Easy DKIM",
        CALENDAR_TOPIC,
        "create-contact-list",
        "create-contact",
        "TtpStorage",
        "TtpCustomerAccount-",
        "TTP_CUSTOMER_QUEUES",
        "verify",
        "cdk bootstrap",
    ):
        assert step in CHECKLIST, f"docs/onboarding.md does not mention {step!r}"
    order = [
        CHECKLIST.index(s) for s in ("--exclusively TtpPlatform", "'TtpCustomerAccount-", "--exclusively TtpStorage")
    ]
    assert order == sorted(order), "deploy order must be platform -> customer account -> storage"


@pytest.mark.parametrize("argv", _cli_lines(), ids=" ".join)
def test_every_command_it_shows_takes_its_options(argv: list[str]) -> None:
    words = [w for w in argv if not w.startswith("-")]
    command = words[:1] if words[0] != "dlq" else words[:2]
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for option in (w.split("=", 1)[0] for w in argv if w.startswith("--")):
        assert option in result.output, f"`{' '.join(command)}` has no option {option}"
