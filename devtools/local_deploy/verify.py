"""After a stack is deployed: does what exists on the emulator equal the template, where it matters?

moto's CloudFormation reports ``CREATE_COMPLETE`` for stacks it created only in part, so the deployer
reads back, resource by resource, what the pipeline and the policy engine depend on: the bucket's
notifications, versioning and (recorded) policy, each queue's redrive and policy, each topic's and key's
policy, each task definition's containers (command, environment) and roles, each role's trust policy and
inline policies. Every difference is a line of the error.
"""

from __future__ import annotations

import json
from typing import Any

from devtools.local_deploy.assembly import DeployError, StackArtifact
from devtools.local_deploy.deployer import AccountWorld, notification_configuration
from devtools.local_deploy.resolve import Resolver, queue_arn_of_url


def verify_stack(stack: StackArtifact, resolve: Resolver, world: AccountWorld) -> int:
    """Compare; return how many resources were checked, or raise naming every difference."""
    problems: list[str] = []
    checked = 0
    resources = stack.template["Resources"]
    for logical_id, resource in resources.items():
        type_ = resource["Type"]
        where = f"{stack.stack_name} {logical_id} ({type_})"
        check = _CHECKS.get(type_)
        if check is None:
            continue
        checked += 1
        for problem in check(logical_id, resource.get("Properties", {}), resolve, world, resources):
            problems.append(f"{where}: {problem}")
    if problems:
        raise DeployError("\n".join(problems))
    return checked


def _differs(what: str, expected: Any, found: Any) -> list[str]:
    return [] if expected == found else [f"{what} on the emulator is {found!r}, the template says {expected!r}"]


def _bucket(
    logical_id: str, properties: dict[str, Any], resolve: Resolver, world: AccountWorld, resources: dict[str, Any]
) -> list[str]:
    s3 = resolve.aws.client("s3", resolve.account, resolve.region)
    bucket = resolve.ref(logical_id)
    problems: list[str] = []
    found = s3.get_bucket_notification_configuration(Bucket=bucket)
    found.pop("ResponseMetadata", None)
    expected = notification_configuration(logical_id, resolve(properties.get("NotificationConfiguration", {})))
    problems += _differs("NotificationConfiguration", _notifications(expected), _notifications(found))
    if "VersioningConfiguration" in properties:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "")
        problems += _differs("versioning", properties["VersioningConfiguration"]["Status"], status)
    for policy_id, policy in resources.items():
        if policy["Type"] == "AWS::S3::BucketPolicy" and resolve(policy["Properties"]["Bucket"]) == bucket:
            recorded = world.policies.get(f"arn:aws:s3:::{bucket}")
            expected_policy = resolve(policy["Properties"]["PolicyDocument"])
            problems += _differs(
                f"bucket policy ({policy_id}) in the deployed world's record", expected_policy, recorded
            )
    return problems


def _notifications(configuration: dict[str, Any]) -> Any:
    """Order-free form: S3 answers its own ids and order; what matters is queue, events and filter."""
    queues = sorted(
        json.dumps(
            {
                "queue": item["QueueArn"],
                "events": sorted(item["Events"]),
                "filter": sorted(
                    (rule["Name"].lower(), rule["Value"])
                    for rule in item.get("Filter", {}).get("Key", {}).get("FilterRules", [])
                ),
            },
            sort_keys=True,
        )
        for item in configuration.get("QueueConfigurations", [])
    )
    # Not compared: EventBridgeConfiguration. moto stores it as an empty dict and its answer leaves empty ones
    # out, so it cannot be read back; tests/test_event_routing.py shows objects reaching the rules' queues.
    return {"queues": queues}


def _queue(
    logical_id: str, properties: dict[str, Any], resolve: Resolver, world: AccountWorld, resources: dict[str, Any]
) -> list[str]:
    url = resolve.ref(logical_id)
    sqs = resolve.aws.client("sqs", resolve.account, resolve.region)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    problems: list[str] = []
    expected_redrive = resolve(properties.get("RedrivePolicy"))
    found_redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
    if expected_redrive is not None:
        expected_redrive = {k: str(v) for k, v in expected_redrive.items()}
    if found_redrive is not None:
        found_redrive = {k: str(v) for k, v in found_redrive.items()}
    problems += _differs("RedrivePolicy", expected_redrive, found_redrive)
    if "VisibilityTimeout" in properties:
        problems += _differs(
            "VisibilityTimeout", str(properties["VisibilityTimeout"]), attributes.get("VisibilityTimeout")
        )
    arn = queue_arn_of_url(url, resolve.region)
    expected_policy = None
    for policy in resources.values():
        if policy["Type"] == "AWS::SQS::QueuePolicy" and url in resolve(policy["Properties"]["Queues"]):
            expected_policy = resolve(policy["Properties"]["PolicyDocument"])
    found_policy = json.loads(attributes["Policy"]) if "Policy" in attributes else None
    problems += _differs("queue policy", expected_policy, found_policy)
    problems += _differs("queue policy in the deployed world's record", expected_policy, world.policies.get(arn))
    return problems


def _task_definition(
    logical_id: str, properties: dict[str, Any], resolve: Resolver, world: AccountWorld, resources: dict[str, Any]
) -> list[str]:
    ecs = resolve.aws.client("ecs", resolve.account, resolve.region)
    found = ecs.describe_task_definition(taskDefinition=resolve.ref(logical_id))["taskDefinition"]
    problems: list[str] = []
    containers = {c["name"]: c for c in found["containerDefinitions"]}
    for container in properties["ContainerDefinitions"]:
        name = container["Name"]
        there = containers.get(name)
        if there is None:
            problems.append(f"container {name} is missing")
            continue
        expected_env = {e["Name"]: resolve(e["Value"]) for e in container.get("Environment", [])}
        found_env = {e["name"]: e["value"] for e in there.get("environment", [])}
        problems += _differs(f"container {name} environment", expected_env, found_env)
        problems += _differs(
            f"container {name} command", resolve(container.get("Command", [])), there.get("command", [])
        )
    recorded = world.task_definitions.get(resolve(properties["Family"]), {})
    iam = resolve.aws.client("iam", resolve.account, resolve.region)
    for key, recorded_key in (("TaskRoleArn", "task_role_arn"), ("ExecutionRoleArn", "execution_role_arn")):
        expected = resolve(properties.get(key, ""))
        problems += _differs(f"{key} in the deployed world's record", expected, recorded.get(recorded_key))
        if expected and expected.split(":")[4] == resolve.account:
            try:
                iam.get_role(RoleName=expected.rsplit("/", 1)[-1])
            except Exception:
                problems.append(f"{key} {expected} names a role that does not exist on the emulator")
    return problems


def _role(
    logical_id: str, properties: dict[str, Any], resolve: Resolver, world: AccountWorld, resources: dict[str, Any]
) -> list[str]:
    iam = resolve.aws.client("iam", resolve.account, resolve.region)
    name = resolve.ref(logical_id)
    role = iam.get_role(RoleName=name)["Role"]
    problems = _differs(
        "trust policy", resolve(properties["AssumeRolePolicyDocument"]), role["AssumeRolePolicyDocument"]
    )
    expected: dict[str, Any] = {p["PolicyName"]: resolve(p["PolicyDocument"]) for p in properties.get("Policies", [])}
    for policy in resources.values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": logical_id} in policy["Properties"]["Roles"]:
            expected[resolve(policy["Properties"]["PolicyName"])] = resolve(policy["Properties"]["PolicyDocument"])
    found = {
        policy_name: iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    problems += _differs("inline policies", expected, found)
    managed = resolve(properties.get("ManagedPolicyArns", []))
    problems += _differs(
        "managed policies in the deployed world's record", managed, world.managed_policies.get(role["Arn"], [])
    )
    return problems


def _topic(
    logical_id: str, properties: dict[str, Any], resolve: Resolver, world: AccountWorld, resources: dict[str, Any]
) -> list[str]:
    arn = resolve.ref(logical_id)
    attributes = resolve.aws.client("sns", resolve.account, resolve.region).get_topic_attributes(TopicArn=arn)
    expected = None
    for policy in resources.values():
        if policy["Type"] == "AWS::SNS::TopicPolicy" and arn in resolve(policy["Properties"]["Topics"]):
            expected = resolve(policy["Properties"]["PolicyDocument"])
    if expected is None:
        return []  # moto answers a default policy for a topic without one
    found = json.loads(attributes["Attributes"].get("Policy", "null"))
    return _differs("topic policy", expected, found) + _differs(
        "topic policy in the deployed world's record", expected, world.policies.get(arn)
    )


def _key(
    logical_id: str, properties: dict[str, Any], resolve: Resolver, world: AccountWorld, resources: dict[str, Any]
) -> list[str]:
    kms = resolve.aws.client("kms", resolve.account, resolve.region)
    found = json.loads(kms.get_key_policy(KeyId=resolve.ref(logical_id), PolicyName="default")["Policy"])
    return _differs("key policy", resolve(properties["KeyPolicy"]), found)


_CHECKS = {
    "AWS::SNS::Topic": _topic,
    "AWS::KMS::Key": _key,
    "AWS::S3::Bucket": _bucket,
    "AWS::SQS::Queue": _queue,
    "AWS::ECS::TaskDefinition": _task_definition,
    "AWS::IAM::Role": _role,
}
