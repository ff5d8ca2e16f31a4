"""Fine-grained assertions on the sample app of cdk.json (2 customers, S3 routing, multi-account)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from cdk_constructs.customer_processor import MAX_FARGATE_STOP_TIMEOUT
from cdk_constructs.sweeper import SWEEPER_TASK_FAMILY
from cdk_support.iam_actions import PROCESSOR_DENIED_OBJECT_ACTIONS
from runtime.contract import names
from runtime.contract.dashboards import overview_dashboard_body
from runtime.contract.settings import OpsSettings, WorkerSettings, env_var
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from tests.support.synth import (
    GOV,
    MGMT,
    REGION,
    Synth,
    as_list,
    env_of,
    policies_of_role,
    role_named,
    secrets_of,
    settings_from,
    statements,
    task_definition,
)

CODES = ("hts", "htsnonprod")
BUCKET = "ttp-metadata-111111111111-us-east-1"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TAGGING = ["s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"]


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- StorageStack ------------------------------------------------------------------------------------


def _metadata_bucket(sample: Synth) -> dict[str, Any]:
    buckets = [
        b
        for b in sample.resources(STORAGE_STACK, "AWS::S3::Bucket").values()
        if b["Properties"].get("BucketName") == BUCKET
    ]
    assert len(buckets) == 1
    return buckets[0]["Properties"]


def test_bucket_is_versioned_private_encrypted_and_logged(sample: Synth) -> None:
    props = _metadata_bucket(sample)
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert encryption["BlockedEncryptionTypes"] == {"EncryptionType": ["SSE-C"]}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    logs_bucket = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert sample.templates[STORAGE_STACK]["Resources"][logs_bucket]["Type"] == "AWS::S3::Bucket"


def test_both_buckets_deny_insecure_transport(sample: Synth) -> None:
    policies = sample.resources(STORAGE_STACK, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        denies = [
            s
            for s in statements(policy)
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies and denies[0]["Action"] == "s3:*" and denies[0]["Principal"] == {"AWS": "*"}


def test_lifecycle_never_expires_archive_objects(sample: Synth) -> None:
    rules = _metadata_bucket(sample)["LifecycleConfiguration"]["Rules"]
    assert {r["Id"] for r in rules} == {
        "abort-incomplete-multipart",
        "drafts-noncurrent-versions",
        "triggers-noncurrent-versions",
    }
    for rule in rules:
        prefix = rule.get("Prefix", "")
        assert not prefix.startswith("archive"), rule
        assert "ExpirationInDays" not in rule and "ExpirationDate" not in rule and "Transitions" not in rule, rule
        if not prefix:  # bucket-wide rules may only clean up incomplete uploads
            assert set(rule) == {"Id", "Status", "AbortIncompleteMultipartUpload"}, rule
        else:
            assert prefix in {"drafts/", "customers/"}
            assert set(rule) <= {"Id", "Status", "Prefix", "NoncurrentVersionExpiration", "ExpiredObjectDeleteMarker"}


def test_one_notification_per_customer_prefix_to_its_queue(sample: Synth) -> None:
    notifications = _metadata_bucket(sample)["NotificationConfiguration"]
    assert set(notifications) == {"QueueConfigurations"}
    assert notifications["QueueConfigurations"] == [
        {
            "Event": "s3:ObjectCreated:*",
            "Filter": {
                "S3Key": {
                    "Rules": [{"Name": "prefix", "Value": f"customers/{code}/"}, {"Name": "suffix", "Value": ".json"}]
                }
            },
            "Queue": f"arn:aws:sqs:{REGION}:{GOV}:customer-{code}-changes",
        }
        for code in CODES
    ] + [
        {
            "Event": "s3:ObjectCreated:*",
            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": prefix}, {"Name": "suffix", "Value": ".json"}]}},
            "Queue": names.coordinator_queue_arn(REGION, GOV),
        }
        for prefix in ("archive/", "processing/", "delivery/")
    ]
    assert not sample.resources(STORAGE_STACK, "AWS::Events::Rule")
    assert not sample.resources(STORAGE_STACK, "AWS::Lambda::Function"), "notifications must not need a custom resource"


def _bucket_statements(sample: Synth) -> dict[str, dict[str, Any]]:
    bucket_id = next(
        lid
        for lid, b in sample.resources(STORAGE_STACK, "AWS::S3::Bucket").items()
        if b["Properties"].get("BucketName") == BUCKET
    )
    for policy in sample.resources(STORAGE_STACK, "AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] == {"Ref": bucket_id}:
            return {s["Sid"]: s for s in statements(policy) if "Sid" in s}
    raise AssertionError("no metadata bucket policy")


def test_bucket_policy_scopes_processors_by_principal_tag_not_by_customer(sample: Synth) -> None:
    sids = _bucket_statements(sample)
    assert set(sids) == {
        "ProcessorsReadArchive",
        "ProcessorsReadDeleteOwnTriggers",
        "ProcessorsReadWriteOwnProcessing",
        "ProcessorsAndSweeperList",
        "SweeperReadArchiveTriggersAndProcessing",
        "SweeperDeleteAndTagTriggers",
        "SweeperCreateMissingTriggers",
        "DenyProcessorsOutsideTheirPrefixes",
        "DenyUntaggedProcessorsTriggersAndProcessing",
        "DenyProcessorsWriteArchive",
        "DenyUnconditionalArchiveAndProcessingWrites",
        "DenyProcessorsUnconditionalTriggerDeletes",
        "DenyArchiveWritesWithOtherEncryption",
        "CoordinatorList",
        "CoordinatorReadArchiveAndProcessing",
        "CoordinatorWriteArchiveIfMatch",
        "CoordinatorCreateArchiveIfNoneMatch",
        "CoordinatorReadDelivery",
        "CoordinatorWriteDeliveryIfMatch",
        "CoordinatorCreateDeliveryIfNoneMatch",
        "OperatorListAndRead",
        "OperatorSubmitAndRestore",
        "OperatorCleanUpAndSweepTriggers",
    }
    for sid in ("OperatorListAndRead", "OperatorSubmitAndRestore", "OperatorCleanUpAndSweepTriggers"):
        operator = [f"arn:aws:iam::{GOV}:role/ttp-operator", f"arn:aws:iam::{GOV}:user/ttp-operator"]
        assert sids[sid]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": operator}}, sid
    processors = {"aws:PrincipalArn": f"arn:aws:iam::{GOV}:role/ttp-processor-*"}
    archive = sids["ProcessorsReadArchive"]
    assert archive["Principal"] == {"AWS": f"arn:aws:iam::{GOV}:root"}
    assert archive["Action"] == "s3:GetObject"  # read-only: the coordinator folds the results (docs/design.md §1)
    assert archive["Condition"] == {"ArnLike": processors}
    assert _text(archive["Resource"]).endswith('"/archive/*"]]}')

    for sid, actions, prefix in (
        ("ProcessorsReadDeleteOwnTriggers", ["s3:DeleteObject", "s3:GetObject"], "customers"),
        ("ProcessorsReadWriteOwnProcessing", ["s3:GetObject", "s3:PutObject"], "processing"),
    ):
        own = sids[sid]
        assert sorted(own["Action"]) == actions
        assert own["Condition"]["ArnLike"] == processors
        assert own["Condition"]["Null"] == {"aws:PrincipalTag/customer_code": "false"}
        assert _text(own["Resource"]).endswith(f'"/{prefix}/${{aws:PrincipalTag/customer_code}}/*"]]}}')

    # Constant size: nothing in the policy names a customer.
    policy_text = _text(sids)
    for code in CODES:
        assert f"customers/{code}" not in policy_text and f"processor-{code}" not in policy_text
        assert f"processing/{code}" not in policy_text
    # Nobody gets anything on drafts/.
    for statement in sids.values():
        if statement["Effect"] == "Allow" and "drafts/" in _text(statement["Resource"]):
            raise AssertionError(statement)


def test_bucket_policy_lets_the_sweeper_list_read_delete_and_create_triggers_only(sample: Synth) -> None:
    sids = _bucket_statements(sample)
    sweeper = f"arn:aws:iam::{GOV}:role/{names.SWEEPER_ROLE_NAME}"
    read = sids["SweeperReadArchiveTriggersAndProcessing"]
    assert read["Action"] == "s3:GetObject" and read["Condition"] == {"ArnEquals": {"aws:PrincipalArn": sweeper}}
    # It reads the processing objects too: a result recorded there lets it delete the trigger (docs/design.md §6).
    assert [_text(r).rsplit("/", 2)[-2] for r in read["Resource"]] == ["archive", "customers", "processing"]
    delete = sids["SweeperDeleteAndTagTriggers"]
    assert sorted(delete["Action"]) == sorted(["s3:DeleteObject", *TAGGING])
    assert _text(delete["Resource"]).endswith('"/customers/*"]]}')
    listing = sids["ProcessorsAndSweeperList"]
    assert listing["Action"] == "s3:ListBucket"
    assert sweeper in listing["Condition"]["ArnLike"]["aws:PrincipalArn"]
    # Fan-out repair: a missing trigger is created, never overwritten (If-None-Match).
    create = sids["SweeperCreateMissingTriggers"]
    assert create["Action"] == "s3:PutObject" and _text(create["Resource"]).endswith('"/customers/*"]]}')
    assert create["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": sweeper},
        "Null": {"s3:if-none-match": "false"},
    }


# --- CustomerStack: queue --------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_queue_and_dlq_names_encryption_redrive(sample: Synth, code: str) -> None:
    stack = customer_stack_name(code)
    queues = {
        q["Properties"]["QueueName"]: (lid, q["Properties"])
        for lid, q in sample.resources(stack, "AWS::SQS::Queue").items()
    }
    assert set(queues) == {names.queue_name(code), names.dead_letter_queue_name(code)}
    key_id, key = next(iter(sample.resources(stack, "AWS::KMS::Key").items()))
    assert key["Properties"]["EnableKeyRotation"] is True
    dlq_id, dlq = queues[names.dead_letter_queue_name(code)]
    _, queue = queues[names.queue_name(code)]
    for props in (queue, dlq):
        assert props["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["VisibilityTimeout"] == 300
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert dlq["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"arn:aws:sqs:{REGION}:{GOV}:{names.queue_name(code)}"],
    }
    alias = sample.only(stack, "AWS::KMS::Alias")
    assert alias["Properties"]["AliasName"] == names.queue_key_alias(code)


@pytest.mark.parametrize("code", CODES)
def test_queue_policy_admits_only_the_bucket_with_source_conditions(sample: Synth, code: str) -> None:
    stack = customer_stack_name(code)
    policies = sample.resources(stack, "AWS::SQS::QueuePolicy")
    assert len(policies) == 2  # queue and DLQ
    source = {
        "StringEquals": {"aws:SourceAccount": MGMT},
        "ArnLike": {"aws:SourceArn": BUCKET_ARN},
    }
    allows = [s for p in policies.values() for s in statements(p) if s["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allows[0]["Action"] == "sqs:SendMessage"
    assert allows[0]["Condition"] == source
    for policy in policies.values():
        ssl = [s for s in statements(policy) if s["Effect"] == "Deny"]
        assert ssl and ssl[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    key_policy = statements(sample.only(stack, "AWS::KMS::Key"))
    s3_use = [s for s in key_policy if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
    assert len(s3_use) == 1
    assert sorted(s3_use[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # AWS's documented form for a service event source: no condition (the queue policy binds the bucket).
    assert "Condition" not in s3_use[0]
    others = [s for s in key_policy if s not in s3_use]
    assert others == [
        {"Action": "kms:*", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{GOV}:root"}, "Resource": "*"}
    ]


# --- CustomerStack: processor ----------------------------------------------------------------------


def _task_definition(sample: Synth, code: str) -> dict[str, Any]:
    return sample.only(customer_stack_name(code), "AWS::ECS::TaskDefinition")


@pytest.mark.parametrize("code", CODES)
def test_worker_environment_is_exactly_the_runtime_settings(
    sample: Synth, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _task_definition(sample, code)
    env = env_of(task)
    assert set(env) == {env_var(name) for name in WorkerSettings.model_fields}
    assert secrets_of(task) == {}
    customer = sample.config.customer(code)
    assert env["TTP_CUSTOMER_CODE"] == code
    assert env["TTP_BUCKET_NAME"] == BUCKET
    assert env["TTP_QUEUE_URL"] == f"https://sqs.{REGION}.amazonaws.com/{GOV}/customer-{code}-changes"
    assert env["TTP_SENDER_ROLE_ARN"] == f"arn:aws:iam::{customer.account}:role/ttp-ses-sender-{code}"
    assert env["TTP_SENDER_EXTERNAL_ID"] == customer.external_id
    assert env["TTP_FROM_ADDRESS"] == customer.from_address
    assert env["TTP_METRICS_NAMESPACE"] == "CustomMetrics"
    queue = next(
        q["Properties"]
        for q in sample.resources(customer_stack_name(code), "AWS::SQS::Queue").values()
        if q["Properties"]["QueueName"] == names.queue_name(code)
    )
    assert int(env["TTP_VISIBILITY_TIMEOUT_SECONDS"]) == queue["VisibilityTimeout"]
    # The runtime accepts what the stack sets.
    settings = settings_from(WorkerSettings, env, monkeypatch)
    assert settings.customer_code == code
    assert settings.send_rate_per_second == customer.send_rate_per_second


@pytest.mark.parametrize("code", CODES)
def test_container_command_stop_timeout_and_hardening(sample: Synth, code: str) -> None:
    task = _task_definition(sample, code)["Properties"]
    container = task["ContainerDefinitions"][0]
    assert container["Command"] == ["python", "-m", "runtime", "worker"]
    assert container["StopTimeout"] == MAX_FARGATE_STOP_TIMEOUT == 120
    assert float(env_of(_task_definition(sample, code))["TTP_DRAIN_SECONDS"]) < container["StopTimeout"]
    assert container["ReadonlyRootFilesystem"] is True
    assert container["MountPoints"] == [{"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert (task["Cpu"], task["Memory"]) == ("256", "512")
    assert task["Family"] == names.service_name(code)
    log_group = sample.only(customer_stack_name(code), "AWS::Logs::LogGroup")["Properties"]
    assert log_group == {"LogGroupName": names.log_group_name(code), "RetentionInDays": 90, **_tags(log_group)}


def _tags(props: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": props["Tags"]} if "Tags" in props else {}


@pytest.mark.parametrize("code", CODES)
def test_service_is_private_with_circuit_breaker(sample: Synth, code: str) -> None:
    service = sample.only(customer_stack_name(code), "AWS::ECS::Service")["Properties"]
    assert service["ServiceName"] == names.service_name(code)
    assert service["LaunchType"] == "FARGATE"
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    outputs = [subnet["Fn::GetStackOutput"]["OutputName"] for subnet in network["Subnets"]]
    assert len(outputs) == 2 and all("tasksSubnet" in name for name in outputs)  # the private-with-egress subnets
    group = sample.only(customer_stack_name(code), "AWS::EC2::SecurityGroup")["Properties"]
    assert "SecurityGroupIngress" not in group
    assert group["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to AWS APIs and Graph",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


@pytest.mark.parametrize("code", CODES)
def test_task_role_is_named_tagged_and_least_privilege(sample: Synth, code: str) -> None:
    stack = customer_stack_name(code)
    role_id, role = role_named(sample, stack, names.processor_role_name(code))
    assert {"Key": names.CUSTOMER_TAG_KEY, "Value": code} in role["Properties"]["Tags"]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": GOV},
                "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{GOV}:*"},
            },
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        }
    ]
    queue_id = next(
        lid
        for lid, q in sample.resources(stack, "AWS::SQS::Queue").items()
        if q["Properties"]["QueueName"] == names.queue_name(code)
    )
    key_id = next(iter(sample.resources(stack, "AWS::KMS::Key")))
    granted: dict[str, list[Any]] = {}
    denied = [s for s in policies_of_role(sample, stack, role_id) if s["Effect"] == "Deny"]
    # Whatever else it allows: no object outside archive/ and its own two prefixes (literal, no variables).
    assert denied == [
        {
            "Action": sorted(PROCESSOR_DENIED_OBJECT_ACTIONS),
            "Effect": "Deny",
            "NotResource": [
                f"{BUCKET_ARN}/archive/*",
                f"{BUCKET_ARN}/processing/{code}/*",
                f"{BUCKET_ARN}/customers/{code}/*",
            ],
            "Sid": "DenyObjectsOutsideOwnPrefixes",
        }
    ]
    for statement in policies_of_role(sample, stack, role_id):
        if statement["Effect"] == "Deny":
            continue
        if statement.get("Sid") == "ScaleInProtectionOfItsOwnTask":  # only tasks its own service tagged
            assert statement["Condition"] == {"StringEquals": {f"aws:ResourceTag/{names.CUSTOMER_TAG_KEY}": code}}
        else:
            assert "Condition" not in statement
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    customer = sample.config.customer(code)
    assert granted == {
        "sqs:ChangeMessageVisibility": [{"Fn::GetAtt": [queue_id, "Arn"]}],
        "sqs:DeleteMessage": [{"Fn::GetAtt": [queue_id, "Arn"]}],
        "sqs:GetQueueAttributes": [{"Fn::GetAtt": [queue_id, "Arn"]}],
        "sqs:GetQueueUrl": [{"Fn::GetAtt": [queue_id, "Arn"]}],
        "sqs:ReceiveMessage": [{"Fn::GetAtt": [queue_id, "Arn"]}],
        "kms:Decrypt": [{"Fn::GetAtt": [key_id, "Arn"]}],
        "s3:GetObject": [
            f"{BUCKET_ARN}/archive/*",
            f"{BUCKET_ARN}/processing/{code}/*",
            f"{BUCKET_ARN}/customers/{code}/*",
        ],
        "s3:PutObject": [f"{BUCKET_ARN}/processing/{code}/*"],  # never archive/*: the coordinator folds
        "s3:DeleteObject": [f"{BUCKET_ARN}/customers/{code}/*"],
        "s3:ListBucket": [BUCKET_ARN],
        "sts:AssumeRole": [f"arn:aws:iam::{customer.account}:role/ttp-ses-sender-{code}"],
        # scale-in protection while messages are in flight (the ECS agent calls these with the task role)
        "ecs:GetTaskProtection": [f"arn:aws:ecs:{REGION}:{GOV}:task/*"],
        "ecs:UpdateTaskProtection": [f"arn:aws:ecs:{REGION}:{GOV}:task/*"],
    }
    # Only the execution role reads secrets or pulls images; the task role has no managed policies.
    assert "ManagedPolicyArns" not in role["Properties"]


def test_a_processor_cannot_touch_another_customers_triggers_queue_or_roles(sample: Synth) -> None:
    for code in CODES:
        stack = customer_stack_name(code)
        role_id, _ = role_named(sample, stack, names.processor_role_name(code))
        text = _text(policies_of_role(sample, stack, role_id))
        for other in CODES:
            if other == code:
                continue
            assert f"customers/{other}/" not in text
            assert f'ttp-ses-sender-{other}"' not in text
            assert f"customer-{other}-changes" not in text
        assert '"customers/*"' not in text and "customers/*" not in text.replace(f"customers/{code}/*", "")
        assert "ttp-contact-reader" not in text  # no meetings configured in the sample


@pytest.mark.parametrize(("code", "minimum", "maximum"), [("hts", 1, 2), ("htsnonprod", 0, 2)])
def test_autoscaling_on_queue_depth(sample: Synth, code: str, minimum: int, maximum: int) -> None:
    stack = customer_stack_name(code)
    target = sample.only(stack, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (minimum, maximum)
    policies = {
        lid: p["Properties"] for lid, p in sample.resources(stack, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
    }
    assert len(policies) == 2
    scale_out = next(p for lid, p in policies.items() if "ScaleOut" in lid)
    assert scale_out["PolicyType"] == "StepScaling"
    assert scale_out["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 19, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 19, "ScalingAdjustment": 2},
    ]
    scale_in = next(p for lid, p in policies.items() if "ScaleIn" in lid)
    assert scale_in["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}
    ]
    alarms = sample.resources(stack, "AWS::CloudWatch::Alarm")
    upper = next(a["Properties"] for lid, a in alarms.items() if "ScaleOut" in lid)
    # One waiting message starts a task (also from zero).
    assert upper["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert upper["Threshold"] == 1 and upper["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (upper["Period"], upper["EvaluationPeriods"]) == (60, 1)
    lower = next(a["Properties"] for lid, a in alarms.items() if "ScaleIn" in lid)
    assert lower["Threshold"] == 0 and lower["EvaluationPeriods"] == 10
    assert {m["Id"] for m in lower["Metrics"]} == {"expr_1", "visible", "inflight"}


# --- CustomerStack: alarms -------------------------------------------------------------------------

# docs/design.md §6: (alarm, severity, threshold, metric names that must appear, comparison)
EXPECTED_ALARMS = [
    ("trigger-age-critical", "critical", 900, {"TriggerAge", "OldestTriggerAge"}, "GreaterThanThreshold"),
    ("trigger-age-warning", "warning", 600, {"TriggerAge", "OldestTriggerAge"}, "GreaterThanThreshold"),
    (
        "archive-update-failure-critical",
        "critical",
        5,
        {"ArchiveUpdateFailure", "ArchiveUpdateSuccess"},
        "GreaterThanThreshold",
    ),
    (
        "archive-update-failure-warning",
        "warning",
        2,
        {"ArchiveUpdateFailure", "ArchiveUpdateSuccess"},
        "GreaterThanThreshold",
    ),
    ("queue-depth-critical", "critical", 50, {"ApproximateNumberOfMessagesVisible"}, "GreaterThanThreshold"),
    ("queue-depth-warning", "warning", 20, {"ApproximateNumberOfMessagesVisible"}, "GreaterThanThreshold"),
    ("queue-depth-info", "info", 10, {"ApproximateNumberOfMessagesVisible"}, "GreaterThanThreshold"),
    (
        "tasks-down-critical",
        "critical",
        1,
        {"RunningTaskCount", "ApproximateNumberOfMessagesVisible"},
        "GreaterThanOrEqualToThreshold",
    ),
    ("cpu-warning", "warning", 80, {"CPUUtilization"}, "GreaterThanThreshold"),
    ("memory-info", "info", 70, {"MemoryUtilization"}, "GreaterThanThreshold"),
    (
        "trigger-delete-failure-info",
        "info",
        10,
        {"TriggerDeleteFailure", "TriggerDeletionRate"},
        "GreaterThanThreshold",
    ),
    ("processing-duration-info", "info", 300, {"ProcessingDuration"}, "GreaterThanThreshold"),
    ("dlq-messages-critical", "critical", 0, {"ApproximateNumberOfMessagesVisible"}, "GreaterThanThreshold"),
    # Issue 13: SES review levels (bounce 5 %, complaint 0.1 %) and earlier warnings.
    ("bounce-rate-critical", "critical", 5, {"EmailsBounced", "EmailsDelivered"}, "GreaterThanThreshold"),
    ("bounce-rate-warning", "warning", 2, {"EmailsBounced", "EmailsDelivered"}, "GreaterThanThreshold"),
    ("complaint-rate-critical", "critical", 0.1, {"EmailsComplained", "EmailsDelivered"}, "GreaterThanThreshold"),
    ("complaint-rate-warning", "warning", 0.05, {"EmailsComplained", "EmailsDelivered"}, "GreaterThanThreshold"),
]


def _alarms_by_name(sample: Synth, code: str) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in sample.resources(customer_stack_name(code), "AWS::CloudWatch::Alarm").values()
        if "AlarmName" in a["Properties"]
    }


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if "Metrics" in alarm:
        return [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    return [
        {
            "Metric": {
                "MetricName": alarm["MetricName"],
                "Namespace": alarm["Namespace"],
                "Dimensions": alarm.get("Dimensions", []),
            },
            "Stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            "Period": alarm["Period"],
        }
    ]


@pytest.mark.parametrize("code", CODES)
def test_every_design_threshold_is_an_alarm_on_the_right_metric(sample: Synth, code: str) -> None:
    alarms = _alarms_by_name(sample, code)
    assert set(alarms) == {f"ttp-{code}-{name}" for name, *_ in EXPECTED_ALARMS}
    for name, severity, threshold, metric_names, comparison in EXPECTED_ALARMS:
        alarm = alarms[f"ttp-{code}-{name}"]
        assert alarm["Threshold"] == threshold, name
        assert alarm["ComparisonOperator"] == comparison, name
        assert alarm["TreatMissingData"] == "notBreaching", name
        topic = names.alarm_topic_arn(REGION, GOV, severity)  # type: ignore[arg-type]
        assert alarm["AlarmActions"] == [topic], name
        assert alarm.get("OKActions", []) == ([topic] if severity in ("critical", "warning") else []), name
        assert alarm["AlarmDescription"].startswith(f"[{severity}] {code}:"), name
        stats = _metric_stats(alarm)
        assert {s["Metric"]["MetricName"] for s in stats} == metric_names, name
        for stat in stats:
            metric = stat["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if metric["Namespace"] == "CustomMetrics":
                assert dims == {"CustomerCode": code}, name
            elif metric["Namespace"] == "AWS/SQS":
                queue = names.dead_letter_queue_name(code) if name.startswith("dlq") else names.queue_name(code)
                assert dims == {"QueueName": queue}, name
            else:
                assert metric["Namespace"] in {"AWS/ECS", "ECS/ContainerInsights"}, name
                assert dims == {"ClusterName": names.CLUSTER_NAME, "ServiceName": names.service_name(code)}, name


@pytest.mark.parametrize("code", CODES)
def test_alarm_statistics_and_math(sample: Synth, code: str) -> None:
    alarms = _alarms_by_name(sample, code)

    def expression(name: str) -> str:
        return next(m["Expression"] for m in alarms[f"ttp-{code}-{name}"]["Metrics"] if "Expression" in m)

    assert expression("trigger-age-critical") == "MAX([FILL(age, 0), FILL(oldest, 0)])"
    assert {s["Stat"] for s in _metric_stats(alarms[f"ttp-{code}-trigger-age-critical"])} == {"Maximum"}
    assert expression("archive-update-failure-critical") == (
        "IF((FILL(fail, 0) + FILL(ok, 0)) > 0, 100 * FILL(fail, 0) / (FILL(fail, 0) + FILL(ok, 0)), 0)"
    )
    assert expression("tasks-down-critical") == "IF(FILL(running, 0) == 0 AND FILL(waiting, 0) > 0, 1, 0)"
    down = alarms[f"ttp-{code}-tasks-down-critical"]
    assert (down["EvaluationPeriods"], down["DatapointsToAlarm"]) == (5, 5)
    assert {s["Metric"]["Namespace"] for s in _metric_stats(down)} == {"ECS/ContainerInsights", "AWS/SQS"}
    assert _metric_stats(alarms[f"ttp-{code}-processing-duration-info"])[0]["Stat"] == "Maximum"
    assert _metric_stats(alarms[f"ttp-{code}-queue-depth-critical"])[0]["Stat"] == "Maximum"


@pytest.mark.parametrize("code", CODES)
def test_customer_dashboard(sample: Synth, code: str) -> None:
    dashboard = sample.only(customer_stack_name(code), "AWS::CloudWatch::Dashboard")["Properties"]
    assert dashboard["DashboardName"] == f"ttp-customer-{code}"
    body = json.loads(dashboard["DashboardBody"])
    titles = [w["properties"].get("title") for w in body["widgets"] if w["type"] != "text"]
    assert {"Trigger Creation vs Deletion", "Trigger Age (seconds)", "Archive Update Success/Failure", "Alarms"} <= set(
        titles
    )
    alarm_widget = next(w for w in body["widgets"] if w["type"] == "alarm")
    assert len(alarm_widget["properties"]["alarms"]) == len(EXPECTED_ALARMS)


# --- CustomerAccountStack -------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_sender_role_trusts_only_its_processor_with_external_id(sample: Synth, code: str) -> None:
    stack = customer_account_stack_name(code)
    customer = sample.config.customer(code)
    roles = sample.resources(stack, "AWS::IAM::Role")
    role_id, role = role_named(sample, stack, names.sender_role_name(code))
    # No contact-reader role without meetings; the other role is the forwarding rule's (EventBridge only).
    others = [r for lid, r in roles.items() if lid != role_id]
    assert [r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] for r in others] == [
        {"Service": "events.amazonaws.com"}
    ]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": customer.external_id},
                "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{GOV}:role/ttp-processor-{code}"},
            },
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{GOV}:root"},
        }
    ]
    ses = f"arn:aws:ses:{REGION}:{customer.account}"
    contact_list = f"{ses}:contact-list/change-notifications"
    domain = customer.from_address.split("@")[1]
    assert policies_of_role(sample, stack, role_id) == [
        {
            "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Condition": {"StringEquals": {"ses:FromAddress": customer.from_address}},
            "Effect": "Allow",
            # Exactly the configuration set the worker sends with (issue 13).
            "Resource": sorted(
                [
                    f"{ses}:identity/{customer.from_address}",
                    f"{ses}:identity/{domain}",
                    contact_list,
                    f"{ses}:configuration-set/{names.configuration_set_name(code)}",
                ]
            ),
            "Sid": "SendFromOwnIdentity",
        },
        {
            "Action": ["ses:GetContactList", "ses:ListContacts"],
            "Effect": "Allow",
            "Resource": contact_list,
            "Sid": "ReadContactList",
        },
    ]
    assert role["Properties"]["MaxSessionDuration"] == 3600


# --- PlatformStack ---------------------------------------------------------------------------------


def test_cluster_network_and_topics(sample: Synth) -> None:
    template = sample.template(PLATFORM_STACK)
    template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterName": names.CLUSTER_NAME, "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})
    subnets = sample.resources(PLATFORM_STACK, "AWS::EC2::Subnet")
    private = [s for s in subnets.values() if not s["Properties"]["MapPublicIpOnLaunch"]]
    assert len(private) == 2
    assert len({s["Properties"]["AvailabilityZone"] for s in private}) == 2
    topics = sample.resources(PLATFORM_STACK, "AWS::SNS::Topic")
    assert sorted(t["Properties"]["TopicName"] for t in topics.values()) == [
        "ttp-alarms-critical",
        "ttp-alarms-info",
        "ttp-alarms-warning",
    ]
    key_id = next(iter(sample.resources(PLATFORM_STACK, "AWS::KMS::Key")))
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    for policy in sample.resources(PLATFORM_STACK, "AWS::SNS::TopicPolicy").values():
        deny = [s for s in statements(policy) if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    key = sample.resources(PLATFORM_STACK, "AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in statements({"Properties": key}))


def test_overview_dashboard_is_the_pure_body(sample: Synth) -> None:
    dashboard = sample.only(PLATFORM_STACK, "AWS::CloudWatch::Dashboard")["Properties"]
    assert dashboard["DashboardName"] == names.OVERVIEW_DASHBOARD_NAME
    assert json.loads(dashboard["DashboardBody"]) == overview_dashboard_body(region=REGION)


def test_sweeper_task_schedule_and_environment(sample: Synth, monkeypatch: pytest.MonkeyPatch) -> None:
    task = task_definition(sample, PLATFORM_STACK, SWEEPER_TASK_FAMILY)
    container = task["Properties"]["ContainerDefinitions"][0]
    assert container["Command"] == ["python", "-m", "runtime", "sweep"]
    env = env_of(task)
    assert set(env) == {env_var(name) for name in OpsSettings.model_fields}
    ops = settings_from(
        OpsSettings,
        {k: v for k, v in env.items() if isinstance(v, str)},
        monkeypatch,
        TTP_CLUSTER_NAME=names.CLUSTER_NAME,
    )
    assert ops.customer_queues == {code: names.queue_url(REGION, GOV, code) for code in CODES}
    assert json.loads(env["TTP_CUSTOMER_CODES"]) == sorted(CODES)
    assert json.loads(env["TTP_CUSTOMER_QUEUES"]) == {}  # issue 19: the URLs are derived, none is elsewhere
    assert env["TTP_BUCKET_NAME"] == BUCKET
    assert env["TTP_CLUSTER_NAME"] == {"Ref": next(iter(sample.resources(PLATFORM_STACK, "AWS::ECS::Cluster")))}
    (rule,) = [
        r["Properties"]
        for r in sample.resources(PLATFORM_STACK, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    ecs_target = rule["Targets"][0]["EcsParameters"]
    assert ecs_target["LaunchType"] == "FARGATE"
    assert ecs_target["NetworkConfiguration"]["AwsVpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_sweeper_role_permissions(sample: Synth) -> None:
    role_id, _ = role_named(sample, PLATFORM_STACK, names.SWEEPER_ROLE_NAME)
    granted: dict[str, list[Any]] = {}
    for statement in policies_of_role(sample, PLATFORM_STACK, role_id):
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    assert granted == {
        "s3:ListBucket": [BUCKET_ARN],
        "s3:GetObject": [f"{BUCKET_ARN}/archive/*", f"{BUCKET_ARN}/customers/*", f"{BUCKET_ARN}/processing/*"],
        "s3:DeleteObject": [f"{BUCKET_ARN}/customers/*"],
        **{action: [f"{BUCKET_ARN}/customers/*"] for action in TAGGING},
        "s3:PutObject": [f"{BUCKET_ARN}/customers/*"],
        "sqs:SendMessage": [f"arn:aws:sqs:{REGION}:{GOV}:customer-*-changes"],
        "kms:GenerateDataKey": [f"arn:aws:kms:{REGION}:{GOV}:key/*"],
        "kms:Decrypt": [f"arn:aws:kms:{REGION}:{GOV}:key/*"],
    }
    create = next(s for s in policies_of_role(sample, PLATFORM_STACK, role_id) if s["Action"] == "s3:PutObject")
    assert create["Condition"] == {"Null": {"s3:if-none-match": "false"}}  # create-only: never an overwrite
    kms = next(s for s in policies_of_role(sample, PLATFORM_STACK, role_id) if "kms:Decrypt" in as_list(s["Action"]))
    assert kms["Condition"] == {
        "StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"},
        "ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/ttp/customer-*-changes"},
    }


# --- The whole app -----------------------------------------------------------------------------------


def test_stack_environments_and_deploy_order(sample: Synth) -> None:
    pipeline = sample.pipeline
    assert pipeline.storage.account == MGMT and pipeline.platform.account == GOV
    for code in CODES:
        customer = sample.config.customer(code)
        assert pipeline.customers[code].account == GOV
        assert pipeline.customer_accounts[code].account == customer.account
    manifest = json.loads((sample.outdir / "manifest.json").read_text())["artifacts"]

    def depends(stack: str) -> set[str]:
        return {d for d in manifest[stack].get("dependencies", []) if not d.endswith(".assets")}

    # The bucket's notifications target the customer queues and the coordinator's queue (platform stack).
    assert depends(STORAGE_STACK) == {customer_stack_name(c) for c in CODES} | {
        customer_account_stack_name(c) for c in CODES
    } | {PLATFORM_STACK}
    for code in CODES:
        assert depends(customer_stack_name(code)) == {PLATFORM_STACK}
        assert depends(customer_account_stack_name(code)) == {customer_stack_name(code)}
    assert depends(PLATFORM_STACK) == set()


def test_customer_stacks_stay_small(sample: Synth) -> None:
    for code in CODES:
        count = len(sample.templates[customer_stack_name(code)]["Resources"])
        assert 25 <= count <= 40, count


def test_template_match_helper_is_wired(sample: Synth) -> None:
    """Guards the helpers above: a wrong expectation must fail."""
    template = sample.template(customer_stack_name("hts"))
    template.has_resource_properties("AWS::SQS::Queue", {"QueueName": "customer-hts-changes"})
    with pytest.raises(Exception):  # noqa: B017 - jsii raises a generic JSII error
        template.has_resource_properties("AWS::SQS::Queue", {"QueueName": Match.exact("customer-other-changes")})
