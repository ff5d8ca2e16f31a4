"""The runtime's writes satisfy the bucket policy's conditions (issue 12).

The emulator (moto) does not evaluate bucket policies, so a deny on an unconditional PUT or DELETE would
pass every runtime test and break the first real deploy. Here a submission is processed and folded on the
emulator while every ``PutObject`` / ``DeleteObject`` the runtime sends is recorded (botocore's
``provide-client-params`` event: the parameters of each call as the runtime passed them); each one is then
decided against the synthesized policies by the policy engine (``devtools.iam_engine``, through
``tests.infra.test_isolation``'s ``World``) as the role that makes it in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS
from devtools.iam_engine import PolicyEngine
from runtime.contract import names
from runtime.contract.keys import TriggerRef
from tests.infra.test_isolation import ENCRYPTION, World
from tests.support.aws_platform import Platform
from tests.support.synth import Synth

HEADERS = {"IfMatch": "s3:if-match", "IfNoneMatch": "s3:if-none-match"}
SUBMITTER = "submitter"


@dataclass(frozen=True)
class Call:
    actor: str
    """The production principal: a role name of the governance account, or ``SUBMITTER``."""
    action: str
    key: str
    headers: frozenset[str]


def _headers(params: dict[str, Any]) -> frozenset[str]:
    found = {condition_key for param, condition_key in HEADERS.items() if param in params}
    if "ServerSideEncryption" in params:
        found.add(f"{ENCRYPTION}={params['ServerSideEncryption']}")
    return frozenset(found)


@pytest.fixture
def platform() -> Iterator[Platform]:
    saved = {k: os.environ.get(k) for k in [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            yield Platform(sb.create_sandbox(sb.sample_customers(), notifications=False))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _record(platform: Platform) -> tuple[list[Call], list[str]]:
    calls: list[Call] = []
    actor = [SUBMITTER]

    def on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
        action = f"s3:{model.name}"
        calls.append(Call(actor[0], action, str(params["Key"]), _headers(params)))

    for operation in ("PutObject", "DeleteObject", "CopyObject", "DeleteObjects"):
        platform.s3.meta.events.register(f"provide-client-params.s3.{operation}", on_call)
    return calls, actor


def _allowed(world: World, call: Call) -> bool:
    if call.actor == SUBMITTER:  # not a platform role: only the policy's denies concern it
        return not world.bucket_denies_anyone(call.action, call.key, call.headers)
    return world.may(call.actor, call.action, call.key, call.headers)


def test_every_runtime_write_of_a_processed_change_is_allowed_by_the_policies(
    platform: Platform, sample: Synth, policy_engine: PolicyEngine
) -> None:
    world = World(sample, policy_engine)
    calls, actor = _record(platform)
    platform.submit()
    for code in ("hts", "htsnonprod"):
        actor[0] = names.processor_role_name(code)
        platform.processor(code).process(TriggerRef(code, "CHG-1"), "sqs:m1")
    actor[0] = names.COORDINATOR_ROLE_NAME
    platform.fold()

    # The flow made every kind of write the policy constrains (the check below is not vacuous).
    kinds = {(c.actor, c.action, c.key.split("/", 1)[0]) for c in calls}
    assert {
        (SUBMITTER, "s3:PutObject", "archive"),
        (names.processor_role_name("hts"), "s3:PutObject", "processing"),
        (names.processor_role_name("hts"), "s3:DeleteObject", "customers"),
        (names.COORDINATOR_ROLE_NAME, "s3:PutObject", "archive"),
    } <= kinds, kinds
    assert not [c for c in calls if c.action in ("s3:CopyObject", "s3:DeleteObjects")]  # no call outside the check
    refused = [c for c in calls if not _allowed(world, c)]
    assert refused == []


def test_the_check_refuses_an_unconditional_write(sample: Synth, policy_engine: PolicyEngine) -> None:
    """The same decision refuses what the policy denies (so the test above can fail)."""
    world = World(sample, policy_engine)
    processor = names.processor_role_name("hts")
    assert not _allowed(world, Call(processor, "s3:PutObject", "processing/hts/CHG-1.json", frozenset()))
    assert not _allowed(world, Call(processor, "s3:DeleteObject", "customers/hts/CHG-1.json", frozenset()))
    assert not _allowed(world, Call(SUBMITTER, "s3:PutObject", "archive/CHG-1.json", frozenset()))
    assert not _allowed(
        world,
        Call(SUBMITTER, "s3:PutObject", "archive/CHG-1.json", frozenset({"s3:if-match", f"{ENCRYPTION}=aws:kms"})),
    )
