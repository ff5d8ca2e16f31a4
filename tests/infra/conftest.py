"""Shared fixtures of the infrastructure tests.

Synthesizing is the slow part (jsii): every app is built once per module (the sample app and the other
shapes several modules read, once per test run: ``synthesize_shared``, one synthesis for every xdist
worker) and the tests only look at the resulting templates.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.iam_engine import PolicyEngine
from tests.infra._shared_synth import multi_context
from tests.support.synth import (
    MEETINGS,
    MGMT,
    SECRET_ARN,
    Synth,
    sample_context,
    shared_sample,
    synthesize,
    synthesize_shared,
)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The sample app of cdk.json, with cdk-nag and CDK's built-in CloudFormation validation (as an
    operator's synth runs them): built once for the whole test run."""
    return shared_sample(tmp_path_factory)


@pytest.fixture(scope="session")
def make_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Synth]]:
    def make(name: str, context: dict[str, Any] | None = None, **kwargs: Any) -> Synth:
        return synthesize(tmp_path_factory.mktemp(name), context, **kwargs)

    yield make


@pytest.fixture(scope="session")
def policy_engine() -> Iterator[PolicyEngine]:
    """The IAM policy engine (devtools.iam_engine): one node process for every test that decides requests."""
    with PolicyEngine() as engine:
        yield engine


# The other shapes of the app (test_variants, test_isolation): each built once per session.


@pytest.fixture(scope="session")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Multi-account, EventBridge routing, meetings on."""
    return synthesize_shared(tmp_path_factory, "multi-eventbridge", multi_context())


@pytest.fixture(scope="session")
def single(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Everything in one account, EventBridge routing."""
    context = sample_context(routing="eventbridge")
    _one_account(context["ttp"])
    return synthesize_shared(tmp_path_factory, "single-eventbridge", context)


@pytest.fixture(scope="session")
def single_byo(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Everything in one account, S3 routing, your own VPC, meetings with a complete secret ARN."""
    context = sample_context(
        vpc={
            "vpc_id": "vpc-0123456789abcdef0",
            "availability_zones": ["us-east-1a", "us-east-1b"],
            "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        },
        meetings={**MEETINGS, "graph_client_secret": SECRET_ARN},
    )
    _one_account(context["ttp"])
    return synthesize_shared(tmp_path_factory, "single-byo-vpc", context)


def _one_account(ttp: dict[str, Any]) -> None:
    ttp["accounts"]["governance"] = MGMT
    codes = [customer["code"] for customer in ttp["customers"]]
    for customer in ttp["customers"]:
        customer["account"] = MGMT
        # One account, so one SES account: the customers declare that they share it (and its contact list).
        customer["shares_ses_account_with"] = [code for code in codes if code != customer["code"]]
