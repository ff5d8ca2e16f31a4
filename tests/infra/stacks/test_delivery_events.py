"""SES delivery events (issue 13), proven on the synthesized templates.

Customer account: configuration set with suppression, event destination to the default bus, the forwarding
rule and its role; governance account: the bus (admitting only the customer accounts), its rule, the queue
(DLQ, KMS, SSL), the coordinator's environment and permissions; the processor's configuration set; the bucket
routing ``delivery/`` to the coordinator; the bounce and complaint alarms.
"""

from __future__ import annotations

from typing import Any

import pytest

from cdk_constructs.ses_delivery_events import PUBLISHED_EVENTS
from runtime.contract import keys, names
from runtime.contract.settings import env_var
from runtime.contract.thresholds import DEFAULT_THRESHOLDS
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from stacks.config import ConfigError, parse_config
from tests.infra._shared_synth import OWN_CONFIGURATION_SET, own_configuration_set_app
from tests.support.synth import (
    GOV,
    REGION,
    Synth,
    as_list,
    env_of,
    policies_of_role,
    role_named,
    sample_context,
    statements,
    task_definition,
)

EVENT_TYPES = [
    "send",
    "delivery",
    "bounce",
    "complaint",
    "reject",
    "deliveryDelay",
    "subscription",
    "renderingFailure",
]
BUS_ARN = f"arn:aws:events:{REGION}:{GOV}:event-bus/{names.DELIVERY_EVENTS_BUS_NAME}"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{GOV}/{names.DELIVERY_EVENTS_QUEUE_NAME}"


def _account_stack(synth: Synth, code: str) -> str:
    return customer_account_stack_name(code)


def _forward_rules(synth: Synth, code: str) -> list[dict[str, Any]]:
    return list(synth.resources(_account_stack(synth, code), "AWS::Events::Rule").values())


# --- customer account --------------------------------------------------------------------------------


def test_published_event_types_are_the_eight_of_the_issue() -> None:
    assert [event.name for event in PUBLISHED_EVENTS] == [
        "SEND",
        "DELIVERY",
        "BOUNCE",
        "COMPLAINT",
        "REJECT",
        "DELIVERY_DELAY",
        "SUBSCRIPTION",
        "RENDERING_FAILURE",
    ]


@pytest.mark.parametrize("code", ["hts", "htsnonprod"])
def test_each_customer_account_has_its_configuration_set_with_suppression(sample: Synth, code: str) -> None:
    config_set = sample.only(_account_stack(sample, code), "AWS::SES::ConfigurationSet")["Properties"]
    assert config_set["Name"] == names.configuration_set_name(code)
    assert sorted(config_set["SuppressionOptions"]["SuppressedReasons"]) == ["BOUNCE", "COMPLAINT"]


@pytest.mark.parametrize("code", ["hts", "htsnonprod"])
def test_every_event_type_goes_to_the_accounts_default_bus(sample: Synth, code: str) -> None:
    account = next(c.account for c in sample.config.customers if c.code == code)
    stack = _account_stack(sample, code)
    destination = sample.only(stack, "AWS::SES::ConfigurationSetEventDestination")["Properties"]
    (set_id,) = sample.resources(stack, "AWS::SES::ConfigurationSet")
    assert destination["ConfigurationSetName"] == {"Ref": set_id}
    event_destination = destination["EventDestination"]
    assert event_destination["Enabled"] is True
    assert event_destination["EventBridgeDestination"] == {
        "EventBusArn": f"arn:aws:events:{REGION}:{account}:event-bus/default"
    }
    assert event_destination["MatchingEventTypes"] == EVENT_TYPES


@pytest.mark.parametrize("code", ["hts", "htsnonprod"])
def test_the_forwarding_rule_sends_the_sets_ses_events_to_the_governance_bus(sample: Synth, code: str) -> None:
    stack = _account_stack(sample, code)
    account = next(c.account for c in sample.config.customers if c.code == code)
    (rule,) = _forward_rules(sample, code)
    props = rule["Properties"]
    assert props["Name"] == names.DELIVERY_FORWARD_RULE_NAME and props["EventBusName"] == "default"
    assert props["EventPattern"] == {
        "source": ["aws.ses"],
        "detail": {"mail": {"tags": {"ses:configuration-set": [names.configuration_set_name(code)]}}},
    }
    (target,) = props["Targets"]
    assert target["Arn"] == BUS_ARN
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    # The execution role: assumable only by EventBridge for this rule, may only put events on that bus.
    role = sample.templates[stack]["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnEquals": {"aws:SourceArn": f"arn:aws:events:{REGION}:{account}:rule/{names.DELIVERY_FORWARD_RULE_NAME}"},
    }
    (statement,) = policies_of_role(sample, stack, role_id)
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Allow", "events:PutEvents", BUS_ARN)


@pytest.mark.parametrize("code", ["hts", "htsnonprod"])
def test_the_sender_role_may_use_exactly_its_configuration_set(sample: Synth, code: str) -> None:
    stack = _account_stack(sample, code)
    _, _role = role_named(sample, stack, names.sender_role_name(code))
    role_id, _ = role_named(sample, stack, names.sender_role_name(code))
    resources = [str(r) for s in policies_of_role(sample, stack, role_id) for r in as_list(s["Resource"])]
    sets = [r for r in resources if ":configuration-set/" in r]
    assert sets == [f"arn:aws:ses:{REGION}:{_account(sample, code)}:configuration-set/ttp-{code}"]


def _account(synth: Synth, code: str) -> str:
    return next(c.account for c in synth.config.customers if c.code == code)


@pytest.fixture(scope="module")
def own_set(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """hts keeps its own configuration set; both customers share one account (one forwarding rule)."""
    return own_configuration_set_app(tmp_path_factory)


def test_an_existing_configuration_set_gets_the_destination_and_is_not_created(own_set: Synth) -> None:
    stack = _account_stack(own_set, "hts")
    assert own_set.resources(stack, "AWS::SES::ConfigurationSet") == {}
    destination = own_set.only(stack, "AWS::SES::ConfigurationSetEventDestination")["Properties"]
    assert destination["ConfigurationSetName"] == OWN_CONFIGURATION_SET
    assert destination["EventDestination"]["MatchingEventTypes"] == EVENT_TYPES
    role_id, _ = role_named(own_set, stack, names.sender_role_name("hts"))
    resources = [str(r) for s in policies_of_role(own_set, stack, role_id) for r in as_list(s["Resource"])]
    assert [r for r in resources if ":configuration-set/" in r] == [
        f"arn:aws:ses:{REGION}:{_account(own_set, 'hts')}:configuration-set/{OWN_CONFIGURATION_SET}"
    ]
    # ... and the processor sends with it.
    processor = task_definition(own_set, customer_stack_name("hts"), names.service_name("hts"))
    assert env_of(processor)[env_var("configuration_set")] == OWN_CONFIGURATION_SET


def test_one_forwarding_rule_per_account_matching_all_its_platform_sets(own_set: Synth) -> None:
    (rule,) = _forward_rules(own_set, "hts")
    tags = rule["Properties"]["EventPattern"]["detail"]["mail"]["tags"]["ses:configuration-set"]
    assert tags == sorted([OWN_CONFIGURATION_SET, names.configuration_set_name("htsnonprod")])
    assert _forward_rules(own_set, "htsnonprod") == []
    # The second customer still has its own set and destination.
    stack = _account_stack(own_set, "htsnonprod")
    config_set = own_set.only(stack, "AWS::SES::ConfigurationSet")["Properties"]
    assert config_set["Name"] == names.configuration_set_name("htsnonprod")
    own_set.only(stack, "AWS::SES::ConfigurationSetEventDestination")


@pytest.mark.parametrize("code", ["hts", "htsnonprod"])
def test_the_processor_sends_with_the_platforms_configuration_set(sample: Synth, code: str) -> None:
    processor = task_definition(sample, customer_stack_name(code), names.service_name(code))
    assert env_of(processor)[env_var("configuration_set")] == names.configuration_set_name(code)


# --- governance account ------------------------------------------------------------------------------


def test_the_governance_bus_admits_only_the_customer_accounts(sample: Synth) -> None:
    bus = sample.only(PLATFORM_STACK, "AWS::Events::EventBus")["Properties"]
    assert bus["Name"] == names.DELIVERY_EVENTS_BUS_NAME
    # Nothing else on it: one policy, one statement.
    policy = sample.only(PLATFORM_STACK, "AWS::Events::EventBusPolicy")["Properties"]
    statement = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "events:PutEvents"
    accounts = sorted({c.account for c in sample.config.customers})
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]}
    assert statement["Condition"] == {"ForAllValues:StringEquals": {"events:source": ["aws.ses"]}}
    assert GOV not in str(statement["Principal"]) and sample.config.accounts.management not in str(statement)


def test_the_delivery_rule_feeds_the_queue_with_the_customer_accounts_ses_events(sample: Synth) -> None:
    rules = {
        r["Properties"]["Name"]: r["Properties"] for r in sample.resources(PLATFORM_STACK, "AWS::Events::Rule").values()
    }
    rule = rules[names.DELIVERY_EVENTS_RULE_NAME]
    (bus_id,) = sample.resources(PLATFORM_STACK, "AWS::Events::EventBus")
    assert rule["EventBusName"] == {"Ref": bus_id}
    # Issue 19: no account list (it grew per account; the bus policy above decides the accounts).
    assert rule["EventPattern"] == {"source": ["aws.ses"]}
    (target,) = rule["Targets"]
    queue_id = target["Arn"]["Fn::GetAtt"][0]
    assert sample.templates[PLATFORM_STACK]["Resources"][queue_id]["Properties"]["QueueName"] == (
        names.DELIVERY_EVENTS_QUEUE_NAME
    )


def _queue(synth: Synth, name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, queue in synth.resources(PLATFORM_STACK, "AWS::SQS::Queue").items():
        if queue["Properties"]["QueueName"] == name:
            return logical_id, queue["Properties"]
    raise AssertionError(name)


def test_the_delivery_queue_has_a_dlq_a_rotated_key_and_ssl_only(sample: Synth) -> None:
    queue_id, queue = _queue(sample, names.DELIVERY_EVENTS_QUEUE_NAME)
    dlq_id, dlq = _queue(sample, names.DELIVERY_EVENTS_DLQ_NAME)
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    key_id = queue["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert dlq["KmsMasterKeyId"]["Fn::GetAtt"][0] == key_id
    assert sample.templates[PLATFORM_STACK]["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    aliases = [a["Properties"] for a in sample.resources(PLATFORM_STACK, "AWS::KMS::Alias").values()]
    assert {
        "AliasName": f"alias/ttp/{names.DELIVERY_EVENTS_QUEUE_NAME}",
        "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
    } in aliases
    policies = {
        p["Properties"]["Queues"][0]["Ref"]: statements(p)
        for p in sample.resources(PLATFORM_STACK, "AWS::SQS::QueuePolicy").values()
    }
    for logical_id in (queue_id, dlq_id):
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policies[logical_id]
        )
    (send,) = [s for s in policies[queue_id] if s["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"} and send["Action"] == "sqs:SendMessage"
    rule_arn = f"arn:aws:events:{REGION}:{GOV}:rule/{names.DELIVERY_EVENTS_BUS_NAME}/{names.DELIVERY_EVENTS_RULE_NAME}"
    assert send["Condition"] == {"StringEquals": {"aws:SourceAccount": GOV}, "ArnEquals": {"aws:SourceArn": rule_arn}}


def test_the_coordinator_consumes_the_delivery_queue(sample: Synth) -> None:
    coordinator = task_definition(sample, PLATFORM_STACK, names.COORDINATOR_SERVICE_NAME)
    assert env_of(coordinator)[env_var("delivery_queue_url")] == QUEUE_URL
    queue_id, queue = _queue(sample, names.DELIVERY_EVENTS_QUEUE_NAME)
    key_id = queue["KmsMasterKeyId"]["Fn::GetAtt"][0]
    role_id, _ = role_named(sample, PLATFORM_STACK, names.COORDINATOR_ROLE_NAME)
    granted = policies_of_role(sample, PLATFORM_STACK, role_id)
    receive = [s for s in granted if "sqs:ReceiveMessage" in as_list(s["Action"])]
    assert any({"Fn::GetAtt": [queue_id, "Arn"]} in as_list(s["Resource"]) for s in receive)
    decrypt = [s for s in granted if "kms:Decrypt" in as_list(s["Action"])]
    assert any({"Fn::GetAtt": [key_id, "Arn"]} in as_list(s["Resource"]) for s in decrypt)
    # Processors and the sweeper get nothing of it.
    for stack, role_name in (
        (customer_stack_name("hts"), names.processor_role_name("hts")),
        (PLATFORM_STACK, names.SWEEPER_ROLE_NAME),
    ):
        other_id, _ = role_named(sample, stack, role_name)
        text = str(policies_of_role(sample, stack, other_id))
        assert queue_id not in text and key_id not in text and keys.DELIVERY_PREFIX not in text


# --- bucket routing ----------------------------------------------------------------------------------


def test_delivery_objects_are_routed_to_the_coordinator_by_s3_notifications(sample: Synth) -> None:
    bucket = next(
        b["Properties"]
        for b in sample.resources(STORAGE_STACK, "AWS::S3::Bucket").values()
        if "NotificationConfiguration" in b["Properties"]
    )
    coordinator_arn = names.coordinator_queue_arn(REGION, GOV)
    prefixes = sorted(
        next(r["Value"] for r in q["Filter"]["S3Key"]["Rules"] if r["Name"] == "prefix")
        for q in bucket["NotificationConfiguration"]["QueueConfigurations"]
        if q["Queue"] == coordinator_arn
    )
    assert prefixes == sorted([keys.ARCHIVE_PREFIX, keys.PROCESSING_PREFIX, keys.DELIVERY_PREFIX])


def test_delivery_objects_are_routed_to_the_coordinator_by_eventbridge(multi: Synth) -> None:
    rules = [
        r["Properties"]
        for r in multi.resources(STORAGE_STACK, "AWS::Events::Rule").values()
        if r["Properties"]["Name"].endswith(names.COORDINATOR_NAME)
    ]
    (rule,) = rules
    assert {"wildcard": f"{keys.DELIVERY_PREFIX}*{keys.SUFFIX}"} in rule["EventPattern"]["detail"]["object"]["key"]


# --- alarms ------------------------------------------------------------------------------------------


def _alarm(synth: Synth, code: str, alarm: str) -> dict[str, Any]:
    for resource in synth.resources(customer_stack_name(code), "AWS::CloudWatch::Alarm").values():
        if resource["Properties"].get("AlarmName") == f"ttp-{code}-{alarm}":
            return dict(resource["Properties"])
    raise AssertionError(alarm)


@pytest.mark.parametrize(
    ("alarm", "threshold", "expression"),
    [
        (
            "bounce-rate-warning",
            DEFAULT_THRESHOLDS.bounce_rate_warning_percent,
            "IF((FILL(bounced, 0) + FILL(delivered, 0)) > 0, 100 * FILL(bounced, 0) / "
            "(FILL(bounced, 0) + FILL(delivered, 0)), 0)",
        ),
        (
            "bounce-rate-critical",
            DEFAULT_THRESHOLDS.bounce_rate_critical_percent,
            "IF((FILL(bounced, 0) + FILL(delivered, 0)) > 0, 100 * FILL(bounced, 0) / "
            "(FILL(bounced, 0) + FILL(delivered, 0)), 0)",
        ),
        (
            "complaint-rate-warning",
            DEFAULT_THRESHOLDS.complaint_rate_warning_percent,
            "IF(FILL(delivered, 0) > 0, 100 * FILL(complained, 0) / FILL(delivered, 0), 0)",
        ),
        (
            "complaint-rate-critical",
            DEFAULT_THRESHOLDS.complaint_rate_critical_percent,
            "IF(FILL(delivered, 0) > 0, 100 * FILL(complained, 0) / FILL(delivered, 0), 0)",
        ),
    ],
)
def test_bounce_and_complaint_rate_alarms(sample: Synth, alarm: str, threshold: float, expression: str) -> None:
    props = _alarm(sample, "hts", alarm)
    assert props["Threshold"] == threshold
    assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["TreatMissingData"] == "notBreaching"
    severity = alarm.rsplit("-", 1)[1]
    assert props["AlarmDescription"].startswith(f"[{severity}] hts: More than {threshold:g}% ")
    assert props["AlarmActions"] == [names.alarm_topic_arn(REGION, GOV, severity)]  # type: ignore[arg-type]
    (math,) = [m for m in props["Metrics"] if "Expression" in m]
    assert math["Expression"] == expression
    inputs = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    for stat in inputs.values():
        assert stat["Period"] == 3600 and stat["Stat"] == "Sum"
        assert stat["Metric"]["Namespace"] == sample.config.metrics_namespace
        assert stat["Metric"]["Dimensions"] == [{"Name": "CustomerCode", "Value": "hts"}]
    names_by_id = {i: s["Metric"]["MetricName"] for i, s in inputs.items()}
    assert names_by_id["delivered"] == "EmailsDelivered"
    assert names_by_id.get("bounced", names_by_id.get("complained")) in ("EmailsBounced", "EmailsComplained")


def test_rate_alarm_descriptions_name_the_ses_review_levels(sample: Synth) -> None:
    assert "(SES reviews an account at 5%)" in _alarm(sample, "hts", "bounce-rate-warning")["AlarmDescription"]
    assert "(SES reviews an account at 0.1%)" in _alarm(sample, "hts", "complaint-rate-warning")["AlarmDescription"]


# --- configuration ----------------------------------------------------------------------------------


def _raw(**customer: Any) -> dict[str, Any]:
    raw = dict(sample_context()["ttp"])
    raw["customers"] = [{**raw["customers"][0], **customer}, raw["customers"][1]]
    return raw


def test_an_ses_region_other_than_the_stacks_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"'hts': ses_region 'eu-west-1' differs from accounts.region 'us-east-1'"):
        parse_config(_raw(ses_region="eu-west-1"))
    parse_config(_raw(ses_region=REGION))  # the same region: fine


def test_two_customers_may_not_share_one_configuration_set_in_one_account() -> None:
    raw = _raw(configuration_set="shared")
    raw["customers"][1] = {
        **raw["customers"][1],
        "configuration_set": "shared",
        "account": raw["customers"][0]["account"],
    }
    with pytest.raises(ConfigError, match="name the same configuration_set 'shared'"):
        parse_config(raw)


def test_a_configuration_set_name_ses_would_refuse_is_refused_with_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"'my\.set' must be an SES configuration set name"):
        parse_config(_raw(configuration_set="my.set"))
    assert parse_config(_raw(configuration_set="My_set-1")).customers[0].configuration_set == "My_set-1"
