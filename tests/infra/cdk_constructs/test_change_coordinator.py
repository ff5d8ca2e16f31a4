"""ChangeCoordinator (and CoordinatorAlarms) alone in a bare stack: queue, service, role, environment, alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from cdk_constructs.change_coordinator import ChangeCoordinator, ChangeCoordinatorProps, CoordinatorMeetings
from cdk_constructs.coordinator_alarms import CoordinatorAlarms, CoordinatorAlarmsProps
from runtime.contract import names
from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName
from runtime.contract.settings import CoordinatorSettings, MeetingSettings, env_var
from runtime.contract.thresholds import DEFAULT_THRESHOLDS
from tests.support.synth import app_without_validation, as_list, settings_from

ENV = Environment(account="123456789012", region="eu-west-1")
BUCKET_ACCOUNT = "111111111111"
IMAGE = ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim")
BUCKET = "my-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
PARTITION_LITERALS = {"@aws-cdk/core:enablePartitionLiterals": True}


def _stack() -> tuple[Stack, ecs.Cluster]:
    stack = Stack(app_without_validation(context=PARTITION_LITERALS), "Bare", env=ENV)
    cluster = ecs.Cluster(stack, "Cluster", vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1))
    return stack, cluster


@pytest.fixture(scope="module")
def bare() -> Template:
    stack, cluster = _stack()
    ChangeCoordinator(
        stack,
        "Coordinator",
        ChangeCoordinatorProps(cluster=cluster, bucket_name=BUCKET, source_account=BUCKET_ACCOUNT, image=IMAGE),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def with_meetings() -> Template:
    stack, cluster = _stack()
    secret = secretsmanager.Secret.from_secret_name_v2(stack, "Graph", "ttp/graph")
    ChangeCoordinator(
        stack,
        "Coordinator",
        ChangeCoordinatorProps(
            cluster=cluster,
            bucket_name=BUCKET,
            source_account=BUCKET_ACCOUNT,
            routing="eventbridge",
            image=IMAGE,
            meetings=CoordinatorMeetings(
                graph_tenant_id="tenant",
                graph_client_id="client",
                meeting_organizer="bot@example.com",
                graph_client_secret=secret,
                contact_reader_external_id="reader-ext",
                calendar_contact_roles={"acme": "arn:aws:iam::333333333333:role/ttp-contact-reader-acme"},
            ),
        ),
    )
    return Template.from_stack(stack)


def _container(template: Template) -> dict[str, Any]:
    (definition,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = definition["Properties"]["ContainerDefinitions"]
    return dict(container)


def _environment(template: Template) -> dict[str, str]:
    return {item["Name"]: item["Value"] for item in _container(template)["Environment"]}


def _task_role_statements(template: Template) -> list[dict[str, Any]]:
    roles = template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": names.COORDINATOR_ROLE_NAME}})
    (role_id,) = roles
    found: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_one_service_runs_the_coordinator_command(bare: Template) -> None:
    bare.has_resource_properties(
        "AWS::ECS::Service",
        {
            "ServiceName": names.COORDINATOR_SERVICE_NAME,
            "DesiredCount": 1,
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
            "NetworkConfiguration": {"AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})},
        },
    )
    bare.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    container = _container(bare)
    assert container["Command"] == ["python", "-m", "runtime", "coordinator"]
    assert container["ReadonlyRootFilesystem"] is True and container["StopTimeout"] == 120
    bare.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"Family": names.COORDINATOR_SERVICE_NAME, "Cpu": "256", "Memory": "512"}
    )
    bare.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": names.COORDINATOR_LOG_GROUP_NAME, "RetentionInDays": Match.any_value()}
    )


def test_environment_is_exactly_the_coordinator_settings(bare: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _environment(bare)
    # Without delivery events the optional TTP_DELIVERY_QUEUE_URL stays unset (the consumer does not run).
    assert set(env) == {env_var(name) for name in CoordinatorSettings.model_fields} - {env_var("delivery_queue_url")}
    assert "secrets" not in json.dumps(_container(bare)).lower()
    settings = settings_from(CoordinatorSettings, env, monkeypatch)
    assert settings.queue_url == names.coordinator_queue_url("eu-west-1", "123456789012")
    assert settings.bucket_name == BUCKET and settings.ses_region == "eu-west-1"
    assert settings.visibility_timeout_seconds == CoordinatorSettings.model_fields["visibility_timeout_seconds"].default


def test_queue_and_dlq_are_encrypted_ssl_only_with_redrive(bare: Template) -> None:
    queues = {q["Properties"]["QueueName"]: (lid, q) for lid, q in bare.find_resources("AWS::SQS::Queue").items()}
    assert set(queues) == {names.COORDINATOR_QUEUE_NAME, names.COORDINATOR_DLQ_NAME}
    ((key_id, key),) = bare.find_resources("AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    bare.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/ttp/{names.COORDINATOR_QUEUE_NAME}"})
    dlq_id, dlq = queues[names.COORDINATOR_DLQ_NAME]
    _, queue = queues[names.COORDINATOR_QUEUE_NAME]
    for props in (queue["Properties"], dlq["Properties"]):
        assert props["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert dlq["Properties"]["RedriveAllowPolicy"]["sourceQueueArns"] == [
        names.coordinator_queue_arn("eu-west-1", "123456789012")
    ]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"] for p in bare.find_resources("AWS::SQS::QueuePolicy").values()
    ]
    assert len(policies) == 2
    for statements in policies:  # SSL enforced on both
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
    (allow,) = [s for statements in policies for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": BUCKET_ACCOUNT},
        "ArnLike": {"aws:SourceArn": BUCKET_ARN},
    }
    (key_allow,) = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowTriggerEventSourceToUseKey"
    ]
    assert key_allow["Principal"] == {"Service": "s3.amazonaws.com"} and "Condition" not in key_allow


def test_task_role_least_privilege(bare: Template) -> None:
    granted = {s.get("Sid", "queue"): s for s in _task_role_statements(bare)}
    assert set(granted) == {
        "queue",
        "ListBucketFor404",
        "ReadArchiveAndProcessing",
        "WriteArchiveIfMatch",
        "CreateArchiveIfNoneMatch",
    }  # no trigger writes: the sweeper repairs a missing trigger
    assert granted["ReadArchiveAndProcessing"]["Action"] == "s3:GetObject"
    assert granted["ReadArchiveAndProcessing"]["Resource"] == [f"{BUCKET_ARN}/archive/*", f"{BUCKET_ARN}/processing/*"]
    assert granted["WriteArchiveIfMatch"]["Condition"] == {"Null": {"s3:if-match": "false"}}
    assert granted["CreateArchiveIfNoneMatch"]["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    for sid in ("WriteArchiveIfMatch", "CreateArchiveIfNoneMatch"):
        assert (granted[sid]["Action"], granted[sid]["Resource"]) == ("s3:PutObject", f"{BUCKET_ARN}/archive/*")
    actions = {a for s in _task_role_statements(bare) for a in as_list(s["Action"])}
    assert not any(
        a.startswith("s3:Delete") or a.startswith("sts:") or a.startswith("secretsmanager:") for a in actions
    )
    assert "sqs:ReceiveMessage" in actions and "sqs:SendMessage" not in actions


def test_meetings_give_the_coordinator_graph_and_the_contact_readers(
    with_meetings: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = _container(with_meetings)
    env = _environment(with_meetings)
    secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert set(secrets) == {"TTP_GRAPH_CLIENT_SECRET"}
    assert set(env) | set(secrets) | {env_var("delivery_queue_url")} == {
        env_var(n) for n in (*CoordinatorSettings.model_fields, *MeetingSettings.model_fields)
    }
    meeting = settings_from(MeetingSettings, env, monkeypatch, TTP_GRAPH_CLIENT_SECRET="x")
    assert meeting.enabled and meeting.calendar_contact_roles == {
        "acme": "arn:aws:iam::333333333333:role/ttp-contact-reader-acme"
    }
    assume = [s for s in _task_role_statements(with_meetings) if s.get("Sid") == "AssumeContactReaderRoles"]
    assert [(s["Action"], s["Resource"]) for s in assume] == [
        ("sts:AssumeRole", "arn:aws:iam::*:role/ttp-contact-reader-*")
    ]
    # EventBridge routing from another account: only the router role may send.
    (allow,) = [
        s
        for p in with_meetings.find_resources("AWS::SQS::QueuePolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert allow["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{BUCKET_ACCOUNT}:role/{names.EVENTBRIDGE_ROUTER_ROLE_NAME}"}
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stop_timeout_seconds": 121}, "Fargate maximum"),
        ({"drain_seconds": 120.0}, "below the stop timeout"),
        ({"drain_seconds": 100.0, "visibility_timeout_seconds": 90}, "visibility timeout"),
    ],
)
def test_props_are_validated(overrides: dict[str, Any], message: str) -> None:
    stack, cluster = _stack()
    with pytest.raises(ValueError, match=message):
        ChangeCoordinator(
            stack,
            "Coordinator",
            ChangeCoordinatorProps(
                cluster=cluster, bucket_name=BUCKET, source_account=BUCKET_ACCOUNT, image=IMAGE, **overrides
            ),
        )


def test_alarms_cover_queue_age_dlq_tasks_and_meetings() -> None:
    stack = Stack(app_without_validation(context=PARTITION_LITERALS), "Alarms", env=ENV)
    topics = {s: sns.Topic(stack, s) for s in ("critical", "warning")}
    CoordinatorAlarms(stack, "Alarms", CoordinatorAlarmsProps(topics=topics))  # type: ignore[arg-type]
    template = Template.from_stack(stack)
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    prefix = names.COORDINATOR_NAME
    assert set(alarms) == {
        f"{prefix}-queue-age-critical",
        f"{prefix}-queue-age-warning",
        f"{prefix}-dlq-messages-critical",
        f"{prefix}-tasks-down-critical",
        f"{prefix}-meeting-failure-warning",
        f"{prefix}-delivery-events-refused-warning",
        f"{prefix}-results-refused-critical",
    }
    t = DEFAULT_THRESHOLDS
    age = alarms[f"{prefix}-queue-age-critical"]
    assert (age["MetricName"], age["Threshold"]) == (
        "ApproximateAgeOfOldestMessage",
        t.coordinator_queue_age_critical_seconds,
    )
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": names.COORDINATOR_QUEUE_NAME}]
    assert alarms[f"{prefix}-queue-age-warning"]["Threshold"] == t.coordinator_queue_age_warning_seconds
    dlq = alarms[f"{prefix}-dlq-messages-critical"]
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": names.COORDINATOR_DLQ_NAME}]
    meeting = alarms[f"{prefix}-meeting-failure-warning"]
    assert meeting["MetricName"] == MetricName.MEETING_FAILURE and meeting["Statistic"] == "Sum"
    assert meeting["Dimensions"] == [{"Name": CUSTOMER_DIMENSION, "Value": names.COORDINATOR_METRICS_DIMENSION_VALUE}]
    assert (
        meeting["EvaluationPeriods"] == t.meeting_failure_periods and meeting["Threshold"] == t.meeting_failure_warning
    )
    refused = alarms[f"{prefix}-delivery-events-refused-warning"]
    assert (refused["MetricName"], refused["Statistic"], refused["Threshold"]) == (
        MetricName.DELIVERY_EVENTS_REFUSED,
        "Sum",
        t.delivery_events_refused_warning,
    )
    assert refused["Dimensions"] == meeting["Dimensions"]
    results = alarms[f"{prefix}-results-refused-critical"]  # issue 17, item 1: a security event alarms at once
    assert results["MetricName"] == MetricName.RESULTS_REFUSED and results["Statistic"] == "Sum"
    assert results["Dimensions"] == [{"Name": CUSTOMER_DIMENSION, "Value": names.COORDINATOR_METRICS_DIMENSION_VALUE}]
    assert results["EvaluationPeriods"] == 1 and results["Threshold"] == t.results_refused_critical
    assert results["ComparisonOperator"] == "GreaterThanThreshold" and results["TreatMissingData"] == "notBreaching"
    for name, props in alarms.items():
        severity = "critical" if name.endswith("critical") else "warning"
        assert props["AlarmDescription"].startswith(f"[{severity}] change coordinator:")
        assert len(props["AlarmActions"]) == 1


def test_config_counts_the_coordinators_routes() -> None:
    from cdk_constructs.metadata_bucket import COORDINATOR_PREFIXES
    from stacks.config import COORDINATOR_EVENT_RULES, COORDINATOR_NOTIFICATION_CONFIGURATIONS

    assert len(COORDINATOR_PREFIXES) == COORDINATOR_NOTIFICATION_CONFIGURATIONS
    assert COORDINATOR_EVENT_RULES == 1


# --- SES delivery events (issue 13) ------------------------------------------------------------------------

CUSTOMERS_BY_CODE = {"hts": "444444444444", "acme": "333333333333", "htsnonprod": "444444444444"}
"""Two customers share an account: the bus admits each account once."""


@pytest.fixture(scope="module")
def with_delivery() -> Template:
    stack, cluster = _stack()
    ChangeCoordinator(
        stack,
        "Coordinator",
        ChangeCoordinatorProps(
            cluster=cluster,
            bucket_name=BUCKET,
            source_account=BUCKET_ACCOUNT,
            image=IMAGE,
            delivery_customer_accounts=CUSTOMERS_BY_CODE,
        ),
    )
    return Template.from_stack(stack)


def test_delivery_events_set_the_queue_url(with_delivery: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _environment(with_delivery)
    assert set(env) == {env_var(name) for name in CoordinatorSettings.model_fields}
    settings = settings_from(CoordinatorSettings, env, monkeypatch)
    assert settings.delivery_queue_url == (
        f"https://sqs.eu-west-1.amazonaws.com/123456789012/{names.DELIVERY_EVENTS_QUEUE_NAME}"
    )
    # an event is accepted only from the account of the customer it names
    assert settings.customer_accounts == CUSTOMERS_BY_CODE
    with_delivery.has_resource_properties("AWS::SQS::Queue", {"QueueName": names.DELIVERY_EVENTS_QUEUE_NAME})
    with_delivery.has_resource_properties("AWS::SQS::Queue", {"QueueName": names.DELIVERY_EVENTS_DLQ_NAME})


def test_delivery_events_bus_admits_each_customer_account_once(with_delivery: Template) -> None:
    ((_, policy),) = with_delivery.find_resources("AWS::Events::EventBusPolicy").items()
    principals = policy["Properties"]["Statement"]["Principal"]["AWS"]
    assert principals == ["arn:aws:iam::333333333333:root", "arn:aws:iam::444444444444:root"]


def test_delivery_events_grant_delivery_objects_conditionally(with_delivery: Template) -> None:
    granted = {s.get("Sid", "queue"): s for s in _task_role_statements(with_delivery)}
    delivery = f"{BUCKET_ARN}/delivery/*"
    assert (granted["ReadDelivery"]["Action"], granted["ReadDelivery"]["Resource"]) == ("s3:GetObject", delivery)
    assert granted["WriteDeliveryIfMatch"]["Condition"] == {"Null": {"s3:if-match": "false"}}
    assert granted["CreateDeliveryIfNoneMatch"]["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    for sid in ("WriteDeliveryIfMatch", "CreateDeliveryIfNoneMatch"):
        assert (granted[sid]["Action"], granted[sid]["Resource"]) == ("s3:PutObject", delivery)
    queues = {q["Properties"]["QueueName"]: lid for lid, q in with_delivery.find_resources("AWS::SQS::Queue").items()}
    consumed = [s for s in _task_role_statements(with_delivery) if "sqs:ReceiveMessage" in as_list(s["Action"])]
    delivery_queue = {"Fn::GetAtt": [queues[names.DELIVERY_EVENTS_QUEUE_NAME], "Arn"]}
    assert any(delivery_queue in as_list(s["Resource"]) for s in consumed)


def test_delivery_event_accounts_must_be_account_ids() -> None:
    stack, cluster = _stack()
    with pytest.raises(ValueError, match=r"customer_accounts: 'acme' is not a 12-digit account id"):
        ChangeCoordinator(
            stack,
            "Coordinator",
            ChangeCoordinatorProps(
                cluster=cluster,
                bucket_name=BUCKET,
                source_account=BUCKET_ACCOUNT,
                image=IMAGE,
                delivery_customer_accounts={"acme": "acme"},
            ),
        )
