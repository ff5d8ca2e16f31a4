"""Deploy each stack of an assembly on the emulator: moto's CloudFormation first, then the rest by API."""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtools.local_deploy import tables
from devtools.local_deploy.assembly import DeployError, StackArtifact
from devtools.local_deploy.resolve import (
    Aws,
    Resolver,
    queue_arn_of_url,
    queue_url_of_arn,
    references,
    replace_stack_outputs,
)

if TYPE_CHECKING:
    from devtools.iam_engine.bootstrap import BootstrapGate
    from devtools.iam_engine.templates import Assembly

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"  # at least the version the templates' CheckBootstrapVersion rule requires
PLACEHOLDER_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
}
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


@dataclass
class AccountWorld:
    """What one account holds that moto keeps nowhere (or that the runner and the policy engine need)."""

    policies: dict[str, Any] = field(default_factory=dict)  # resource ARN -> its resource policy document
    task_definitions: dict[str, Any] = field(default_factory=dict)  # family -> arn, roles, containers
    services: dict[str, Any] = field(default_factory=dict)  # service name -> cluster, family, desired count
    managed_policies: dict[str, list[str]] = field(default_factory=dict)  # role ARN -> AWS managed policy ARNs
    recorded: list[dict[str, Any]] = field(default_factory=list)  # recorded, not emulated
    assets: list[dict[str, Any]] = field(default_factory=list)  # container images and files: not built
    ses_event_destinations: list[dict[str, Any]] = field(default_factory=list)  # resolved; devtools.ses_events


@dataclass
class World:
    """The deployed world: per account, what the emulator alone cannot tell the runner or the policy engine."""

    accounts: dict[str, AccountWorld] = field(default_factory=dict)

    def account(self, account: str) -> AccountWorld:
        return self.accounts.setdefault(account, AccountWorld())

    def to_json(self) -> dict[str, Any]:
        return {
            account: {
                "policies": world.policies,
                "task_definitions": world.task_definitions,
                "services": world.services,
                "managed_policies": world.managed_policies,
                "recorded": world.recorded,
                "assets": world.assets,
                "ses_event_destinations": world.ses_event_destinations,
            }
            for account, world in sorted(self.accounts.items())
        }


@dataclass
class StackReport:
    stack_name: str
    account: str
    region: str
    created: Counter[str] = field(default_factory=Counter)  # type -> count, by moto's CloudFormation
    applied: Counter[str] = field(default_factory=Counter)  # type or type.Property -> count, by the API
    recorded: Counter[str] = field(default_factory=Counter)  # type or type.Property -> count
    failure: str = ""


@dataclass
class Deployed:
    """One stack once created: what the checks of :mod:`devtools.local_deploy.verify` compare."""

    stack: StackArtifact
    resolver: Resolver


def check_template(stack: StackArtifact) -> None:
    """Every section, resource type, attribute and property is one the deployer handles, or it stops here."""
    problems: list[str] = []
    template = stack.template
    for section in template:
        if section not in tables.TEMPLATE_SECTIONS:
            problems.append(f"{stack.stack_name}: template section {section} is not handled by the local deployer")
    for logical_id, resource in template.get("Resources", {}).items():
        type_ = resource.get("Type", "")
        where = f"{stack.stack_name} {logical_id} ({type_})"
        if tables.handling_of(type_) is None:
            problems.append(
                f"{where}: unknown resource type: neither created by the local deployer nor recorded "
                "(add it to a table of devtools/local_deploy/tables.py)"
            )
            continue
        for attribute in set(resource) - {"Type", "Properties"} - tables.RESOURCE_ATTRIBUTES:
            problems.append(f"{where}: resource attribute {attribute} is not handled by the local deployer")
        known = tables.property_table(type_)
        if known is None:
            continue
        for name in resource.get("Properties", {}):
            if name not in known:
                problems.append(
                    f"{where}: property {name} is neither created by the local deployer nor recorded "
                    "(add it to the type's table in devtools/local_deploy/tables.py)"
                )
    if problems:
        raise DeployError("\n".join(problems))


def bootstrap(aws: Aws, account: str, region: str) -> None:
    """What ``cdk bootstrap`` leaves that a template checks: the bootstrap version parameter."""
    aws.client("ssm", account, region).put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )


def check_bootstrap(gate: BootstrapGate, assembly: Assembly, stack: StackArtifact) -> None:
    """Fail before ``stack`` is created if its account's execution role may not make a request its
    creation, update, read-back or deletion needs (the gate's message names each denied request)."""
    from devtools.iam_engine.deploy_actions import UnknownResourceType
    from devtools.iam_engine.templates import PolicyResolutionError

    try:
        refusal = gate.refusal(assembly, stack.stack_name)
    except (UnknownResourceType, PolicyResolutionError) as exc:
        raise DeployError(f"{stack.stack_name}: the bootstrap gate cannot decide the stack: {exc}") from exc
    if refusal is not None:
        raise DeployError(refusal)


def cloudformation_template(stack: StackArtifact, outputs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The part of the template moto's CloudFormation creates faithfully, rewritten around its bugs."""
    template = copy.deepcopy(stack.template)
    resources: dict[str, Any] = template["Resources"]
    removed = {logical_id for logical_id, r in resources.items() if r["Type"] not in tables.CFN_TYPES}
    for logical_id in removed:
        del resources[logical_id]
    for logical_id, resource in resources.items():
        type_ = resource["Type"]
        properties = resource.get("Properties", {})
        for name, handling in tables.CFN_TYPES[type_].items():
            if name in properties and handling in (tables.Handling.DIRECT, tables.Handling.RECORDED):
                del properties[name]
        if type_ == "AWS::KMS::Key":
            properties["KeyPolicy"] = json.dumps(PLACEHOLDER_KEY_POLICY)  # moto requires one; the real one follows
        if type_ == "AWS::SSM::Parameter" and isinstance(properties.get("Tags"), dict):
            properties["Tags"] = [{"Key": k, "Value": v} for k, v in properties["Tags"].items()]
        if type_ == "AWS::Events::Rule" and isinstance(properties.get("EventBusName"), dict):
            bus = properties["EventBusName"].get("Ref")
            if bus not in resources or resources[bus]["Type"] != "AWS::Events::EventBus":
                raise DeployError(f"{stack.stack_name} {logical_id} ({type_}): EventBusName must be a name or a Ref")
            properties["EventBusName"] = resources[bus]["Properties"]["Name"]
            depends = resource.get("DependsOn", [])
            resource["DependsOn"] = [*([depends] if isinstance(depends, str) else depends), bus]
        if "DependsOn" in resource:
            depends = resource["DependsOn"]
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
        dangling = references(properties) & removed
        if dangling:
            raise DeployError(
                f"{stack.stack_name} {logical_id} ({type_}): refers to {sorted(dangling)}, which the local deployer "
                "does not create through CloudFormation"
            )
    for output_name, output in template.get("Outputs", {}).items():
        if references(output.get("Value")) & removed:
            raise DeployError(f"{stack.stack_name}: output {output_name} refers to a resource not created by moto")
    return dict(replace_stack_outputs(stack.stack_name, template, outputs))


def create_stack(aws: Aws, stack: StackArtifact, outputs: dict[str, dict[str, str]], report: StackReport) -> Resolver:
    template = cloudformation_template(stack, outputs)
    cfn = aws.client("cloudformation", stack.account, stack.region)
    try:
        cfn.create_stack(StackName=stack.stack_name, TemplateBody=json.dumps(template), Capabilities=CAPABILITIES)
        described = cfn.describe_stacks(StackName=stack.stack_name)["Stacks"][0]
    except Exception as exc:  # moto answers HTTP 500 on its own bugs: say which stack, and what it said
        raise DeployError(f"{stack.stack_name}: the emulator's CloudFormation failed: {exc}") from exc
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(
            f"{stack.stack_name}: {described['StackStatus']} {described.get('StackStatusReason', '')}".strip()
        )
    listed = {
        summary["LogicalResourceId"]: summary
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack.stack_name)
        for summary in page["StackResourceSummaries"]
    }
    missing = sorted(set(template["Resources"]) - set(listed))
    if missing:
        raise DeployError(
            "\n".join(
                f"{stack.stack_name} {logical_id} ({template['Resources'][logical_id]['Type']}): the emulator's "
                "CloudFormation reported CREATE_COMPLETE without creating it"
                for logical_id in missing
            )
        )
    for resource in template["Resources"].values():
        report.created[resource["Type"]] += 1
    outputs[stack.stack_name] = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return Resolver(
        aws,
        stack.stack_name,
        stack.account,
        stack.region,
        stack.template["Resources"],
        {logical_id: summary.get("PhysicalResourceId", "") for logical_id, summary in listed.items()},
        outputs,
    )


def apply_direct(stack: StackArtifact, resolve: Resolver, world: World, report: StackReport) -> None:
    """Apply what moto's CloudFormation skipped (types and properties), and record what is not emulated."""
    mine = world.account(stack.account)
    for logical_id, resource in stack.template["Resources"].items():
        type_ = resource["Type"]
        properties = resource.get("Properties", {})
        where = f"{stack.stack_name} {logical_id} ({type_})"
        if type_ in tables.RECORDED_TYPES:
            mine.recorded.append({"stack": stack.stack_name, "logical_id": logical_id, "type": type_})
            report.recorded[type_] += 1
            if type_ == "AWS::S3::BucketPolicy":  # for the policy engine: see tables.RECORDED_TYPES
                mine.policies[f"arn:aws:s3:::{resolve(properties['Bucket'])}"] = resolve(properties["PolicyDocument"])
            if type_ == "AWS::SES::ConfigurationSetEventDestination":  # SES publishes as it says: devtools.ses_events
                mine.ses_event_destinations.append(resolve(properties))
            continue
        for name, handling in tables.property_table(type_).items():  # type: ignore[union-attr]
            if name not in properties:
                continue
            if handling is tables.Handling.RECORDED:
                report.recorded[f"{type_}.{name}"] += 1
            elif handling in (tables.Handling.DIRECT, tables.Handling.REAPPLIED) and type_ in tables.CFN_TYPES:
                _apply_property(where, type_, logical_id, name, resolve(properties[name]), resolve)
                report.applied[f"{type_}.{name}"] += 1
        if type_ in tables.DIRECT_TYPES:
            _create_direct(where, type_, resolve(properties), resolve, mine)
            report.applied[type_] += 1
        _record(type_, logical_id, properties, resolve, mine)
    for asset in _assets(stack):
        if asset not in mine.assets:  # the stacks of one account share the image
            mine.assets.append(asset)


def _apply_property(where: str, type_: str, logical_id: str, name: str, value: Any, resolve: Resolver) -> None:
    physical = resolve.ref(logical_id)
    aws, account, region = resolve.aws, resolve.account, resolve.region
    if type_ == "AWS::KMS::Key":
        kms = aws.client("kms", account, region)
        if name == "Tags":
            kms.tag_resource(KeyId=physical, Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in value])
        elif name == "KeyPolicy":
            kms.put_key_policy(KeyId=physical, PolicyName="default", Policy=json.dumps(value))
        else:
            raise DeployError(f"{where}: property {name} is listed as applied by the API but has no code")
        return
    if type_ == "AWS::IAM::Role" and name == "Policies":
        for policy in value:
            aws.client("iam", account, region).put_role_policy(
                RoleName=physical, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        return
    if type_ == "AWS::IAM::Policy" and name == "PolicyDocument":
        policy = resolve.resources[logical_id]["Properties"]
        for role in resolve(policy["Roles"]):
            aws.client("iam", account, region).put_role_policy(
                RoleName=role, PolicyName=resolve(policy["PolicyName"]), PolicyDocument=json.dumps(value)
            )
        return
    s3 = aws.client("s3", account, region)
    if name == "VersioningConfiguration":
        s3.put_bucket_versioning(Bucket=physical, VersioningConfiguration={"Status": value["Status"]})
    elif name == "PublicAccessBlockConfiguration":
        s3.put_public_access_block(Bucket=physical, PublicAccessBlockConfiguration=value)
    elif name == "OwnershipControls":
        s3.put_bucket_ownership_controls(Bucket=physical, OwnershipControls=value)
    elif name == "LifecycleConfiguration":
        rules = [_lifecycle_rule(where, rule) for rule in value["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=physical, LifecycleConfiguration={"Rules": rules})
    elif name == "NotificationConfiguration":
        configuration = notification_configuration(where, value)
        for queue in configuration.get("QueueConfigurations", []):
            _check_destination_queue(where, queue["QueueArn"], aws)
        s3.put_bucket_notification_configuration(Bucket=physical, NotificationConfiguration=configuration)
    else:  # the tables name a property this function does not apply: a bug of the deployer, said loudly
        raise DeployError(f"{where}: property {name} is listed as applied by the API but has no code")


def _lifecycle_rule(where: str, rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    for key, value in rule.items():
        if key in ("Status", "Prefix"):
            continue
        if key == "Id":
            converted["ID"] = value
        elif key == "ExpirationInDays":
            converted.setdefault("Expiration", {})["Days"] = value
        elif key == "ExpiredObjectDeleteMarker":
            converted.setdefault("Expiration", {})["ExpiredObjectDeleteMarker"] = value
        elif key == "NoncurrentVersionExpiration":
            converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": value["NoncurrentDays"]}
        elif key == "AbortIncompleteMultipartUpload":
            converted["AbortIncompleteMultipartUpload"] = value
        else:
            raise DeployError(
                f"{where}: LifecycleConfiguration rule property {key} is not handled by the local deployer"
            )
    return converted


def notification_configuration(where: str, value: dict[str, Any]) -> dict[str, Any]:
    """A bucket's CloudFormation ``NotificationConfiguration`` in the S3 API's shape."""
    converted: dict[str, Any] = {}
    for key, items in value.items():
        if key == "QueueConfigurations":
            converted[key] = [
                {
                    "QueueArn": item["Queue"],
                    "Events": [item["Event"]],
                    **(
                        {"Filter": {"Key": {"FilterRules": item["Filter"]["S3Key"]["Rules"]}}}
                        if "Filter" in item
                        else {}
                    ),
                }
                for item in items
            ]
        elif key == "EventBridgeConfiguration":
            converted[key] = {}
        else:
            raise DeployError(f"{where}: NotificationConfiguration.{key} is not handled by the local deployer")
    return converted


def _check_destination_queue(where: str, queue_arn: str, aws: Aws) -> None:
    """S3 refuses a notification whose destination it cannot validate; so does the local deployer."""
    try:
        region, account, name = queue_url_of_arn(queue_arn)
        aws.client("sqs", account, region).get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    except Exception as exc:
        raise DeployError(
            f"{where}: NotificationConfiguration names the queue {queue_arn}, which does not exist on the "
            f"emulator (S3 would refuse it: Unable to validate the destination configuration): {exc}"
        ) from exc


def _create_direct(where: str, type_: str, properties: dict[str, Any], resolve: Resolver, mine: AccountWorld) -> None:
    aws, account, region = resolve.aws, resolve.account, resolve.region
    if type_ == "AWS::SQS::QueuePolicy":
        document = json.dumps(properties["PolicyDocument"])
        for url in properties["Queues"]:
            aws.client("sqs", account, region).set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})
            mine.policies[queue_arn_of_url(url, region)] = properties["PolicyDocument"]
    elif type_ == "AWS::SNS::TopicPolicy":
        for topic in properties["Topics"]:
            aws.client("sns", account, region).set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
            )
            mine.policies[topic] = properties["PolicyDocument"]
    elif type_ == "AWS::Events::EventBusPolicy":
        statement = properties["Statement"]
        bus = properties["EventBusName"]
        bus_policy = {"Version": "2012-10-17", "Statement": [statement]}
        aws.client("events", account, region).put_permission(EventBusName=bus, Policy=json.dumps(bus_policy))
        arn = f"arn:aws:events:{region}:{account}:event-bus/{bus}"
        mine.policies.setdefault(arn, {"Version": "2012-10-17", "Statement": []})["Statement"].append(statement)
    elif type_ == "AWS::SES::ConfigurationSet":
        aws.client("sesv2", account, region).create_configuration_set(
            ConfigurationSetName=properties["Name"],
            **({"SuppressionOptions": properties["SuppressionOptions"]} if "SuppressionOptions" in properties else {}),
            **({"Tags": properties["Tags"]} if "Tags" in properties else {}),
        )
    else:
        raise DeployError(f"{where}: listed as created by the API but has no code")


def _record(type_: str, logical_id: str, properties: dict[str, Any], resolve: Resolver, mine: AccountWorld) -> None:
    """Keep what the runner and the policy engine need and moto drops: task roles, key policies, services."""
    if type_ == "AWS::ECS::TaskDefinition":
        family = resolve(properties["Family"])
        mine.task_definitions[family] = {
            "arn": resolve.ref(logical_id),
            "task_role_arn": resolve(properties.get("TaskRoleArn", "")),
            "execution_role_arn": resolve(properties.get("ExecutionRoleArn", "")),
            "containers": [
                {
                    "name": c.get("Name", ""),
                    "image": resolve(c.get("Image", "")),
                    "command": resolve(c.get("Command", [])),
                    "environment": {e["Name"]: resolve(e["Value"]) for e in c.get("Environment", [])},
                    "secrets": {s["Name"]: resolve(s["ValueFrom"]) for s in c.get("Secrets", [])},
                }
                for c in properties.get("ContainerDefinitions", [])
            ],
        }
    elif type_ == "AWS::ECS::Service":
        task_definition = resolve(properties["TaskDefinition"])
        mine.services[resolve(properties.get("ServiceName", logical_id))] = {
            "cluster": resolve(properties.get("Cluster", "")),
            "task_definition": task_definition,
            "desired_count": properties.get("DesiredCount"),
            "propagate_tags": properties.get("PropagateTags", "NONE"),
            "tags": {t["Key"]: resolve(t["Value"]) for t in properties.get("Tags", [])},
        }
    elif type_ == "AWS::KMS::Key":
        mine.policies[resolve.get_att(logical_id, "Arn")] = resolve(properties["KeyPolicy"])
    elif type_ == "AWS::IAM::Role" and properties.get("ManagedPolicyArns"):
        mine.managed_policies[resolve.get_att(logical_id, "Arn")] = resolve(properties["ManagedPolicyArns"])


def _assets(stack: StackArtifact) -> list[dict[str, Any]]:
    """Container images are not built (no Docker): their URIs are recorded; so are file assets."""
    found: list[dict[str, Any]] = []
    for asset_hash, image in stack.assets.get("dockerImages", {}).items():
        for destination in image.get("destinations", {}).values():
            found.append(
                {
                    "kind": "container image",
                    "source": image["source"].get("directory", ""),
                    "uri": f"{stack.account}.dkr.ecr.{destination['region']}.amazonaws.com/"
                    f"{destination['repositoryName']}:{destination.get('imageTag', asset_hash)}",
                }
            )
    for file in stack.assets.get("files", {}).values():
        if file["source"].get("path", "").endswith(".template.json"):
            continue  # the template itself: deployed, not an asset
        for destination in file.get("destinations", {}).values():
            found.append(
                {
                    "kind": "file",
                    "source": file["source"].get("path", ""),
                    "uri": f"s3://{destination['bucketName']}/{destination['objectKey']}",
                }
            )
    return found
