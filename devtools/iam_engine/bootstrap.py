"""The CloudFormation execution policies docs/infrastructure.md prescribes, as the engine reads them.

``cdk bootstrap --cloudformation-execution-policies`` attaches a policy to the role CloudFormation deploys
as (``cdk-hnb659fds-cfn-exec-role-{account}-{region}``). The doc prescribes AdministratorAccess for the
governance and management accounts and the file ``docs/policies/cdk-execution-customer-account.json`` for
an account that holds only customer-account stacks. :func:`denied_requests` decides every request
CloudFormation makes for a stack (``deploy_actions``) as that role, so a policy that cannot deploy its
stack is found before AWS finds it. :class:`BootstrapGate` is that check as the local deployer runs it,
before it creates each stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.iam_engine.deploy_actions import DeployRequest, deploy_requests
from devtools.iam_engine.engine import ROOT, Decision, PolicyEngine, Principal
from devtools.iam_engine.templates import Assembly

CUSTOMER_POLICY_FILE = ROOT / "docs" / "policies" / "cdk-execution-customer-account.json"
CUSTOMER_ACCOUNT_STACK_PREFIX = "TtpCustomerAccount-"
DECIDING_THREADS = 4
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


def customer_account_only(assembly: Assembly, stack_name: str) -> bool:
    """The stack's account holds only customer-account stacks (bootstrapped with the customer-account file)."""
    account = assembly.stacks[stack_name].account
    neighbours = [other.name for other in assembly.stacks.values() if other.account == account]
    return all(name.startswith(CUSTOMER_ACCOUNT_STACK_PREFIX) for name in neighbours)


def prescribed_policy(assembly: Assembly, stack_name: str, customer_policy: Path = CUSTOMER_POLICY_FILE) -> Any:
    """AdministratorAccess for an account that holds any governance or management stack (an account that
    is also a customer's is bootstrapped once, with their policy); else the customer-account file."""
    stack = assembly.stacks[stack_name]
    if customer_account_only(assembly, stack_name):
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
    unique: dict[tuple[str, str, str], DeployRequest] = {}
    for request in deploy_requests(assembly, stack_name):  # named by the first handler that needs it
        unique.setdefault((request.logical_id, request.action, request.resource), request)

    def decide(request: DeployRequest) -> Decision:
        return engine.decide(
            principal,
            request.action,
            request.resource,
            resource_account=request.account,
            resource_policy=request.resource_policy,
            context=request.context,
        )

    # a few requests in flight keep the one engine process busy (it answers ~1.5x faster than one caller)
    with ThreadPoolExecutor(max_workers=DECIDING_THREADS) as pool:
        decisions = list(pool.map(decide, unique.values()))
    return [
        f"{request.describe()}: {decision.explain()}"
        for request, decision in zip(unique.values(), decisions, strict=True)
        if not decision.allowed
    ]


@dataclass
class BootstrapGate:
    """The local deployer's bootstrap check: before a stack is created on the emulator, every request
    CloudFormation makes for it (:func:`denied_requests`) is decided as the execution role of its account
    with the policy docs/infrastructure.md prescribes. moto's CloudFormation creates resources inside the
    emulator without a request per action, so this is where "deployed as the execution role" is enforced.

    ``customer_policy`` is the customer-account policy file (a test hands in a narrower one); ``seconds``
    and ``stacks`` say what the gate cost."""

    engine: PolicyEngine
    customer_policy: Path = CUSTOMER_POLICY_FILE
    seconds: float = 0.0
    stacks: int = 0

    def policy_name(self, assembly: Assembly, stack_name: str) -> str:
        if customer_account_only(assembly, stack_name):
            path = self.customer_policy.resolve()
            return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        return "AdministratorAccess (arn:aws:iam::aws:policy/AdministratorAccess)"

    def refusal(self, assembly: Assembly, stack_name: str) -> str | None:
        """Why ``stack_name`` cannot be deployed under its prescribed policy (every denied request: stack,
        logical id, type, handler, action, resource and the engine's reason), or ``None``."""
        started = time.perf_counter()
        policy = prescribed_policy(assembly, stack_name, self.customer_policy)
        denied = denied_requests(self.engine, assembly, stack_name, policy)
        self.seconds += time.perf_counter() - started
        self.stacks += 1
        if not denied:
            return None
        stack = assembly.stacks[stack_name]
        return (
            f"{stack_name}: CloudFormation's execution role {execution_role_arn(stack.account, stack.region)} with "
            f"the policy {self.policy_name(assembly, stack_name)} (docs/infrastructure.md, bootstrap) is denied "
            f"{len(denied)} request(s) this stack needs (AccessDenied in AWS):\n  " + "\n  ".join(denied)
        )
