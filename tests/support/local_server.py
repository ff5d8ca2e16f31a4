"""The embedded emulator as an HTTP server for tests whose workers run as subprocesses.

A test module binds the fixtures by name (``server = local_server.server``, ``env = local_server.env``):
one server per module, emptied before each test, its endpoint and fake credentials in the environment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.emulator import LocalAws, reset


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAws]:
    aws = LocalAws().start()
    yield aws
    aws.stop()


@pytest.fixture
def env(server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    reset(server.endpoint)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return server.env()
