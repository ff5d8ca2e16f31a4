"""boto3 clients with one retry policy.

botocore's *standard* retry mode retries throttling (``TooManyRequestsException``, ``SlowDown`` …) and
transient 5xx with exponential backoff and jitter; we never hand-roll that. Endpoints come from
boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` handling, so the same code runs
against a local emulator unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)


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


_HINTS = {
    "AccessDenied": "the caller lacks a permission: run with the ops role",
    "AccessDeniedException": "the caller lacks a permission: run with the ops role",
    "NoSuchBucket": "check TTP_BUCKET_NAME",
    "AWS.SimpleQueueService.NonExistentQueue": "check the queue URLs in TTP_CUSTOMER_QUEUES",
    "QueueDoesNotExist": "check the queue URLs in TTP_CUSTOMER_QUEUES",
    "ExpiredToken": "refresh your AWS credentials",
    "ExpiredTokenException": "refresh your AWS credentials",
    "InvalidClientTokenId": "check your AWS credentials",
    "UnrecognizedClientException": "check your AWS credentials",
    "SignatureDoesNotMatch": "check your AWS credentials",
}
_NETWORK_HINT = "check the network, AWS_REGION and AWS_ENDPOINT_URL"


def aws_failure(exc: BaseException) -> BotoCoreError | ClientError | None:
    """The botocore error behind ``exc`` (itself, or what a runtime error wrapped), or None."""
    seen: BaseException | None = exc
    for _ in range(5):
        if isinstance(seen, (BotoCoreError, ClientError)):
            return seen
        if seen is None:
            return None
        seen = seen.__cause__
    return None


def describe_failure(exc: BaseException) -> str | None:
    """One line for an AWS call that failed outright: what failed and what to check; None when ``exc``
    is no AWS failure. The CLI and the image's commands print it as their one ``error:`` line, so an
    outage or a wrong name reads the same everywhere (botocore's messages hold no newline; the line is
    flattened anyway, since a proxy's message might)."""
    failure = aws_failure(exc)
    if failure is None:
        return None
    if isinstance(failure, (NoCredentialsError, PartialCredentialsError)):
        text = f"no usable AWS credentials ({failure}): set AWS_PROFILE (or the AWS_ACCESS_KEY_ID/... variables)"
    elif isinstance(failure, NoRegionError):
        text = "no AWS region: set AWS_REGION"
    elif isinstance(failure, ClientError):
        code = error_code(failure)
        hint = _HINTS.get(code, "check the AWS region and the resource names")
        if code == "NoSuchBucket":
            # S3's error names the bucket, an emulator's may not: the variable's value says it either way
            named = failure.response.get("Error", {}).get("BucketName") or os.environ.get("TTP_BUCKET_NAME")
            hint = f"check TTP_BUCKET_NAME (bucket {named!r})" if named else hint
        text = f"AWS call failed: {failure} — {hint}"
    elif isinstance(failure, (ConnectionError, HTTPClientError)):
        text = f"AWS unreachable: {failure} — {_NETWORK_HINT}"
    else:
        text = f"AWS call failed: {failure} — {_NETWORK_HINT}"
    return " ".join(text.split())
