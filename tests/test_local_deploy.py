"""The local deployer (devtools/local_deploy): the sample assembly on the emulator equals its templates.

The comparisons here read the emulator and the synthesized templates directly (not through the deployer's
own checks), so a deployer that reported success for a platform with holes in it fails them. The
assembly is synthesized once per test run (``synthesize_shared``: jsii is the slow part). moto's backends
are per process, so the tests that read the deployed sample come first in the file; the later ones empty
the emulator.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from devtools import local_deploy
from devtools.emulator import LocalAws
from devtools.iam_engine import PolicyEngine
from devtools.iam_engine.bootstrap import BootstrapGate
from devtools.local_deploy import DeployError, DeployReport, deploy_assembly, tables
from devtools.local_deploy.__main__ import main
from devtools.local_deploy.resolve import Aws
from tests.infra.test_bootstrap_policies import IAM_ONLY_POLICY
from tests.support.synth import GOV, MGMT, REGION, Synth, sample_context, shared_sample, synthesize

HTS_ACCOUNT = "333333333333"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return shared_sample(tmp_path_factory)  # the infrastructure tests' synthesis


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAws]:
    emulator = LocalAws().start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def gate(engine: PolicyEngine) -> BootstrapGate:
    """The bootstrap gate with the policies docs/infrastructure.md prescribes."""
    return BootstrapGate(engine)


@pytest.fixture(scope="module")
def deployed(sample: Synth, server: LocalAws, gate: BootstrapGate) -> DeployReport:
    """The sample deployed once, through the bootstrap gate: the gate only decides each stack's requests
    before it is created, so the comparisons below read the same world, and
    ``test_the_sample_deploys_clean_through_the_bootstrap_gate_with_the_prescribed_policies`` reads this
    report instead of deploying the sample a second time."""
    server.reset()
    return deploy_assembly(sample.outdir, server.endpoint, gate=gate)


def client(server: LocalAws, service: str, account: str) -> Any:
    """A client of the emulator in ``account`` (the admin key the deployer uses)."""
    return Aws(server.endpoint).client(service, account, REGION)


def resources(synth: Synth, stack: str, type_: str) -> dict[str, Any]:
    return {k: r for k, r in synth.templates[stack]["Resources"].items() if r["Type"] == type_}


def broken_copy(sample: Synth, tmp_path: Path, stack: str, edit: Any) -> Path:
    """A copy of the assembly whose ``stack`` template ``edit`` changed in place."""
    outdir = tmp_path / "assembly"
    shutil.copytree(sample.outdir, outdir, ignore=shutil.ignore_patterns("asset.*"))
    path = outdir / f"{stack}.template.json"
    template = json.loads(path.read_text())
    edit(template)
    path.write_text(json.dumps(template))
    return outdir


# --- the sample assembly, deployed ---------------------------------------------------------------


def test_every_stack_deploys_after_its_dependencies_in_its_own_account(sample: Synth, deployed: DeployReport) -> None:
    order = [stack.stack_name for stack in deployed.stacks]
    assert order[0] == "TtpPlatform" and order[-1] == "TtpStorage"
    assert order.index("TtpCustomer-hts") < order.index("TtpCustomerAccount-hts")
    accounts = {stack.stack_name: stack.account for stack in deployed.stacks}
    assert accounts == {
        "TtpPlatform": GOV,
        "TtpCustomer-hts": GOV,
        "TtpCustomer-htsnonprod": GOV,
        "TtpCustomerAccount-hts": HTS_ACCOUNT,
        "TtpCustomerAccount-htsnonprod": "444444444444",
        "TtpStorage": MGMT,
    }
    for stack in deployed.stacks:
        assert not stack.failure
        types = [r["Type"] for r in sample.templates[stack.stack_name]["Resources"].values()]
        whole = {t: n for t, n in {**stack.applied, **stack.recorded}.items() if "." not in t}
        # every resource of the template is created, applied or recorded: none is silently left out
        assert sum(stack.created.values()) + sum(whole.values()) == len(types), stack.stack_name


def test_bucket_notifications_on_the_emulator_equal_the_template(
    sample: Synth, deployed: DeployReport, server: LocalAws
) -> None:
    ((logical_id, bucket),) = [
        (k, r)
        for k, r in resources(sample, "TtpStorage", "AWS::S3::Bucket").items()
        if "NotificationConfiguration" in r["Properties"]
    ]
    name = bucket["Properties"]["BucketName"]
    expected = {
        (item["Queue"], item["Event"], tuple(sorted((r["Name"], r["Value"]) for r in item["Filter"]["S3Key"]["Rules"])))
        for item in bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    }
    found_configuration = client(server, "s3", MGMT).get_bucket_notification_configuration(Bucket=name)
    found = {
        (item["QueueArn"], event, tuple(sorted((r["Name"], r["Value"]) for r in item["Filter"]["Key"]["FilterRules"])))
        for item in found_configuration["QueueConfigurations"]
        for event in item["Events"]
    }
    assert found == expected and len(expected) == 5
    s3 = client(server, "s3", MGMT)
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    (policy,) = [
        p
        for p in resources(sample, "TtpStorage", "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    # recorded for the policy engine, not put on moto (which would apply its Deny statements unconditionally)
    recorded = deployed.world.accounts[MGMT].policies[f"arn:aws:s3:::{name}"]
    expected = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Effect"], s["Action"], s.get("Condition")) for s in recorded["Statement"]] == [
        (s["Effect"], s["Action"], s.get("Condition")) for s in expected
    ]
    assert "Ref" not in json.dumps(recorded) and "Fn::" not in json.dumps(recorded)


def _queue_names(synth: Synth, stack: str) -> dict[str, str]:
    return {k: r["Properties"]["QueueName"] for k, r in resources(synth, stack, "AWS::SQS::Queue").items()}


def _with_queue_arns(value: Any, names: dict[str, str]) -> Any:
    """The template's queue references as the ARNs of those queues in the governance account."""
    if isinstance(value, list):
        return [_with_queue_arns(item, names) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in names:
            return f"arn:aws:sqs:{REGION}:{GOV}:{names[value['Fn::GetAtt'][0]]}"
        return {k: _with_queue_arns(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize("stack", ["TtpCustomer-hts", "TtpCustomer-htsnonprod", "TtpPlatform"])
def test_queues_redrive_and_policies_on_the_emulator_equal_the_template(
    sample: Synth, deployed: DeployReport, server: LocalAws, stack: str
) -> None:
    sqs = client(server, "sqs", GOV)
    names = _queue_names(sample, stack)
    policies = resources(sample, stack, "AWS::SQS::QueuePolicy").values()
    checked_policies = 0
    for logical_id, queue in resources(sample, stack, "AWS::SQS::Queue").items():
        url = sqs.get_queue_url(QueueName=names[logical_id])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            found = json.loads(attributes["RedrivePolicy"])
            assert found["deadLetterTargetArn"] == _with_queue_arns(redrive["deadLetterTargetArn"], names)
            assert int(found["maxReceiveCount"]) == redrive["maxReceiveCount"]
        else:
            assert "RedrivePolicy" not in attributes
        for policy in policies:
            if {"Ref": logical_id} in policy["Properties"]["Queues"]:
                expected = _with_queue_arns(policy["Properties"]["PolicyDocument"], names)
                assert json.loads(attributes["Policy"]) == expected
                assert deployed.world.accounts[GOV].policies[attributes["QueueArn"]] == expected
                checked_policies += 1
    assert checked_policies == len(policies) > 0


@pytest.mark.parametrize("stack", ["TtpCustomer-hts", "TtpPlatform"])
def test_task_definitions_environment_and_roles_equal_the_template(
    sample: Synth, deployed: DeployReport, server: LocalAws, stack: str
) -> None:
    ecs, iam = client(server, "ecs", GOV), client(server, "iam", GOV)
    roles = resources(sample, stack, "AWS::IAM::Role")
    for definition in resources(sample, stack, "AWS::ECS::TaskDefinition").values():
        properties = definition["Properties"]
        found = ecs.describe_task_definition(taskDefinition=properties["Family"])["taskDefinition"]
        (container,) = properties["ContainerDefinitions"]
        (there,) = found["containerDefinitions"]
        environment = {e["name"]: e["value"] for e in there.get("environment", [])}
        expected = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
        assert set(environment) == set(expected)
        assert {k: v for k, v in environment.items() if isinstance(expected[k], str)} == {
            k: v for k, v in expected.items() if isinstance(v, str)
        }
        assert there["command"] == container["Command"]
        recorded = deployed.world.accounts[GOV].task_definitions[properties["Family"]]
        role_name = roles[properties["TaskRoleArn"]["Fn::GetAtt"][0]]["Properties"]["RoleName"]
        assert recorded["task_role_arn"] == f"arn:aws:iam::{GOV}:role/{role_name}"
        assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == recorded["task_role_arn"]
        execution_role = iam.get_role(RoleName=recorded["execution_role_arn"].rsplit("/", 1)[-1])["Role"]
        assert execution_role["Arn"] == recorded["execution_role_arn"]
        assert recorded["containers"][0]["environment"] == environment


@pytest.mark.parametrize(("stack", "account"), [("TtpCustomer-hts", GOV), ("TtpCustomerAccount-hts", HTS_ACCOUNT)])
def test_roles_and_their_policies_equal_the_template(
    sample: Synth, deployed: DeployReport, server: LocalAws, stack: str, account: str
) -> None:
    iam = client(server, "iam", account)
    policies = resources(sample, stack, "AWS::IAM::Policy").values()
    named = [(k, r) for k, r in resources(sample, stack, "AWS::IAM::Role").items() if "RoleName" in r["Properties"]]
    assert named
    for logical_id, role in named:
        name = role["Properties"]["RoleName"]
        found = iam.get_role(RoleName=name)["Role"]
        assert found["AssumeRolePolicyDocument"] == role["Properties"]["AssumeRolePolicyDocument"]
        expected = {
            p["Properties"]["PolicyName"]: p for p in policies if {"Ref": logical_id} in p["Properties"]["Roles"]
        }
        assert set(iam.list_role_policies(RoleName=name)["PolicyNames"]) == set(expected)
        for policy_name, policy in expected.items():
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            assert [s["Action"] for s in document["Statement"]] == [s["Action"] for s in statements]
            literal = [s for s in statements if isinstance(s.get("Resource"), str)]
            assert [s for s in document["Statement"] if s in literal] == literal


def test_an_object_under_a_customer_prefix_reaches_that_customers_queue_in_the_governance_account(
    deployed: DeployReport, server: LocalAws
) -> None:
    """The bucket is in the management account, the queues in the governance account: AWS delivers there."""
    sqs = client(server, "sqs", GOV)
    queues = {
        name: sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for name in ("customer-hts-changes", "customer-htsnonprod-changes", "ttp-change-coordinator")
    }

    def bodies(url: str) -> list[str]:
        found: list[str] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            for message in messages:
                found.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    for url in queues.values():
        bodies(url)  # the s3:TestEvent of the configuration
    client(server, "s3", MGMT).put_object(
        Bucket="ttp-metadata-111111111111-us-east-1", Key="customers/hts/CHG-1.json", Body=b"{}"
    )
    hts = bodies(queues["customer-hts-changes"])
    assert [unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"]) for body in hts] == [
        "customers/hts/CHG-1.json"
    ]
    assert bodies(queues["customer-htsnonprod-changes"]) == []
    assert bodies(queues["ttp-change-coordinator"]) == []
    assert "QueueUrls" not in client(server, "sqs", MGMT).list_queues()


# --- the deployer fails loudly --------------------------------------------------------------------


def test_an_unknown_resource_type_stops_the_deploy_naming_stack_logical_id_and_type(
    sample: Synth, server: LocalAws, tmp_path: Path
) -> None:
    def add(template: dict[str, Any]) -> None:
        template["Resources"]["MysteryWidget1234"] = {"Type": "AWS::Widgets::Widget", "Properties": {}}

    outdir = broken_copy(sample, tmp_path, "TtpCustomer-hts", add)
    server.reset()
    with pytest.raises(
        DeployError, match=r"TtpCustomer-hts MysteryWidget1234 \(AWS::Widgets::Widget\): unknown resource type"
    ):
        deploy_assembly(outdir, server.endpoint)
    assert client(server, "cloudformation", GOV).describe_stacks()["Stacks"] == []  # nothing half-deployed


def test_an_unknown_property_stops_the_deploy_naming_it(sample: Synth, server: LocalAws, tmp_path: Path) -> None:
    def add(template: dict[str, Any]) -> None:
        queue = next(r for r in template["Resources"].values() if r["Type"] == "AWS::SQS::Queue")
        queue["Properties"]["FifoQueue"] = True

    outdir = broken_copy(sample, tmp_path, "TtpCustomer-hts", add)
    server.reset()
    with pytest.raises(DeployError, match=r"TtpCustomer-hts \w+ \(AWS::SQS::Queue\): property FifoQueue"):
        deploy_assembly(outdir, server.endpoint)


def test_a_notification_naming_a_wrong_queue_fails_naming_the_bucket_and_the_queue(
    sample: Synth, server: LocalAws, tmp_path: Path
) -> None:
    wrong = f"arn:aws:sqs:{REGION}:{GOV}:customer-htz-changes"

    def misname(template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            for item in resource["Properties"].get("NotificationConfiguration", {}).get("QueueConfigurations", []):
                if item["Queue"].endswith(":customer-hts-changes"):
                    item["Queue"] = wrong

    outdir = broken_copy(sample, tmp_path, "TtpStorage", misname)
    server.reset()
    with pytest.raises(
        DeployError,
        match=r"TtpStorage MetadataBucket\w+ \(AWS::S3::Bucket\): NotificationConfiguration names the queue " + wrong,
    ):
        deploy_assembly(outdir, server.endpoint)


def test_trusting_the_emulators_cloudformation_with_the_notifications_fails_the_comparison(
    sample: Synth, server: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto reports CREATE_COMPLETE for a bucket without its notifications: the read-back says so."""
    monkeypatch.setitem(tables.CFN_TYPES["AWS::S3::Bucket"], "NotificationConfiguration", tables.Handling.CFN)
    server.reset()
    with pytest.raises(
        DeployError,
        match=r"TtpStorage MetadataBucket\w+ \(AWS::S3::Bucket\): NotificationConfiguration on the emulator",
    ):
        deploy_assembly(sample.outdir, server.endpoint)


@pytest.mark.filterwarnings("ignore:Tried to parse .* not supported by moto")
def test_a_resource_the_emulators_cloudformation_skips_fails_the_deploy(
    sample: Synth, server: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handed to moto's CloudFormation, a queue policy is skipped with a warning and the stack still reports
    CREATE_COMPLETE: the deployer compares the stack's resource list with what it handed over."""
    monkeypatch.setitem(tables.CFN_TYPES, "AWS::SQS::QueuePolicy", tables.DIRECT_TYPES["AWS::SQS::QueuePolicy"])
    monkeypatch.delitem(tables.DIRECT_TYPES, "AWS::SQS::QueuePolicy")
    server.reset()
    with pytest.raises(
        DeployError,
        match=r"TtpPlatform \w+ \(AWS::SQS::QueuePolicy\): the emulator's CloudFormation reported CREATE_COMPLETE "
        "without creating it",
    ):
        deploy_assembly(sample.outdir, server.endpoint)


def test_every_type_of_the_sample_is_in_exactly_one_table(sample: Synth) -> None:
    created, direct, recorded = set(tables.CFN_TYPES), set(tables.DIRECT_TYPES), set(tables.RECORDED_TYPES)
    assert not (created & direct or created & recorded or direct & recorded)
    types = {r["Type"] for template in sample.templates.values() for r in template["Resources"].values()}
    assert types <= created | direct | recorded


def test_a_queue_changed_on_the_emulator_fails_the_comparison(
    sample: Synth, server: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply = local_deploy.apply_direct

    def apply_then_tamper(stack: Any, resolver: Any, world: Any, report: Any) -> None:
        apply(stack, resolver, world, report)
        if stack.stack_name == "TtpCustomer-hts":
            sqs = resolver.aws.client("sqs", GOV)
            url = sqs.get_queue_url(QueueName="customer-hts-changes")["QueueUrl"]
            redrive = json.loads(
                sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
            )
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"RedrivePolicy": json.dumps({**redrive, "maxReceiveCount": 99})}
            )

    monkeypatch.setattr(local_deploy, "apply_direct", apply_then_tamper)
    server.reset()
    with pytest.raises(DeployError, match=r"TtpCustomer-hts \w+ \(AWS::SQS::Queue\): RedrivePolicy on the emulator"):
        deploy_assembly(sample.outdir, server.endpoint)


# --- the single-account variant and the command ---------------------------------------------------


def test_the_single_account_variant_deploys_in_one_account(server: LocalAws, tmp_path: Path) -> None:
    context = sample_context()
    ttp = context["ttp"]
    ttp["accounts"]["governance"] = MGMT
    codes = [customer["code"] for customer in ttp["customers"]]
    for customer in ttp["customers"]:
        customer["account"] = MGMT
        customer["shares_ses_account_with"] = [code for code in codes if code != customer["code"]]
    single = synthesize(tmp_path / "single", copy.deepcopy(context), nag=False, read_metadata=False)
    server.reset()
    report = deploy_assembly(single.outdir, server.endpoint)
    assert {stack.account for stack in report.stacks} == {MGMT}
    assert len(report.stacks) == len(single.templates)
    sqs = client(server, "sqs", MGMT)
    url = sqs.get_queue_url(QueueName="customer-hts-changes")["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    client(server, "s3", MGMT).put_object(
        Bucket="ttp-metadata-111111111111-us-east-1", Key="customers/hts/CHG-2.json", Body=b"{}"
    )
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert unquote_plus(json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]) == "customers/hts/CHG-2.json"


def test_the_command_prints_each_stack_and_fails_with_exit_1(
    sample: Synth, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = tmp_path / "world.json"
    # the gate's ~3.5 CPU s of decisions once, in the failing run below; the clean deploy through it is
    # test_the_sample_deploys_clean_through_the_bootstrap_gate_with_the_prescribed_policies
    assert main(["--assembly", str(sample.outdir), "--world", str(world), "--no-bootstrap-gate"]) == 0
    printed = capsys.readouterr().out
    assert f"TtpStorage  account {MGMT}" in printed and "recorded, not emulated" in printed
    assert json.loads(world.read_text())[GOV]["task_definitions"]["customer-hts-processor"]["task_role_arn"]

    def add(template: dict[str, Any]) -> None:
        template["Resources"]["MysteryWidget1234"] = {"Type": "AWS::Widgets::Widget"}

    broken = broken_copy(sample, tmp_path, "TtpPlatform", add)
    assert main(["--assembly", str(broken)]) == 1
    assert "TtpPlatform MysteryWidget1234 (AWS::Widgets::Widget)" in capsys.readouterr().out


# --- the bootstrap gate: each stack deployed as its account's CloudFormation execution role ----------


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as running:
        yield running


def test_the_bootstrap_gate_fails_a_customer_account_stack_its_policy_cannot_create_naming_the_cause(
    sample: Synth, server: LocalAws, engine: PolicyEngine, tmp_path: Path
) -> None:
    """The customer-account policy the doc prescribed before issue 18 (IAM roles only) cannot create the
    stack's SES configuration set: the deploy stops before that stack exists, naming stack, logical id, type,
    action and the policy file; the stacks before it (other accounts, AdministratorAccess) were deployed."""
    narrow = tmp_path / "iam-only.json"
    narrow.write_text(json.dumps(IAM_ONLY_POLICY))
    server.reset()
    gate = BootstrapGate(engine, customer_policy=narrow)
    with pytest.raises(DeployError) as raised:
        deploy_assembly(sample.outdir, server.endpoint, gate=gate)
    message = str(raised.value)
    (set_id,) = resources(sample, "TtpCustomerAccount-hts", "AWS::SES::ConfigurationSet")
    assert message.startswith(
        f"TtpCustomerAccount-hts: CloudFormation's execution role "
        f"arn:aws:iam::{HTS_ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{HTS_ACCOUNT}-{REGION} with the policy {narrow}"
    )
    assert (
        f"TtpCustomerAccount-hts/{set_id} (AWS::SES::ConfigurationSet, create): ses:CreateConfigurationSet on "
        f"arn:aws:ses:{REGION}:{HTS_ACCOUNT}:configuration-set/ttp-hts: implicitly denied"
    ) in message
    stacks = client(server, "cloudformation", HTS_ACCOUNT).describe_stacks()["Stacks"]
    assert [s["StackName"] for s in stacks] == []
    report = raised.value.report  # type: ignore[attr-defined]
    assert [s.stack_name for s in report.stacks if s.failure] == ["TtpCustomerAccount-hts"]
    assert {"TtpPlatform", "TtpCustomer-hts"} <= {s.stack_name for s in report.stacks if not s.failure}


def test_the_sample_deploys_clean_through_the_bootstrap_gate_with_the_prescribed_policies(
    deployed: DeployReport, gate: BootstrapGate
) -> None:
    assert not deployed.failed and gate.stacks == len(deployed.stacks) == 6
