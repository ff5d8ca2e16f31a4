"""One writer per object (docs/design.md §1, §7): who may do what in the bucket, proven on the synthesized policies.

Every request is decided by the policy engine (``devtools.iam_engine``: the pinned
``@cloud-copilot/iam-simulate``, one node process for the session) from the processor's, the coordinator's
and the sweeper's IAM policies (governance account) and the bucket policy (management account), as the
synthesized cloud assembly holds them, with the request context AWS would give: the principal's ARN,
account and tags, TLS, and the conditional-request headers a test names. The engine does what AWS
documents: an explicit deny wins; across accounts both the identity policy and the bucket policy must
allow; in one account either may. Checked in every shape: S3 routing multi-account (the sample),
EventBridge multi-account with meetings, EventBridge single-account and S3 single-account with meetings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.iam_engine import ALLOWS, DENIES, Decision, PolicyEngine, Principal
from devtools.iam_engine.templates import Assembly, Role
from runtime.contract import names
from stacks.app_builder import customer_stack_name
from tests.support.synth import Synth

VARIANTS = ["sample", "multi", "single", "single_byo"]
CHANGE = "CHG-1.json"
ENCRYPTION = "s3:x-amz-server-side-encryption"
IF_MATCH, IF_NONE_MATCH = frozenset({"s3:if-match"}), frozenset({"s3:if-none-match"})
PROTECTION_ACTIONS = ("ecs:UpdateTaskProtection", "ecs:GetTaskProtection")
BROADENED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
"""What someone might add to a processor's role: what still holds is what the bucket policy grants (across
accounts) and the explicit denies."""


def _request_context(headers: frozenset[str]) -> dict[str, str]:
    """The context of an S3 request over TLS 1.3 (the SDK's), plus its headers: a test passes a condition
    key (``s3:if-match``: the header is sent) or ``key=value``."""
    context = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    for header in headers:
        key, _, value = header.partition("=")
        context[key] = value or "*"
    return context


class World:
    """The policies of one synthesized app, decided by the engine."""

    def __init__(self, synth: Synth, engine: PolicyEngine) -> None:
        self.synth, self.engine = synth, engine
        self.assembly = Assembly.from_cloud_assembly(synth.outdir)
        self.bucket = self.assembly.bucket_policy(synth.config.metadata_bucket_name)
        assert any("PrincipalArn" in json.dumps(s) for s in self.bucket.document["Statement"])

    def role(self, role_name: str) -> Role:
        return self.assembly.role_named(role_name)

    def decide(
        self,
        principal: Principal,
        action: str,
        key: str,
        headers: frozenset[str] = frozenset(),
        *,
        bucket_policy: bool = True,
    ) -> Decision:
        decision = self.engine.decide(
            principal,
            action,
            f"{self.bucket.arn}/{key}",
            resource_account=self.bucket.account,
            resource_policy=self.bucket.document if bucket_policy else None,
            context=_request_context(headers),
        )
        # AWS defines the conditional-request keys for PutObject and DeleteObject only: on a GET the engine
        # drops them, as AWS does. Anywhere else a dropped key would silently decide nothing.
        assert action == "s3:GetObject" or not decision.ignored_context_keys, decision
        return decision

    def may(self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset()) -> bool:
        return self.decide(self.role(role_name).principal(), action, key, headers).allowed

    def may_protect(self, role_name: str, action: str, task_of: str) -> bool:
        """Whether ``role_name`` may set (or read) scale-in protection of a running task of ``task_of``'s
        processor service. ECS has no resource policies: the task role's own policy decides. The task
        carries what ECS gives it: the managed tags and, with ``PropagateTags: SERVICE``, its service's tags."""
        service = self.synth.only(customer_stack_name(task_of), "AWS::ECS::Service")["Properties"]
        tags = {"aws:ecs:serviceName": service["ServiceName"]} if service.get("EnableECSManagedTags") else {}
        if service.get("PropagateTags") == "SERVICE":
            tags |= {tag["Key"]: tag["Value"] for tag in service.get("Tags", [])}
        config = self.synth.config
        task = f"arn:aws:ecs:{config.accounts.region}:{config.accounts.governance}:task/{names.CLUSTER_NAME}/"
        decision = self.engine.decide(
            self.role(role_name).principal(),
            action,
            task + "0123456789abcdef0123456789abcdef",
            resource_account=config.accounts.governance,
            context={f"aws:ResourceTag/{key}": value for key, value in tags.items()},
        )
        assert not decision.ignored_context_keys, decision
        return decision.allowed

    def may_assume(self, role_name: str, sender_of: str, external_id: str | None) -> bool:
        """Whether ``role_name`` may assume ``sender_of``'s SES sender role (in that customer's account):
        its own policy must allow ``sts:AssumeRole`` and the sender role's trust policy must trust it."""
        sender = self.role(names.sender_role_name(sender_of))
        decision = self.engine.decide(
            self.role(role_name).principal(),
            "sts:AssumeRole",
            sender.arn,
            resource_account=sender.account,
            resource_policy=sender.trust_policy,
            context={"sts:ExternalId": external_id} if external_id else {},
        )
        assert not decision.ignored_context_keys, decision
        return decision.allowed

    def may_with_broadened_identity(self, role_name: str, action: str, key: str, headers: frozenset[str]) -> bool:
        """``may`` once someone has added ``Allow s3:* on *`` to the role's policy."""
        principal = self.role(role_name).principal(extra_policies={"broadened": BROADENED})
        return self.decide(principal, action, key, headers).allowed

    def identity_denies(self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset()) -> bool:
        """Denied explicitly by the role's own policy, whatever else that policy allows."""
        decision = self.decide(self.role(role_name).principal(), action, key, headers, bucket_policy=False)
        return decision.identity == "ExplicitlyDenied"

    def bucket_decision(
        self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset(), *, untagged: bool = False
    ) -> Decision:
        """The bucket policy's own verdict on the role's request (the role's IAM policies left out)."""
        role = self.role(role_name)
        principal = Principal(role.arn, {}, {} if untagged else role.tags)
        return self.decide(principal, action, key, headers)

    def bucket_denies(
        self, role_name: str, action: str, key: str, headers: frozenset[str] = frozenset(), *, untagged: bool = False
    ) -> bool:
        return self.bucket_decision(role_name, action, key, headers, untagged=untagged).resource in DENIES

    def bucket_denies_anyone(self, action: str, key: str, headers: frozenset[str] = frozenset()) -> bool:
        """Denied by the bucket policy to a principal it names nowhere (an admin, a submitter)."""
        someone = Principal(f"arn:aws:iam::{self.synth.config.accounts.management}:role/someone")
        return self.decide(someone, action, key, headers).resource in DENIES


@pytest.fixture(params=VARIANTS)
def world(request: pytest.FixtureRequest, policy_engine: PolicyEngine) -> World:
    return World(request.getfixturevalue(request.param), policy_engine)


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
        assert world.bucket_decision(A, action, key, headers).resource not in ALLOWS, (action, key)


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
    text = str(world.role(A).identity_policies)
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


# --- The customer's SES sender role (issue 18: A's processor tries B's sender role) ---------------------


def test_processor_assumes_only_its_own_sender_role(world: World) -> None:
    """Both sides decide: the processor's policy names only its own sender role, and each sender role's trust
    policy names only its own processor's ARN and requires the ExternalId agreed with the customer."""
    external_ids = {customer.code: customer.external_id for customer in world.synth.config.customers}
    assert world.may_assume(A, "hts", external_ids["hts"])
    assert not world.may_assume(A, "hts", None)
    assert not world.may_assume(A, "hts", external_ids[B_CODE])
    assert not world.may_assume(A, B_CODE, external_ids[B_CODE])
    assert not world.may_assume(names.processor_role_name(B_CODE), "hts", external_ids["hts"])
    assert not world.may_assume(names.COORDINATOR_ROLE_NAME, "hts", external_ids["hts"])
