"""Shared fixtures of the infrastructure tests.

Synthesizing is the slow part (jsii): every app is built once per module (the sample app, which
several modules read, once per session) and the tests only look at the resulting templates.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.synth import Synth, synthesize


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The sample app of cdk.json, with cdk-nag: built once for the whole session."""
    return synthesize(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def make_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Synth]]:
    def make(name: str, context: dict[str, Any] | None = None, **kwargs: Any) -> Synth:
        return synthesize(tmp_path_factory.mktemp(name), context, **kwargs)

    yield make
