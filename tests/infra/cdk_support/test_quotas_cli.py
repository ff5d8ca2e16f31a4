"""``python -m cdk_support.quotas DIR`` judges an assembly against the limits its app declared raised."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Environment, Stack, Validations
from aws_cdk import aws_iam as iam

from cdk_support.quotas import QuotaValidation, main
from tests.support.synth import app_without_validation

ACCOUNT = "123456789012"


def _app_with_a_long_trust_policy(outdir: Path, raised: dict[str, int]) -> App:
    """One role trusting 30 accounts: a trust policy of about 2,950 characters (default limit 2,048)."""
    app = app_without_validation(outdir=str(outdir))
    stack = Stack(app, "Trusting", env=Environment(account=ACCOUNT, region="us-east-1"))
    principals = [iam.AccountPrincipal(f"{100000000000 + i}") for i in range(30)]
    iam.Role(stack, "Role", assumed_by=iam.CompositePrincipal(*principals))
    Validations.of(app).add_plugins(QuotaValidation(app, raised))
    return app


def test_the_command_honours_the_raised_quotas_the_app_declared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assembly = _app_with_a_long_trust_policy(tmp_path / "raised", {"iam.trust-policy-size": 4096}).synth()
    assert main([assembly.directory]) == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    assert "iam.trust-policy-size" in table and "4096" in table  # the limit shown is the raised one


def test_the_command_still_fails_above_the_raised_limit_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_with_a_long_trust_policy(tmp_path / "low", {"iam.trust-policy-size": 4096})
    assembly = app.synth()
    # The same assembly judged with a lower declared value (as another app run would have declared it).
    assert main([assembly.directory, "--raised-quotas", '{"iam.trust-policy-size": 2500}']) == 1
    err = capsys.readouterr().err
    assert "quota 'IAM role trust policy length'" in err and "the limit is 2500" in err


def test_without_a_declaration_the_defaults_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = app_without_validation(outdir=str(tmp_path / "plain"))
    stack = Stack(app, "Trusting", env=Environment(account=ACCOUNT, region="us-east-1"))
    iam.Role(
        stack, "Role", assumed_by=iam.CompositePrincipal(*[iam.AccountPrincipal(f"{10**11 + i}") for i in range(30)])
    )
    assert main([app.synth().directory]) == 1
    assert "the limit is 2048" in capsys.readouterr().err
