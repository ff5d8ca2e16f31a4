"""Other shapes of the app: EventBridge routing, meetings, single-account mode, bring-your-own VPC."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_constructs.event_queue import COORDINATOR_EVENT_RULE_NAME
from runtime.contract import names
from runtime.contract.settings import CoordinatorSettings, MeetingSettings, WorkerSettings, env_var
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from tests.infra._shared_synth import stack_accounts
from tests.support.synth import (
    GOV,
    MEETINGS,
    MGMT,
    REGION,
    SECRET_ARN,
    Synth,
    as_list,
    env_of,
    lint_errors,
    policies_of_role,
    role_named,
    secrets_of,
    settings_from,
    statements,
    task_definition,
)

CODES = ("hts", "htsnonprod")


@pytest.mark.parametrize("variant", ["multi", "single", "single_byo"])
def test_variant_passes_cdk_nag_and_cfn_lint(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    assert len(synth.templates) == 2 + 2 * len(CODES)
    errors = {t.name: lint_errors(t) for t in synth.outdir.glob("*.template.json")}
    assert {name: e for name, e in errors.items() if e} == {}


def test_single_account_mode_puts_every_stack_in_one_account(single: Synth) -> None:
    assert single.config.single_account
    assert set(stack_accounts(single).values()) == {MGMT}


# --- EventBridge routing ---------------------------------------------------------------------------


def _bucket(synth: Synth) -> dict[str, Any]:
    return next(
        b["Properties"]
        for b in synth.resources(STORAGE_STACK, "AWS::S3::Bucket").values()
        if b["Properties"].get("BucketName", "").startswith("ttp-metadata-")
    )


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_eventbridge_mode_one_rule_per_customer(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    gov = synth.config.accounts.governance
    assert _bucket(synth)["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rules = {
        r["Properties"]["Name"]: r["Properties"] for r in synth.resources(STORAGE_STACK, "AWS::Events::Rule").values()
    }
    assert set(rules) == {f"ttp-route-{code}" for code in CODES} | {COORDINATOR_EVENT_RULE_NAME}
    for code in CODES:
        rule = rules[f"ttp-route-{code}"]
        assert rule["EventBusName"] == "default"
        pattern = rule["EventPattern"]
        assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
        assert pattern["detail"]["object"]["key"] == [{"wildcard": f"customers/{code}/*.json"}]
        assert pattern["detail"]["bucket"]["name"] == [{"Ref": next(iter(_bucket_ids(synth)))}]
        (target,) = rule["Targets"]
        assert target["Arn"] == f"arn:aws:sqs:{REGION}:{gov}:customer-{code}-changes"
        if synth.config.single_account:
            assert "RoleArn" not in target  # same account: the queue policy admits the rule itself
        else:
            assert target["RoleArn"]["Fn::GetAtt"][1] == "Arn"


def _bucket_ids(synth: Synth) -> list[str]:
    return [
        lid
        for lid, b in synth.resources(STORAGE_STACK, "AWS::S3::Bucket").items()
        if b["Properties"].get("BucketName", "").startswith("ttp-metadata-")
    ]


def test_cross_account_router_role(multi: Synth) -> None:
    role_id, role = role_named(multi, STORAGE_STACK, names.EVENTBRIDGE_ROUTER_ROLE_NAME)
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": MGMT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:events:{REGION}:{MGMT}:rule/ttp-route-*"},
            },
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
        }
    ]
    granted = {
        action: (statement["Resource"], statement.get("Condition"))
        for statement in policies_of_role(multi, STORAGE_STACK, role_id)
        for action in as_list(statement["Action"])
    }
    assert granted == {
        "sqs:SendMessage": (
            [f"arn:aws:sqs:{REGION}:{GOV}:customer-*-changes", f"arn:aws:sqs:{REGION}:{GOV}:ttp-change-coordinator"],
            None,
        ),
        "kms:GenerateDataKey": (
            f"arn:aws:kms:{REGION}:{GOV}:key/*",
            {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}},
        ),
        "kms:Decrypt": (
            f"arn:aws:kms:{REGION}:{GOV}:key/*",
            {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}},
        ),
    }
    rules = multi.resources(STORAGE_STACK, "AWS::Events::Rule").values()
    assert all(r["Properties"]["Targets"][0]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]} for r in rules)


def _allow_statements(synth: Synth, code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    stack = customer_stack_name(code)
    queue_allows = [
        s
        for p in synth.resources(stack, "AWS::SQS::QueuePolicy").values()
        for s in statements(p)
        if s["Effect"] == "Allow"
    ]
    assert len(queue_allows) == 1
    key_allows = [
        s for s in statements(synth.only(stack, "AWS::KMS::Key")) if s.get("Sid") == "AllowTriggerEventSourceToUseKey"
    ]
    assert len(key_allows) == 1
    return queue_allows[0], key_allows[0]


@pytest.mark.parametrize("code", CODES)
def test_cross_account_queue_admits_only_the_router_role(multi: Synth, code: str) -> None:
    queue, key = _allow_statements(multi, code)
    router = {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{MGMT}:role/{names.EVENTBRIDGE_ROUTER_ROLE_NAME}"}}
    assert queue["Principal"] == {"AWS": f"arn:aws:iam::{MGMT}:root"}
    assert queue["Action"] == "sqs:SendMessage" and queue["Condition"] == router
    assert key["Principal"] == {"AWS": f"arn:aws:iam::{MGMT}:root"}
    assert key["Condition"] == {**router, "StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}


@pytest.mark.parametrize("code", CODES)
def test_same_account_queue_admits_only_its_rule(single: Synth, code: str) -> None:
    queue, key = _allow_statements(single, code)
    source = {
        "StringEquals": {"aws:SourceAccount": MGMT},
        "ArnEquals": {"aws:SourceArn": f"arn:aws:events:{REGION}:{MGMT}:rule/ttp-route-{code}"},
    }
    for statement in (queue, key):
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert queue["Condition"] == source
    assert "Condition" not in key  # AWS's documented form; the queue policy binds the rule
    assert not [
        r
        for r in single.resources(STORAGE_STACK, "AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == names.EVENTBRIDGE_ROUTER_ROLE_NAME
    ]


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_eventbridge_mode_routes_archive_and_processing_to_the_coordinator(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    gov = synth.config.accounts.governance
    (rule,) = [
        r["Properties"]
        for r in synth.resources(STORAGE_STACK, "AWS::Events::Rule").values()
        if r["Properties"]["Name"] == COORDINATOR_EVENT_RULE_NAME
    ]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [
        {"wildcard": "archive/*.json"},
        {"wildcard": "processing/*.json"},
        {"wildcard": "delivery/*.json"},
    ]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": next(iter(_bucket_ids(synth)))}]
    (target,) = rule["Targets"]
    assert target["Arn"] == names.coordinator_queue_arn(REGION, gov)
    if synth.config.single_account:
        assert "RoleArn" not in target
    else:
        router_id, _ = role_named(synth, STORAGE_STACK, names.EVENTBRIDGE_ROUTER_ROLE_NAME)
        assert target["RoleArn"] == {"Fn::GetAtt": [router_id, "Arn"]}

    # The coordinator's queue (platform stack) admits exactly that source, and so does its key.
    queue_allows = [
        st
        for lid, p in synth.resources(PLATFORM_STACK, "AWS::SQS::QueuePolicy").items()
        if lid.startswith("CoordinatorQueuePolicy")
        for st in statements(p)
        if st["Effect"] == "Allow"
    ]
    key = next(
        k for lid, k in synth.resources(PLATFORM_STACK, "AWS::KMS::Key").items() if lid.startswith("Coordinator")
    )
    (key_allow,) = [st for st in statements(key) if st.get("Sid") == "AllowTriggerEventSourceToUseKey"]
    (queue_allow,) = queue_allows
    if synth.config.single_account:
        source = {
            "StringEquals": {"aws:SourceAccount": MGMT},
            "ArnEquals": {"aws:SourceArn": f"arn:aws:events:{REGION}:{MGMT}:rule/{COORDINATOR_EVENT_RULE_NAME}"},
        }
        assert queue_allow["Principal"] == key_allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert queue_allow["Condition"] == source and "Condition" not in key_allow
    else:
        router = {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{MGMT}:role/{names.EVENTBRIDGE_ROUTER_ROLE_NAME}"}}
        assert queue_allow["Principal"] == key_allow["Principal"] == {"AWS": f"arn:aws:iam::{MGMT}:root"}
        assert queue_allow["Condition"] == router
        assert key_allow["Condition"] == {**router, "StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}


# --- Meetings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["multi", "single_byo"])
def test_meeting_settings_and_secret_belong_to_the_coordinator(
    variant: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    stack = PLATFORM_STACK
    task = task_definition(synth, stack, names.COORDINATOR_SERVICE_NAME)
    env, secrets = env_of(task), secrets_of(task)
    expected = {env_var(n) for n in CoordinatorSettings.model_fields} | {
        env_var(n) for n in MeetingSettings.model_fields
    }
    assert set(env) | set(secrets) == expected
    assert set(secrets) == {"TTP_GRAPH_CLIENT_SECRET"} and "TTP_GRAPH_CLIENT_SECRET" not in env
    assert env["TTP_GRAPH_TENANT_ID"] == MEETINGS["graph_tenant_id"]
    assert env["TTP_MEETING_ORGANIZER"] == MEETINGS["meeting_organizer"]
    assert env["TTP_CONTACT_READER_EXTERNAL_ID"] == MEETINGS["contact_reader_external_id"]
    # Issue 19: the roles are derived from TTP_CUSTOMER_ACCOUNTS; only a role of another name is listed.
    assert json.loads(env["TTP_CALENDAR_CONTACT_ROLES"]) == {}
    meeting = settings_from(MeetingSettings, env, monkeypatch, TTP_GRAPH_CLIENT_SECRET="from-secrets-manager")
    assert meeting.enabled and meeting.calendar_contact_roles == {
        c.code: f"arn:aws:iam::{c.account}:role/ttp-contact-reader-{c.code}" for c in synth.config.customers
    }
    coordinator = settings_from(CoordinatorSettings, env, monkeypatch)
    assert coordinator.queue_url == names.coordinator_queue_url(REGION, synth.config.accounts.governance)

    # Only the execution role can read the secret (ECS injects it at task start).
    task_role_id, _ = role_named(synth, stack, names.COORDINATOR_ROLE_NAME)
    execution_role_id = task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    secret_actions = {
        role: [
            s for s in policies_of_role(synth, stack, role) if any("secretsmanager" in a for a in as_list(s["Action"]))
        ]
        for role in (task_role_id, execution_role_id)
    }
    assert secret_actions[task_role_id] == []
    (statement,) = secret_actions[execution_role_id]
    assert sorted(as_list(statement["Action"])) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    value_from = secrets["TTP_GRAPH_CLIENT_SECRET"]
    by_name = (
        f"arn:aws:secretsmanager:{REGION}:{synth.config.accounts.governance}:secret:{MEETINGS['graph_client_secret']}"
    )
    if variant == "multi":  # a secret name: partial ARN, the grant covers the 6-character suffix
        assert (value_from, statement["Resource"]) == (by_name, by_name + "-??????")
    else:
        assert value_from == statement["Resource"] == SECRET_ARN
    assumable = [
        s["Resource"] for s in policies_of_role(synth, stack, task_role_id) if "sts:AssumeRole" in as_list(s["Action"])
    ]
    assert assumable == ["arn:aws:iam::*:role/ttp-contact-reader-*"]


@pytest.mark.parametrize("variant", ["multi", "single_byo"])
def test_processors_hold_no_graph_secret_nor_contact_readers(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    for code in CODES:
        stack = customer_stack_name(code)
        task = synth.only(stack, "AWS::ECS::TaskDefinition")
        assert set(env_of(task)) == {env_var(n) for n in WorkerSettings.model_fields}
        assert secrets_of(task) == {}
        text = json.dumps(synth.templates[stack])
        assert "secretsmanager" not in text and names.CONTACT_READER_ROLE_PREFIX not in text
        task_role_id, _ = role_named(synth, stack, names.processor_role_name(code))
        assumable = [
            s["Resource"]
            for s in policies_of_role(synth, stack, task_role_id)
            if "sts:AssumeRole" in as_list(s["Action"])
        ]
        customer = synth.config.customer(code)
        assert assumable == [f"arn:aws:iam::{customer.account}:role/ttp-ses-sender-{code}"]


def test_secret_reference_by_complete_arn(single_byo: Synth) -> None:
    task = task_definition(single_byo, PLATFORM_STACK, names.COORDINATOR_SERVICE_NAME)
    assert secrets_of(task)["TTP_GRAPH_CLIENT_SECRET"] == SECRET_ARN


@pytest.mark.parametrize("code", CODES)
def test_contact_reader_role_trusts_only_the_coordinator_with_external_id(multi: Synth, code: str) -> None:
    stack = customer_account_stack_name(code)
    role_id, role = role_named(multi, stack, names.contact_reader_role_name(code))
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": MEETINGS["contact_reader_external_id"]},
                "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{GOV}:role/ttp-change-coordinator"},
            },
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{GOV}:root"},
        }
    ]
    account = multi.config.customer(code).account
    assert policies_of_role(multi, stack, role_id) == [
        {
            "Action": ["ses:GetContactList", "ses:ListContacts"],
            "Effect": "Allow",
            "Resource": f"arn:aws:ses:{REGION}:{account}:contact-list/change-notifications",
            "Sid": "ReadContactList",
        }
    ]


# --- Bring your own VPC --------------------------------------------------------------------------------


def test_existing_vpc_is_used_not_created(single_byo: Synth) -> None:
    assert not single_byo.resources(PLATFORM_STACK, "AWS::EC2::VPC")
    assert not single_byo.resources(PLATFORM_STACK, "AWS::EC2::NatGateway")
    service = single_byo.only(customer_stack_name("hts"), "AWS::ECS::Service")["Properties"]
    subnets = service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    assert subnets == ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    group = single_byo.only(customer_stack_name("hts"), "AWS::EC2::SecurityGroup")["Properties"]
    assert group["VpcId"] == "vpc-0123456789abcdef0"
    (sweeper_rule,) = [
        r["Properties"]
        for r in single_byo.resources(PLATFORM_STACK, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    network = sweeper_rule["Targets"][0]["EcsParameters"]["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert network["Subnets"] == subnets
