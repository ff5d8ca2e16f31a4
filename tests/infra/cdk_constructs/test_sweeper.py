"""The Sweeper alone in a bare stack (an ``ecs.Cluster`` of its own), not through this project's stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Match, Template

from cdk_constructs.sweeper import Sweeper, SweeperProps
from cdk_support import defaults
from cdk_support.log_retention import DEFAULT_LOG_RETENTION_DAYS
from runtime.contract import names
from runtime.contract.settings import OpsSettings, env_var
from tests.support.synth import app_without_validation, settings_from

IMAGE = ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim")
QUEUES = {"acme": "https://sqs.eu-west-1.amazonaws.com/123456789012/customer-acme-changes"}


def _bare_stack() -> tuple[Stack, ecs.Cluster]:
    stack = Stack(app_without_validation(), "Bare")
    return stack, ecs.Cluster(stack, "Cluster", vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1))


@pytest.fixture(scope="module")
def bare() -> Template:
    stack, cluster = _bare_stack()
    Sweeper(
        stack, "Sweeper", SweeperProps(cluster=cluster, bucket_name="my-bucket", customer_queues=QUEUES, image=IMAGE)
    )
    return Template.from_stack(stack)


def test_sweeper_in_a_bare_stack_is_scheduled_on_the_cluster(bare: Template) -> None:
    bare.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "ttp-sweeper-schedule",
            "ScheduleExpression": f"rate({defaults.SWEEP_INTERVAL_MINUTES} minutes)",
            "Targets": [Match.object_like({"EcsParameters": Match.object_like({"LaunchType": "FARGATE"})})],
        },
    )
    bare.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/ecs/change-processor/sweeper", "RetentionInDays": DEFAULT_LOG_RETENTION_DAYS},
    )
    bare.has_resource_properties("AWS::IAM::Role", {"RoleName": "ttp-sweeper"})
    bare.resource_count_is("AWS::ECS::Service", 0)


def test_sweeper_in_a_bare_stack_has_exactly_the_ops_settings(bare: Template) -> None:
    (definition,) = bare.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = definition["Properties"]["ContainerDefinitions"]
    assert container["Command"] == ["python", "-m", "runtime", "sweep"]
    environment: dict[str, Any] = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert set(environment) == {env_var(name) for name in OpsSettings.model_fields}
    assert json.loads(environment["TTP_CUSTOMER_QUEUES"]) == QUEUES
    assert environment["TTP_BUCKET_NAME"] == "my-bucket"


def test_sweeper_refuses_an_invalid_customer_code() -> None:
    stack, cluster = _bare_stack()
    with pytest.raises(ValueError, match="invalid customer code"):
        Sweeper(
            stack,
            "Sweeper",
            SweeperProps(cluster=cluster, bucket_name="b", customer_queues={"Not Valid": "https://x"}, image=IMAGE),
        )


def test_sweeper_may_use_only_the_customer_queue_keys_and_only_through_sqs(bare: Template) -> None:
    """Issue 12: not every key of the account, only those aliased ``alias/ttp/customer-<code>-changes``."""
    bare.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "EncryptForCustomerQueues",
                                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                "Condition": {
                                    "StringEquals": {"kms:ViaService": Match.any_value()},
                                    "ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/ttp/customer-*-changes"},
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_sweeper_lists_codes_and_the_runtime_derives_the_queue_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: a URL per customer outgrew ECS's 64 KiB task definition at ~750 customers; the task lists
    codes, and the sweeper's settings derive the same URLs (a queue elsewhere is still listed)."""
    stack = Stack(app_without_validation(), "Placed", env={"account": "111111111111", "region": "ap-southeast-2"})
    cluster = ecs.Cluster(stack, "Cluster", vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1))
    queues = {code: names.queue_url("ap-southeast-2", "111111111111", code) for code in ("hts", "acme")}
    queues["other"] = "https://sqs.eu-west-1.amazonaws.com/999999999999/other-queue"
    Sweeper(
        stack, "Sweeper", SweeperProps(cluster=cluster, bucket_name="my-bucket", customer_queues=queues, image=IMAGE)
    )
    (definition,) = Template.from_stack(stack).find_resources("AWS::ECS::TaskDefinition").values()
    environment = {
        item["Name"]: item["Value"] for item in definition["Properties"]["ContainerDefinitions"][0]["Environment"]
    }
    assert json.loads(environment["TTP_CUSTOMER_CODES"]) == ["acme", "hts", "other"]
    assert json.loads(environment["TTP_CUSTOMER_QUEUES"]) == {"other": queues["other"]}
    assert settings_from(OpsSettings, environment, monkeypatch).customer_queues == queues
