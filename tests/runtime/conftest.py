"""Fixtures of the runtime tests: an in-process moto account with the sandbox layout."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS
from tests.support.aws_platform import Platform


@pytest.fixture
def aws_credentials() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def platform(aws_credentials: None) -> Iterator[Platform]:
    with mock_aws():
        yield Platform(sb.create_sandbox(sb.sample_customers(), notifications=False))
