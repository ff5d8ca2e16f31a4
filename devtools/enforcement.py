"""IAM enforced on the emulator: every request is decided by the policy engine before moto serves it.

``LocalAws(enforce=Enforcement())`` puts :class:`Enforcement` in front of moto's WSGI app (off by default,
so tests that deploy nothing keep working). For each request it

* names the principal from the SigV4 access key: a key moto's STS issued for ``AssumeRole`` is that role's
  session (the role's ARN and tags); a key moto's IAM issued to a user is that user (its ARN, inline,
  attached and group policies, tags: the operator ``ttp-operator``); a key the caller registered with
  :meth:`Enforcement.register_admin` (the deployer, whose stacks pass the bootstrap gate instead, and the
  test harness: ``testing`` by default) is an admin principal whose requests are passed and counted, never
  decided; any other key is denied;
* maps the request to the IAM action(s), resource ARN(s) and context keys AWS would evaluate, for the
  services the pipeline uses: S3 objects and listings (``s3:if-match``, ``s3:if-none-match``,
  ``s3:prefix``), SQS (and KMS on an encrypted queue, as ``kms:ViaService``), STS ``AssumeRole`` (with the
  trust policy and ``sts:ExternalId``), SESv2 ``SendEmail``, ``GetContactList``, ``ListContacts``, and what
  the ops CLI asks of SSM (parameter reads), ECS, CloudWatch ``GetMetricData`` and Logs ``FilterLogEvents``;
  ``sts:GetCallerIdentity`` needs no permission in AWS and is counted as "not decided"; anything else fails
  with AccessDenied naming the operation (never a silent allow);
* reads the policies as deployed on the emulator (moto's own state: the role's inline and managed
  policies and tags, the bucket, queue and key policies, the target role's trust policy) and asks the
  engine; a denial is answered with the protocol's AccessDenied (S3 and STS XML 403, SQS JSON with its
  query error code, SESv2 ``AccessDeniedException``), naming the action, resource and the engine's reason.
  A request the engine refuses to decide (a resource type AWS does not define for the action, say) is
  denied too, with the engine's error: fail closed and say why, never a silent allow nor a bare 500.

The mapping of requests to checks, one function per service, is :mod:`devtools.enforcement_requests`.

Identical decisions are cached: the key holds the principal, action, resource, context and the policy
documents themselves, so a changed policy can never be answered from the cache.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from devtools.enforcement_requests import (
    Caller,
    Check,
    Unmapped,
    query_of,
    requests_of,
)
from devtools.iam_engine import Decision, PolicyEngine, PolicyEngineError

if TYPE_CHECKING:
    from devtools.local_deploy import World

__all__ = [
    "Caller",
    "Check",
    "Counts",
    "Denial",
    "Enforcement",
    "Unmapped",
    "caller_of",
    "error_response",
    "transport_context",
    "user_of",
]

CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
CACHE_LIMIT = 20_000
ADMIN = "admin"


@dataclass
class Counts:
    allowed: int = 0
    denied: int = 0
    not_decided: Counter[str] = field(default_factory=Counter)
    admin: int = 0
    cached: int = 0
    engine_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "denied": self.denied,
            "not_decided": dict(self.not_decided),
            "admin": self.admin,
            "cached": self.cached,
            "engine_seconds": round(self.engine_seconds, 3),
        }


@dataclass(frozen=True)
class Denial:
    caller: str
    action: str
    resource: str
    reason: str
    code: str = "AccessDenied"

    @property
    def message(self) -> str:
        return (
            f"User: {self.caller} is not authorized to perform: {self.action} on resource: {self.resource} "
            f"because {self.reason}"
        )


class Enforcement:
    """The decision point of an enforcing emulator. ``counts`` says how many requests the engine allowed
    and denied (what the demo reports); ``denials`` keeps the last denials for a report or a test."""

    def __init__(
        self,
        engine: PolicyEngine | None = None,
        *,
        world: World | None = None,
        admin_keys: Iterable[str] = ("testing",),
        assume_tls: bool = True,
    ) -> None:
        self.engine = engine or PolicyEngine()
        self.world = world
        """The deployed world (``DeployReport.world``): resource policies moto does not hold (the bucket
        policy) are read from it; set it once the deployment is done (``enforcement.world = report.world``)."""
        self._owns_engine = engine is None
        self.assume_tls = assume_tls
        """Decide a plain-HTTP request as if over TLS 1.3 (the default; :func:`transport_context`)."""
        self._admin_keys: dict[str, str] = {key: ADMIN for key in admin_keys}
        self._cache: dict[tuple[Any, ...], Decision] = {}
        self._lock = threading.Lock()
        self.counts = Counts()
        self.denials: list[Denial] = []

    def register_admin(self, access_key: str, name: str = ADMIN) -> None:
        """Let ``access_key`` (not one STS issued) act as an admin/bootstrap principal: never decided."""
        self._admin_keys[access_key] = name

    def start(self) -> None:
        self.engine.start()

    def close(self) -> None:
        if self._owns_engine:
            self.engine.close()

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def enforcing(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            denial = self.check(environ)
            if denial is None:
                return app(environ, start_response)
            status, headers, body = error_response(environ, denial)
            start_response(status, headers)
            return [body]

        return enforcing

    # --- the decision ------------------------------------------------------------------------------

    def check(self, environ: dict[str, Any]) -> Denial | None:
        """``None`` when the request may go on; else why it is denied."""
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return None  # the emulator's own control API (reset, settle): not an AWS request
        found = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "")) or CREDENTIAL.search(
            "Credential=" + unquote(query_of(environ).get("X-Amz-Credential", ""))
        )
        service = found["service"] if found else _guess_service(environ)
        if found is None:
            return self._deny(Denial("anonymous", service, path, "the request is not signed (SigV4)"), counted=False)
        key, region = found["key"], found["region"]
        if key in self._admin_keys:
            with self._lock:
                self.counts.admin += 1
            return None
        caller = caller_of(key)
        if caller is None:
            reason = "the access key is neither one the emulator's STS issued nor a registered admin key"
            return self._deny(Denial(f"access key {key}", service, path, reason), counted=False)
        body = _read_body(environ) if service != "s3" or environ.get("REQUEST_METHOD") == "POST" else b""
        try:
            operation, checks = requests_of(service, region, environ, body, caller, self.resource_policy)
        except Unmapped as error:
            reason = f"{error} is not mapped to IAM by devtools/enforcement_requests.py"
            return self._deny(Denial(caller.arn, service, path, reason), counted=False)
        if checks is None:
            with self._lock:
                self.counts.not_decided[operation] += 1
            return None
        transport = tuple(transport_context(environ, assume_tls=self.assume_tls, service=service).items())
        for check in checks:
            check = replace(check, context=(*transport, *check.context))  # the request's own keys win
            try:
                decision = self.decide(caller, check)
            except PolicyEngineError as error:  # fail closed, saying why: never a silent allow nor a bare 500
                return self._deny(Denial(caller.arn, check.action, check.resource, str(error)), counted=False)
            if not decision.allowed:
                return self._deny(Denial(caller.arn, check.action, check.resource, decision.explain()), counted=True)
        return None

    def resource_policy(self, arn: str, emulated: str | bytes | None) -> str | None:
        """The policy of the resource ``arn``: the deployed world's record, else what the emulator holds."""
        if self.world is not None:
            for account in list(self.world.accounts.values()):
                recorded = account.policies.get(arn)
                if recorded is not None:
                    return recorded if isinstance(recorded, str) else json.dumps(recorded, sort_keys=True)
        return emulated.decode() if isinstance(emulated, bytes) else emulated

    def decide(self, caller: Caller, check: Check) -> Decision:
        key = (caller, check)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            started = time.perf_counter()
            cached = self.engine.decide(
                caller.principal(),
                check.action,
                check.resource,
                resource_account=check.resource_account,
                resource_policy=_document(check.resource_policy) if check.resource_policy else None,
                context=_context(check),
            )
            with self._lock:
                self.counts.engine_seconds += time.perf_counter() - started
                if len(self._cache) >= CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = cached
        else:
            with self._lock:
                self.counts.cached += 1
        with self._lock:
            if cached.allowed:
                self.counts.allowed += 1
            else:
                self.counts.denied += 1
        return cached

    def record_denial(self, denial: Denial) -> Denial:
        """Keep a denial :meth:`decide` counted that was answered outside the emulator (the ECS agent's)."""
        return self._deny(denial, counted=True)

    def _deny(self, denial: Denial, *, counted: bool) -> Denial:
        """Record a denial; one the engine did not decide (``counted=False``) is counted here."""
        with self._lock:
            if not counted:
                self.counts.denied += 1
            self.denials.append(denial)
            del self.denials[:-100]
        return denial


# --- who is calling -----------------------------------------------------------------------------------


def caller_of(access_key: str) -> Caller | None:
    """The role session moto's STS issued ``access_key`` for, with the role's policies and tags as deployed;
    else the IAM user whose active access key it is (:func:`user_of`)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for partitions in list(sts_backends.values()):
        for backend in list(partitions.values()):
            session = backend.get_assumed_role_from_access_key(access_key)
            if session is None:
                continue
            role_account = session.role_arn.split(":")[4]
            iam = iam_backends[role_account]["aws"]
            try:
                role = iam.get_role_by_arn(session.role_arn)
            except Exception:
                return Caller(session.arn, session.role_arn, (), ())  # a role deleted since: no policies
            policies = sorted(role.policies.items()) + _managed(role.managed_policies)
            tags = sorted((tag["Key"], tag["Value"]) for tag in _role_tags(role))
            return Caller(session.arn, session.role_arn, tuple(policies), tuple(tags))
    return user_of(access_key)


def user_of(access_key: str) -> Caller | None:
    """The IAM user (in any account of the emulator) whose *active* access key ``access_key`` is: its ARN,
    its inline and attached policies and those of its groups, and its tags, as AWS evaluates a user."""
    from moto.iam.models import iam_backends

    for partitions in list(iam_backends.values()):
        backend = partitions.get("aws")
        if backend is None:
            continue
        for user in list(backend.users.values()):
            if not any(k.access_key_id == access_key and k.status == "Active" for k in user.access_keys):
                continue
            policies = sorted(user.policies.items()) + _managed(user.managed_policies)
            for group in backend.get_groups_for_user(user.name):
                policies += [(f"group/{group.name}/{name}", doc) for name, doc in sorted(group.policies.items())]
                policies += _managed(group.managed_policies)
            tags = sorted((tag["Key"], tag["Value"]) for tag in backend.list_user_tags(user.name))
            return Caller(user.arn, user.arn, tuple(policies), tuple(tags))
    return None


def _managed(attached: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The default version's document of each attached managed policy, by ARN."""
    found = []
    for arn, managed in sorted(attached.items()):
        document = next(v.document for v in managed.versions if v.version_id == managed.default_version_id)
        found.append((arn, document if isinstance(document, str) else json.dumps(document)))
    return found


def _role_tags(role: Any) -> list[dict[str, str]]:
    tags = role.tags
    return list(tags.values()) if isinstance(tags, dict) else list(tags or [])


# --- plumbing -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _document(text: str) -> Any:
    return json.loads(text)


def _context(check: Check) -> dict[str, str | list[str]]:
    """The request's context keys, as the engine reads them (a multi-valued key as a list)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in check.context}


def transport_context(environ: Mapping[str, Any], *, assume_tls: bool, service: str) -> dict[str, str]:
    """``aws:SecureTransport`` (and S3's ``s3:TlsVersion``) of a request.

    The emulator listens on plain-HTTP loopback; the SDK talks to AWS over TLS (1.3 where both ends offer
    it, as AWS's S3 endpoints do). With ``assume_tls`` (the default) a request is decided as the same call
    against AWS would be: over TLS 1.3, whatever the local scheme. Without it the actual scheme decides:
    ``http`` is ``aws:SecureTransport=false`` with no TLS version, so a bucket or queue policy that denies
    non-TLS requests denies it, as AWS would for a client that turned TLS off."""
    secure = assume_tls or environ.get("wsgi.url_scheme") == "https"
    context = {"aws:SecureTransport": "true" if secure else "false"}
    if secure and service == "s3":
        context["s3:TlsVersion"] = "1.3"
    return context


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _guess_service(environ: Mapping[str, Any]) -> str:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.partition(".")[0] or "unknown service"


def error_response(environ: Mapping[str, Any], denial: Denial) -> tuple[str, list[tuple[str, str]], bytes]:
    """The AccessDenied AWS answers, in the request's protocol."""
    request_id = hashlib.sha1(denial.message.encode()).hexdigest()[:16].upper()
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target.startswith("AmazonSQS."):
        body = json.dumps({"__type": "com.amazonaws.sqs#AccessDenied", "message": denial.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "AccessDenied;Sender")]
        return "403 Forbidden", [*headers, ("x-amzn-RequestId", request_id)], body
    if target:  # the other JSON protocols (Secrets Manager): AWS answers AccessDeniedException
        body = json.dumps({"__type": "AccessDeniedException", "Message": denial.message}).encode()
        return (
            "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)],
            body,
        )
    if str(environ.get("PATH_INFO", "")).startswith("/v2/email/"):
        body = json.dumps({"message": denial.message}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")]
        return "403 Forbidden", [*headers, ("x-amzn-RequestId", request_id)], body
    message = escape(denial.message)
    if _is_query(environ):
        text = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{denial.code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:
        text = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{denial.code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    return "403 Forbidden", [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], text.encode()


def _is_query(environ: Mapping[str, Any]) -> bool:
    """The query protocol (STS, SQS's old one): a form-encoded POST."""
    return str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")
