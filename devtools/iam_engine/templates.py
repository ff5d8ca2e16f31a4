"""A synthesized cloud assembly's policies as plain JSON documents with concrete ARNs.

The engine reads policy documents; templates hold ``Fn::GetAtt``, ``Ref``, ``Fn::Join``, ``Fn::Sub`` and
``Fn::GetStackOutput`` in them. ``Assembly`` places each stack in its account and region (from the
assembly's ``manifest.json``) and resolves those intrinsics the way CloudFormation would, from the
resources' own names. A name CloudFormation generates (a KMS key id, a role without ``RoleName``) is not
known before a deployment: a stable stand-in is used, or the deployer passes the real one in
``physical_ids``. Anything it cannot resolve fails with the stack, logical id and expression, never a guess.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk_support.assembly import AssemblyStack as Stack
from cdk_support.assembly import environment_of, stack_artifacts, template_path
from devtools.iam_engine.engine import Principal

POLICY_VERSION = "2012-10-17"
SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
STAND_IN_NAMESPACE = uuid.UUID("6f1c3c8e-2f4d-4b55-9a51-7d0c1f1e9b10")


class PolicyResolutionError(ValueError):
    """A template value the resolver cannot make concrete (it names the stack, logical id and expression)."""


@dataclass(frozen=True)
class Role:
    """A role of the assembly: what the engine needs to decide its requests and the requests to assume it."""

    arn: str
    name: str
    account: str
    tags: Mapping[str, str]
    trust_policy: Mapping[str, Any]
    identity_policies: Mapping[str, Mapping[str, Any]]
    unknown_managed_policies: tuple[str, ...] = ()
    """AWS managed policies attached by ARN: their documents are not in the assembly, so they are not
    evaluated (a request they alone would allow is denied here; the caller decides if that matters)."""

    def principal(self, *, extra_policies: Mapping[str, Mapping[str, Any]] | None = None) -> Principal:
        return Principal(self.arn, {**self.identity_policies, **(extra_policies or {})}, self.tags)


@dataclass(frozen=True)
class ResourcePolicy:
    """A bucket, queue or key policy, with the ARN and account of the resource it guards."""

    arn: str
    account: str
    document: Mapping[str, Any]


@dataclass
class Assembly:
    stacks: Mapping[str, Stack]
    physical_ids: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """``(stack name, logical id)`` -> the physical id a deployment gave it (overrides the stand-ins)."""

    @classmethod
    def from_cloud_assembly(cls, outdir: Path, physical_ids: Mapping[tuple[str, str], str] | None = None) -> Assembly:
        """Every stack of a ``cdk synth`` output directory, each in the account and region it is bound to."""
        stacks = {}
        for artifact_id, artifact in stack_artifacts(outdir):
            account, region = environment_of(artifact) or ("", "")
            if not account.isdigit() or not region or region.startswith("unknown"):
                raise PolicyResolutionError(
                    f"stack {artifact_id}: environment {artifact.get('environment')!r} is not concrete; "
                    "give every stack an account and a region (env=Environment(account=..., region=...))"
                )
            name = artifact.get("properties", {}).get("stackName", artifact_id)
            stacks[name] = Stack(name, account, region, json.loads(template_path(outdir, artifact).read_text()))
        return cls(stacks, dict(physical_ids or {}))

    # --- what the engine needs -----------------------------------------------------------------------

    def roles(self) -> Iterator[Role]:
        for stack in self.stacks.values():
            for logical_id in stack.of_type("AWS::IAM::Role"):
                yield self.role(stack.name, logical_id)

    def role_named(self, role_name: str) -> Role:
        found = [role for role in self.roles() if role.name == role_name]
        if len(found) != 1:
            raise PolicyResolutionError(f"expected one role named {role_name!r} in the assembly, found {len(found)}")
        return found[0]

    def role(self, stack_name: str, logical_id: str) -> Role:
        stack = self.stacks[stack_name]
        properties = stack.resources[logical_id].get("Properties", {})
        policies: dict[str, Mapping[str, Any]] = {}
        for inline in properties.get("Policies", []):
            policies[inline["PolicyName"]] = self.resolve(stack_name, inline["PolicyDocument"], logical_id)
        role_name = self.ref(stack_name, logical_id)
        attached = {json.dumps(arn) for arn in properties.get("ManagedPolicyArns", [])}
        for policy_id, policy in stack.resources.items():
            if policy["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            policy_properties = policy.get("Properties", {})
            roles = policy_properties.get("Roles", [])
            if {"Ref": logical_id} in roles or role_name in roles or json.dumps({"Ref": policy_id}) in attached:
                name = policy_properties.get("PolicyName") or self.physical_id(stack_name, policy_id)
                policies[name] = self.resolve(stack_name, policy_properties["PolicyDocument"], policy_id)
        unknown = tuple(
            str(self.resolve(stack_name, arn, logical_id))
            for arn in properties.get("ManagedPolicyArns", [])
            if not (isinstance(arn, dict) and arn.get("Ref") in stack.resources)
        )
        return Role(
            arn=self.attribute(stack_name, logical_id, "Arn"),
            name=role_name,
            account=stack.account,
            tags={
                tag["Key"]: str(self.resolve(stack_name, tag["Value"], logical_id))
                for tag in properties.get("Tags", [])
            },
            trust_policy=self.resolve(stack_name, properties["AssumeRolePolicyDocument"], logical_id),
            identity_policies=policies,
            unknown_managed_policies=unknown,
        )

    def bucket_policy(self, bucket_name: str) -> ResourcePolicy:
        return self._resource_policy("AWS::S3::Bucket", "AWS::S3::BucketPolicy", "Bucket", bucket_name)

    def queue_policy(self, queue_name: str) -> ResourcePolicy:
        return self._resource_policy("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "Queues", queue_name)

    def key_policy(self, stack_name: str, logical_id: str) -> ResourcePolicy:
        properties = self.stacks[stack_name].resources[logical_id]["Properties"]
        return ResourcePolicy(
            self.attribute(stack_name, logical_id, "Arn"),
            self.stacks[stack_name].account,
            self.resolve(stack_name, properties["KeyPolicy"], logical_id),
        )

    def _resource_policy(self, type_: str, policy_type: str, target: str, name: str) -> ResourcePolicy:
        for stack in self.stacks.values():
            for logical_id in stack.of_type(type_):
                if self.physical_id(stack.name, logical_id) != name:
                    continue
                documents = [
                    policy["Properties"]["PolicyDocument"]
                    for policy in stack.of_type(policy_type).values()
                    if {"Ref": logical_id} in _as_list(policy["Properties"][target])
                ]
                if len(documents) > 1:
                    raise PolicyResolutionError(f"{stack.name}/{logical_id}: {len(documents)} {policy_type}s")
                arn = self.attribute(stack.name, logical_id, "Arn")
                if not documents:
                    return ResourcePolicy(arn, stack.account, {"Version": POLICY_VERSION, "Statement": []})
                return ResourcePolicy(arn, stack.account, self.resolve(stack.name, documents[0], logical_id))
        raise PolicyResolutionError(f"no {type_} named {name!r} in the assembly")

    # --- intrinsics ----------------------------------------------------------------------------------

    def resolve(self, stack_name: str, value: Any, where: str = "") -> Any:
        """``value`` with every intrinsic function replaced by its concrete value."""
        if isinstance(value, list):
            return [self.resolve(stack_name, item, where) for item in value if item != {"Ref": "AWS::NoValue"}]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(stack_name, argument, where)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(stack_name, logical_id, attribute, where)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.resolve(stack_name, part, where)) for part in parts)
            if function == "Fn::Sub":
                return self._sub(stack_name, argument, where)
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(stack_name, items, where)[int(self.resolve(stack_name, index, where))]
            if function == "Fn::Split":
                separator, text = argument
                return str(self.resolve(stack_name, text, where)).split(separator)
            if function == "Fn::GetStackOutput":
                return self._stack_output(stack_name, argument, where)
            if function.startswith("Fn::"):
                raise PolicyResolutionError(f"{stack_name}/{where}: cannot resolve {function} in {value!r}")
        return {key: self.resolve(stack_name, item, where) for key, item in value.items()}

    def _sub(self, stack_name: str, argument: Any, where: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(found: re.Match[str]) -> str:
            name = found[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(stack_name, variables[name], where))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.attribute(stack_name, logical_id, attribute, where))
            return str(self.ref(stack_name, name, where))

        return SUB_VARIABLE.sub(replace, text)

    def _stack_output(self, stack_name: str, argument: Mapping[str, Any], where: str) -> Any:
        source = self.stacks.get(argument["StackName"])
        outputs = source.template.get("Outputs", {}) if source else {}
        if source is None or argument["OutputName"] not in outputs:
            raise PolicyResolutionError(f"{stack_name}/{where}: no output {argument!r} in the assembly")
        return self.resolve(source.name, outputs[argument["OutputName"]]["Value"], argument["OutputName"])

    def _pseudo(self, stack: Stack, name: str) -> str:
        return {
            "AWS::Partition": "aws",
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
        }[name]

    def physical_id(self, stack_name: str, logical_id: str) -> str:
        """The resource's name: a deployment's, else the name property, else a stable stand-in."""
        if (stack_name, logical_id) in self.physical_ids:
            return self.physical_ids[(stack_name, logical_id)]
        resource = self.stacks[stack_name].resources[logical_id]
        property_name = NAME_PROPERTIES.get(resource["Type"])
        named = resource.get("Properties", {}).get(property_name) if property_name else None
        if named is not None:
            return str(self.resolve(stack_name, named, logical_id))
        if resource["Type"] == "AWS::KMS::Key":
            return str(uuid.uuid5(STAND_IN_NAMESPACE, f"{stack_name}/{logical_id}"))
        return f"{stack_name}-{logical_id}"

    def ref(self, stack_name: str, name: str, where: str = "") -> str:
        stack = self.stacks[stack_name]
        if name.startswith("AWS::"):
            try:
                return self._pseudo(stack, name)
            except KeyError:
                raise PolicyResolutionError(f"{stack_name}/{where}: cannot resolve Ref {name}") from None
        if name not in stack.resources:
            raise PolicyResolutionError(f"{stack_name}/{where}: Ref {name} names no resource (a parameter?)")
        type_ = stack.resources[name]["Type"]
        if type_ in REF_IS_ARN:
            return self.attribute(stack_name, name, "Arn", where)
        if type_ == "AWS::SQS::Queue":
            return f"https://sqs.{stack.region}.amazonaws.com/{stack.account}/{self.physical_id(stack_name, name)}"
        return self.physical_id(stack_name, name)

    def attribute(self, stack_name: str, logical_id: str, attribute: str, where: str = "") -> str:
        stack = self.stacks[stack_name]
        resource = stack.resources.get(logical_id)
        if resource is None:
            raise PolicyResolutionError(f"{stack_name}/{where}: Fn::GetAtt names no resource {logical_id}")
        type_, name = resource["Type"], self.physical_id(stack_name, logical_id)
        fields = {"partition": "aws", "region": stack.region, "account": stack.account, "name": name}
        if type_ == "AWS::IAM::Role":
            fields["path"] = resource.get("Properties", {}).get("Path", "/")
        if type_ == "AWS::ECS::TaskDefinition":
            fields["name"] = str(resource.get("Properties", {}).get("Family", name))
        if type_ == "AWS::Events::Rule":
            bus = resource.get("Properties", {}).get("EventBusName")
            # AWS names the bus in a rule's ARN only when it is not the default bus: rule/NAME, rule/BUS/NAME
            bus_name = str(self.resolve(stack_name, bus, logical_id)).rpartition("event-bus/")[2] if bus else ""
            fields["name"] = f"{bus_name}/{name}" if bus_name not in ("", "default") else name
        template = ARNS.get(type_) if attribute == "Arn" else ATTRIBUTES.get((type_, attribute))
        if template is None:
            raise PolicyResolutionError(
                f"{stack_name}/{where or logical_id}: cannot resolve Fn::GetAtt {logical_id}.{attribute} ({type_})"
            )
        return template.format(**fields)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::Service": "ServiceName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SES::ConfigurationSet": "Name",
}
ARNS = {
    "AWS::S3::Bucket": "arn:{partition}:s3:::{name}",
    "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "AWS::IAM::Role": "arn:{partition}:iam::{account}:role{path}{name}",
    "AWS::IAM::ManagedPolicy": "arn:{partition}:iam::{account}:policy/{name}",
    "AWS::KMS::Key": "arn:{partition}:kms:{region}:{account}:key/{name}",
    "AWS::Logs::LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
    "AWS::ECS::Cluster": "arn:{partition}:ecs:{region}:{account}:cluster/{name}",
    "AWS::ECS::TaskDefinition": "arn:{partition}:ecs:{region}:{account}:task-definition/{name}:1",
    "AWS::SNS::Topic": "arn:{partition}:sns:{region}:{account}:{name}",
    "AWS::Events::EventBus": "arn:{partition}:events:{region}:{account}:event-bus/{name}",
    "AWS::Events::Rule": "arn:{partition}:events:{region}:{account}:rule/{name}",
    "AWS::SecretsManager::Secret": "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}",
    "AWS::DynamoDB::Table": "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
}
ATTRIBUTES = {
    ("AWS::SQS::Queue", "QueueName"): "{name}",
    ("AWS::SQS::Queue", "QueueUrl"): "https://sqs.{region}.amazonaws.com/{account}/{name}",
    ("AWS::KMS::Key", "KeyId"): "{name}",
    ("AWS::IAM::Role", "RoleId"): "AROA{name}",
    ("AWS::SNS::Topic", "TopicName"): "{name}",
    ("AWS::SNS::Topic", "TopicArn"): "arn:{partition}:sns:{region}:{account}:{name}",
    ("AWS::S3::Bucket", "DomainName"): "{name}.s3.amazonaws.com",
    ("AWS::S3::Bucket", "RegionalDomainName"): "{name}.s3.{region}.amazonaws.com",
    ("AWS::EC2::VPC", "DefaultSecurityGroup"): "sg-{name}",
}
REF_IS_ARN = frozenset(
    {"AWS::IAM::ManagedPolicy", "AWS::SNS::Topic", "AWS::ECS::TaskDefinition", "AWS::SecretsManager::Secret"}
)
