"""boto3 clients with one retry policy.

botocore's *standard* retry mode retries throttling (``TooManyRequestsException``, ``SlowDown`` …) and
transient 5xx with exponential backoff and jitter; we never hand-roll that. Endpoints come from
boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` handling, so the same code runs
against a local emulator unchanged.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials
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


# ---- one loader per process ----------------------------------------------------------------------
# Building a botocore client costs what its session has not loaded yet: a fresh botocore Session has an
# empty loader, so its first client parses endpoints.json, the SDK defaults, the service model and its
# endpoint rule set (~38 ms CPU for SES v2, against ~7 ms when that data is already loaded). The loaded
# data is read-only and holds no credentials, so every session built here shares it with the one it is
# derived from; credentials, event handlers and configuration stay each session's own.

_SHARED_COMPONENTS = ("data_loader",)
_SHARED_INTERNAL_COMPONENTS = ("endpoint_resolver", "exceptions_factory", "default_config_resolver")
_sharing_lock = threading.Lock()
_process_core: botocore.session.Session | None = None


def _process_template() -> botocore.session.Session:
    """The process's botocore session whose loaded data every :func:`session` shares (built once)."""
    global _process_core
    with _sharing_lock:
        if _process_core is None:
            core = botocore.session.Session()
            _load_shared(core)
            _process_core = core
        return _process_core


def _load_shared(core: botocore.session.Session) -> None:
    """Resolve ``core``'s lazy components now, so that sessions sharing them never build them twice."""
    for name in _SHARED_COMPONENTS:
        core.get_component(name)
    for name in _SHARED_INTERNAL_COMPONENTS:
        core._get_internal_component(name)


def session(
    *,
    region_name: str | None = None,
    credentials: Credentials | None = None,
    share_with: boto3.session.Session | None = None,
) -> boto3.session.Session:
    """A boto3 session that shares the loaded service data of ``share_with`` (default: the process's).

    ``credentials`` (e.g. a customer's refreshing assume-role credentials) are this session's alone;
    without them it resolves the default chain itself, as ``boto3.session.Session()`` does. Clients
    keep the retry mode of their ``Config`` (:func:`client_config`) or of the environment.
    """
    template = share_with._session if share_with is not None else _process_template()
    core = botocore.session.Session()
    with _sharing_lock:
        _load_shared(template)
        for name in _SHARED_COMPONENTS:
            core.register_component(name, template.get_component(name))
        for name in _SHARED_INTERNAL_COMPONENTS:
            core._register_internal_component(name, template._get_internal_component(name))
        if credentials is not None:
            core._credentials = credentials
        made = boto3.session.Session(botocore_session=core, region_name=region_name)
        # boto3 appends its own data path to the loader of every session it wraps: once is enough
        paths = made._loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return made


_ClientKey = tuple[str, str | None, str | None, str | None]
_creators: weakref.WeakKeyDictionary[botocore.session.Session, dict[_ClientKey, Any]] = weakref.WeakKeyDictionary()


def cached_client_creator(base: boto3.session.Session) -> Callable[..., Any]:
    """``base``'s ``create_client`` remembering one client per service and explicit keys.

    botocore's assume-role fetcher builds a new STS client (with the frozen source credentials) on
    every refresh of every customer's credentials; they are all the same task credentials, so one
    client serves every customer until those credentials rotate (a new key: a new client).
    """
    core = base._session

    def create(service_name: str, **kwargs: Any) -> Any:
        key: _ClientKey = (
            service_name,
            kwargs.get("aws_access_key_id"),
            kwargs.get("aws_secret_access_key"),
            kwargs.get("aws_session_token"),
        )
        if set(kwargs) - {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}:
            return core.create_client(service_name, **kwargs)  # anything else configured: not shared
        with _sharing_lock:
            clients = _creators.setdefault(core, {})
            if key not in clients:
                stale = [k for k in clients if k[0] == service_name]
                for old in stale:  # rotated source credentials: the old client is never asked again
                    del clients[old]
                clients[key] = core.create_client(service_name, **kwargs)
            return clients[key]

    return create


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
