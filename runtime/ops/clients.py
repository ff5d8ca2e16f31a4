"""One place that creates the AWS clients of the procedures, lazily, so a command only pays for the
services it touches and tests can hand in their own (or fault-injecting) clients."""

from __future__ import annotations

import functools
from typing import Any

import boto3

from runtime import aws


@functools.cache
def _process_session() -> boto3.session.Session:
    """One session per process: it caches the service models, so each client is cheap to create."""
    return boto3.session.Session()


class _Client:
    """A read-only attribute that is the client of the service it is named after (``OpsClients.get``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.service = name

    def __get__(self, clients: OpsClients, owner: type | None = None) -> Any:
        return clients.get(self.service)

    def __set__(self, clients: OpsClients, value: Any) -> None:
        raise AttributeError(f"OpsClients.{self.service} is read-only: pass OpsClients({self.service}=...) instead")


class OpsClients:
    """Lazily created boto3 clients (standard retries); tests pass their own (or fault proxies)."""

    def __init__(self, session: boto3.session.Session | None = None, **clients: Any) -> None:
        self._session = session
        self._clients: dict[str, Any] = dict(clients)

    def get(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws.client(service, session=self._session or _process_session())
        return self._clients[service]

    s3 = _Client()
    sqs = _Client()
    ecs = _Client()
    cloudwatch = _Client()
    logs = _Client()
    sts = _Client()
    ssm = _Client()
