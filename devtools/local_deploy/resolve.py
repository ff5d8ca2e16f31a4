"""Clients per account on the emulator, and the intrinsic functions of a deployed stack's template.

The deployer applies what moto's CloudFormation skips with its own calls, and compares what exists with
the template: both need the template's values resolved against what the emulator created (physical ids
from the stack's resource list, attributes read back from the services), the way CloudFormation would.
"""

from __future__ import annotations

import re
from typing import Any

import boto3

from devtools.local_deploy.assembly import DeployError

ACCOUNT_HEADER = "x-moto-account-id"


class Aws:
    """boto3 clients on one emulator endpoint, each bound to an account through moto's account header."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._clients: dict[tuple[str, str, str], Any] = {}

    def client(self, service: str, account: str, region: str = "us-east-1") -> Any:
        key = (service, account, region)
        if key not in self._clients:
            client = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
            )

            def bind(request: Any, **_: Any) -> None:
                request.headers[ACCOUNT_HEADER] = account

            client.meta.events.register("before-sign.*.*", bind)
            self._clients[key] = client
        return self._clients[key]


def queue_arn_of_url(url: str, region: str) -> str:
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def queue_url_of_arn(arn: str) -> tuple[str, str, str]:
    """(region, account, name) of an SQS queue ARN."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"{arn!r} is not an SQS queue ARN")
    return parts[3], parts[4], parts[5]


class Resolver:
    """Resolves ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::GetStackOutput``
    and the pseudo parameters of one stack, as CloudFormation would have for its resources."""

    def __init__(
        self,
        aws: Aws,
        stack_name: str,
        account: str,
        region: str,
        resources: dict[str, Any],
        physical_ids: dict[str, str],
        outputs: dict[str, dict[str, str]],
    ) -> None:
        self.aws = aws
        self.stack_name = stack_name
        self.account = account
        self.region = region
        self.resources = resources
        self.physical_ids = physical_ids
        self.outputs = outputs

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(self(item)) for item in self(items))
            if key == "Fn::Select":
                index, items = argument
                return self(items)[int(self(index))]
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::GetStackOutput":
                return get_stack_output(self.stack_name, argument, self.outputs)
            if key.startswith("Fn::"):
                raise DeployError(f"{self.stack_name}: the local deployer does not resolve {key} ({value})")
        return {key: self(item) for key, item in value.items()}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
        }
        if name in pseudo:
            return pseudo[name]
        resource = self.resources.get(name)
        if resource is None:
            raise DeployError(f"{self.stack_name}: Ref to {name}, which is neither a resource nor a pseudo parameter")
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::EventBus":
            return str(properties["Name"])  # moto's stack lists a bus with an empty physical id
        if resource["Type"] == "AWS::SES::ConfigurationSet":
            return str(self(properties["Name"]))
        if resource["Type"] == "AWS::CloudFront::Distribution":
            return f"local-{name}"  # recorded (tables.RECORDED_TYPES); the site's bucket policy names its id
        if name not in self.physical_ids:
            raise DeployError(f"{self.stack_name}: {name} ({resource['Type']}) was not created, so it has no Ref")
        return self.physical_ids[name]

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise DeployError(f"{self.stack_name}: Fn::GetAtt of {logical_id}, which is not a resource of the stack")
        type_ = resource["Type"]
        ref = self.ref(logical_id)
        if (type_, attribute) == ("AWS::IAM::Role", "Arn"):
            return str(self.aws.client("iam", self.account).get_role(RoleName=ref)["Role"]["Arn"])
        if (type_, attribute) == ("AWS::SQS::Queue", "Arn"):
            return queue_arn_of_url(ref, self.region)
        if (type_, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return ref.rstrip("/").split("/")[-1]
        if (type_, attribute) == ("AWS::SQS::Queue", "QueueUrl"):
            return ref
        if (type_, attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"arn:aws:s3:::{ref}"
        if (type_, attribute) == ("AWS::KMS::Key", "Arn"):
            return str(self.aws.client("kms", self.account, self.region).describe_key(KeyId=ref)["KeyMetadata"]["Arn"])
        if (type_, attribute) == ("AWS::Events::EventBus", "Arn"):
            return f"arn:aws:events:{self.region}:{self.account}:event-bus/{ref}"
        if (type_, attribute) == ("AWS::SNS::Topic", "TopicArn"):
            return ref
        if (type_, attribute) == ("AWS::Logs::LogGroup", "Arn"):
            return f"arn:aws:logs:{self.region}:{self.account}:log-group:{ref}:*"
        if (type_, attribute) == ("AWS::EC2::SecurityGroup", "GroupId"):
            return ref
        if (type_, attribute) == ("AWS::ECS::Cluster", "Arn"):
            return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{ref}"
        if (type_, attribute) == ("AWS::EC2::EIP", "AllocationId"):
            addresses = self.aws.client("ec2", self.account, self.region).describe_addresses(PublicIps=[ref])
            return str(addresses["Addresses"][0]["AllocationId"])
        if (type_, attribute) == ("AWS::EC2::VPC", "DefaultSecurityGroup"):
            groups = self.aws.client("ec2", self.account, self.region).describe_security_groups(
                Filters=[{"Name": "vpc-id", "Values": [ref]}, {"Name": "group-name", "Values": ["default"]}]
            )["SecurityGroups"]
            return str(groups[0]["GroupId"])
        raise DeployError(f"{self.stack_name}: {logical_id} ({type_}): the local deployer does not resolve {attribute}")

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self(variables[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, str(text))


def get_stack_output(stack_name: str, argument: Any, outputs: dict[str, dict[str, str]]) -> str:
    """``Fn::GetStackOutput`` (moto has none): the output of a stack deployed before this one."""
    source, output = argument.get("StackName"), argument.get("OutputName")
    if source not in outputs:
        raise DeployError(f"{stack_name}: Fn::GetStackOutput of {source}, which is not deployed before it")
    if output not in outputs[source]:
        raise DeployError(f"{stack_name}: Fn::GetStackOutput {source}.{output}: {source} has no such output")
    return outputs[source][output]


def replace_stack_outputs(stack_name: str, value: Any, outputs: dict[str, dict[str, str]]) -> Any:
    """The template with every ``Fn::GetStackOutput`` replaced by its value (for moto's CloudFormation)."""
    if isinstance(value, list):
        return [replace_stack_outputs(stack_name, item, outputs) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Fn::GetStackOutput"}:
            return get_stack_output(stack_name, value["Fn::GetStackOutput"], outputs)
        return {key: replace_stack_outputs(stack_name, item, outputs) for key, item in value.items()}
    return value


def references(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else str(item).split(".", 1)[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found
