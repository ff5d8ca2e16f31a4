"""What a request asks of IAM, for the enforcement layer (:mod:`devtools.enforcement`): the caller as a
principal, and per service the operation's name and the :class:`Check` (action, resource ARN, resource
policy, context keys) AWS would evaluate. A request no mapper knows raises :class:`Unmapped` and is denied.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import unescape

from devtools.iam_engine import Principal

SQS_QUEUE_URL = re.compile(r"^https?://[^/]+/(?P<account>\d{12})/(?P<name>[^/?]+)$")
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
        return principal_of(self)


@functools.lru_cache(maxsize=256)
def principal_of(caller: Caller) -> Principal:
    """Parsed once per role session and policy version: most requests come from a few task roles."""
    return Principal(caller.arn, {name: json.loads(doc) for name, doc in caller.policies}, dict(caller.tags))


def query_of(environ: Mapping[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


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
    mapper = _CALLER_SCOPED.get(service)
    if mapper is not None:
        return mapper(region, environ, body, caller)
    raise Unmapped(f"service {service!r} ({environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')})")


S3_LISTING_PARAMETERS = {
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
"""Query parameters that are not subresources: they do not change the action."""


@dataclass(frozen=True)
class _S3Request:
    """An S3 request on one bucket: what a check needs of it (the bucket's owner and policy)."""

    environ: dict[str, Any]
    method: str
    query: dict[str, str]
    subresources: set[str]
    bucket_arn: str
    account: str
    policy: str | None

    def check(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> Check:
        return Check(action, resource, self.account, self.policy, tuple(sorted((context or {}).items())))


def _bucket_policy(bucket_name: str, policy_of: PolicyOf) -> tuple[str, str | None] | None:
    """The account owning ``bucket_name`` and its policy as deployed (None: no such bucket)."""
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket_name)
    if owner is None:
        return None
    partition, account = owner
    return account, policy_of(
        f"arn:aws:s3:::{bucket_name}", s3_backends[account][partition].buckets[bucket_name].policy
    )


def _s3(environ: dict[str, Any], body: bytes, policy_of: PolicyOf) -> tuple[str, list[Check]]:
    method = environ["REQUEST_METHOD"]
    bucket_name, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
    query = query_of(environ)
    if not bucket_name:
        raise Unmapped(f"S3 {method} / (ListBuckets)")
    owned = _bucket_policy(bucket_name, policy_of)
    if owned is None:
        raise Unmapped(f"S3 {method} on bucket {bucket_name!r}, which does not exist")
    account, policy = owned
    request = _S3Request(
        environ, method, query, set(query) - S3_LISTING_PARAMETERS, f"arn:aws:s3:::{bucket_name}", account, policy
    )
    if not key:
        return _s3_bucket(request, body)
    return _s3_object(request, key, policy_of)


def _s3_bucket(request: _S3Request, body: bytes) -> tuple[str, list[Check]]:
    """Listings (``s3:prefix``, ``s3:delimiter``, ``s3:max-keys``), version listings, multi-object deletes."""
    method, query, subresources, bucket_arn = request.method, request.query, request.subresources, request.bucket_arn
    if method in ("GET", "HEAD") and not subresources:
        context = {"s3:prefix": query.get("prefix", "")}
        if "delimiter" in query:
            context["s3:delimiter"] = query["delimiter"]
        if "max-keys" in query:
            context["s3:max-keys"] = query["max-keys"]
        name = (
            "HeadBucket" if method == "HEAD" else ("ListObjectsV2" if query.get("list-type") == "2" else "ListObjects")
        )
        return name, [request.check("s3:ListBucket", bucket_arn, context if method == "GET" else None)]
    if method == "GET" and "versions" in subresources <= {"versions", "key-marker", "version-id-marker"}:
        context = {"s3:prefix": query.get("prefix", "")}  # ListObjectVersions (submit's revision history)
        return "ListObjectVersions", [request.check("s3:ListBucketVersions", bucket_arn, context)]
    if method == "POST" and "delete" in query:
        keys = re.findall(rb"<Key>(.*?)</Key>", body)
        return "DeleteObjects", [request.check("s3:DeleteObject", f"{bucket_arn}/{unescape(k.decode())}") for k in keys]
    bucket_name = bucket_arn.removeprefix("arn:aws:s3:::")
    raise Unmapped(f"S3 {method} on bucket {bucket_name} with {sorted(subresources) or 'no subresource'}")


def _s3_object(request: _S3Request, key: str, policy_of: PolicyOf) -> tuple[str, list[Check]]:
    """Object reads, writes (``s3:if-match``, ``s3:if-none-match``, encryption), deletes, tags and copies."""
    method, environ, subresources = request.method, request.environ, request.subresources
    object_arn = f"{request.bucket_arn}/{key}"
    if subresources:
        action = S3_SUBRESOURCE_ACTIONS.get((method, next(iter(subresources)))) if len(subresources) == 1 else None
        if action is None:
            raise Unmapped(f"S3 {method} on an object with {sorted(subresources)}")
        return action.removeprefix("s3:"), [request.check(action, object_arn)]
    version = "versionId" in request.query
    if method in ("GET", "HEAD"):
        action = "s3:GetObjectVersion" if version else "s3:GetObject"
        return ("HeadObject" if method == "HEAD" else "GetObject"), [request.check(action, object_arn)]
    context = {}
    if "HTTP_IF_MATCH" in environ:
        context["s3:if-match"] = environ["HTTP_IF_MATCH"]
    if "HTTP_IF_NONE_MATCH" in environ:
        context["s3:if-none-match"] = environ["HTTP_IF_NONE_MATCH"]
    if method == "DELETE":
        action = "s3:DeleteObjectVersion" if version else "s3:DeleteObject"
        return "DeleteObject", [request.check(action, object_arn, context)]
    if method not in ("PUT", "POST"):
        raise Unmapped(f"S3 {method} on an object")
    if "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION" in environ:
        context["s3:x-amz-server-side-encryption"] = environ["HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION"]
    checks = [request.check("s3:PutObject", object_arn, context)]
    source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
    if source:
        source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
        owned = _bucket_policy(source_bucket, policy_of)
        if owned is None:
            raise Unmapped(f"S3 CopyObject from bucket {source_bucket!r}, which does not exist")
        source_arn = f"arn:aws:s3:::{source_bucket}/{source_key.partition('?')[0]}"
        checks.append(Check("s3:GetObject", source_arn, owned[0], owned[1]))
    return ("CopyObject" if source else "PutObject"), checks


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


_CALLER_SCOPED: dict[str, Callable[[str, dict[str, Any], bytes, Caller], tuple[str, list[Check]]]] = {
    "ses": _ses,
    "secretsmanager": _secretsmanager,
    "ssm": _ssm,
    "ecs": _ecs,
    "monitoring": _cloudwatch,
    "logs": _logs,
}
"""The services whose requests name resources of the caller's account (no resource policy is read)."""
