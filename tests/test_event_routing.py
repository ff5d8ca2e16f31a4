"""Issue 18: ``routing: eventbridge`` runs on the emulator (devtools/local_deploy/event_routing.py).

The sample assembly synthesized with the ``ttp:routing`` context set to ``eventbridge`` is deployed on an
emulator that enforces IAM; an object written to the bucket reaches the queues of the deployed rules that
match it, each delivery decided by the policy engine from the deployed role, queue and key policies. The
last tests build buses and rules through the API: the routing is that of any bus and rule, not of the
sample's names (issue 19 shards the customers over several buses).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.emulator import LocalAws
from devtools.enforcement import Enforcement
from devtools.local_deploy import DeployReport, deploy_assembly
from devtools.local_deploy.event_routing import DELIVERED, DENIED, NOT_FORWARDED, router
from devtools.local_deploy.resolve import Aws
from runtime.notify.email_tags import email_tags, tags_from_event
from runtime.worker import parse_message_body
from stacks.app_builder import default_context
from stacks.config import ROUTING_KEY
from tests.support.synth import GOV, MGMT, REGION, Synth, synthesize

BUCKET = f"ttp-metadata-{MGMT}-{REGION}"
OTHER = "555555555555"
HTS_ACCOUNT = "333333333333"  # the sample's customer account of hts (its SES)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {**copy.deepcopy(default_context()), ROUTING_KEY: "eventbridge"}
    return synthesize(tmp_path_factory.mktemp("eventbridge-variant"), context, nag=False, read_metadata=False)


@pytest.fixture(scope="module")
def enforcement() -> Enforcement:
    return Enforcement()


@pytest.fixture(scope="module")
def server(enforcement: Enforcement) -> Iterator[LocalAws]:
    emulator = LocalAws(enforce=enforcement).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def deployed(variant: Synth, server: LocalAws, enforcement: Enforcement) -> DeployReport:
    server.reset()
    report = deploy_assembly(variant.outdir, server.endpoint)
    enforcement.world = report.world
    return report


def client(server: LocalAws, service: str, account: str) -> Any:
    return Aws(server.endpoint).client(service, account, REGION)


def drain(server: LocalAws, queue: str, account: str = GOV) -> list[dict[str, Any]]:
    """Every message of the queue (received and deleted), as parsed JSON bodies."""
    sqs = client(server, "sqs", account)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def keys_of(bodies: list[dict[str, Any]]) -> list[str]:
    return sorted(record.key for body in bodies for record in parse_message_body(json.dumps(body)))


def put(server: LocalAws, *keys: str, writer: str = MGMT) -> None:
    s3 = client(server, "s3", writer)
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")


def test_a_trigger_reaches_its_customers_queue_and_no_other(deployed: DeployReport, server: LocalAws) -> None:
    assert not deployed.failed
    for queue in ("customer-hts-changes", "customer-htsnonprod-changes", "ttp-change-coordinator"):
        drain(server, queue)
    put(server, "customers/hts/CHG-1.json", "customers/htsnonprod/CHG-2.json", "customers/hts/notes.txt")
    hts = drain(server, "customer-hts-changes")
    assert keys_of(hts) == ["customers/hts/CHG-1.json"]
    assert keys_of(drain(server, "customer-htsnonprod-changes")) == ["customers/htsnonprod/CHG-2.json"]
    assert drain(server, "ttp-change-coordinator") == []  # a trigger is not the coordinator's
    [event] = hts
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    assert event["account"] == MGMT and event["resources"] == [f"arn:aws:s3:::{BUCKET}"]
    assert event["detail"]["object"]["etag"] and event["detail"]["reason"] == "PutObject"


def test_an_object_written_from_another_account_goes_to_the_bucket_owners_bus(
    deployed: DeployReport, server: LocalAws
) -> None:
    """The operator writes from the governance account; S3 sends the event to the bucket account's bus."""
    drain(server, "customer-hts-changes")
    put(server, "customers/hts/CHG-5.json", writer=GOV)
    [event] = drain(server, "customer-hts-changes")
    assert event["account"] == MGMT and event["detail"]["object"]["key"] == "customers/hts/CHG-5.json"


def test_the_coordinators_queue_gets_the_archive_and_processing_events(
    deployed: DeployReport, server: LocalAws
) -> None:
    drain(server, "ttp-change-coordinator")
    put(server, "archive/CHG-1.json", "processing/CHG-1/hts.json", "delivery/CHG-1/x.json", "drafts/CHG-1.json")
    assert keys_of(drain(server, "ttp-change-coordinator")) == [
        "archive/CHG-1.json",
        "delivery/CHG-1/x.json",
        "processing/CHG-1/hts.json",
    ]


def test_each_delivery_is_decided_by_the_deployed_policies(
    deployed: DeployReport, server: LocalAws, enforcement: Enforcement
) -> None:
    """The router role delivers across accounts only as the queue policy admits it: with a queue policy that
    admits another role, the trigger is denied (and nothing arrives)."""
    drain(server, "customer-hts-changes")
    queue_arn = f"arn:aws:sqs:{REGION}:{GOV}:customer-hts-changes"
    world = deployed.world.account(GOV)
    saved = world.policies[queue_arn]
    before = enforcement.counts.allowed
    put(server, "customers/hts/CHG-3.json")
    assert enforcement.counts.allowed > before  # assume role, SendMessage, the key: each asked of the engine
    broken = json.loads(json.dumps(saved).replace("ttp-eventbridge-router", "someone-else"))
    assert broken != saved
    world.policies[queue_arn] = broken
    try:
        put(server, "customers/hts/CHG-4.json")
    finally:
        world.policies[queue_arn] = saved
    assert keys_of(drain(server, "customer-hts-changes")) == ["customers/hts/CHG-3.json"]
    last = [d for d in router.deliveries if d.target == queue_arn][-1]
    assert last.outcome == DENIED and "sqs:SendMessage" in last.reason, last


def bus_with_rule(server: LocalAws, bus: str, rule: str, pattern: dict[str, Any], target: str, role: str) -> None:
    events = client(server, "events", GOV)
    if bus != "default" and bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "t", "Arn": target, "RoleArn": role}])


def test_any_bus_forwards_to_any_bus_once_and_queues_in_the_account_their_arn_names(
    deployed: DeployReport, server: LocalAws
) -> None:
    """default → shard-1 (a forwarding rule) → a queue of another account; shard-1's rule that forwards on
    to shard-2 does not (EventBridge forwards once); a rule whose pattern does not match gets nothing.
    Every target is invoked as a role whose trust, permissions and the queue's policy the engine decides."""
    iam = client(server, "iam", GOV)
    trust = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = iam.create_role(
        RoleName="shard-router", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )["Role"]["Arn"]
    queue_arn = f"arn:aws:sqs:{REGION}:{OTHER}:shard-queue"
    allow = [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": f"arn:aws:events:{REGION}:{GOV}:event-bus/*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
    ]
    iam.put_role_policy(
        RoleName="shard-router",
        PolicyName="route",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": allow}),
    )
    sqs = client(server, "sqs", OTHER)
    admit = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{GOV}:root"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:PrincipalArn": role}},
    }
    url = sqs.create_queue(
        QueueName="shard-queue", Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [admit]})}
    )["QueueUrl"]
    shard_1 = f"arn:aws:events:{REGION}:{GOV}:event-bus/shard-1"
    shard_2 = f"arn:aws:events:{REGION}:{GOV}:event-bus/shard-2"
    bus_with_rule(server, "shard-1", "to-queue", {"detail": {"n": [{"numeric": [">", 1]}]}}, queue_arn, role)
    bus_with_rule(server, "shard-2", "to-queue", {"source": ["test"]}, queue_arn, role)
    bus_with_rule(server, "shard-1", "on-to-shard-2", {"source": ["test"]}, shard_2, role)
    bus_with_rule(server, "default", "to-shard-1", {"source": ["test"]}, shard_1, role)
    client(server, "events", GOV).put_events(
        Entries=[{"Source": "test", "DetailType": "t", "Detail": json.dumps({"n": n})} for n in (1, 2)]
    )
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert [body["detail"] for body in bodies] == [{"n": 2}]
    assert bodies[0]["account"] == GOV and isinstance(bodies[0]["time"], str)
    outcomes = {(d.rule.rpartition(":")[2], d.outcome) for d in router.deliveries if d.source == "test"}
    assert outcomes == {
        ("rule/to-shard-1", DELIVERED),
        ("rule/shard-1/to-queue", DELIVERED),
        ("rule/shard-1/on-to-shard-2", NOT_FORWARDED),
    }


def test_an_email_to_the_bounce_simulator_yields_a_bounce_event_on_the_delivery_events_queue(
    deployed: DeployReport, server: LocalAws, enforcement: Enforcement
) -> None:
    """Issue 18: no publishing step. The customer account's SES accepts an email with its configuration set;
    the event destination as deployed puts its events on the account's default bus, the forwarding rule sends
    them with its role to the governance bus (bus policy: ``events:source``), whose rule sends them to the
    delivery-events queue (queue and key policies), each request decided by the engine."""
    drain(server, "ttp-delivery-events")
    denied = enforcement.counts.denied
    ses = client(server, "sesv2", HTS_ACCOUNT)
    ses.create_email_identity(EmailIdentity="hts.example.com")
    message_id = ses.send_email(
        FromEmailAddress="changes@hts.example.com",
        Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
        ConfigurationSetName="ttp-hts",
        EmailTags=email_tags("CHG-1", "hts", 1),
    )["MessageId"]
    send, bounce = drain(server, "ttp-delivery-events")
    assert [send["detail"]["eventType"], bounce["detail"]["eventType"]] == ["Send", "Bounce"]
    assert bounce["detail-type"] == "Email Bounced" and bounce["account"] == HTS_ACCOUNT
    assert bounce["detail"]["bounce"]["bounceType"] == "Permanent"
    assert bounce["detail"]["mail"]["messageId"] == message_id
    assert tags_from_event(bounce["detail"]["mail"]["tags"]) == ("CHG-1", "hts", 1)
    hops = {(d.rule.rpartition(":")[2], d.outcome) for d in router.deliveries if d.event_id == bounce["id"]}
    assert hops == {
        ("rule/ttp-forward-ses-events", DELIVERED),
        ("rule/ttp-delivery-events/ttp-delivery-events", DELIVERED),
    }
    assert enforcement.counts.denied == denied
