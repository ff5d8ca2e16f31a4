"""Every stack deploys under the CloudFormation execution policy docs/infrastructure.md prescribes for its
account (issue 18): each request CloudFormation makes as the execution role ``cdk-hnb659fds-cfn-exec-role``
(devtools.iam_engine.deploy_actions: the resource schemas' create/read/update/delete permissions, on the ARNs
the templates resolve to) is decided by the policy engine against that policy.

This is the decision level. moto's CloudFormation creates resources inside the emulator, without a request
per action, so the local deployer gates each stack on the same decisions before creating it
(``BootstrapGate``; tests/test_local_deploy.py deploys the sample through it, and fails a customer-account
stack under the old IAM-only policy).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.iam_engine import PolicyEngine
from devtools.iam_engine.bootstrap import (
    ADMINISTRATOR_ACCESS,
    CUSTOMER_POLICY_FILE,
    denied_requests,
    execution_principal,
    prescribed_policy,
)
from devtools.iam_engine.bootstrap import render_policy as render
from devtools.iam_engine.deploy_actions import (
    TARGETS,
    DeployRequest,
    UnknownResourceType,
    deploy_requests,
    handler_permissions,
)
from devtools.iam_engine.templates import Assembly, Stack
from tests.infra._shared_synth import OWN_CONFIGURATION_SET, own_configuration_set_app
from tests.support.synth import Synth

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "infrastructure.md"
CUSTOMER_POLICY = CUSTOMER_POLICY_FILE
CUSTOMER_POLICY_IN_DOC = "docs/policies/cdk-execution-customer-account.json"
PLACEHOLDERS = {"${CUSTOMER}", "${REGION}"}
PLATFORM_NAME = re.compile(r":(role|configuration-set|rule|parameter)/(ttp-|TtpCustomerAccount-|cdk-bootstrap/)")
IAM_DATA = ROOT / "node_modules" / "@cloud-copilot" / "iam-data" / "data" / "actions"
"""The Service Authorization Reference as the pinned engine carries it (one file per service prefix)."""


def iam_action(action: str) -> dict[str, Any]:
    service, _, name = action.partition(":")
    actions = json.loads((IAM_DATA / f"{service}.json").read_text())
    found: dict[str, Any] = {key.lower(): value for key, value in actions.items()}[name.lower()]
    return found


def reads_only(action: str) -> bool:
    return iam_action(action)["accessLevel"] in ("Read", "List")


IAM_ONLY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PlatformRolesOnly",
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
            ],
            "Resource": [
                "arn:aws:iam::${CUSTOMER}:role/ttp-ses-sender-*",
                "arn:aws:iam::${CUSTOMER}:role/ttp-contact-reader-*",
            ],
        },
        {
            "Sid": "CdkBootstrapVersionCheck",
            "Effect": "Allow",
            "Action": "ssm:GetParameters",
            "Resource": "arn:aws:ssm:${REGION}:${CUSTOMER}:parameter/cdk-bootstrap/*",
        },
    ],
}
"""The customer-account policy docs/infrastructure.md prescribed before issue 18 (IAM roles only)."""


@pytest.fixture(scope="module", params=["sample", "multi", "single", "single_byo"])
def synth(request: pytest.FixtureRequest) -> Synth:
    found: Synth = request.getfixturevalue(request.param)
    return found


def test_every_stack_deploys_under_the_policy_the_doc_prescribes_for_its_account(
    synth: Synth, policy_engine: PolicyEngine
) -> None:
    assembly = Assembly.from_cloud_assembly(synth.outdir)
    denied = {name: lines for name in assembly.stacks if (lines := denied_requests(policy_engine, assembly, name))}
    assert not denied, "AccessDenied on deploy:\n" + "\n".join(line for lines in denied.values() for line in lines)


@pytest.mark.parametrize("fixture", ["sample", "single"])
def test_each_account_gets_the_policy_the_doc_prescribes(fixture: str, request: pytest.FixtureRequest) -> None:
    """The check above would prove nothing for the customer accounts if they got AdministratorAccess; an
    account that is also the governance and management account is bootstrapped once, with theirs."""
    synth: Synth = request.getfixturevalue(fixture)
    assembly = Assembly.from_cloud_assembly(synth.outdir)
    accounts = synth.config.accounts
    for name, stack in assembly.stacks.items():
        principal = execution_principal(assembly, name)
        assert (
            principal.arn == f"arn:aws:iam::{stack.account}:role/cdk-hnb659fds-cfn-exec-role-{stack.account}-us-east-1"
        )
        if stack.account in (accounts.governance, accounts.management):
            expected = ADMINISTRATOR_ACCESS
        else:
            expected = render(json.loads(CUSTOMER_POLICY.read_text()), stack.account, stack.region)
        assert prescribed_policy(assembly, name) == expected, name
    customer_accounts = {
        assembly.stacks[name].account for name in assembly.stacks if name.startswith("TtpCustomerAccount-")
    }
    assert (customer_accounts == {accounts.management}) == (fixture == "single")


def test_the_iam_only_policy_denies_the_customer_account_stack_naming_the_resource(
    multi: Synth, policy_engine: PolicyEngine
) -> None:
    assembly = Assembly.from_cloud_assembly(multi.outdir)
    stack = assembly.stacks["TtpCustomerAccount-hts"]
    denied = denied_requests(policy_engine, assembly, stack.name, render(IAM_ONLY_POLICY, stack.account, stack.region))
    (set_id,) = (logical_id for logical_id, r in stack.resources.items() if r["Type"] == "AWS::SES::ConfigurationSet")
    expected = (
        f"TtpCustomerAccount-hts/{set_id} (AWS::SES::ConfigurationSet, create): ses:CreateConfigurationSet on "
        f"arn:aws:ses:us-east-1:{stack.account}:configuration-set/ttp-hts: implicitly denied: "
        "no statement of the identity policies allows it"
    )
    assert expected in denied
    # The rule, its role (a name CloudFormation generates) and the event destination are denied too.
    assert any("(AWS::Events::Rule, create): events:PutRule on" in line for line in denied)
    assert any("(AWS::IAM::Role, create): iam:CreateRole on" in line and "ForwardRole" in line for line in denied)
    assert any("ses:CreateConfigurationSetEventDestination" in line for line in denied)


def test_a_resource_type_without_a_table_entry_fails_naming_stack_logical_id_and_type(sample: Synth) -> None:
    assembly = Assembly.from_cloud_assembly(sample.outdir)
    stack = assembly.stacks["TtpCustomerAccount-hts"]
    template = copy.deepcopy(dict(stack.template))
    template["Resources"]["ContactList"] = {"Type": "AWS::SES::ContactList", "Properties": {"ContactListName": "x"}}
    broken = Assembly({stack.name: Stack(stack.name, stack.account, stack.region, template)})
    assert "AWS::SES::ContactList" not in TARGETS
    with pytest.raises(
        UnknownResourceType, match=r"TtpCustomerAccount-hts/ContactList: resource type AWS::SES::ContactList"
    ):
        list(deploy_requests(broken, stack.name))


def test_the_customer_account_stack_acts_on_star_only_to_read(multi: Synth) -> None:
    """The narrow policy names ARNs: a request on ``*`` (an action with no resource type) would need
    ``Resource: *``, acceptable only for reading."""
    assembly = Assembly.from_cloud_assembly(multi.outdir)
    requests: list[DeployRequest] = list(deploy_requests(assembly, "TtpCustomerAccount-hts"))
    on_star = {request.action for request in requests if not request.resource.startswith("arn:aws:")}
    assert on_star == {"ses:DescribeConfigurationSet"}
    assert all(reads_only(action) and not iam_action(action)["resourceTypes"] for action in on_star)


# --- the doc quotes the file, so the two cannot drift ---------------------------------------------------


def _bootstrap_section() -> str:
    text = DOC.read_text()
    start = text.index("### Bootstrap (once per account)")
    return text[start : text.index("\n### ", start + 1)]


def _customer_commands() -> list[str]:
    """The shell commands of the doc's customer-account block, continuation lines joined."""
    section = _bootstrap_section()
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    (block,) = (block for block in blocks if "ttp-cdk-execution" in block)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_doc_creates_the_customer_policy_from_the_file(tmp_path: Path) -> None:
    assert '"Statement"' not in _bootstrap_section(), "the doc repeats the policy inline: quote the file instead"
    commands = _customer_commands()
    (sed,) = (command for command in commands if command.startswith("sed "))
    (create,) = (command for command in commands if command.startswith("aws iam create-policy"))
    written = re.search(r"> (\S+)$", sed)
    assert written and CUSTOMER_POLICY_IN_DOC in sed
    assert re.search(rf"--policy-name ttp-cdk-execution .*--policy-document file://{re.escape(written[1])}$", create)
    # Run the doc's own sed line (into a temporary file): it must fill every placeholder of the file.
    script = sed.replace(written[1], str(tmp_path / "policy.json"))
    environment = {"CUSTOMER": "333333333333", "REGION": "us-east-1", "PATH": os.environ["PATH"]}
    subprocess.run(["bash", "-c", script], cwd=ROOT, env=environment, check=True)
    rendered = json.loads((tmp_path / "policy.json").read_text())
    assert rendered == render(json.loads(CUSTOMER_POLICY.read_text()), "333333333333", "us-east-1")
    assert "${" not in json.dumps(rendered)


def test_the_policy_file_has_only_the_documented_placeholders_and_star_only_to_read() -> None:
    text = CUSTOMER_POLICY.read_text()
    assert set(re.findall(r"\$\{[A-Z_]+\}", text)) == PLACEHOLDERS
    policy = render(json.loads(text), "333333333333", "us-east-1")
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), f"{statement['Sid']}: a wildcard action"
        if "*" in resources:
            assert all(reads_only(action) for action in actions), f"{statement['Sid']}: writes on *"
        named = [resource for resource in resources if resource != "*"]
        assert all(PLATFORM_NAME.search(resource) for resource in named), f"{statement['Sid']}: {named}"


def test_the_policy_file_allows_nothing_a_customer_account_deploy_does_not_request(multi: Synth) -> None:
    """As narrow as the stack: every action and every resource pattern of the file is used by a deploy."""
    assembly = Assembly.from_cloud_assembly(multi.outdir)
    requests = [
        request
        for name, stack in assembly.stacks.items()
        if stack.account not in (multi.config.accounts.governance, multi.config.accounts.management)
        for request in deploy_requests(assembly, name)
    ]
    assert {request.stack for request in requests} == {"TtpCustomerAccount-hts", "TtpCustomerAccount-htsnonprod"}
    for statement in json.loads(CUSTOMER_POLICY.read_text())["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            assert any(request.action == action for request in requests), f"{statement['Sid']}: {action} is unused"
        for pattern in resources:
            rendered = [render(pattern, request.account, "us-east-1") for request in requests]
            assert any(
                fnmatch.fnmatchcase(request.resource, arn) for request, arn in zip(requests, rendered, strict=True)
            ), f"{statement['Sid']}: {pattern} matches no resource of the stacks"


def test_the_table_decides_on_star_only_actions_without_a_resource_type() -> None:
    """``anywhere`` must not widen an action that has a resource type: the engine's own data says which."""
    for type_, targets in TARGETS.items():
        for action in targets.anywhere:
            assert not iam_action(action)["resourceTypes"], f"{type_}: {action} has a resource type; name its ARN"
        assert handler_permissions(type_, "create"), f"{type_}: no create permissions in its schema"


@pytest.fixture(scope="module")
def own_configuration_set(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Customer hts sends with its own configuration set: the stack attaches the destination to it."""
    return own_configuration_set_app(tmp_path_factory)


def test_a_customers_own_configuration_set_deploys_once_its_arn_is_added_as_the_doc_says(
    own_configuration_set: Synth, policy_engine: PolicyEngine
) -> None:
    assembly = Assembly.from_cloud_assembly(own_configuration_set.outdir)
    name = "TtpCustomerAccount-hts"
    account = assembly.stacks[name].account
    own_set = f"arn:aws:ses:us-east-1:{account}:configuration-set/{OWN_CONFIGURATION_SET}"
    denied = denied_requests(policy_engine, assembly, name)
    assert denied and all(f"on {own_set}: " in line for line in denied), denied
    assert "arn:aws:ses:$REGION:$CUSTOMER:configuration-set/<its name>`) to the `PlatformConfigurationSets`" in (
        " ".join(_bootstrap_section().split())
    )
    policy = prescribed_policy(assembly, name)
    (statement,) = (statement for statement in policy["Statement"] if statement["Sid"] == "PlatformConfigurationSets")
    statement["Resource"] = [statement["Resource"], own_set]
    assert denied_requests(policy_engine, assembly, name, policy) == []
