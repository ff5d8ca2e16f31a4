"""The policy engine's client (devtools.iam_engine): requests decided by the pinned iam-simulate through one
node process, as AWS documents IAM evaluation; and the assembly resolver that feeds it concrete documents.

One engine for the module (starting node costs ~0.13 s); the policies here are small, hand-written ones in
the shapes the stacks synthesize (tests/infra/test_isolation.py decides the synthesized ones).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devtools.iam_engine import DENIES, PolicyEngine, PolicyEngineError, PolicyEngineUnavailable, Principal
from devtools.iam_engine.engine import ROOT, pinned_version
from devtools.iam_engine.templates import Assembly, PolicyResolutionError
from tests.test_layout import imports_of, modules_under

PLATFORM, STORAGE, CUSTOMER = "222222222222", "111111111111", "333333333333"
BUCKET = "arn:aws:s3:::ttp-metadata"
PROCESSOR = f"arn:aws:iam::{PLATFORM}:role/ttp-processor-hts"
SENDER = f"arn:aws:iam::{CUSTOMER}:role/ttp-ses-sender-hts"
TAG = "${aws:PrincipalTag/customer_code}"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str, resource: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as running:
        yield running


def processor(*statements: dict[str, Any], tags: dict[str, str] | None = None) -> Principal:
    return Principal(PROCESSOR, {"task-role": policy(*statements)}, {"customer_code": "hts"} if tags is None else tags)


def test_the_pinned_version_runs(engine: PolicyEngine) -> None:
    assert engine.version == pinned_version() == "0.1.173"


def test_an_identity_policy_allows_in_its_own_account(engine: PolicyEngine) -> None:
    decision = engine.decide(
        processor(allow("sqs:ReceiveMessage", f"arn:aws:sqs:us-east-1:{PLATFORM}:customer-hts-changes")),
        "sqs:ReceiveMessage",
        f"arn:aws:sqs:us-east-1:{PLATFORM}:customer-hts-changes",
        resource_account=PLATFORM,
    )
    assert decision.allowed and decision.same_account
    assert decision.explain() == "allowed by identity policies 'task-role' statement 1"
    other = engine.decide(
        processor(allow("sqs:ReceiveMessage", f"arn:aws:sqs:us-east-1:{PLATFORM}:customer-hts-changes")),
        "sqs:ReceiveMessage",
        f"arn:aws:sqs:us-east-1:{PLATFORM}:customer-other-changes",
        resource_account=PLATFORM,
    )
    assert other.result == "ImplicitlyDenied"
    assert other.explain() == "implicitly denied: no statement of the identity policies allows it"


def test_an_explicit_deny_wins_over_every_allow(engine: PolicyEngine) -> None:
    """The identity policy and the bucket policy both allow; one deny statement of the bucket policy (a
    condition on a header the request lacks) refuses it all the same, and ``explain`` names that statement."""
    bucket_policy = policy(
        allow("s3:PutObject", f"{BUCKET}/*", Principal={"AWS": PROCESSOR}),
        {
            "Sid": "DenyUnconditionalWrites",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": f"{BUCKET}/archive/*",
            "Condition": {"Null": {"s3:if-match": "true", "s3:if-none-match": "true"}},
        },
    )
    me = processor(allow("s3:*", "*"))
    key = f"{BUCKET}/archive/CHG-1.json"
    denied = engine.decide(me, "s3:PutObject", key, resource_account=STORAGE, resource_policy=bucket_policy)
    assert denied.explicitly_denied and denied.identity == "Allowed" and denied.resource in DENIES
    assert (
        denied.explain() == "explicitly denied: explicit deny in resource policy statement 2 (DenyUnconditionalWrites)"
    )
    conditional = engine.decide(
        me, "s3:PutObject", key, resource_account=STORAGE, resource_policy=bucket_policy, context={"s3:if-match": "e1"}
    )
    assert conditional.allowed


def test_across_accounts_both_the_identity_and_the_resource_policy_must_allow(engine: PolicyEngine) -> None:
    key = f"{BUCKET}/processing/hts/CHG-1.json"
    grant = policy(allow("s3:GetObject", f"{BUCKET}/processing/*", Principal={"AWS": f"arn:aws:iam::{PLATFORM}:root"}))
    mine = allow("s3:GetObject", f"{BUCKET}/processing/hts/*")

    def decide(identity: list[dict[str, Any]], resource_policy: dict[str, Any]) -> str:
        me = Principal(PROCESSOR, {"task-role": policy(*identity)} if identity else {})
        return engine.decide(me, "s3:GetObject", key, resource_account=STORAGE, resource_policy=resource_policy).result

    assert decide([mine], grant) == "Allowed"
    assert decide([mine], policy()) == "ImplicitlyDenied"  # the bucket in the other account grants nothing
    assert decide([], grant) == "ImplicitlyDenied"  # the bucket trusts the account: the role must be allowed too
    # In one account either side suffices: the same identity policy, no bucket policy at all.
    same = engine.decide(
        Principal(f"arn:aws:iam::{STORAGE}:role/r", {"p": policy(mine)}), "s3:GetObject", key, resource_account=STORAGE
    )
    assert same.allowed


def test_a_trust_policy_requires_the_external_id_and_the_named_processor(engine: PolicyEngine) -> None:
    """The sender role's trust policy as the stacks write it: the platform account as principal, narrowed to
    one processor's ARN, and the customer's ExternalId."""
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{PLATFORM}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": "ttp-hts-7f3c9a"},
                "ArnEquals": {"aws:PrincipalArn": PROCESSOR},
            },
        }
    )
    me = processor(allow("sts:AssumeRole", SENDER))

    def assume(principal: Principal, external_id: str | None) -> bool:
        context = {"sts:ExternalId": external_id} if external_id else {}
        return engine.decide(
            principal, "sts:AssumeRole", SENDER, resource_account=CUSTOMER, resource_policy=trust, context=context
        ).allowed

    assert assume(me, "ttp-hts-7f3c9a")
    assert not assume(me, None)
    assert not assume(me, "ttp-other")
    other = Principal(f"arn:aws:iam::{PLATFORM}:role/ttp-processor-other", {"p": policy(allow("sts:AssumeRole", "*"))})
    assert not assume(other, "ttp-hts-7f3c9a")  # the right ExternalId from the wrong role
    assert not assume(Principal(PROCESSOR), "ttp-hts-7f3c9a")  # trusted, but its own policy does not allow it


def test_s3_delivers_to_a_queue_in_another_account_only_from_the_named_bucket(engine: PolicyEngine) -> None:
    """The customer queue's policy and its key's policy as synthesized: the S3 service principal, narrowed
    by ``aws:SourceArn`` / ``aws:SourceAccount`` (which the caller passes: the engine derives nothing)."""
    queue = f"arn:aws:sqs:us-east-1:{PLATFORM}:customer-hts-changes"
    source = {"aws:SourceAccount": STORAGE, "aws:SourceArn": BUCKET}
    queue_policy = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sqs:*",
            "Resource": queue,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        allow(
            "sqs:SendMessage",
            queue,
            Principal={"Service": "s3.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": STORAGE}, "ArnLike": {"aws:SourceArn": BUCKET}},
        ),
    )
    key_policy = policy(
        allow("kms:*", "*", Principal={"AWS": f"arn:aws:iam::{PLATFORM}:root"}),
        allow(["kms:Decrypt", "kms:GenerateDataKey"], "*", Principal={"Service": "s3.amazonaws.com"}),
    )
    s3 = Principal("s3.amazonaws.com")
    assert s3.is_service

    def send(context: dict[str, str]) -> bool:
        return engine.decide(
            s3, "sqs:SendMessage", queue, resource_account=PLATFORM, resource_policy=queue_policy, context=context
        ).allowed

    assert send(source)
    assert not send({**source, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket"})
    assert not send({**source, "aws:SourceAccount": "999999999999"})
    assert not send({**source, "aws:SecureTransport": "false"})
    key = f"arn:aws:kms:us-east-1:{PLATFORM}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert engine.decide(s3, "kms:GenerateDataKey", key, resource_account=PLATFORM, resource_policy=key_policy).allowed
    assert not engine.decide(
        Principal("sns.amazonaws.com"),
        "kms:GenerateDataKey",
        key,
        resource_account=PLATFORM,
        resource_policy=key_policy,
    ).allowed


def test_a_policy_variable_in_resource_is_the_principals_own_tag(engine: PolicyEngine) -> None:
    own = allow("s3:GetObject", f"{BUCKET}/customers/{TAG}/*")

    def get(principal: Principal, key: str) -> bool:
        return engine.decide(principal, "s3:GetObject", f"{BUCKET}/{key}", resource_account=PLATFORM).allowed

    assert get(processor(own), "customers/hts/CHG-1.json")
    assert not get(processor(own), "customers/htsnonprod/CHG-1.json")
    assert not get(processor(own, tags={"customer_code": "htsnonprod"}), "customers/hts/CHG-1.json")
    # Untagged: the variable has no value, so the statement matches nothing (it does not match the literal).
    assert not get(processor(own, tags={}), "customers/hts/CHG-1.json")
    assert not get(processor(own, tags={}), f"customers/{TAG}/CHG-1.json")


def test_a_role_session_is_its_role_for_principal_arn_conditions(engine: PolicyEngine) -> None:
    session = Principal(f"arn:aws:sts::{PLATFORM}:assumed-role/ttp-processor-hts/task-1")
    assert session.principal_arn == PROCESSOR and session.account == PLATFORM
    bucket_policy = policy(
        allow(
            "s3:GetObject",
            f"{BUCKET}/*",
            Principal={"AWS": f"arn:aws:iam::{PLATFORM}:root"},
            Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{PLATFORM}:role/ttp-processor-*"}},
        )
    )
    reader = Principal(session.arn, {"p": policy(allow("s3:GetObject", f"{BUCKET}/*"))})
    decision = engine.decide(
        reader, "s3:GetObject", f"{BUCKET}/archive/x", resource_account=STORAGE, resource_policy=bucket_policy
    )
    assert decision.allowed


def test_decide_is_thread_safe(engine: PolicyEngine) -> None:
    """Many threads, one pipe: each caller gets the answer to its own request."""
    me = processor(allow("s3:GetObject", f"{BUCKET}/customers/{TAG}/*"))
    codes = ["hts", "other"] * 100

    def get(code: str) -> tuple[str, bool]:
        decision = engine.decide(me, "s3:GetObject", f"{BUCKET}/customers/{code}/x", resource_account=PLATFORM)
        return code, decision.allowed

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, codes))
    assert answers == [(code, code == "hts") for code in codes]


def test_a_malformed_request_is_refused_with_the_reason(engine: PolicyEngine) -> None:
    with pytest.raises(PolicyEngineError, match=r"s3:GetObjekt .*invalid\.action"):
        engine.decide(processor(allow("s3:*", "*")), "s3:GetObjekt", f"{BUCKET}/x", resource_account=PLATFORM)
    broken = Principal(PROCESSOR, {"typo": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resourc": "*"}]}})
    with pytest.raises(PolicyEngineError, match=r"Invalid key Resourc"):
        engine.decide(broken, "s3:GetObject", f"{BUCKET}/x", resource_account=PLATFORM)
    # The engine survives a bad request.
    assert engine.decide(
        processor(allow("s3:*", "*")), "s3:GetObject", f"{BUCKET}/x", resource_account=PLATFORM
    ).allowed


def test_an_engine_is_closed_by_its_context_and_refuses_requests_afterwards() -> None:
    with PolicyEngine() as engine:
        assert engine.decide(processor(allow("s3:*", "*")), "s3:GetObject", f"{BUCKET}/x", resource_account=PLATFORM)
    with pytest.raises(PolicyEngineError, match="not running"):
        engine.decide(processor(allow("s3:*", "*")), "s3:GetObject", f"{BUCKET}/x", resource_account=PLATFORM)


def test_an_engine_that_died_fails_every_request_at_once_with_its_exit() -> None:
    engine = PolicyEngine()
    engine.start()
    try:
        assert engine._process is not None
        engine._process.kill()
        engine._process.wait()
        with pytest.raises(PolicyEngineError, match=r"the policy engine exited \(-9\)"):
            engine.decide(processor(allow("s3:*", "*")), "s3:GetObject", f"{BUCKET}/x", resource_account=PLATFORM)
    finally:
        engine.close()


def test_the_engine_counts_what_it_allowed_and_denied() -> None:
    with PolicyEngine() as engine:
        for key in ("customers/hts/x", "customers/other/x", "customers/other/y"):
            engine.decide(
                processor(allow("s3:GetObject", f"{BUCKET}/customers/{TAG}/*")),
                "s3:GetObject",
                f"{BUCKET}/{key}",
                resource_account=PLATFORM,
            )
        assert (engine.allowed, engine.denied) == (1, 2)


def test_without_the_package_the_error_says_run_make_setup(tmp_path: Path) -> None:
    shutil.copy2(ROOT / "package.json", tmp_path / "package.json")
    with pytest.raises(PolicyEngineUnavailable, match=r"@cloud-copilot/iam-simulate is not installed .*run make setup"):
        PolicyEngine(root=tmp_path).start()


def test_a_different_installed_version_says_run_make_setup(tmp_path: Path) -> None:
    shutil.copy2(ROOT / "package.json", tmp_path / "package.json")
    installed = tmp_path / "node_modules" / "@cloud-copilot" / "iam-simulate"
    installed.mkdir(parents=True)
    (installed / "package.json").write_text(json.dumps({"version": "0.1.1"}))
    with pytest.raises(
        PolicyEngineUnavailable, match=r"0\.1\.1 is installed but package\.json pins 0\.1\.173: run make setup"
    ):
        PolicyEngine(root=tmp_path).start()


def test_without_node_the_error_says_install_it_and_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(PolicyEngineUnavailable, match=r"Node\.js 20\+ .*not found.*make setup"):
        PolicyEngine(node=str(tmp_path / "node")).start()


# --- the assembly resolver -----------------------------------------------------------------------------


def write_assembly(outdir: Path, stacks: dict[str, tuple[str, dict[str, Any]]]) -> Path:
    """A cloud assembly as ``cdk synth`` writes it: manifest.json and one template per stack."""
    outdir.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name, (account, template) in stacks.items():
        (outdir / f"{name}.template.json").write_text(json.dumps(template))
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": f"aws://{account}/us-east-1",
            "properties": {"templateFile": f"{name}.template.json", "stackName": name},
        }
    (outdir / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return outdir


STORAGE_TEMPLATE = {
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "ttp-metadata"}},
        "BucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "Bucket"},
                "PolicyDocument": policy(
                    allow(
                        "s3:GetObject",
                        {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, f"/customers/{TAG}/*"]]},
                        Principal={"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::222222222222:root"}},
                    )
                ),
            },
        },
    },
    "Outputs": {"BucketArn": {"Value": {"Fn::GetAtt": ["Bucket", "Arn"]}}},
}
PLATFORM_TEMPLATE = {
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "ttp-processor-hts",
                "AssumeRolePolicyDocument": policy(
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ),
                "Tags": [{"Key": "customer_code", "Value": "hts"}],
                "Policies": [
                    {
                        "PolicyName": "Inline",
                        "PolicyDocument": policy(
                            allow("sqs:ReceiveMessage", {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:q"})
                        ),
                    }
                ],
                "ManagedPolicyArns": [{"Ref": "Managed"}, "arn:aws:iam::aws:policy/ReadOnlyAccess"],
            },
        },
        "Managed": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"PolicyDocument": policy(allow("kms:Decrypt", {"Fn::GetAtt": ["Key", "Arn"]}))},
        },
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy()}},
        "RoleDefaultPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "RoleDefaultPolicy",
                "Roles": [{"Ref": "Role"}],
                "PolicyDocument": policy(
                    allow(
                        "s3:GetObject",
                        {
                            "Fn::Join": [
                                "",
                                [
                                    {"Fn::GetStackOutput": {"StackName": "Storage", "OutputName": "BucketArn"}},
                                    "/customers/hts/*",
                                ],
                            ]
                        },
                    ),
                    allow("s3:GetObject", {"Fn::Sub": "arn:aws:s3:::ttp-metadata/${!aws:username}/*"}),
                ),
            },
        },
    }
}


def test_the_assembly_resolves_roles_and_resource_policies_to_concrete_documents(tmp_path: Path) -> None:
    assembly = Assembly.from_cloud_assembly(
        write_assembly(tmp_path, {"Storage": (STORAGE, STORAGE_TEMPLATE), "Platform": (PLATFORM, PLATFORM_TEMPLATE)}),
        physical_ids={("Platform", "Key"): "1234abcd-12ab-34cd-56ef-1234567890ab"},
    )
    role = assembly.role_named("ttp-processor-hts")
    assert (role.arn, role.account, dict(role.tags)) == (PROCESSOR, PLATFORM, {"customer_code": "hts"})
    assert role.identity_policies == {
        "Inline": policy(allow("sqs:ReceiveMessage", f"arn:aws:sqs:us-east-1:{PLATFORM}:q")),
        "Platform-Managed": policy(
            allow("kms:Decrypt", f"arn:aws:kms:us-east-1:{PLATFORM}:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        ),
        "RoleDefaultPolicy": policy(
            allow("s3:GetObject", f"{BUCKET}/customers/hts/*"),
            allow("s3:GetObject", f"{BUCKET}/${{aws:username}}/*"),  # ${!x} is Fn::Sub's escape of ${x}
        ),
    }
    assert role.unknown_managed_policies == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    bucket = assembly.bucket_policy("ttp-metadata")
    assert (bucket.arn, bucket.account) == (BUCKET, STORAGE)
    assert bucket.document["Statement"][0]["Resource"] == f"{BUCKET}/customers/{TAG}/*"
    assert bucket.document["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{PLATFORM}:root"}


def test_an_intrinsic_it_cannot_resolve_names_the_stack_resource_and_expression(tmp_path: Path) -> None:
    template = json.loads(json.dumps(PLATFORM_TEMPLATE))
    template["Resources"]["RoleDefaultPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] = {
        "Fn::ImportValue": "SomeExport"
    }
    assembly = Assembly.from_cloud_assembly(write_assembly(tmp_path, {"Platform": (PLATFORM, template)}))
    with pytest.raises(PolicyResolutionError, match=r"Platform/RoleDefaultPolicy: cannot resolve Fn::ImportValue"):
        assembly.role_named("ttp-processor-hts")


def test_the_resolved_assembly_is_what_the_engine_decides_on(tmp_path: Path, engine: PolicyEngine) -> None:
    assembly = Assembly.from_cloud_assembly(
        write_assembly(tmp_path, {"Storage": (STORAGE, STORAGE_TEMPLATE), "Platform": (PLATFORM, PLATFORM_TEMPLATE)})
    )
    role, bucket = assembly.role_named("ttp-processor-hts"), assembly.bucket_policy("ttp-metadata")

    def get(key: str) -> bool:
        return engine.decide(
            role.principal(),
            "s3:GetObject",
            f"{bucket.arn}/{key}",
            resource_account=bucket.account,
            resource_policy=bucket.document,
        ).allowed

    assert get("customers/hts/CHG-1.json")
    assert not get("customers/htsnonprod/CHG-1.json")


@pytest.mark.parametrize(
    ("bus", "expected"),
    [
        (None, "rule/ttp-forward"),
        ("default", "rule/ttp-forward"),
        ("arn:aws:events:us-east-1:222222222222:event-bus/default", "rule/ttp-forward"),
        ("ttp-delivery-events", "rule/ttp-delivery-events/ttp-forward"),
        ({"Ref": "Bus"}, "rule/ttp-delivery-events/ttp-forward"),
    ],
)
def test_a_rules_arn_names_its_bus_only_when_it_is_not_the_default_bus(tmp_path: Path, bus: Any, expected: str) -> None:
    """AWS's rule ARN is ``rule/NAME`` on the default bus and ``rule/BUS/NAME`` on any other (Service
    Authorization Reference, EventBridge's resource types); ``EventBusName`` may be a name or an ARN."""
    rule: dict[str, Any] = {"Name": "ttp-forward", "EventPattern": {"source": ["aws.ses"]}}
    if bus is not None:
        rule["EventBusName"] = bus
    template = {
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "ttp-delivery-events"}},
            "Rule": {"Type": "AWS::Events::Rule", "Properties": rule},
        }
    }
    assembly = Assembly.from_cloud_assembly(write_assembly(tmp_path, {"Platform": (PLATFORM, template)}))
    assert assembly.attribute("Platform", "Rule", "Arn") == f"arn:aws:events:us-east-1:{PLATFORM}:{expected}"


# --- a development tool only ----------------------------------------------------------------------------


def test_the_engine_stays_out_of_the_package_and_the_image() -> None:
    """iam-simulate is AGPL-3.0: it may run the tests and the local emulator, never ship. It is a dev
    dependency of package.json (``npm ci`` in ``make setup``), nothing the wheel or the image contains imports
    devtools (the wheel holds only the four packages: tests/test_packaging.py), and the image's build
    context (runtime/) holds no JavaScript: the site's pages under runtime/web/static are excluded from it."""
    manifest = json.loads((ROOT / "package.json").read_text())
    assert manifest["devDependencies"]["@cloud-copilot/iam-simulate"] == "0.1.173"  # exact, like the CDK CLI
    assert "@cloud-copilot/iam-simulate" not in manifest.get("dependencies", {})
    packaged = ("runtime", "cdk_constructs", "cdk_support", "stacks")
    importing = [
        str(path.relative_to(ROOT))
        for path in modules_under(*packaged)
        if any(name.split(".")[0] == "devtools" for name in imports_of(path))
    ]
    assert importing == []
    site_pages = ROOT / "runtime" / "web" / "static"  # the submission site's own pages, deployed to its bucket
    scripts = [path for path in (ROOT / "runtime").rglob("*") if path.suffix in {".js", ".mjs", ".cjs"}]
    assert [path for path in scripts if not path.is_relative_to(site_pages)] == []
    assert "web/static/" in (ROOT / "runtime" / ".dockerignore").read_text().splitlines()  # not in the image
    assert not [path for path in scripts if "iam-simulate" in path.read_text()]


def test_the_bootstrap_gate_reads_cfn_lints_resource_schemas_without_importing_cfn_lint() -> None:
    """The gate reads the handlers' permissions from cfn-lint's schema files; importing cfn-lint only to find
    them cost every `make demo` and `make emulator` ~0.6 CPU s (its rules and decoders load on import)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from devtools.iam_engine.deploy_actions import handler_permissions\n"
        "print(handler_permissions('AWS::SQS::Queue', 'create'))\n"
        "print('cfnlint' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    permissions, imported = result.stdout.splitlines()
    assert "sqs:CreateQueue" in permissions
    assert imported == "False"
