"""Issue 19: the public construct API. The README's ``app.py`` (platform + the sample's two customers)
synthesizes every template identical to the ``cdk.json`` path's; a customer registers itself with the
platform (lists rendered at synthesis); the package's names come from ``cdk_constructs``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

import cdk_constructs
from cdk_constructs import PlatformAccounts, TtpCustomer, TtpCustomerProps, TtpPlatform, TtpPlatformProps
from runtime.contract.settings import OpsSettings
from stacks.app_builder import REPO_ROOT, default_context
from tests.support.synth import Synth, app_without_validation, env_of, normalise, settings_in, task_definition

README = REPO_ROOT / "docs" / "infrastructure.md"  # the "Your own app.py" section moved there
ACCOUNTS = PlatformAccounts(management="111111111111", governance="222222222222", region="us-east-1")


def readme_app() -> str:
    """The python block of docs/infrastructure.md's "Your own app.py" section."""
    section = README.read_text().split("### Your own app.py", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/infrastructure.md: no python block under 'Your own app.py'"
    return match.group(1)


def _templates(outdir: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((outdir / "manifest.json").read_text())["artifacts"]
    return {
        artifact["properties"].get("stackName", name): json.loads(
            (outdir / artifact["properties"]["templateFile"]).read_text()
        )
        for name, artifact in manifest.items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def test_the_readme_app_is_about_20_lines() -> None:
    lines = [line for line in readme_app().splitlines() if line.strip()]
    assert len(lines) <= 26, len(lines)


def test_the_readme_app_synthesizes_the_cdk_json_sample_identically(sample: Synth, tmp_path: Path) -> None:
    """Run as ``npx cdk synth`` runs an app.py: its own process, cdk.json's context (the feature flags, not
    the ``ttp`` key it does not read) and the output directory in the environment. Without aws-cdk-lib's
    built-in CloudFormation validation (``CDK_VALIDATION=false``, as ``cdk synth --no-validation`` runs it):
    it changes no template and costs a fresh process ~6 CPU s; the shared sample runs it."""
    app_py = tmp_path / "app.py"
    app_py.write_text(readme_app())
    outdir = tmp_path / "cdk.out"
    context = {key: value for key, value in default_context().items() if key != "ttp"}
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(outdir),
        "PYTHONPATH": str(REPO_ROOT),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_VALIDATION": "false",
    }
    result = subprocess.run(
        [sys.executable, str(app_py)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    templates = _templates(outdir)
    assert sorted(templates) == sorted(sample.templates)
    for stack, template in sample.templates.items():
        assert normalise(templates[stack]) == normalise(template), stack


def _app() -> tuple[App, TtpPlatform]:
    app = app_without_validation(context={key: value for key, value in default_context().items() if key != "ttp"})
    return app, TtpPlatform(app, "Ttp", TtpPlatformProps(accounts=ACCOUNTS))


def _customer(platform: TtpPlatform, code: str, account: str) -> TtpCustomerProps:
    return TtpCustomerProps(
        platform=platform,
        code=code,
        account=account,
        from_address=f"changes@{code}.example.com",
        sender_external_id=f"ttp-{code}-external",
    )


def test_a_customer_registers_itself_everywhere_the_platform_lists_customers(tmp_path: Path) -> None:
    app, platform = _app()
    TtpCustomer(app, "acme", _customer(platform, "acme", "555555555555"))
    assembly = app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    synth = Synth(pipeline=None, outdir=tmp_path, templates=templates, metadata={})  # type: ignore[arg-type]
    sweeper = env_of(task_definition(synth, "TtpPlatform", "ttp-sweeper"))
    coordinator = env_of(task_definition(synth, "TtpPlatform", "ttp-change-coordinator"))
    # The sweeper's URL is derived from the code (issue 19: TTP_CUSTOMER_QUEUES lists only queues elsewhere).
    assert json.loads(sweeper["TTP_CUSTOMER_CODES"]) == ["acme"]
    assert settings_in(OpsSettings, sweeper).customer_queues == {
        "acme": "https://sqs.us-east-1.amazonaws.com/222222222222/customer-acme-changes"
    }
    assert json.loads(coordinator["TTP_CUSTOMER_ACCOUNTS"]) == {"acme": "555555555555"}
    storage = json.dumps(templates["TtpStorage"])
    assert "arn:aws:sqs:us-east-1:222222222222:customer-acme-changes" in storage
    assert "arn:aws:iam::555555555555:root" in json.dumps(templates["TtpPlatform"])
    assert set(templates) == {"TtpStorage", "TtpPlatform", "TtpCustomer-acme", "TtpCustomerAccount-acme"}


def test_a_code_onboarded_twice_is_refused() -> None:
    app, platform = _app()
    TtpCustomer(app, "acme", _customer(platform, "acme", "555555555555"))
    with pytest.raises(ValueError, match="customer 'acme' is onboarded twice"):
        TtpCustomer(app, "acme-again", _customer(platform, "acme", "666666666666"))


def test_a_platform_with_delivery_events_and_no_customer_says_what_to_do() -> None:
    app, _ = _app()
    with pytest.raises(Exception, match=r"customer_accounts is empty.*add a customer, or turn delivery events off"):
        app.synth()


def test_the_capacity_rule_is_the_configs(tmp_path: Path) -> None:
    """One rule, one message: the construct refuses what cdk.json refuses, in the same words."""
    app, platform = _app()
    props = _customer(platform, "acme", "555555555555")
    with pytest.raises(ValueError, match="min_tasks is 0 but scale_to_zero is false; set scale_to_zero: true"):
        TtpCustomer(app, "acme", TtpCustomerProps(**{**props.__dict__, "min_tasks": 0}))


def test_every_public_name_is_exported_from_the_package() -> None:
    for name in cdk_constructs.__all__:
        assert getattr(cdk_constructs, name) is not None, name
    constructs = {
        name for name, value in vars(cdk_constructs).items() if isinstance(value, type) and name.endswith("Props")
    }
    assert constructs <= set(cdk_constructs.__all__)
    assert {"TtpPlatform", "TtpPlatformProps", "TtpCustomer", "TtpCustomerProps"} <= set(cdk_constructs.__all__)


def test_two_customers_in_one_ses_account_are_refused_as_cdk_json_refuses_them() -> None:
    """The construct path runs the config's check across customers (``cdk_support.ses_senders``) at synthesis:
    without it, an own app.py could put two customers in one SES account, each able to read the other's
    recipients in the account's one contact list."""
    app, platform = _app()
    TtpCustomer(app, "acme", _customer(platform, "acme", "555555555555"))
    TtpCustomer(app, "acme2", _customer(platform, "acme2", "555555555555"))
    with pytest.raises(Exception, match=r"TtpPlatform: customers 'acme' and 'acme2' both send from SES account"):
        app.synth()


def test_two_customers_that_name_each_other_may_share_an_ses_account() -> None:
    app, platform = _app()
    for code, other in (("acme", "acme2"), ("acme2", "acme")):
        props = _customer(platform, code, "555555555555")
        TtpCustomer(app, code, TtpCustomerProps(**{**props.__dict__, "shares_ses_account_with": [other]}))
    assert {stack.stack_name for stack in app.synth().stacks} >= {"TtpCustomer-acme", "TtpCustomer-acme2"}
