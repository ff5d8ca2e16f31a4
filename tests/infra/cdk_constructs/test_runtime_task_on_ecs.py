"""What the runtime tasks need to run well on ECS (issue 12): a liveness health check with a startup grace
on the two services (processor, coordinator), the scale-in protection permission on the processor (the
one that scales in), neither on the one-shot sweeper, and an init process in every container."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from cdk_constructs.change_coordinator import ChangeCoordinator, ChangeCoordinatorProps
from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.sweeper import Sweeper, SweeperProps
from tests.support.synth import app_without_validation

IMAGE = ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim")
HEALTH_CHECK = {
    "Command": ["CMD", "python", "-m", "runtime", "healthcheck"],
    "Interval": 30,
    "Timeout": 5,
    "Retries": 3,
    "StartPeriod": 60,
}
PROTECTION_ACTIONS = ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"]


@pytest.fixture(scope="module")
def template() -> Template:
    stack = Stack(app_without_validation(), "Bare")
    cluster = ecs.Cluster(stack, "Cluster", vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1))
    CustomerProcessor(
        stack,
        "Processor",
        CustomerProcessorProps(
            customer_code="acme",
            cluster=cluster,
            queue=sqs.Queue(stack, "Work", visibility_timeout=Duration.seconds(600)),
            visibility_timeout_seconds=600,
            bucket_name="my-bucket",
            customer_account="333333333333",
            from_address="ops@acme.example",
            sender_external_id="acme-external",
            image=IMAGE,
        ),
    )
    ChangeCoordinator(
        stack,
        "Coordinator",
        ChangeCoordinatorProps(cluster=cluster, bucket_name="my-bucket", source_account="111111111111", image=IMAGE),
    )
    Sweeper(
        stack,
        "Sweeper",
        SweeperProps(cluster=cluster, bucket_name="my-bucket", customer_queues={"acme": "https://q"}, image=IMAGE),
    )
    return Template.from_stack(stack)


def container(template: Template, name: str) -> dict[str, Any]:
    found = [
        c
        for task in template.find_resources("AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
        if c["Name"] == name
    ]
    assert len(found) == 1, name
    return found[0]


def role_statements(template: Template, logical_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for logical_id, policy in template.find_resources("AWS::IAM::Policy").items()
        if logical_id.startswith(logical_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("name", ["worker", "coordinator"])
def test_the_services_have_the_liveness_health_check_with_a_start_period(template: Template, name: str) -> None:
    assert container(template, name)["HealthCheck"] == HEALTH_CHECK


def test_the_one_shot_sweeper_has_no_health_check(template: Template) -> None:
    assert "HealthCheck" not in container(template, "sweep")


@pytest.mark.parametrize("name", ["worker", "coordinator", "sweep"])
def test_every_container_runs_an_init_process(template: Template, name: str) -> None:
    assert container(template, name)["LinuxParameters"]["InitProcessEnabled"] is True


def test_the_processor_task_role_may_set_scale_in_protection_on_tasks(template: Template) -> None:
    statements = [
        s
        for s in role_statements(template, "ProcessorTaskRoleDefaultPolicy")
        if s.get("Sid") == "ScaleInProtectionOfItsOwnTask"
    ]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["Effect"] == "Allow" and sorted(statement["Action"]) == sorted(PROTECTION_ACTIONS)
    assert statement["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ecs:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":task/*",
            ],
        ]
    }


@pytest.mark.parametrize("prefix", ["Sweeper", "Coordinator"])
def test_tasks_that_do_not_scale_in_cannot_touch_task_protection(template: Template, prefix: str) -> None:
    statements = role_statements(template, prefix)
    assert statements  # the role has a policy: the check below looks at something
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not set(PROTECTION_ACTIONS) & set(actions)


def test_scale_in_protection_is_granted_only_on_tasks_tagged_as_the_customers_own(template: Template) -> None:
    """A task ARN names its cluster, not its service: the grant is conditioned on the customer tag, which the
    processor's service carries and propagates to every task it starts (issue 17, item 6)."""
    (statement,) = [
        s
        for s in role_statements(template, "ProcessorTaskRoleDefaultPolicy")
        if s.get("Sid") == "ScaleInProtectionOfItsOwnTask"
    ]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/customer_code": "acme"}}
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "ServiceName": "customer-acme-processor",
            "PropagateTags": "SERVICE",
            "Tags": Match.array_with([{"Key": "customer_code", "Value": "acme"}]),
        },
    )
