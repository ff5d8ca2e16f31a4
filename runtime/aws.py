"""boto3 clients with one retry policy.

botocore's *standard* retry mode retries throttling (``TooManyRequestsException``, ``SlowDown`` …) and
transient 5xx with exponential backoff and jitter; we never hand-roll that. Endpoints come from
boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` handling, so the same code runs
against a local emulator unchanged.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def client_config(max_pool_connections: int = 10, max_attempts: int = 5) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max_pool_connections,
    )


def client(service: str, *, session: boto3.session.Session | None = None, pool: int = 10, **kwargs: Any) -> Any:
    """A thread-safe low-level client (share one per process; sessions themselves are not thread-safe)."""
    return (session or boto3.session.Session()).client(service, config=client_config(pool), **kwargs)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None
