"""IAM roles per account at 1,000 customers (issue 19): one role per customer in the governance account.

Every processor's task definition names the platform's one task *execution* role (the ECS agent's: image
pull and log writes); the per-customer *task* role, the only principal the container gets, stays (the
isolation tests decide with it). So the governance account holds one role per customer plus the
platform's constant few.
"""

from __future__ import annotations

import json
from typing import Any

from cdk_constructs.customer import customer_stack_name
from cdk_support.quotas import QUOTAS, SynthesizedStack, measure
from runtime.contract import names
from tests.support.synth import Synth, as_list, policies_of_role, role_named


def _stacks(synth: Synth) -> list[SynthesizedStack]:
    return [
        SynthesizedStack(stack.stack_name, stack.account, stack.region, synth.templates[stack.stack_name], 0)
        for stack in synth.pipeline.stacks
    ]


def _roles_per_account(synth: Synth) -> dict[str, int]:
    quota = QUOTAS["iam.roles-per-account"]
    return {
        usage.where.removeprefix("account "): usage.count for usage in measure(_stacks(synth)) if usage.quota == quota
    }


def test_the_governance_account_holds_one_role_per_customer_plus_the_platforms(sample: Synth) -> None:
    governance = sample.config.accounts.governance
    platform_roles = len(sample.resources("TtpPlatform", "AWS::IAM::Role"))
    customers = len(sample.config.customers)
    assert _roles_per_account(sample)[governance] == customers + platform_roles
    for customer in sample.config.customers:
        stack = customer_stack_name(customer.code)
        roles = sample.resources(stack, "AWS::IAM::Role")
        assert [role["Properties"].get("RoleName") for role in roles.values()] == [
            names.processor_role_name(customer.code)
        ], f"{stack}: the task role only"


def test_every_processor_runs_with_the_platforms_execution_role_and_its_own_task_role(sample: Synth) -> None:
    governance = sample.config.accounts.governance
    for customer in sample.config.customers:
        stack = customer_stack_name(customer.code)
        task = sample.only(stack, "AWS::ECS::TaskDefinition")["Properties"]
        resolved = json.dumps(sample.pipeline.customers[customer.code].resolve(task["ExecutionRoleArn"]))
        assert f":iam::{governance}:role/{names.TASK_EXECUTION_ROLE_NAME}" in resolved, resolved
        task_role_id, _ = role_named(sample, stack, names.processor_role_name(customer.code))
        assert task["TaskRoleArn"] == {"Fn::GetAtt": [task_role_id, "Arn"]}


def _statements_by_action(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {action: statement["Resource"] for statement in statements for action in as_list(statement["Action"])}


def test_the_shared_execution_role_may_only_pull_the_image_and_write_processor_logs(sample: Synth) -> None:
    role_id, role = role_named(sample, "TtpPlatform", names.TASK_EXECUTION_ROLE_NAME)
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]
    granted = _statements_by_action(policies_of_role(sample, "TtpPlatform", role_id))
    assert sorted(granted) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    assert granted["ecr:GetAuthorizationToken"] == "*"
    assert "container-assets" in json.dumps(granted["ecr:BatchGetImage"])
    logs_resource = json.dumps(granted["logs:PutLogEvents"])
    assert f"log-group:{names.LOG_GROUP_PREFIX}*" in logs_resource, logs_resource
    # Nothing a task's own code could use: no S3, SQS, STS or secrets on the agent's role.
    assert not [a for a in granted if a.split(":")[0] in {"s3", "sqs", "sts", "secretsmanager", "ses"}]
