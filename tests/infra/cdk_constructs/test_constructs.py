"""Each construct works on its own, in another CDK app; props are validated; env follows runtime.contract.settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Match, Template
from pydantic import BaseModel, Field

from cdk_constructs.alarm_topics import AlarmTopics
from cdk_constructs.customer_alarms import CustomerAlarms, CustomerAlarmsProps
from cdk_constructs.customer_dashboard import CustomerDashboard, CustomerDashboardProps
from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_constructs.customer_ses_roles import CustomerSesRoles, CustomerSesRolesProps
from cdk_constructs.metadata_bucket import MetadataBucket, MetadataBucketProps, RoutedCustomer
from cdk_constructs.overview_dashboard import OverviewDashboard
from cdk_support.environment import EnvironmentContractError, render, settings_environment
from runtime.contract.settings import WorkerSettings
from stacks.app_builder import REPO_ROOT
from tests.support.synth import app_without_validation

ENV = Environment(account="123456789012", region="eu-west-1")
IMAGE = ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim")


@pytest.fixture(scope="module")
def standalone() -> dict[str, Template]:
    """A foreign app using every construct directly (no platform, no config, no cdk.json)."""
    app = app_without_validation()
    storage = Stack(app, "Storage", env=ENV)
    MetadataBucket(
        storage,
        "Bucket",
        MetadataBucketProps(
            governance_account="210987654321",
            customers=(RoutedCustomer("acme", "210987654321"), RoutedCustomer("local", "123456789012")),
            routing="eventbridge",
        ),
    )
    work = Stack(app, "Work", env=ENV)
    vpc = ec2.Vpc(work, "Vpc", max_azs=2, nat_gateways=1)
    cluster = ecs.Cluster(work, "Cluster", vpc=vpc)
    queue = CustomerQueue(
        work, "Queue", CustomerQueueProps("acme", source_account="123456789012", bucket_name="my-bucket")
    )
    CustomerProcessor(
        work,
        "Processor",
        CustomerProcessorProps(
            customer_code="acme",
            cluster=cluster,
            queue=queue.queue,
            bucket_name="my-bucket",
            customer_account="333333333333",
            from_address="ops@acme.example",
            sender_external_id="acme-external",
            image=IMAGE,
        ),
    )
    topics = AlarmTopics(work, "Topics")
    CustomerAlarms(work, "Alarms", CustomerAlarmsProps("acme", topics={"critical": topics.topics["critical"]}))
    CustomerDashboard(work, "Dashboard", CustomerDashboardProps("acme"))
    OverviewDashboard(work, "Overview")
    roles = Stack(app, "CustomerRoles", env=Environment(account="333333333333", region="eu-west-1"))
    CustomerSesRoles(
        roles,
        "Roles",
        CustomerSesRolesProps(
            "acme",
            governance_account="210987654321",
            from_address="ops@acme.example",
            sender_external_id="acme-external",
            contact_reader_external_id="reader-external",
            configuration_set="acme-tracking",
        ),
    )
    assembly = app.synth()
    return {s.stack_name: Template.from_json(s.template) for s in assembly.stacks}


def test_bucket_in_a_foreign_app_routes_cross_and_same_account(standalone: dict[str, Template]) -> None:
    # No feature flags in this app: the partition stays a token, so ARNs are Fn::Join here.
    storage = standalone["Storage"]
    storage.resource_count_is("AWS::Events::Rule", 2)
    storage.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "ttp-route-acme",
            "Targets": [Match.object_like({"RoleArn": Match.any_value()})],
        },
    )
    storage.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "ttp-route-local",
            "Targets": [Match.exact({"Arn": Match.any_value(), "Id": "customer-queue"})],
        },
    )
    storage.has_resource_properties("AWS::IAM::Role", {"RoleName": "ttp-eventbridge-router"})


def test_processor_in_a_foreign_app(standalone: dict[str, Template]) -> None:
    work = standalone["Work"]
    work.has_resource_properties("AWS::ECS::Service", {"ServiceName": "customer-acme-processor"})
    work.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {"ContainerDefinitions": [Match.object_like({"Image": "public.ecr.aws/docker/library/python:3.11-slim"})]},
    )
    work.has_resource_properties("AWS::SQS::Queue", {"QueueName": "customer-acme-changes", "VisibilityTimeout": 300})
    work.resource_count_is("AWS::SNS::Topic", 3)
    # Only the critical topic was given: other alarms have no actions.
    alarms = work.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": Match.string_like_regexp("ttp-acme-.*")}}
    )
    with_actions = [a for a in alarms.values() if a["Properties"].get("AlarmActions")]
    assert len(alarms) == 17 and len(with_actions) == 7
    work.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "ttp-customer-acme"})
    work.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "TransientTriggerMonitoring"})


def test_ses_roles_in_a_foreign_app(standalone: dict[str, Template]) -> None:
    roles = standalone["CustomerRoles"]
    roles.has_resource_properties("AWS::IAM::Role", {"RoleName": "ttp-ses-sender-acme"})
    roles.has_resource_properties("AWS::IAM::Role", {"RoleName": "ttp-contact-reader-acme"})
    policies = roles.find_resources("AWS::IAM::Policy")
    send = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "SendFromOwnIdentity"
    ]
    assert len(send) == 1 and len(send[0]["Resource"]) == 4
    assert ":configuration-set/acme-tracking" in json.dumps(send[0]["Resource"])


def test_invalid_customer_code_is_refused() -> None:
    stack = Stack(app_without_validation(), "S", env=ENV)
    with pytest.raises(ValueError, match="invalid customer code"):
        CustomerQueue(stack, "Q", CustomerQueueProps("Not Valid", source_account="123456789012", bucket_name="b"))


# --- settings_env ----------------------------------------------------------------------------------


class _Model(BaseModel):
    required: str
    number: int = 3
    optional: str | None = None
    mapping: dict[str, str] = Field(default_factory=dict)


def test_environment_has_every_field_with_defaults() -> None:
    env = settings_environment(_Model, {"required": "x", "optional": "y"})
    assert env == {"TTP_REQUIRED": "x", "TTP_NUMBER": "3", "TTP_OPTIONAL": "y", "TTP_MAPPING": "{}"}


def test_unset_optional_fields_are_left_to_the_runtime() -> None:
    assert "TTP_OPTIONAL" not in settings_environment(_Model, {"required": "x"})


def test_contract_drift_fails_loudly() -> None:
    with pytest.raises(EnvironmentContractError, match="TTP_REQUIRED"):
        settings_environment(_Model, {})
    with pytest.raises(EnvironmentContractError, match="no field"):
        settings_environment(_Model, {"required": "x", "renamed": "y"})


def test_render_matches_pydantic_settings_parsing() -> None:
    assert render(True) == "true" and render(1.5) == "1.5"
    assert render({"b": "2", "a": "1"}) == '{"a":"1","b":"2"}'


def test_worker_settings_required_fields_all_known() -> None:
    required = {name for name, field in WorkerSettings.model_fields.items() if field.is_required()}
    assert required <= {
        "bucket_name",
        "customer_code",
        "sender_role_arn",
        "sender_external_id",
        "from_address",
        "queue_url",
    }


def test_pure_modules_import_without_aws_cdk() -> None:
    code = (
        "import sys; import runtime.contract.names, runtime.contract.dashboards, cdk_support.environment, "
        "stacks.config; assert 'aws_cdk' not in sys.modules, sorted(m for m in sys.modules if 'cdk' in m)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=Path(REPO_ROOT), check=True, timeout=60)
