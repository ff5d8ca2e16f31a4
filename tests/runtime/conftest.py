"""Fixtures of the runtime tests: an in-process moto account with the hand-built layout."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from devtools import hand_layout
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
    """Not the deployed assembly: a fresh in-process account per unit-level test (~1 s; a deploy is 1.5 to 3.5 s
    and puts every call over HTTP, for hundreds of tests); the deployed platform is tests/support/deployed.py."""
    with mock_aws():
        yield Platform(hand_layout.create_sandbox(sb.sample_customers(), notifications=False))
