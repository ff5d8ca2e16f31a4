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
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape, unescape

from devtools.iam_engine import Decision, PolicyEngine, PolicyEngineError, Principal

if TYPE_CHECKING:
    from devtools.local_deploy import World

CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
SQS_QUEUE_URL = re.compile(r"^https?://[^/]+/(?P<account>\d{12})/(?P<name>[^/?]+)$")
CACHE_LIMIT = 20_000
ADMIN = "admin"
NOT_DECIDED_OPERATIONS = {("sts", "GetCallerIdentity"): "needs no permission in AWS"}
"""Operations passed without a decision, each with why; they are counted as not decided."""
SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
SQS_KMS_ACTIONS = {"SendMessage": "kms:GenerateDataKey", "ReceiveMessage": "kms:Decrypt"}
S3_SUBRESOURCE_ACTIONS = {("GET", "tagging"): "s3:GetObjectTagging", ("PUT", "tagging"): "s3:PutObjectTagging"}


class Unmapped(Exception):
    """The request is not one the enforcement layer can map: it is denied, naming the operation."""


@dataclass(frozen=True)
class Check:
    """One question for the engine: what AWS authorises for (part of) a request."""

    action: str
    resource: str
    resource_account: str
    resource_policy: str | None = None
    context: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    """Condition keys; a tuple value is multi-valued (``aws:TagKeys``)."""


@dataclass(frozen=True)
class Caller:
    arn: str
    role_arn: str
    policies: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...]

    def principal(self) -> Principal:
        return _principal(self)


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
            "Credential=" + unquote(_query(environ).get("X-Amz-Credential", ""))
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
            reason = f"{error} is not mapped to IAM by devtools/enforcement.py"
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


# --- what the request asks for ------------------------------------------------------------------------


PolicyOf = Callable[[str, "str | bytes | None"], "str | None"]


def requests_of(
    service: str, region: str, environ: dict[str, Any], body: bytes, caller: Caller, policy_of: PolicyOf
) -> tuple[str, list[Check] | None]:
    """The operation's name and what AWS checks for it (``None``: an allow-listed, undecided operation)."""
    if service == "s3":
        return _s3(environ, body, policy_of)
    if service == "sqs":
        return _sqs(region, environ, body, caller, policy_of)
    if service == "sts":
        return _sts(body)
    if service == "ses":
        return _ses(region, environ, body, caller)
    if service == "secretsmanager":
        return _secretsmanager(region, environ, body, caller)
    if service == "ssm":
        return _ssm(region, environ, body, caller)
    if service == "ecs":
        return _ecs(region, environ, body, caller)
    if service == "monitoring":
        return _cloudwatch(region, environ, body, caller)
    if service == "logs":
        return _logs(region, environ, body, caller)
    raise Unmapped(f"service {service!r} ({environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')})")


def _s3(environ: dict[str, Any], body: bytes, policy_of: PolicyOf) -> tuple[str, list[Check]]:
    from moto.s3.models import s3_backends

    method = environ["REQUEST_METHOD"]
    bucket_name, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
    query = _query(environ)
    if not bucket_name:
        raise Unmapped(f"S3 {method} / (ListBuckets)")
    owner = s3_backends.bucket_accounts.get(bucket_name)
    if owner is None:
        raise Unmapped(f"S3 {method} on bucket {bucket_name!r}, which does not exist")
    partition, account = owner
    bucket_arn = f"arn:aws:s3:::{bucket_name}"
    policy = policy_of(bucket_arn, s3_backends[account][partition].buckets[bucket_name].policy)

    def check(action: str, resource: str, context: Mapping[str, str] | None = None) -> Check:
        return Check(action, resource, account, policy, tuple(sorted((context or {}).items())))

    subresources = set(query) - {
        "prefix",
        "delimiter",
        "max-keys",
        "list-type",
        "continuation-token",
        "start-after",
        "encoding-type",
        "fetch-owner",
        "versionId",
        "x-id",
        "uploadId",
        "partNumber",
        "uploads",
        "key-marker",
        "version-id-marker",
    }
    if not key:
        if method in ("GET", "HEAD") and not subresources:
            context = {"s3:prefix": query.get("prefix", "")}
            if "delimiter" in query:
                context["s3:delimiter"] = query["delimiter"]
            if "max-keys" in query:
                context["s3:max-keys"] = query["max-keys"]
            name = (
                "HeadBucket"
                if method == "HEAD"
                else ("ListObjectsV2" if query.get("list-type") == "2" else "ListObjects")
            )
            return name, [check("s3:ListBucket", bucket_arn, context if method == "GET" else None)]
        if method == "GET" and "versions" in subresources <= {"versions", "key-marker", "version-id-marker"}:
            context = {"s3:prefix": query.get("prefix", "")}  # ListObjectVersions (submit's revision history)
            return "ListObjectVersions", [check("s3:ListBucketVersions", bucket_arn, context)]
        if method == "POST" and "delete" in query:
            keys = re.findall(rb"<Key>(.*?)</Key>", body)
            return "DeleteObjects", [check("s3:DeleteObject", f"{bucket_arn}/{unescape(k.decode())}") for k in keys]
        raise Unmapped(f"S3 {method} on bucket {bucket_name} with {sorted(subresources) or 'no subresource'}")
    object_arn = f"{bucket_arn}/{key}"
    if subresources:
        action = S3_SUBRESOURCE_ACTIONS.get((method, next(iter(subresources)))) if len(subresources) == 1 else None
        if action is None:
            raise Unmapped(f"S3 {method} on an object with {sorted(subresources)}")
        return action.removeprefix("s3:"), [check(action, object_arn)]
    version = "versionId" in query
    if method in ("GET", "HEAD"):
        action = "s3:GetObjectVersion" if version else "s3:GetObject"
        return ("HeadObject" if method == "HEAD" else "GetObject"), [check(action, object_arn)]
    context = {}
    if "HTTP_IF_MATCH" in environ:
        context["s3:if-match"] = environ["HTTP_IF_MATCH"]
    if "HTTP_IF_NONE_MATCH" in environ:
        context["s3:if-none-match"] = environ["HTTP_IF_NONE_MATCH"]
    if method == "DELETE":
        action = "s3:DeleteObjectVersion" if version else "s3:DeleteObject"
        return "DeleteObject", [check(action, object_arn, context)]
    if method in ("PUT", "POST"):
        if "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION" in environ:
            context["s3:x-amz-server-side-encryption"] = environ["HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION"]
        checks = [check("s3:PutObject", object_arn, context)]
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source:
            source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
            source_owner = s3_backends.bucket_accounts.get(source_bucket)
            if source_owner is None:
                raise Unmapped(f"S3 CopyObject from bucket {source_bucket!r}, which does not exist")
            source_policy = policy_of(
                f"arn:aws:s3:::{source_bucket}",
                s3_backends[source_owner[1]][source_owner[0]].buckets[source_bucket].policy,
            )
            checks.append(
                Check(
                    "s3:GetObject",
                    f"arn:aws:s3:::{source_bucket}/{source_key.partition('?')[0]}",
                    source_owner[1],
                    source_policy,
                )
            )
        return ("CopyObject" if source else "PutObject"), checks
    raise Unmapped(f"S3 {method} on an object")


def _sqs(
    region: str, environ: dict[str, Any], body: bytes, caller: Caller, policy_of: PolicyOf
) -> tuple[str, list[Check]]:
    from moto.sqs.models import sqs_backends

    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("AmazonSQS."):
        operation, params = target.removeprefix("AmazonSQS."), json.loads(body or b"{}")
    else:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        operation, params = form.pop("Action", ""), form
    if not operation:
        raise Unmapped("SQS request without an operation")
    action = SQS_ACTIONS.get(operation, operation)
    caller_account = caller.arn.split(":")[4]
    if "QueueUrl" in params:
        found = SQS_QUEUE_URL.match(str(params["QueueUrl"]))
        if found is None:
            raise Unmapped(f"SQS {operation} on queue URL {params['QueueUrl']!r}")
        account, name = found["account"], found["name"]
    elif operation == "GetQueueUrl":
        account, name = str(params.get("QueueOwnerAWSAccountId") or caller_account), str(params["QueueName"])
    elif operation == "ListQueues":
        return operation, [Check("sqs:ListQueues", f"arn:aws:sqs:{region}:{caller_account}:*", caller_account)]
    else:
        raise Unmapped(f"SQS {operation}")
    queue_arn = f"arn:aws:sqs:{region}:{account}:{name}"
    queue = sqs_backends[account][region].queues.get(name)
    policy = policy_of(queue_arn, queue.policy if queue is not None else None)
    checks = [Check(f"sqs:{action}", queue_arn, account, policy)]
    kms_action = SQS_KMS_ACTIONS.get(action)
    key_id = getattr(queue, "kms_master_key_id", None) if queue is not None else None
    if kms_action and key_id:
        checks.append(_kms_via(kms_action, str(key_id), account, region, "sqs", policy_of))
    return operation, checks


def _kms_via(action: str, key_id: str, account: str, region: str, service: str, policy_of: PolicyOf) -> Check:
    """A KMS call a service makes on the caller's behalf: decided for the caller, with ``kms:ViaService``."""
    from moto.kms.models import kms_backends

    key_account = key_id.split(":")[4] if key_id.startswith("arn:") else account
    backend = kms_backends[key_account][region]
    try:
        key = backend.describe_key(key_id)
    except Exception:
        raise Unmapped(f"{action} on KMS key {key_id!r}, which does not exist in {key_account}") from None
    return Check(
        action,
        key.arn,
        key_account,
        policy_of(key.arn, key.policy),
        (("kms:CallerAccount", account), ("kms:ViaService", f"{service}.{region}.amazonaws.com")),
    )


def _sts(body: bytes) -> tuple[str, list[Check] | None]:
    from moto.iam.models import iam_backends

    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    operation = form.get("Action", "")
    if ("sts", operation) in NOT_DECIDED_OPERATIONS:
        return f"sts:{operation}", None
    if operation != "AssumeRole":
        raise Unmapped(f"STS {operation or 'request without an operation'}")
    role_arn = form["RoleArn"]
    account = role_arn.split(":")[4]
    try:
        trust = iam_backends[account]["aws"].get_role_by_arn(role_arn).assume_role_policy_document
    except Exception:
        trust = json.dumps({"Version": "2012-10-17", "Statement": []})  # no such role: nothing trusts the caller
    context: dict[str, str | tuple[str, ...]] = {"sts:RoleSessionName": form.get("RoleSessionName", "")}
    if "ExternalId" in form:
        context["sts:ExternalId"] = form["ExternalId"]
    trust_text = trust if isinstance(trust, str) else json.dumps(trust)
    checks = [Check("sts:AssumeRole", role_arn, account, trust_text, tuple(sorted(context.items())))]
    tags = {
        form[key]: form.get(key.removesuffix(".Key") + ".Value", "")
        for key in form
        if re.fullmatch(r"Tags\.member\.\d+\.Key", key)
    }
    if tags:  # session tags need sts:TagSession in the trust policy too (IAM User Guide, "Passing session tags")
        tag_context: dict[str, str | tuple[str, ...]] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
        tag_context["aws:TagKeys"] = tuple(sorted(tags))
        checks.append(
            Check("sts:TagSession", role_arn, account, trust_text, tuple(sorted({**context, **tag_context}.items())))
        )
    return operation, checks


def _secretsmanager(region: str, environ: dict[str, Any], body: bytes, caller: Caller) -> tuple[str, list[Check]]:
    """``GetSecretValue`` (what an ECS execution role does to inject a task's secrets), on the secret's
    full ARN: a policy names the ARN with its random suffix, or a ``-??????`` wildcard, never the name."""
    from moto.secretsmanager.models import secretsmanager_backends

    operation = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("secretsmanager.")
    if operation != "GetSecretValue":
        raise Unmapped(f"Secrets Manager {operation or 'request without an operation'}")
    secret_id = str(json.loads(body or b"{}").get("SecretId", ""))
    account = secret_id.split(":")[4] if secret_id.startswith("arn:") else caller.arn.split(":")[4]
    secrets = secretsmanager_backends[account][region].secrets
    found = next(
        (
            secret.arn
            for name, secret in secrets.items()
            if secret_id in (name, secret.arn) or (secret_id.startswith("arn:") and secret.arn.startswith(secret_id))
        ),
        None,
    )
    if found is None:
        raise Unmapped(f"Secrets Manager GetSecretValue of {secret_id!r}, which does not exist")
    return operation, [Check("secretsmanager:GetSecretValue", found, account, None)]


SSM_READS = {"GetParameter": "Name", "GetParameters": "Names", "GetParametersByPath": "Path"}


def _ssm(region: str, environ: dict[str, Any], body: bytes, caller: Caller) -> tuple[str, list[Check]]:
    """Parameter reads (the customer registry ``/ttp/customers/{code}`` that ``submit`` checks), each on its
    parameter's ARN (``parameter/ttp/customers`` for the path: Service Authorization Reference, SSM)."""
    operation = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("AmazonSSM.")
    field = SSM_READS.get(operation)
    if field is None:
        raise Unmapped(f"SSM {operation or 'request without an operation'}")
    account = caller.arn.split(":")[4]
    value = json.loads(body or b"{}").get(field, "")
    names_ = value if isinstance(value, list) else [value]
    arns = [f"arn:aws:ssm:{region}:{account}:parameter/{str(name).lstrip('/')}" for name in names_]
    return operation, [Check(f"ssm:{operation}", arn, account) for arn in arns]


def _ecs(region: str, environ: dict[str, Any], body: bytes, caller: Caller) -> tuple[str, list[Check]]:
    """What ``health`` and ``restart`` ask of ECS, on the cluster's and the services' ARNs (new ARN format)."""
    operation = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("AmazonEC2ContainerServiceV20141113.")
    params = json.loads(body or b"{}")
    account = caller.arn.split(":")[4]
    prefix = f"arn:aws:ecs:{region}:{account}"

    def named(kind: str, name: str, cluster: str = "") -> str:
        if name.startswith("arn:"):
            return name
        return f"{prefix}:{kind}/{cluster + '/' if cluster else ''}{name}"

    cluster = str(params.get("cluster", "default")).rpartition("/")[2]
    if operation == "DescribeClusters":
        arns = [named("cluster", str(c)) for c in params.get("clusters", ["default"])]
    elif operation == "DescribeServices":
        arns = [named("service", str(name), cluster) for name in params.get("services", [])]
    elif operation == "UpdateService":
        arns = [named("service", str(params.get("service", "")), cluster)]
    else:
        raise Unmapped(f"ECS {operation or 'request without an operation'}")
    return operation, [Check(f"ecs:{operation}", arn, account) for arn in arns]


def _cloudwatch(region: str, environ: dict[str, Any], body: bytes, caller: Caller) -> tuple[str, list[Check]]:
    """``GetMetricData`` (``health``'s queue ages): the Service Authorization Reference lists no resource."""
    path = str(environ.get("PATH_INFO", ""))
    operation = path.rpartition("/operation/")[2] if "/operation/" in path else ""
    if not operation:  # the JSON and query protocols of the same API
        operation = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
    if operation != "GetMetricData":
        raise Unmapped(f"CloudWatch {operation or 'request without an operation'}")
    account = caller.arn.split(":")[4]
    return operation, [Check("cloudwatch:GetMetricData", "*", account)]


def _logs(region: str, environ: dict[str, Any], body: bytes, caller: Caller) -> tuple[str, list[Check]]:
    """``FilterLogEvents`` (the ``logs`` command) on the log group's ARN."""
    operation = str(environ.get("HTTP_X_AMZ_TARGET", "")).removeprefix("Logs_20140328.")
    if operation != "FilterLogEvents":
        raise Unmapped(f"CloudWatch Logs {operation or 'request without an operation'}")
    account = caller.arn.split(":")[4]
    group = str(json.loads(body or b"{}").get("logGroupName", ""))
    return operation, [Check("logs:FilterLogEvents", f"arn:aws:logs:{region}:{account}:log-group:{group}", account)]


def _ses(region: str, environ: dict[str, Any], body: bytes, caller: Caller) -> tuple[str, list[Check]]:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    account = caller.arn.split(":")[4]
    arn = f"arn:aws:ses:{region}:{account}"
    contact_list = re.fullmatch(r"/v2/email/contact-lists/([^/]+)(/contacts/list)?", path)
    if method == "POST" and path == "/v2/email/outbound-emails":
        params = json.loads(body or b"{}")
        address = str(params.get("FromEmailAddress", "")).rpartition("<")[2].rstrip(">").strip()
        context = (("ses:FromAddress", address),)
        resources = [f"identity/{address.rpartition('@')[2]}"]
        if params.get("ConfigurationSetName"):
            resources.append(f"configuration-set/{params['ConfigurationSetName']}")
        return "SendEmail", [Check("ses:SendEmail", f"{arn}:{r}", account, None, context) for r in resources]
    if contact_list and method == "GET" and not contact_list[2]:
        return "GetContactList", [Check("ses:GetContactList", f"{arn}:contact-list/{contact_list[1]}", account)]
    if contact_list and method == "POST" and contact_list[2]:
        return "ListContacts", [Check("ses:ListContacts", f"{arn}:contact-list/{contact_list[1]}", account)]
    raise Unmapped(f"SES {method} {path}")


# --- plumbing -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _principal(caller: Caller) -> Principal:
    """Parsed once per role session and policy version: most requests come from a few task roles."""
    return Principal(caller.arn, {name: json.loads(doc) for name, doc in caller.policies}, dict(caller.tags))


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


def _query(environ: Mapping[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


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
