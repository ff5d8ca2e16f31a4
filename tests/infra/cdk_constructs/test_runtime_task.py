"""RuntimeTaskBase: what every task running the runtime image shares, shown with a third, minimal variant."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Match, Template
from constructs import Construct

from cdk_constructs.runtime_task import (
    RuntimeTaskBase,
    RuntimeTaskBaseProps,
    RuntimeTaskSpec,
    TaskSettings,
    runtime_command,
)
from runtime.contract.settings import BucketSettings, env_var
from tests.support.synth import app_without_validation

IMAGE = ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim")


class _OneOffTask(RuntimeTaskBase):
    """A variant in another app: only the shared parts, with the ``BucketSettings`` environment."""

    def __init__(self, scope: Construct, construct_id: str, props: RuntimeTaskBaseProps) -> None:
        super().__init__(
            scope,
            construct_id,
            props,
            RuntimeTaskSpec(
                role_name="one-off-task",
                role_description="A one-off runtime command",
                log_group_name="/one-off",
                family="one-off",
                container_name="oneoff",
                command=runtime_command("health"),
                settings=[TaskSettings(BucketSettings)],
                environment_reason="non-secret",
                security_group_description="one-off: no ingress",
                egress_description="HTTPS",
            ),
        )


@pytest.fixture(scope="module")
def one_off() -> Template:
    stack = Stack(app_without_validation(), "Bare")
    cluster = ecs.Cluster(stack, "Cluster", vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1))
    _OneOffTask(
        stack, "Task", RuntimeTaskBaseProps(cluster=cluster, bucket_name="my-bucket", image=IMAGE, log_level="DEBUG")
    )
    return Template.from_stack(stack)


def test_task_role_trusts_only_ecs_tasks_of_this_account_and_region(one_off: Template) -> None:
    roles = one_off.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": "one-off-task"}})
    ((_, role),) = roles.items()
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert set(statement["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def test_container_is_hardened_and_configured_from_the_settings_model(one_off: Template) -> None:
    (definition,) = one_off.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = definition["Properties"]["ContainerDefinitions"]
    assert container["Command"] == ["python", "-m", "runtime", "health"]
    assert container["ReadonlyRootFilesystem"] is True and container["Essential"] is True
    assert container["MountPoints"] == [{"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}]
    environment: dict[str, Any] = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert set(environment) == {env_var(name) for name in BucketSettings.model_fields}
    assert environment["TTP_BUCKET_NAME"] == "my-bucket" and environment["TTP_LOG_LEVEL"] == "DEBUG"
    assert container["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "oneoff"


def test_security_group_has_no_ingress_and_https_egress_only(one_off: Template) -> None:
    one_off.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": "one-off: no ingress",
            "SecurityGroupEgress": [Match.object_like({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443})],
            "SecurityGroupIngress": Match.absent(),
        },
    )
    one_off.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/one-off"})
