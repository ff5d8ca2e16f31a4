"""CustomerProcessor alone in a bare stack (a plain ``sqs.Queue``, an ``ecs.Cluster``); its props are validated."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_support.log_retention import DEFAULT_LOG_RETENTION_DAYS
from runtime.contract.settings import WorkerSettings, env_var
from tests.support.synth import app_without_validation

ENV = Environment(account="123456789012", region="eu-west-1")
IMAGE = ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim")


@pytest.fixture(scope="module")
def bare() -> tuple[Template, Stack, sqs.Queue]:
    """Another app's stack: no platform, no config, an unencrypted queue of its own naming."""
    stack = Stack(app_without_validation(), "Bare")
    cluster = ecs.Cluster(stack, "Cluster", vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1))
    queue = sqs.Queue(stack, "Work", visibility_timeout=Duration.seconds(600))
    CustomerProcessor(
        stack,
        "Processor",
        CustomerProcessorProps(
            customer_code="acme",
            cluster=cluster,
            queue=queue,
            visibility_timeout_seconds=600,
            bucket_name="my-bucket",
            customer_account="333333333333",
            from_address="ops@acme.example",
            sender_external_id="acme-external",
            image=IMAGE,
        ),
    )
    return Template.from_stack(stack), stack, queue


def _environment(template: Template) -> dict[str, Any]:
    (definition,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = definition["Properties"]["ContainerDefinitions"]
    return {item["Name"]: item["Value"] for item in container["Environment"]}


def test_processor_in_a_bare_stack_runs_the_worker_on_the_given_queue(bare: tuple[Template, Stack, sqs.Queue]) -> None:
    template, stack, queue = bare
    template.has_resource_properties("AWS::ECS::Service", {"ServiceName": "customer-acme-processor"})
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Family": "customer-acme-processor",
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Image": "public.ecr.aws/docker/library/python:3.11-slim",
                        "Command": ["python", "-m", "runtime", "worker"],
                        "ReadonlyRootFilesystem": True,
                    }
                )
            ],
        },
    )
    environment = _environment(template)
    # Every WorkerSettings field, the queue URL of the queue given (a reference), not a name-derived URL.
    assert set(environment) == {env_var(name) for name in WorkerSettings.model_fields}
    assert environment["TTP_QUEUE_URL"] == stack.resolve(queue.queue_url)
    assert environment["TTP_VISIBILITY_TIMEOUT_SECONDS"] == "600"
    for name in ("max_concurrency", "drain_seconds", "send_rate_per_second", "log_level"):
        assert environment[env_var(name)] == str(WorkerSettings.model_fields[name].default), name


def test_processor_in_a_bare_stack_consumes_the_queue_and_scales_on_it(
    bare: tuple[Template, Stack, sqs.Queue],
) -> None:
    template, stack, queue = bare
    queue_arn = stack.resolve(queue.queue_arn)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["sqs:ReceiveMessage"]), "Resource": queue_arn})]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": "ttp-processor-acme",
            "Tags": [{"Key": "customer_code", "Value": "acme"}],
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {"Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Condition": Match.any_value()}
                    )
                ]
            },
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/ecs/change-processor/acme", "RetentionInDays": DEFAULT_LOG_RETENTION_DAYS},
    )
    policies = template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(policies) == 2
    alarms = json.dumps(template.find_resources("AWS::CloudWatch::Alarm"))
    assert json.dumps(stack.resolve(queue.queue_name)) in alarms


def _processor_props(**overrides: Any) -> tuple[Stack, CustomerProcessorProps]:
    stack = Stack(app_without_validation(), "S", env=ENV)
    cluster = ecs.Cluster(stack, "C", vpc=ec2.Vpc(stack, "V", max_azs=2))
    queue = CustomerQueue(stack, "Q", CustomerQueueProps("acme", source_account="123456789012", bucket_name="b"))
    values: dict[str, Any] = {
        "customer_code": "acme",
        "cluster": cluster,
        "queue": queue.queue,
        "bucket_name": "b",
        "customer_account": "333333333333",
        "from_address": "ops@acme.example",
        "sender_external_id": "acme-external",
        "image": IMAGE,
        **overrides,
    }
    return stack, CustomerProcessorProps(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"drain_seconds": 120}, "below the stop timeout"),
        ({"stop_timeout_seconds": 121}, "Fargate maximum"),
        ({"scale_to_zero": True, "min_tasks": 1}, "scale_to_zero is true, so min_tasks must be 0"),
        ({"min_tasks": 0}, "set scale_to_zero: true"),
        ({"max_tasks": 0}, r"max_tasks \(0\) must be >= min_tasks"),
        ({"visibility_timeout_seconds": 60}, "visibility timeout"),
    ],
)
def test_processor_props_are_validated(overrides: dict[str, Any], message: str) -> None:
    stack, props = _processor_props(**overrides)
    with pytest.raises(ValueError, match=message):
        CustomerProcessor(stack, "P", props)


def test_processor_worker_defaults_are_the_settings_model_defaults() -> None:
    _, props = _processor_props()
    for name in ("max_concurrency", "drain_seconds", "send_rate_per_second", "visibility_timeout_seconds"):
        assert getattr(props, name) == WorkerSettings.model_fields[name].default, name
