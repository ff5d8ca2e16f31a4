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


class OpsClients:
    """Lazily created boto3 clients (standard retries); tests pass their own (or fault proxies)."""

    def __init__(self, session: boto3.session.Session | None = None, **clients: Any) -> None:
        self._session = session
        self._clients: dict[str, Any] = dict(clients)

    def get(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws.client(service, session=self._session or _process_session())
        return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.get("s3")

    @property
    def sqs(self) -> Any:
        return self.get("sqs")

    @property
    def ecs(self) -> Any:
        return self.get("ecs")

    @property
    def cloudwatch(self) -> Any:
        return self.get("cloudwatch")

    @property
    def logs(self) -> Any:
        return self.get("logs")

    @property
    def sts(self) -> Any:
        return self.get("sts")

    @property
    def ssm(self) -> Any:
        return self.get("ssm")
