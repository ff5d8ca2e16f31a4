"""Fixtures of the property-based bad-input tests: one in-process moto platform per module.

Hypothesis runs many examples per test, so the emulated account (bucket, queues, customers' SES)
is built once per module; examples use their own change ids or only read.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws

from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS, make_conditional_writes_atomic
from tests.runtime.conftest import Platform

make_conditional_writes_atomic()


def bounded(max_examples: int) -> settings:
    """Per-test settings (not a global profile, which would change other tests' hypothesis runs): a bounded
    number of examples and no per-example deadline — moto calls vary in time on a busy 2-core CI machine."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        print_blob=True,
    )


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield Platform(sb.create_sandbox(sb.sample_customers()[:2], notifications=False))
