"""KMS key policy and queue policy of an event queue (issue 12, docs/infrastructure.md).

The key policy grants the event source's service principal the documented form (kms:GenerateDataKey +
kms:Decrypt, no condition); the queue policy carries the binding to the bucket or the rule
(``aws:SourceAccount`` + ``aws:SourceArn``). A cross-account EventBridge bus sends through the router
role, which may use the key only through SQS.
"""

from __future__ import annotations

import pytest
from aws_cdk import Environment, Stack
from aws_cdk.assertions import Match, Template

from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from runtime.contract import names
from tests.support.synth import app_without_validation

GOV, MGMT, REGION, BUCKET = "222222222222", "111111111111", "us-east-1", "ttp-metadata-111111111111-us-east-1"


def _template(routing: str, source_account: str) -> Template:
    stack = Stack(app_without_validation(), "Queues", env=Environment(account=GOV, region=REGION))
    CustomerQueue(
        stack,
        "Queue",
        CustomerQueueProps(customer_code="hts", source_account=source_account, bucket_name=BUCKET, routing=routing),  # type: ignore[arg-type]
    )
    return Template.from_stack(stack)


def _arn(rest: str) -> dict[str, object]:
    """An ARN as CDK synthesizes it (the partition is a token)."""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, rest]]}


SERVICE_SOURCES = [
    (
        "s3",
        MGMT,
        "s3.amazonaws.com",
        {"StringEquals": {"aws:SourceAccount": MGMT}, "ArnLike": {"aws:SourceArn": _arn(f":s3:::{BUCKET}")}},
    ),
    (
        "eventbridge",
        GOV,
        "events.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": GOV},
            "ArnEquals": {"aws:SourceArn": _arn(f":events:{REGION}:{GOV}:rule/{names.event_rule_name('hts')}")},
        },
    ),
]


@pytest.mark.parametrize(("routing", "source_account", "service", "source"), SERVICE_SOURCES)
def test_service_principal_uses_the_key_in_the_documented_form_and_the_queue_policy_binds_the_source(
    routing: str, source_account: str, service: str, source: dict[str, object]
) -> None:
    template = _template(routing, source_account)
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "AllowTriggerEventSourceToUseKey",
                            "Effect": "Allow",
                            "Principal": {"Service": service},
                            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                            "Resource": "*",
                            "Condition": Match.absent(),
                        }
                    ]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowTriggerEvents",
                                "Effect": "Allow",
                                "Principal": {"Service": service},
                                "Action": "sqs:SendMessage",
                                "Condition": source,
                            }
                        )
                    ]
                )
            }
        },
    )


def test_cross_account_router_role_uses_the_key_only_through_sqs() -> None:
    template = _template("eventbridge", MGMT)
    router = {"ArnEquals": {"aws:PrincipalArn": _arn(f":iam::{MGMT}:role/{names.EVENTBRIDGE_ROUTER_ROLE_NAME}")}}
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowTriggerEventSourceToUseKey",
                                "Condition": {
                                    **router,
                                    "StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"},
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
