"""The synth-time quota check (cdk_support/quotas.py): each quota broken on purpose.

Counting quotas are broken at their real size where that is cheap (31 wildcard rules, 101 notification
configurations, a 21 KB bucket policy ...) and with a lowered limit where the real size would need hundreds
of resources (500 resources, 1,000 roles): the limit is a parameter of the check for exactly that.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import (
    App,
    Environment,
    IPolicyValidationContext,
    PolicyValidationPluginReport,
    Stack,
    Validations,
)
from aws_cdk import aws_sqs as sqs

from cdk_support.quotas import (
    QUOTAS,
    QuotaExceededError,
    QuotaValidation,
    SynthesizedStack,
    breaches,
    check,
    measure,
    read_assembly,
)
from tests.support.synth import app_without_validation

ACCOUNT = "222222222222"


def _stack(resources: dict[str, Any], name: str = "S", account: str = ACCOUNT, **extra: Any) -> SynthesizedStack:
    template = {"Resources": resources, **extra}
    return SynthesizedStack(name, account, "us-east-1", template, len(json.dumps(template)))


def _rule(pattern: Any, bus: Any = "default") -> dict[str, Any]:
    return {"Type": "AWS::Events::Rule", "Properties": {"EventBusName": bus, "EventPattern": pattern}}


def _policy(statements: int, resource_length: int = 200) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b/{i}/" + "x" * resource_length}
            for i in range(statements)
        ],
    }


def _the_breach(stacks: list[SynthesizedStack], key: str, limits: dict[str, int] | None = None) -> str:
    with pytest.raises(QuotaExceededError) as raised:
        check(stacks, limits)
    assert [b.usage.quota.key for b in raised.value.breaches] == [key], str(raised.value)
    message = str(raised.value)
    quota = QUOTAS[key]
    assert quota.name in message and "fix: " + quota.fix in message
    return message


def test_resources_per_stack_lowered_limit() -> None:
    stack = _stack({f"Q{i}": {"Type": "AWS::SQS::Queue"} for i in range(3)})
    check([stack], {"cloudformation.resources": 3})
    message = _the_breach([stack], "cloudformation.resources", {"cloudformation.resources": 2})
    assert "S has 3 resources, the limit is 2" in message


def test_template_bytes_lowered_limit() -> None:
    stack = _stack({"Q": {"Type": "AWS::SQS::Queue"}})
    message = _the_breach([stack], "cloudformation.template-bytes", {"cloudformation.template-bytes": 10})
    assert f"has {stack.template_bytes} bytes" in message


def test_outputs_and_parameters_real_size() -> None:
    outputs = _stack({}, Outputs={f"O{i}": {"Value": "x"} for i in range(201)})
    assert "201 outputs" in _the_breach([outputs], "cloudformation.outputs")
    parameters = _stack({}, Parameters={f"P{i}": {"Type": "String"} for i in range(201)})
    assert "201 parameters" in _the_breach([parameters], "cloudformation.parameters")


def test_rules_per_bus_are_counted_across_stacks_of_one_account_and_bus() -> None:
    pattern = {"source": ["aws.s3"]}
    first = _stack({"R1": _rule(pattern), "R2": _rule(pattern)}, "A")
    second = _stack({"R3": _rule(pattern)}, "B")
    other_account = _stack({"R4": _rule(pattern)}, "C", account="333333333333")
    other_bus = _stack({"R5": _rule(pattern, bus="ttp-triggers-00")}, "D")
    stacks = [first, second, other_account, other_bus]
    check(stacks, {"events.rules-per-bus": 3})
    message = _the_breach(stacks, "events.rules-per-bus", {"events.rules-per-bus": 2})
    assert f"bus default in {ACCOUNT}/us-east-1 has 3 rules" in message


def test_rules_on_a_bus_of_the_same_template_are_counted_on_that_bus() -> None:
    bus = {"Type": "AWS::Events::EventBus", "Properties": {"Name": "ttp-triggers-01"}}
    rules = {f"R{i}": _rule({"source": ["aws.s3"]}, bus={"Ref": "Bus"}) for i in range(2)}
    message = _the_breach([_stack({"Bus": bus, **rules})], "events.rules-per-bus", {"events.rules-per-bus": 1})
    assert "bus ttp-triggers-01 in" in message


def test_wildcard_rules_per_bus_real_size() -> None:
    """31 wildcard rules on one bus: what routing 'eventbridge' makes of 30 customers and the coordinator."""
    wildcard = {"detail": {"object": {"key": [{"wildcard": "customers/c1/*.json"}]}}}
    prefix = {"detail": {"object": {"key": [{"prefix": "customers/c1/"}]}}}
    rules = {f"W{i}": _rule(wildcard) for i in range(30)} | {f"P{i}": _rule(prefix) for i in range(5)}
    check([_stack(rules)])
    rules["W30"] = _rule(wildcard)
    assert "has 31 rules, the limit is 30" in _the_breach([_stack(rules)], "events.wildcard-rules-per-bus")


def test_event_pattern_size_real_size() -> None:
    pattern = {"account": [f"{i:012d}" for i in range(140)]}
    message = _the_breach([_stack({"R": _rule(pattern)})], "events.pattern-size")
    assert "S/R has" in message


def test_bus_policy_size_lowered_limit_and_real_size() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "events:PutEvents",
    }
    policy = {"Type": "AWS::Events::EventBusPolicy", "Properties": {"EventBusName": "b", "Statement": statement}}
    stack = _stack({"P": policy})
    _the_breach([stack], "events.bus-policy-size", {"events.bus-policy-size": 50})
    big = {"Version": "2012-10-17", "Statement": [statement] * 120}
    bus = {"Type": "AWS::Events::EventBus", "Properties": {"Name": "b", "Policy": big}}
    _the_breach([_stack({"B": bus})], "events.bus-policy-size")


def test_notification_configurations_real_size() -> None:
    configurations = [{"Event": "s3:ObjectCreated:*", "Queue": f"arn:aws:sqs:us-east-1:1:q{i}"} for i in range(101)]
    bucket = {
        "Type": "AWS::S3::Bucket",
        "Properties": {"NotificationConfiguration": {"QueueConfigurations": configurations}},
    }
    message = _the_breach([_stack({"Bucket": bucket})], "s3.notification-configurations")
    assert "S/Bucket has 101 configurations, the limit is 100" in message


def test_bucket_policy_key_policy_and_iam_policy_sizes_real_size() -> None:
    bucket_policy = {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": _policy(90)}}
    _the_breach([_stack({"P": bucket_policy})], "s3.bucket-policy-size")
    key = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": _policy(140)}}
    _the_breach([_stack({"K": key})], "kms.key-policy-size")
    managed = {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": _policy(25)}}
    _the_breach([_stack({"M": managed})], "iam.managed-policy-size")


def test_role_inline_policies_add_up_per_role() -> None:
    """Two AWS::IAM::Policy resources of 6 KB each on one role: 12 KB of the role's 10,240 characters."""
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": _policy(1, 10)}}
    half = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": _policy(23), "Roles": [{"Ref": "Role"}]}}
    check([_stack({"Role": role, "P1": half})])
    message = _the_breach([_stack({"Role": role, "P1": half, "P2": half})], "iam.role-inline-policy-size")
    assert "role S/Role has" in message


def test_trust_policy_real_size() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": _policy(10)}}
    _the_breach([_stack({"Role": role})], "iam.trust-policy-size")


def test_roles_and_stacks_per_account_lowered_limit() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": _policy(1, 10)}}
    stacks = [_stack({"Role": role}, f"S{i}") for i in range(3)]
    message = _the_breach(stacks, "iam.roles-per-account", {"iam.roles-per-account": 2})
    assert f"account {ACCOUNT} has 3 roles" in message
    _the_breach(stacks, "cloudformation.stacks", {"cloudformation.stacks": 2})


def test_task_definition_size_real_size() -> None:
    """A task environment listing 1,000 customers' queue URLs (the sweeper's ``TTP_CUSTOMER_QUEUES``)."""
    queues = {
        f"c{i:04d}": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/customer-c{i:04d}-changes" for i in range(1000)
    }
    container = {"Name": "sweeper", "Environment": [{"Name": "TTP_CUSTOMER_QUEUES", "Value": json.dumps(queues)}]}
    task = {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [container]}}
    _the_breach([_stack({"T": task})], "ecs.task-definition-size")


def test_references_count_as_an_arn_not_as_their_json() -> None:
    """``{"Fn::GetAtt": [...]}`` counts 64 characters, ``{"Ref": "AWS::Partition"}`` three."""
    policy = {"Statement": [{"Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b"]]}}]}
    key = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}
    (usage,) = [u for u in measure([_stack({"K": key})]) if u.quota.key == "kms.key-policy-size"]
    assert usage.count == len('{"Statement":[{"Resource":"arn:aws:s3:::b"}]}')


def test_unknown_limit_key_is_refused_naming_the_keys() -> None:
    with pytest.raises(ValueError, match=re.escape("unknown quota keys ['events.rules']; use one of")):
        breaches([], {"events.rules": 1})


def _app_with_queues(outdir: Path, queues: int) -> App:
    app = app_without_validation(outdir=str(outdir))
    stack = Stack(app, "Small", env=Environment(account=ACCOUNT, region="us-east-1"))
    for i in range(queues):
        sqs.Queue(stack, f"Q{i}")
    return app


def test_the_plugin_fails_the_synth_naming_quota_count_and_fix(tmp_path: Path) -> None:
    app = _app_with_queues(tmp_path / "bad", 3)
    Validations.of(app).add_plugins(QuotaValidation(app, {"cloudformation.resources": 2}))
    with pytest.raises(Exception, match="quota 'CloudFormation resources per stack'") as raised:
        app.synth()
    assert "Small has 3 resources, the limit is 2; fix: move what grows per customer" in str(raised.value)
    fine = _app_with_queues(tmp_path / "fine", 2)
    Validations.of(fine).add_plugins(QuotaValidation(fine, {"cloudformation.resources": 2}))
    assembly = fine.synth()
    assert [s.name for s in read_assembly(assembly.directory)] == ["Small"]
    assert read_assembly(assembly.directory)[0].account == ACCOUNT


class _CountingQuotaValidation(QuotaValidation):
    """The plugin, counting the jsii round trips its ``validate`` makes (each a request to the node process)."""

    round_trips = 0

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        from jsii._kernel.providers import process

        original = process._NodeProcess.send

        def counted(node: Any, request: Any, response_type: Any) -> Any:
            _CountingQuotaValidation.round_trips += 1
            return original(node, request, response_type)

        process._NodeProcess.send = counted  # type: ignore[method-assign]
        try:
            return super().validate(context)
        finally:
            process._NodeProcess.send = original  # type: ignore[method-assign]


def _round_trips_of_validate(outdir: Path, stacks: int) -> int:
    app = app_without_validation(outdir=str(outdir))
    for i in range(stacks):
        sqs.Queue(Stack(app, f"S{i}", env=Environment(account=ACCOUNT, region="us-east-1")), "Q")
    _CountingQuotaValidation.round_trips = 0
    Validations.of(app).add_plugins(_CountingQuotaValidation(app))
    app.synth()
    return _CountingQuotaValidation.round_trips


def test_the_plugin_asks_node_nothing_per_stack(tmp_path: Path) -> None:
    """Synth time (issue 19): the check reads each stack's name and environment from the manifest CDK wrote
    before its plugins run, not from the app's construct tree over jsii (a walk of every construct and four
    round trips per stack: 8 per customer)."""
    assert _round_trips_of_validate(tmp_path / "one", 1) == _round_trips_of_validate(tmp_path / "six", 6)


def test_the_plugin_names_a_stack_by_its_stack_name_and_its_account(tmp_path: Path) -> None:
    app = app_without_validation(outdir=str(tmp_path))
    stack = Stack(app, "Construct", stack_name="Deployed-name", env=Environment(account=ACCOUNT, region="eu-west-1"))
    for i in range(3):
        sqs.Queue(stack, f"Q{i}")
    Validations.of(app).add_plugins(QuotaValidation(app, {"cloudformation.resources": 2}))
    with pytest.raises(Exception, match="Deployed-name has 3 resources, the limit is 2"):
        app.synth()
