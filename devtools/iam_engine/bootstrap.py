"""The CloudFormation execution policies docs/infrastructure.md prescribes, as the engine reads them.

``cdk bootstrap --cloudformation-execution-policies`` attaches a policy to the role CloudFormation deploys
as (``cdk-hnb659fds-cfn-exec-role-{account}-{region}``). The doc prescribes AdministratorAccess for the
governance and management accounts and the file ``docs/policies/cdk-execution-customer-account.json`` for
an account that holds only customer-account stacks. :func:`denied_requests` decides every request
CloudFormation makes for a stack (``deploy_actions``) as that role, so a policy that cannot deploy its
stack is found before AWS finds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools.iam_engine.deploy_actions import deploy_requests
from devtools.iam_engine.engine import ROOT, PolicyEngine, Principal
from devtools.iam_engine.templates import Assembly

CUSTOMER_POLICY_FILE = ROOT / "docs" / "policies" / "cdk-execution-customer-account.json"
CUSTOMER_ACCOUNT_STACK_PREFIX = "TtpCustomerAccount-"
CDK_QUALIFIER = "hnb659fds"
"""CDK's default bootstrap qualifier (the app does not set another)."""

ADMINISTRATOR_ACCESS: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
"""The document of the AWS managed policy ``arn:aws:iam::aws:policy/AdministratorAccess`` (AWS Managed Policy
Reference, https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AdministratorAccess.html)."""


def render_policy(document: Any, account: str, region: str) -> Any:
    """The policy as the doc's ``sed`` command fills it in for one account and region."""
    text = json.dumps(document).replace("${CUSTOMER}", account).replace("${REGION}", region)
    return json.loads(text)


def execution_role_arn(account: str, region: str, qualifier: str = CDK_QUALIFIER) -> str:
    return f"arn:aws:iam::{account}:role/cdk-{qualifier}-cfn-exec-role-{account}-{region}"


def prescribed_policy(assembly: Assembly, stack_name: str, customer_policy: Path = CUSTOMER_POLICY_FILE) -> Any:
    """AdministratorAccess for an account that holds any governance or management stack (an account that
    is also a customer's is bootstrapped once, with their policy); else the customer-account file."""
    stack = assembly.stacks[stack_name]
    neighbours = [other.name for other in assembly.stacks.values() if other.account == stack.account]
    if all(name.startswith(CUSTOMER_ACCOUNT_STACK_PREFIX) for name in neighbours):
        return render_policy(json.loads(customer_policy.read_text()), stack.account, stack.region)
    return ADMINISTRATOR_ACCESS


def execution_principal(assembly: Assembly, stack_name: str, policy: Any | None = None) -> Principal:
    """The role CloudFormation deploys ``stack_name`` as, with ``policy`` (default: the prescribed one)."""
    stack = assembly.stacks[stack_name]
    document = prescribed_policy(assembly, stack_name) if policy is None else policy
    return Principal(execution_role_arn(stack.account, stack.region), {"cdk-execution": document})


def denied_requests(engine: PolicyEngine, assembly: Assembly, stack_name: str, policy: Any | None = None) -> list[str]:
    """One line per request the execution role would be denied while deploying ``stack_name``:
    ``stack/logical id (type, handler): action on ARN: why``. Empty: the stack deploys under the policy."""
    principal = execution_principal(assembly, stack_name, policy)
    seen: set[tuple[str, str, str]] = set()
    denied = []
    for request in deploy_requests(assembly, stack_name):
        key = (request.logical_id, request.action, request.resource)
        if key in seen:
            continue
        seen.add(key)
        decision = engine.decide(
            principal,
            request.action,
            request.resource,
            resource_account=request.account,
            resource_policy=request.resource_policy,
            context=request.context,
        )
        if not decision.allowed:
            denied.append(f"{request.describe()}: {decision.explain()}")
    return denied
