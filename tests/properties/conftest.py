"""Fixtures of the property-based bad-input tests: one in-process moto platform per module.

Hypothesis runs many examples per test, so the emulated account (bucket, queues, customers' SES)
is built once per module; examples use their own change ids or only read. Not the deployed assembly:
the examples call the runtime in process (hundreds per test), where HTTP to a deployed emulator would
cost more than the bad-input checks they make.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from devtools import hand_layout
from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS, make_conditional_writes_atomic
from tests.support.aws_platform import Platform

make_conditional_writes_atomic()


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield Platform(hand_layout.create_sandbox(sb.sample_customers()[:2], notifications=False))
