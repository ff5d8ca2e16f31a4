"""One writer per object (DESIGN §1, §7): who may do what in the bucket, proven on the synthesized policies.

A small evaluator reads the processor's and the coordinator's IAM policies (governance account) and
the bucket policy (management account) as synthesized, resolves the principal-tag variable for a
given role, and decides a request the way IAM does: an explicit deny wins; across accounts both the
identity policy and the bucket policy must allow; in one account either may. Checked in every shape:
S3 routing multi-account (the sample), EventBridge multi-account with meetings, EventBridge single-account
and S3 single-account with meetings.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any

import pytest

from runtime.contract import names
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_stack_name
from tests.support.synth import Synth, as_list, policies_of_role, role_named, statements

VARIANTS = ["sample", "multi", "single", "single_byo"]
TAG = "${aws:PrincipalTag/customer_code}"
CHANGE = "CHG-1.json"
ENCRYPTION = "s3:x-amz-server-side-encryption"
REQUEST_KEYS = ("s3:if-match", "s3:if-none-match", ENCRYPTION)
"""Condition keys taken from the request's headers (a test passes ``key`` or ``key=value``)."""
IF_MATCH, IF_NONE_MATCH = frozenset({"s3:if-match"}), frozenset({"s3:if-none-match"})
RESOURCE_TAG = "aws:ResourceTag/"
PROTECTION_ACTIONS = ("ecs:UpdateTaskProtection", "ecs:GetTaskProtection")


def _flatten(value: Any, bucket_arn: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(part, bucket_arn) for part in parts)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return bucket_arn
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    raise AssertionError(f"cannot resolve {value!r}")


class Principal:
    def __init__(self, arn: str, tag: str | None) -> None:
        self.arn, self.tag = arn, tag


def _resource_matches(patterns: list[str], resource: str, principal: Principal) -> bool:
    for pattern in patterns:
        if TAG in pattern:
            if principal.tag is None:
                continue  # an unresolvable variable matches nothing
            pattern = pattern.replace(TAG, principal.tag)
        if fnmatch.fnmatchcase(resource, pattern):
            return True
    return False


def _request_context(headers: set[str]) -> dict[str, str]:
    """``{"s3:if-match", "s3:x-amz-server-side-encryption=aws:kms"}`` -> condition key -> value."""
    context = {}
    for header in headers:
        key, _, value = header.partition("=")
        context[key] = value or "*"
    return context


def _conditions_hold(
    conditions: dict[str, Any], principal: Principal, headers: set[str], resource_tags: Mapping[str, str]
) -> bool:
    context = _request_context(headers)
    for operator, pairs in conditions.items():
        for key, expected in pairs.items():
            if key == "aws:PrincipalArn":
                values = as_list(expected)
                if operator == "ArnLike":
                    ok = any(fnmatch.fnmatchcase(principal.arn, v) for v in values)
                elif operator == "ArnEquals":
                    ok = principal.arn in values
                else:
                    raise AssertionError(operator)
            elif operator == "Null" and key == f"aws:PrincipalTag/{names.CUSTOMER_TAG_KEY}":
                ok = (principal.tag is None) == (expected == "true")
            elif operator == "Null" and key in REQUEST_KEYS:
                ok = (key not in context) == (expected == "true")
            elif operator == "StringNotEquals" and key in REQUEST_KEYS:
                ok = context.get(key) not in as_list(expected)  # a missing key does not equal: true
            elif operator == "StringEquals" and key.startswith(RESOURCE_TAG):
                ok = resource_tags.get(key.removeprefix(RESOURCE_TAG)) in as_list(expected)  # missing: false
            elif key == "aws:SecureTransport":
                ok = expected == "true"  # requests use TLS
            elif operator == "NumericLessThan" and key == "s3:TlsVersion":
                ok = float(expected) > 1.3  # requests use TLS 1.3
            else:
                raise AssertionError(f"unknown condition {operator} {key}")
            if not ok:
                return False
    return True


def _decide(
    policy: list[dict[str, Any]],
    principal: Principal,
    action: str,
    resource: str,
    headers: set[str],
    bucket_arn: str,
    resource_tags: Mapping[str, str] | None = None,
) -> str:
    """``deny`` (explicit), ``allow`` or ``none`` (implicit deny) for one policy."""
    result = "none"
    for statement in policy:
        if action not in as_list(statement["Action"]) and "s3:*" not in as_list(statement["Action"]):
            continue
        if "Resource" in statement:
            patterns = [_flatten(r, bucket_arn) for r in as_list(statement["Resource"])]
            if not _resource_matches(patterns, resource, principal):
                continue
        else:
            patterns = [_flatten(r, bucket_arn) for r in as_list(statement["NotResource"])]
            if _resource_matches(patterns, resource, principal):
                continue
        if not _conditions_hold(statement.get("Condition", {}), principal, headers, resource_tags or {}):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        result = "allow"
    return result


class World:
    """The policies of one synthesized app."""

    def __init__(self, synth: Synth) -> None:
        self.synth = synth
        self.gov = synth.config.accounts.governance
        self.bucket_arn = f"arn:aws:s3:::{synth.config.metadata_bucket_name}"
        (policy,) = [
            p
            for p in synth.resources(STORAGE_STACK, "AWS::S3::BucketPolicy").values()
            if any("PrincipalArn" in str(s.get("Condition")) for s in statements(p))
        ]
        self.bucket_policy = statements(policy)

    def identity(self, role_name: str) -> tuple[Principal, list[dict[str, Any]]]:
        if role_name in (names.COORDINATOR_ROLE_NAME, names.SWEEPER_ROLE_NAME):
            stack, tag = PLATFORM_STACK, None
        else:
            code = role_name.removeprefix(names.PROCESSOR_ROLE_PREFIX)
            stack, tag = customer_stack_name(code), code
        role_id, _ = role_named(self.synth, stack, role_name)
        return Principal(names.role_arn(self.gov, role_name), tag), policies_of_role(self.synth, stack, role_id)

    def may(self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset()) -> bool:
        principal, identity = self.identity(role_name)
        resource = f"{self.bucket_arn}/{key}"
        mine = _decide(identity, principal, action, resource, set(headers), self.bucket_arn)
        theirs = _decide(self.bucket_policy, principal, action, resource, set(headers), self.bucket_arn)
        if "deny" in (mine, theirs):
            return False
        if self.synth.config.single_account:
            return "allow" in (mine, theirs)
        return mine == theirs == "allow"

    def may_protect(self, role_name: str, action: str, task_of: str) -> bool:
        """Whether ``role_name`` may set (or read) scale-in protection of a running task of ``task_of``'s
        processor service. ECS has no resource policies: the task role's own policy decides. The task
        carries what ECS gives it: the managed tags and, with ``PropagateTags: SERVICE``, its service's tags."""
        principal, identity = self.identity(role_name)
        service = self.synth.only(customer_stack_name(task_of), "AWS::ECS::Service")["Properties"]
        tags = {"aws:ecs:serviceName": service["ServiceName"]} if service.get("EnableECSManagedTags") else {}
        if service.get("PropagateTags") == "SERVICE":
            tags |= {tag["Key"]: tag["Value"] for tag in service.get("Tags", [])}
        region = self.synth.config.accounts.region
        task = f"arn:aws:ecs:{region}:{self.gov}:task/{names.CLUSTER_NAME}/0123456789abcdef0123456789abcdef"
        return _decide(identity, principal, action, task, set(), self.bucket_arn, tags) == "allow"

    def may_with_broadened_identity(self, role_name: str, action: str, key: str, headers: frozenset[str]) -> bool:
        """``may`` once someone has added ``Allow s3:* on *`` to the role's policy: what still holds is what
        the bucket policy grants (across accounts) and the explicit denies."""
        principal, identity = self.identity(role_name)
        identity = [*identity, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
        resource = f"{self.bucket_arn}/{key}"
        mine = _decide(identity, principal, action, resource, set(headers), self.bucket_arn)
        theirs = _decide(self.bucket_policy, principal, action, resource, set(headers), self.bucket_arn)
        if "deny" in (mine, theirs):
            return False
        if self.synth.config.single_account:
            return "allow" in (mine, theirs)
        return mine == theirs == "allow"

    def identity_denies(self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset()) -> bool:
        """Denied explicitly by the role's own policy, whatever else that policy allows."""
        principal, identity = self.identity(role_name)
        resource = f"{self.bucket_arn}/{key}"
        return _decide(identity, principal, action, resource, set(headers), self.bucket_arn) == "deny"

    def bucket_denies(
        self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset(), *, untagged: bool = False
    ) -> bool:
        principal, _ = self.identity(role_name)
        if untagged:
            principal.tag = None
        resource = f"{self.bucket_arn}/{key}"
        return _decide(self.bucket_policy, principal, action, resource, set(headers), self.bucket_arn) == "deny"

    def bucket_denies_anyone(self, action: str, key: str, headers: frozenset[str] = frozenset()) -> bool:
        """Denied by the bucket policy to a principal it names nowhere (an admin, a submitter)."""
        someone = Principal(f"arn:aws:iam::{self.synth.config.accounts.management}:role/someone", None)
        resource = f"{self.bucket_arn}/{key}"
        return _decide(self.bucket_policy, someone, action, resource, set(headers), self.bucket_arn) == "deny"


@pytest.fixture(params=VARIANTS)
def world(request: pytest.FixtureRequest) -> World:
    return World(request.getfixturevalue(request.param))


A = names.processor_role_name("hts")
B_CODE = "htsnonprod"


def test_processor_reads_the_archive_but_cannot_write_it(world: World) -> None:
    assert world.may(A, "s3:GetObject", f"archive/{CHANGE}")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert not world.may(A, action, f"archive/{CHANGE}")
        assert not world.may(A, action, f"archive/{CHANGE}", frozenset({"s3:if-match"}))
        assert world.bucket_denies(A, action, f"archive/{CHANGE}")  # whatever its IAM policy says


def test_processor_reads_and_writes_only_its_own_processing_objects(world: World) -> None:
    for action, headers in (("s3:GetObject", frozenset()), ("s3:PutObject", IF_MATCH), ("s3:PutObject", IF_NONE_MATCH)):
        assert world.may(A, action, f"processing/hts/{CHANGE}", headers)
        assert not world.may(A, action, f"processing/{B_CODE}/{CHANGE}", headers)
        # Its own policy denies it explicitly, and a broader IAM policy would not help.
        assert world.identity_denies(A, action, f"processing/{B_CODE}/{CHANGE}", headers)
        assert not world.may_with_broadened_identity(A, action, f"processing/{B_CODE}/{CHANGE}", headers)
    assert not world.may(A, "s3:DeleteObject", f"processing/hts/{CHANGE}")


def test_processor_reads_and_deletes_only_its_own_triggers(world: World) -> None:
    for action, headers in (("s3:GetObject", frozenset()), ("s3:DeleteObject", IF_MATCH)):
        assert world.may(A, action, f"customers/hts/{CHANGE}", headers)
        assert not world.may(A, action, f"customers/{B_CODE}/{CHANGE}", headers)
        assert world.identity_denies(A, action, f"customers/{B_CODE}/{CHANGE}", headers)
        assert not world.may_with_broadened_identity(A, action, f"customers/{B_CODE}/{CHANGE}", headers)
    assert not world.may(A, "s3:PutObject", f"customers/hts/{CHANGE}")
    assert not world.may(A, "s3:GetObject", f"drafts/{CHANGE}")


def test_across_accounts_the_bucket_grants_a_processor_only_its_own_prefixes(world: World) -> None:
    """Across accounts both policies must allow: the bucket policy's grants (variables in ``Resource``)
    alone keep a processor off another customer's objects, whatever its IAM policy says."""
    if world.synth.config.single_account:
        pytest.skip("in one account either policy may allow: the processor's own explicit deny decides")
    for action, key, headers in (
        ("s3:GetObject", f"processing/{B_CODE}/{CHANGE}", frozenset()),
        ("s3:PutObject", f"processing/{B_CODE}/{CHANGE}", IF_MATCH),
        ("s3:GetObject", f"customers/{B_CODE}/{CHANGE}", frozenset()),
        ("s3:DeleteObject", f"customers/{B_CODE}/{CHANGE}", IF_MATCH),
    ):
        principal, _ = world.identity(A)
        resource = f"{world.bucket_arn}/{key}"
        assert _decide(world.bucket_policy, principal, action, resource, set(headers), world.bucket_arn) != "allow"


def test_the_bucket_policy_denies_processors_every_other_prefix(world: World) -> None:
    """``drafts/``, ``delivery/`` and any prefix the platform adds later: denied by the bucket policy itself."""
    for key in (f"drafts/{CHANGE}", f"delivery/hts/{CHANGE}", f"elsewhere/{CHANGE}"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert world.bucket_denies(A, action, key, IF_MATCH), (action, key)


def _not_resources(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["NotResource"]] if "NotResource" in node else []
        return found + [n for value in node.values() for n in _not_resources(value)]
    if isinstance(node, list):
        return [n for value in node for n in _not_resources(value)]
    return []


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_policy_puts_a_variable_in_not_resource(request: pytest.FixtureRequest, variant: str) -> None:
    """AWS documents policy variables in ``Resource`` and in ``Condition`` string comparisons, not in
    ``NotResource``: an unsubstituted variable there would deny every processor its own objects."""
    synth: Synth = request.getfixturevalue(variant)
    checked = 0
    for name, template in synth.templates.items():
        for element in _not_resources(template):
            checked += 1
            assert "${" not in json.dumps(element), (name, element)
    assert checked  # the walk found the NotResource denies the isolation relies on


def test_an_untagged_processor_role_is_denied_every_prefix_but_the_archive(world: World) -> None:
    for key in (f"processing/hts/{CHANGE}", f"customers/hts/{CHANGE}", f"drafts/{CHANGE}"):
        assert world.bucket_denies(A, "s3:GetObject", key, untagged=True)
    assert not world.bucket_denies(A, "s3:GetObject", f"archive/{CHANGE}", untagged=True)


def test_coordinator_reads_processing_and_writes_the_archive_only_conditionally(world: World) -> None:
    c = names.COORDINATOR_ROLE_NAME
    for key in (f"archive/{CHANGE}", f"processing/hts/{CHANGE}", f"processing/{B_CODE}/{CHANGE}"):
        assert world.may(c, "s3:GetObject", key)
    assert not world.may(c, "s3:PutObject", f"archive/{CHANGE}")  # unconditional: refused
    assert world.may(c, "s3:PutObject", f"archive/{CHANGE}", frozenset({"s3:if-match"}))
    assert world.may(c, "s3:PutObject", f"archive/{CHANGE}", frozenset({"s3:if-none-match"}))
    assert not world.may(c, "s3:PutObject", f"customers/hts/{CHANGE}")  # fan-out repair is the sweeper's
    for action, key in (
        ("s3:PutObject", f"processing/hts/{CHANGE}"),
        ("s3:DeleteObject", f"archive/{CHANGE}"),
        ("s3:DeleteObject", f"customers/hts/{CHANGE}"),
        ("s3:GetObject", f"customers/hts/{CHANGE}"),
        ("s3:GetObject", f"drafts/{CHANGE}"),
    ):
        assert not world.may(c, action, key), (action, key)


def test_sweeper_reads_every_processing_object_but_writes_none(world: World) -> None:
    s = names.SWEEPER_ROLE_NAME
    for key in (f"processing/hts/{CHANGE}", f"processing/{B_CODE}/{CHANGE}", f"archive/{CHANGE}"):
        assert world.may(s, "s3:GetObject", key), key
    for action, key in (("s3:PutObject", f"processing/hts/{CHANGE}"), ("s3:PutObject", f"archive/{CHANGE}")):
        assert not world.may(s, action, key), (action, key)
        assert not world.may(s, action, key, frozenset({"s3:if-none-match"})), (action, key)


def test_sweeper_may_only_create_missing_triggers(world: World) -> None:
    """Fan-out repair: the sweeper re-creates a trigger a submission did not write — create-only
    (``If-None-Match``), so it can never overwrite a trigger, and nowhere but under ``customers/``."""
    s = names.SWEEPER_ROLE_NAME
    for code in ("hts", B_CODE):
        assert world.may(s, "s3:PutObject", f"customers/{code}/{CHANGE}", frozenset({"s3:if-none-match"}))
        assert not world.may(s, "s3:PutObject", f"customers/{code}/{CHANGE}")  # an overwrite: refused
        assert not world.may(s, "s3:PutObject", f"customers/{code}/{CHANGE}", frozenset({"s3:if-match"}))
    for key in (f"drafts/{CHANGE}", f"archive/{CHANGE}", f"processing/hts/{CHANGE}"):
        assert not world.may(s, "s3:PutObject", key, frozenset({"s3:if-none-match"})), key


def test_processor_policy_names_only_its_own_prefixes(world: World) -> None:
    _, identity = world.identity(A)
    text = str(identity)
    assert "processing/hts/*" in text and "customers/hts/*" in text
    assert B_CODE not in text and "secretsmanager" not in text and names.CONTACT_READER_ROLE_PREFIX not in text


# --- Conditional writes and deletes, pinned encryption (issue 12) -------------------------------------


def test_processing_writes_are_compare_and_swap_only(world: World) -> None:
    key = f"processing/hts/{CHANGE}"
    assert not world.may(A, "s3:PutObject", key)
    # Denied by the bucket policy itself, to anyone: in one account the IAM policy alone would allow it.
    assert world.bucket_denies(A, "s3:PutObject", key)
    assert world.bucket_denies_anyone("s3:PutObject", key)
    assert not world.bucket_denies_anyone("s3:PutObject", key, IF_NONE_MATCH)


def test_archive_writes_are_compare_and_swap_only_for_everyone(world: World) -> None:
    c, key = names.COORDINATOR_ROLE_NAME, f"archive/{CHANGE}"
    assert world.bucket_denies(c, "s3:PutObject", key)
    assert world.bucket_denies_anyone("s3:PutObject", key)
    for headers in (IF_MATCH, IF_NONE_MATCH):
        assert not world.bucket_denies_anyone("s3:PutObject", key, headers)
    # Other prefixes are not affected (triggers are plain PUTs; drafts belong to the submitters).
    assert not world.bucket_denies_anyone("s3:PutObject", f"customers/hts/{CHANGE}")
    assert not world.bucket_denies_anyone("s3:PutObject", f"drafts/{CHANGE}")


def test_processor_deletes_a_trigger_only_if_it_is_the_one_it_read(world: World) -> None:
    key = f"customers/hts/{CHANGE}"
    assert not world.may(A, "s3:DeleteObject", key)
    assert world.bucket_denies(A, "s3:DeleteObject", key)
    assert world.may(A, "s3:DeleteObject", key, IF_MATCH)
    # The sweeper's deletes are not constrained by this statement.
    assert not world.bucket_denies(names.SWEEPER_ROLE_NAME, "s3:DeleteObject", key)


def test_archive_writes_may_ask_only_for_sse_s3(world: World) -> None:
    c, key = names.COORDINATOR_ROLE_NAME, f"archive/{CHANGE}"
    assert world.may(c, "s3:PutObject", key, IF_MATCH)  # no header: the bucket default (SSE-S3)
    assert world.may(c, "s3:PutObject", key, IF_MATCH | {f"{ENCRYPTION}=AES256"})
    for other in ("aws:kms", "aws:kms:dsse"):
        assert not world.may(c, "s3:PutObject", key, IF_MATCH | {f"{ENCRYPTION}={other}"})
        assert world.bucket_denies_anyone("s3:PutObject", key, IF_NONE_MATCH | {f"{ENCRYPTION}={other}"})


# --- delivery/ (issue 13): the coordinator's delivery-event consumer is its only writer ----------------


def test_coordinator_reads_delivery_and_writes_it_only_conditionally(world: World) -> None:
    c = names.COORDINATOR_ROLE_NAME
    for code in ("hts", B_CODE):
        key = f"delivery/{code}/{CHANGE}"
        assert world.may(c, "s3:GetObject", key)
        assert not world.may(c, "s3:PutObject", key)  # unconditional: refused
        assert world.may(c, "s3:PutObject", key, IF_MATCH)
        assert world.may(c, "s3:PutObject", key, IF_NONE_MATCH)
        assert not world.may(c, "s3:DeleteObject", key)


def test_processors_and_the_sweeper_cannot_touch_delivery(world: World) -> None:
    s = names.SWEEPER_ROLE_NAME
    for code in ("hts", B_CODE):
        key = f"delivery/{code}/{CHANGE}"
        for action, headers in (
            ("s3:GetObject", frozenset()),
            ("s3:PutObject", IF_MATCH),
            ("s3:PutObject", IF_NONE_MATCH),
            ("s3:DeleteObject", frozenset()),
        ):
            assert not world.may(A, action, key, headers), (action, key)
            assert world.bucket_denies(A, action, key, headers), (action, key)  # even its own customer's
            assert not world.may(s, action, key, headers), (action, key)


def test_delivery_writes_are_compare_and_swap_only_for_everyone(world: World) -> None:
    key = f"delivery/hts/{CHANGE}"
    assert world.bucket_denies(names.COORDINATOR_ROLE_NAME, "s3:PutObject", key)
    assert world.bucket_denies_anyone("s3:PutObject", key)
    for headers in (IF_MATCH, IF_NONE_MATCH):
        assert not world.bucket_denies_anyone("s3:PutObject", key, headers)


# --- ECS scale-in protection (issue 17, item 6) ---------------------------------------------------------


def test_processor_may_protect_only_its_own_services_tasks(world: World) -> None:
    """A task ARN does not name its service: the grant rests on the tag the service propagates to its tasks."""
    for action in PROTECTION_ACTIONS:
        assert world.may_protect(A, action, task_of="hts"), action
        assert not world.may_protect(A, action, task_of=B_CODE), action
        assert not world.may_protect(names.processor_role_name(B_CODE), action, task_of="hts"), action
