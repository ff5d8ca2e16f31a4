"""IAM enforced on the emulator (devtools/enforcement.py): the deployed sample, decided by the policy engine.

The sample assembly is deployed on an enforcing emulator by the admin key the deployer uses; then the tests
act as customer A's (``hts``) processor: its task role is assumed on the emulator as ECS would, and every
request with those credentials is decided by the engine from the policies as deployed. The same requests
on an emulator without enforcement succeed (moto checks no policy): ``test_without_enforcement_...``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devtools import demo
from devtools import sandbox as sb
from devtools.emulator import LocalAws
from devtools.enforcement import Enforcement
from devtools.iam_engine import PolicyEngine
from devtools.local_deploy import DeployReport, deploy_assembly
from devtools.local_deploy.resolve import Aws
from devtools.sandbox import DEFAULT_TOPIC
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import names
from tests.support import deployed as dp
from tests.support.synth import GOV, MGMT, REGION, Synth, shared_sample

ROOT = Path(__file__).resolve().parents[2]
sample_assembly = dp.sample_assembly  # the demo's assembly, synthesized once per session

A, B = "hts", "htsnonprod"
CHANGE = "CHG-1.json"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return shared_sample(tmp_path_factory)  # the infrastructure tests' synthesis


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as running:
        yield running


def admin(server: LocalAws, service: str, account: str) -> Any:
    """A client with the registered admin key (what the deployer and the harness use), in ``account``."""
    return Aws(server.endpoint).client(service, account, REGION)


def as_role(server: LocalAws, role_arn: str, service: str, external_id: str | None = None) -> Any:
    """A client with the credentials of a session of ``role_arn``, assumed on the emulator by the admin (as
    ECS assumes a task role for its task)."""
    account = role_arn.split(":")[4]
    kwargs = {"ExternalId": external_id} if external_id else {}
    credentials = admin(server, "sts", account).assume_role(RoleArn=role_arn, RoleSessionName="task", **kwargs)[
        "Credentials"
    ]
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def processor_arn(code: str) -> str:
    return f"arn:aws:iam::{GOV}:role/{names.processor_role_name(code)}"


def seed(server: LocalAws, bucket: str) -> None:
    s3 = admin(server, "s3", MGMT)
    for key in (f"processing/{A}/{CHANGE}", f"processing/{B}/{CHANGE}", f"customers/{B}/{CHANGE}"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")


def denied(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDenied", raised.value.response
    return str(error["Message"])


def prepare_sender(server: LocalAws, sample: Synth, code: str) -> None:
    """What the sandbox, not the stacks, owns in the customer's account: the SES identity and contact list."""
    customer = next(c for c in sample.config.customers if c.code == code)
    ses = admin(server, "sesv2", customer.account)
    ses.create_email_identity(EmailIdentity=customer.sender_address.split("@")[1])
    topic = {"TopicName": DEFAULT_TOPIC, "DisplayName": "Changes", "DefaultSubscriptionStatus": "OPT_IN"}
    ses.create_contact_list(ContactListName=names.DEFAULT_CONTACT_LIST_NAME, Topics=[topic])
    ses.create_contact(ContactListName=names.DEFAULT_CONTACT_LIST_NAME, EmailAddress=f"ops@{code}.example.com")


def process_as_deployed(server: LocalAws, report: DeployReport, sample: Synth, code: str, change_id: str) -> Any:
    """Submit a change (as the operator), then ``python -m runtime process`` with exactly the environment of
    the customer's processor task definition and the credentials of its task role."""
    s3 = admin(server, "s3", MGMT)
    bucket = sample.config.metadata_bucket_name
    change = {"change_id": change_id, "title": "Enforced", "customers": [code]}
    submit_change(ArchiveStore(s3, bucket), TriggerStore(s3, bucket), change, user_id="test")
    task = next(
        t
        for t in report.world.account(GOV).task_definitions.values()
        if t["task_role_arn"].endswith(f":role/{names.processor_role_name(code)}")
    )
    credentials = admin(server, "sts", GOV).assume_role(RoleArn=task["task_role_arn"], RoleSessionName="task")[
        "Credentials"
    ]
    env = {
        **task["containers"][0]["environment"],
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "runtime", "process", "--customer", code, "--change-id", change_id, "--json"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def enforcing(sample: Synth, engine: PolicyEngine) -> Iterator[tuple[LocalAws, DeployReport]]:
    server = LocalAws(enforce=Enforcement(engine)).start()
    try:
        report = deploy_assembly(sample.outdir, server.endpoint)
        server.enforcement.world = report.world  # type: ignore[union-attr]
        seed(server, sample.config.metadata_bucket_name)
        prepare_sender(server, sample, A)
        yield server, report
    finally:
        server.stop()


def test_a_processor_reads_and_writes_its_own_processing_object(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    server, _ = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    bucket = sample.config.metadata_bucket_name
    s3 = as_role(server, processor_arn(A), "s3")
    before = enforcement.counts.allowed
    etag = s3.get_object(Bucket=bucket, Key=f"processing/{A}/{CHANGE}")["ETag"]
    s3.put_object(Bucket=bucket, Key=f"processing/{A}/{CHANGE}", Body=b'{"n": 1}', IfMatch=etag)
    assert enforcement.counts.allowed == before + 2
    assert not [d for d in enforcement.denials if A in d.resource]


def test_a_processor_is_denied_b_s_triggers_processing_objects_and_sender_role(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    server, _ = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    bucket = sample.config.metadata_bucket_name
    s3 = as_role(server, processor_arn(A), "s3")
    before = enforcement.counts.denied
    for key in (f"customers/{B}/{CHANGE}", f"processing/{B}/{CHANGE}"):
        message = denied(s3.get_object, Bucket=bucket, Key=key)
        assert f"s3:GetObject on resource: arn:aws:s3:::{bucket}/{key}" in message
        assert "denied" in message  # the engine's reason (Decision.explain)
    denied(s3.delete_object, Bucket=bucket, Key=f"customers/{B}/{CHANGE}", IfMatch='"x"')
    denied(s3.put_object, Bucket=bucket, Key=f"processing/{B}/{CHANGE}", Body=b"{}", IfNoneMatch="*")
    external_ids = {customer.code: customer.external_id for customer in sample.config.customers}
    b_sender = next(c for c in sample.config.customers if c.code == B)
    sts = as_role(server, processor_arn(A), "sts")
    sender_arn = f"arn:aws:iam::{b_sender.account}:role/{names.sender_role_name(B)}"
    message = denied(sts.assume_role, RoleArn=sender_arn, RoleSessionName="probe", ExternalId=external_ids[B])
    assert f"sts:AssumeRole on resource: {sender_arn}" in message
    assert enforcement.counts.denied == before + 5
    # the objects are untouched
    assert admin(server, "s3", MGMT).get_object(Bucket=bucket, Key=f"customers/{B}/{CHANGE}")["Body"].read() == b"{}"


def test_a_processor_assumes_its_own_sender_role_with_its_external_id(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    server, _ = enforcing
    a = next(c for c in sample.config.customers if c.code == A)
    sts = as_role(server, processor_arn(A), "sts")
    sender_arn = f"arn:aws:iam::{a.account}:role/{names.sender_role_name(A)}"
    assert sts.assume_role(RoleArn=sender_arn, RoleSessionName="sender", ExternalId=a.external_id)["Credentials"]
    denied(sts.assume_role, RoleArn=sender_arn, RoleSessionName="sender")  # the trust policy wants the ExternalId


def test_an_unknown_key_and_an_unmapped_operation_are_denied(enforcing: tuple[LocalAws, DeployReport]) -> None:
    server, _ = enforcing
    stranger = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id="AKIASTRANGER",
        aws_secret_access_key="x",
    )
    assert "neither one the emulator's STS issued" in denied(stranger.list_buckets)
    message = denied(as_role(server, processor_arn(A), "iam").list_roles)
    assert "not mapped" in message and "iam" in message


def test_decisions_per_second(enforcing: tuple[LocalAws, DeployReport], sample: Synth) -> None:
    """Identical requests are decided once (the cache); distinct ones each cost one engine call."""
    server, _ = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    bucket = sample.config.metadata_bucket_name
    s3 = as_role(server, processor_arn(A), "s3")
    engine_before, cached_before = enforcement.counts.engine_seconds, enforcement.counts.cached
    started = time.perf_counter()
    for n in range(50):
        if n % 2:
            s3.head_object(Bucket=bucket, Key=f"processing/{A}/{CHANGE}")  # the same decision every time
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=f"processing/{A}/missing-{n}.json")
    elapsed = time.perf_counter() - started
    assert enforcement.counts.cached - cached_before >= 24
    engine = enforcement.counts.engine_seconds - engine_before
    print(f"\n75 requests in {elapsed:.2f}s; engine {engine:.3f}s for 51 distinct decisions")


def test_a_processor_receives_from_its_own_queue_only(enforcing: tuple[LocalAws, DeployReport]) -> None:
    """SQS decided with the queue policy, and the queue's KMS key as SQS uses it on the caller's behalf."""
    server, _ = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    sqs = as_role(server, processor_arn(A), "sqs")
    own = f"{server.endpoint}/{GOV}/{names.queue_name(A)}"
    before = enforcement.counts.allowed
    sqs.receive_message(QueueUrl=own, WaitTimeSeconds=0)
    assert enforcement.counts.allowed == before + 2  # sqs:ReceiveMessage and kms:Decrypt via SQS
    message = denied(sqs.receive_message, QueueUrl=f"{server.endpoint}/{GOV}/{names.queue_name(B)}")
    assert f"sqs:ReceiveMessage on resource: arn:aws:sqs:{REGION}:{GOV}:{names.queue_name(B)}" in message
    denied(sqs.send_message, QueueUrl=own, MessageBody="{}")  # a processor only consumes its queue


def test_a_sender_role_sends_only_as_its_own_address(enforcing: tuple[LocalAws, DeployReport], sample: Synth) -> None:
    server, _ = enforcing
    a = next(c for c in sample.config.customers if c.code == A)
    sender_arn = f"arn:aws:iam::{a.account}:role/{names.sender_role_name(A)}"
    ses = as_role(server, sender_arn, "sesv2")
    with pytest.raises(ClientError) as raised:
        ses.send_email(
            FromEmailAddress=f"someone@{A}.example.com",
            Destination={"ToAddresses": ["x@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "ses:SendEmail" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        ses.get_contact_list(ContactListName="someone-elses-list")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert ses.get_contact_list(ContactListName=names.DEFAULT_CONTACT_LIST_NAME)["ContactListName"]


def test_a_cached_decision_is_not_reused_once_the_role_s_policy_changes(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    server, _ = enforcing
    bucket = sample.config.metadata_bucket_name
    key = f"processing/{A}/{CHANGE}"
    s3 = as_role(server, processor_arn(A), "s3")
    s3.get_object(Bucket=bucket, Key=key)
    s3.get_object(Bucket=bucket, Key=key)  # the same decision, now from the cache
    iam = admin(server, "iam", GOV)
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}
    role_name = names.processor_role_name(A)
    iam.put_role_policy(RoleName=role_name, PolicyName="probe-deny", PolicyDocument=json.dumps(deny))
    try:
        assert "explicit deny" in denied(s3.get_object, Bucket=bucket, Key=key)
    finally:
        iam.delete_role_policy(RoleName=role_name, PolicyName="probe-deny")
    s3.get_object(Bucket=bucket, Key=key)


def test_the_deployed_processor_processes_a_change_with_no_request_denied(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    """The processor as its task definition runs it: every request it makes is decided, none denied."""
    server, report = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    denied_before, allowed_before = enforcement.counts.denied, enforcement.counts.allowed
    result = process_as_deployed(server, report, sample, A, "CHG-3")
    assert (result["outcome"], result["emails_sent"], result["trigger_delete"]) == ("processed", 1, "deleted"), result
    assert enforcement.counts.denied == denied_before
    assert enforcement.counts.allowed - allowed_before >= 8  # S3 reads and writes, STS, SES


def test_session_tags_on_assume_role_need_sts_tag_session_in_the_trust_policy(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    """The sender role trusts A's processor for sts:AssumeRole only: the same call passing session tags is
    denied on sts:TagSession (IAM User Guide, "Passing session tags in AWS STS")."""
    server, _ = enforcing
    a = next(c for c in sample.config.customers if c.code == A)
    sts = as_role(server, processor_arn(A), "sts")
    sender_arn = f"arn:aws:iam::{a.account}:role/{names.sender_role_name(A)}"
    message = denied(
        sts.assume_role,
        RoleArn=sender_arn,
        RoleSessionName="sender",
        ExternalId=a.external_id,
        Tags=[{"Key": "customer_code", "Value": B}],
    )
    assert f"sts:TagSession on resource: {sender_arn}" in message
    assert sts.assume_role(RoleArn=sender_arn, RoleSessionName="sender", ExternalId=a.external_id)["Credentials"]


def test_plain_http_is_decided_as_tls_unless_told_to_take_the_actual_scheme(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth
) -> None:
    """The emulator is plain HTTP. By default a request is decided as the SDK's call to AWS would be (over
    TLS 1.3); with ``assume_tls=False`` the actual scheme decides, and the bucket policy's non-TLS deny
    refuses the processor its own object."""
    server, _ = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    bucket = sample.config.metadata_bucket_name
    s3 = as_role(server, processor_arn(A), "s3")
    key = f"processing/{A}/{CHANGE}"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    enforcement.assume_tls = False
    try:
        message = denied(s3.get_object, Bucket=bucket, Key=key)
        assert "explicitly denied" in message
    finally:
        enforcement.assume_tls = True
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# --- the operator: the IAM user ttp-operator with the policy docs/runbook.md prescribes --------------


@pytest.fixture(scope="module")
def operator(enforcing: tuple[LocalAws, DeployReport], sample: Synth) -> dict[str, str]:
    """The operator's access key, created as ``devtools.sandbox.create_unowned`` creates it (its policy file
    rendered for the sample's governance account, region and bucket)."""
    server, _ = enforcing
    iam = admin(server, "iam", GOV)
    iam.create_user(UserName=sb.OPERATOR_USER)
    policy = sb.operator_policy(GOV, REGION, sample.config.metadata_bucket_name)
    iam.put_user_policy(UserName=sb.OPERATOR_USER, PolicyName=sb.OPERATOR_USER, PolicyDocument=policy)
    key = iam.create_access_key(UserName=sb.OPERATOR_USER)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_the_runbook_renders_the_operator_policy_the_emulator_gives_the_operator(tmp_path: Path) -> None:
    """docs/runbook.md's own ``sed`` line, run as written, yields the policy ``create_unowned`` attaches."""
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    block = runbook.split("**The operator's identity.**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = block.split("aws iam put-role-policy", 1)[0].replace("docs/policies/", f"{ROOT}/docs/policies/")
    subprocess.run(["bash", "-euc", commands], cwd=tmp_path, check=True)
    rendered = json.loads((tmp_path / "operator-policy.json").read_text())
    assert rendered == json.loads(sb.operator_policy(GOV, REGION, "ttp-metadata-111111111111-us-east-1"))
    assert "${" not in json.dumps(rendered)


def as_operator(server: LocalAws, keys: dict[str, str], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )


def test_an_operator_command_is_decided_by_the_engine_and_allowed(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth, operator: dict[str, str]
) -> None:
    """``python -m runtime submit``, ``verify``, ``health`` and ``logs`` with the operator's key: every request
    (SSM's customer registry, the archive and triggers in the management account's bucket across accounts,
    the queues and their keys, ECS, CloudWatch, the logs) is decided as the user ``ttp-operator``, none
    denied."""
    server, _ = enforcing
    enforcement = server.enforcement
    assert enforcement is not None
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "TTP_BUCKET_NAME": sample.config.metadata_bucket_name,
        "TTP_CUSTOMER_QUEUES": json.dumps({A: f"{server.endpoint}/{GOV}/{names.queue_name(A)}"}),
        **operator,
    }
    allowed_before, admin_before = enforcement.counts.allowed, enforcement.counts.admin
    document = json.dumps({"change_id": "CHG-OP", "title": "As the operator", "customers": [A]})
    commands = (
        ["submit", "-", "--json"],
        ["verify", "CHG-OP", "--json"],
        ["health", "--json"],
        ["logs", "--customer", A, "--since", "1h"],
    )
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "runtime", *command],
            input=document,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode in (0, 1), done.stderr  # verify: 1 = not complete yet (no processor runs here)
    user = f"arn:aws:iam::{GOV}:user/{sb.OPERATOR_USER}"
    assert not [d for d in enforcement.denials if d.caller == user]
    assert enforcement.counts.allowed - allowed_before >= 5  # ssm, the archive's and the trigger's PUTs, reads
    assert enforcement.counts.admin == admin_before  # nothing passed as an administrator's


def test_what_the_operator_policy_does_not_allow_is_denied(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth, operator: dict[str, str]
) -> None:
    """A processor's prefix and a purge of a customer's queue are not the operator's: AccessDenied."""
    server, _ = enforcing
    bucket = sample.config.metadata_bucket_name
    s3 = as_operator(server, operator, "s3")
    key = f"processing/{A}/CHG-OP.json"
    message = denied(s3.put_object, Bucket=bucket, Key=key, Body=b"{}", IfNoneMatch="*")
    assert message.startswith(
        f"User: arn:aws:iam::{GOV}:user/{sb.OPERATOR_USER} is not authorized to perform: s3:PutObject on "
        f"resource: arn:aws:s3:::{bucket}/{key}"
    )
    sqs = as_operator(server, operator, "sqs")
    message = denied(sqs.purge_queue, QueueUrl=f"{server.endpoint}/{GOV}/{names.queue_name(A)}")
    assert "sqs:PurgeQueue" in message and "identity policies" in message


def test_the_operators_access_to_the_bucket_in_another_account_is_decided_by_the_bucket_policy(
    enforcing: tuple[LocalAws, DeployReport], sample: Synth, operator: dict[str, str]
) -> None:
    """The bucket is the management account's, the operator the governance account's: its own policy
    allows the listing, and only the bucket policy's Operator* statements make it pass (without them,
    AccessDenied, as in AWS before those statements existed)."""
    server, report = enforcing
    bucket = sample.config.metadata_bucket_name
    s3 = as_operator(server, operator, "s3")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="archive/")["KeyCount"] >= 0
    policies = report.world.account(MGMT).policies
    arn = f"arn:aws:s3:::{bucket}"
    deployed = policies[arn]
    policies[arn] = {
        **deployed,
        "Statement": [st for st in deployed["Statement"] if not str(st.get("Sid", "")).startswith("Operator")],
    }
    try:
        message = denied(s3.list_objects_v2, Bucket=bucket, Prefix="archive/")
        assert "s3:ListBucket" in message and "resource policy" in message
    finally:
        policies[arn] = deployed


# --- tests with an emulator of their own: moto's backends are per process, so these come last --------


def test_without_enforcement_the_same_requests_succeed(sample: Synth) -> None:
    """The denials above come from enforcement: moto alone serves every one of them."""
    server = LocalAws().start()
    try:
        deploy_assembly(sample.outdir, server.endpoint)
        bucket = sample.config.metadata_bucket_name
        seed(server, bucket)
        s3 = as_role(server, processor_arn(A), "s3")
        assert s3.get_object(Bucket=bucket, Key=f"customers/{B}/{CHANGE}")["Body"].read() == b"{}"
        s3.put_object(Bucket=bucket, Key=f"processing/{B}/{CHANGE}", Body=b"{}")
        b_sender = next(c for c in sample.config.customers if c.code == B)
        sender_arn = f"arn:aws:iam::{b_sender.account}:role/{names.sender_role_name(B)}"
        assert as_role(server, processor_arn(A), "sts").assume_role(RoleArn=sender_arn, RoleSessionName="probe")
    finally:
        server.stop()


def test_a_task_role_without_put_object_stops_with_access_denied(
    sample: Synth, engine: PolicyEngine, tmp_path: Path
) -> None:
    """The assembly broken on purpose: A's task role loses s3:PutObject on its processing prefix."""
    import shutil

    from stacks.app_builder import customer_stack_name

    outdir = tmp_path / "assembly"
    shutil.copytree(sample.outdir, outdir, ignore=shutil.ignore_patterns("asset.*"))
    path = outdir / f"{customer_stack_name(A)}.template.json"
    template = json.loads(path.read_text())
    removed = 0
    for resource in template["Resources"].values():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::Role"):
            continue
        documents = [resource["Properties"].get("PolicyDocument")] + [
            p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])
        ]
        for document in filter(None, documents):
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement["Effect"] == "Allow" and "s3:PutObject" in actions:
                    statement["Action"] = [a for a in actions if a != "s3:PutObject"] or ["s3:GetObject"]
                    removed += 1
    assert removed, "the processor's policy grants s3:PutObject somewhere"
    path.write_text(json.dumps(template))
    server = LocalAws(enforce=Enforcement(engine)).start()
    try:
        report = deploy_assembly(outdir, server.endpoint)
        server.enforcement.world = report.world  # type: ignore[union-attr]
        bucket = sample.config.metadata_bucket_name
        seed(server, bucket)
        prepare_sender(server, sample, A)
        result = process_as_deployed(server, report, sample, A, "CHG-2")
        assert result["outcome"] != "processed" and "AccessDenied" in result["reason"], result
        s3 = as_role(server, processor_arn(A), "s3")
        etag = s3.get_object(Bucket=bucket, Key=f"processing/{A}/{CHANGE}")["ETag"]
        message = denied(s3.put_object, Bucket=bucket, Key=f"processing/{A}/{CHANGE}", Body=b"{}", IfMatch=etag)
        assert f"s3:PutObject on resource: arn:aws:s3:::{bucket}/processing/{A}/{CHANGE}" in message
    finally:
        server.stop()


def test_a_task_role_without_update_task_protection_gets_the_agents_failure_and_keeps_processing(
    sample: Synth, engine: PolicyEngine, tmp_path: Path
) -> None:
    """The assembly broken on purpose: A's task role loses ecs:UpdateTaskProtection. Its processor, started by
    the local runner with ECS_AGENT_URI, is answered the agent's failure (AccessDeniedException, decided by
    the engine), logs the warning and handles its message all the same."""
    import shutil

    from devtools import local_run
    from devtools.task_agent import TaskAgent
    from stacks.app_builder import customer_stack_name

    outdir = tmp_path / "assembly"
    shutil.copytree(sample.outdir, outdir, ignore=shutil.ignore_patterns("asset.*"))
    path = outdir / f"{customer_stack_name(A)}.template.json"
    template = json.loads(path.read_text())
    removed = 0
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "ecs:UpdateTaskProtection" in actions:
                statement["Action"] = [a for a in actions if a != "ecs:UpdateTaskProtection"]
                removed += 1
    assert removed == 1, "A's task role grants ecs:UpdateTaskProtection in one statement"
    path.write_text(json.dumps(template))
    enforcement = Enforcement(engine)
    server = LocalAws(enforce=enforcement).start()
    try:
        report = deploy_assembly(outdir, server.endpoint)
        enforcement.world = report.world
        prepare_sender(server, sample, A)
        [processor] = [p for p in local_run.plan(outdir, report.world) if p.customer == A]
        waits = {k: v for k, v in demo.DEMO_WAITS.items() if k in processor.environment}
        with TaskAgent(enforcement) as agent, demo.Processes() as processes:
            item = local_run.launch(processor, Aws(server.endpoint), waits=waits, agent=agent)
            worker = processes.start(A, item.env, tmp_path, "worker", item.argv)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (worker.handled() and agent.calls):
                time.sleep(0.2)  # its first message is S3's test event of the notification configuration
            assert worker.handled(), worker.log_path.read_text()[-2000:]
            [call, *_] = agent.calls
            assert (call.action, call.enabled, call.allowed) == ("ecs:UpdateTaskProtection", True, False), call
            assert call.answer["error"]["Code"] == "AccessDeniedException" and call.answer["requestID"]
            assert f"ecs:UpdateTaskProtection on resource: {call.task_arn}" in call.answer["error"]["Message"]
            [warning, *_] = worker.logged("task scale-in protection call failed; processing goes on")
            assert "AccessDeniedException" in warning["error"]
            assert not worker.logged("task scale-in protection set")
            assert worker.proc.poll() is None
        assert any(d.action == "ecs:UpdateTaskProtection" for d in enforcement.denials)
    finally:
        server.stop()


def test_only_the_coordinators_execution_role_reads_its_graph_secret(
    sample_assembly: Path, engine: PolicyEngine
) -> None:
    """ECS injects ``TTP_GRAPH_CLIENT_SECRET`` with the coordinator's *execution* role: that role may read
    the secret, a processor's task role may not (Secrets Manager was unmapped, hence denied to both, before)."""
    outdir = sample_assembly  # as the demo synthesizes it (python app.py, the demo's context): meetings on
    server = LocalAws(enforce=Enforcement(engine)).start()
    try:
        report = deploy_assembly(outdir, server.endpoint)
        server.enforcement.world = report.world  # type: ignore[union-attr]
        secret = admin(server, "secretsmanager", GOV).create_secret(Name=demo.GRAPH_SECRET_NAME, SecretString="s3cr3t")
        coordinator = next(
            t for t in report.world.account(GOV).task_definitions.values() if t["containers"][0].get("secrets")
        )
        reader = as_role(server, coordinator["execution_role_arn"], "secretsmanager")
        assert reader.get_secret_value(SecretId=secret["ARN"])["SecretString"] == "s3cr3t"
        outsider = as_role(server, processor_arn(A), "secretsmanager")
        with pytest.raises(ClientError) as raised:
            outsider.get_secret_value(SecretId=secret["ARN"])
        error = raised.value.response["Error"]
        assert error["Code"] == "AccessDeniedException", raised.value.response
        assert "secretsmanager:GetSecretValue" in error["Message"] and secret["ARN"] in error["Message"]
    finally:
        server.stop()
