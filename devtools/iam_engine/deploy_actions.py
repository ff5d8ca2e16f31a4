"""What CloudFormation asks IAM for when it deploys a stack: every action its execution role performs to
create, read, update and delete each resource, and the concrete ARN each one acts on.

The actions are not ours to guess: they are the ``handlers.<create|read|update|delete>.permissions`` of the
CloudFormation registry's resource provider schemas, read from the copy cfn-lint ships (pinned in
requirements-dev.in; ``cfnlint/data/schemas/providers/us-east-1.json`` maps a type to its schema file).
What is ours is :data:`TARGETS`: for each resource type the templates use, which resource each action
acts on (its own ARN, another resource named in its properties, or ``*`` when the Service Authorization
Reference lists no resource type for the action). A type missing from :data:`TARGETS` is an error naming
the stack, the logical id and the type, so a new resource type cannot slip past the bootstrap policies.

Sources of the ARN formats and of the actions without resource-level permissions (Service Authorization
Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/):
``list_amazonsimpleemailservicev2.html`` (configuration-set; ``ses:DescribeConfigurationSet`` is SES v1's,
``list_amazonses.html``, same ARN), ``list_amazoneventbridge.html`` (rule: ``rule/<name>`` on the default
bus, ``rule/<bus>/<name>`` on any other), ``list_awsidentityandaccessmanagementiam.html`` (role; PassRole's
``iam:PassedToService``), ``list_awskeymanagementservice.html`` (``kms:CreateKey`` has none; an alias
acts on the alias and its key), ``list_amazonec2.html`` (``Describe*`` and ``Create*`` of new ids:
``*`` here), ``list_amazoncloudwatch.html``, ``list_amazonssm.html``, ``list_amazonecs.html``,
``list_awslambda.html``, ``list_amazonsqs.html``, ``list_amazonsns.html``, ``list_amazons3.html``,
``list_amazoncloudwatchlogs.html``, ``list_awsapplicationautoscaling.html``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from devtools.iam_engine.templates import Assembly, PolicyResolutionError

HANDLERS = ("create", "read", "update", "delete")
"""The handlers a deploy can run: a first deploy creates, a later one updates, a rollback or a removed
resource deletes, and CloudFormation reads a resource back after each. (``list`` is for listing every
resource of a type, which no deploy does.)"""

CUSTOM_RESOURCE_ACTIONS = ("lambda:InvokeFunction",)
"""A Lambda-backed custom resource (``Custom::*``, ``AWS::CloudFormation::CustomResource``): CloudFormation
invokes its ``ServiceToken`` function as the execution role on create, update and delete."""


NOT_IAM_ACTIONS = frozenset(
    {
        # API operation names, not IAM actions (S3's are s3:PutReplicationConfiguration,
        # s3:PutBucketObjectLockConfiguration, s3:PutBucketCORS, ...; KMS's are kms:ReEncryptFrom/To).
        "s3:REST.PUT.OBJECT",
        "s3:DeleteBucketAnalyticsConfiguration",
        "s3:DeleteBucketCors",
        "s3:DeleteBucketEncryption",
        "s3:DeleteBucketLifecycle",
        "s3:DeleteBucketMetricsConfiguration",
        "s3:DeleteBucketReplication",
        "s3:PutBucketReplication",
        "s3:PutObjectLockConfiguration",
        "kms:ReEncrypt",
        # Newer than the Service Authorization Reference data the pinned engine carries.
        "vpc-lattice:DescribeServiceNetworkVpcEndpointAssociation",
        "lambda:AssociateRuntimeAlias",
        # The API CloudFront's handler calls; IAM authorizes it as cloudfront:CreateDistribution and
        # cloudfront:TagResource (both listed too).
        "cloudfront:CreateDistributionWithTags",
    }
)
"""Names in the schemas' permission lists that IAM does not know as actions, so no policy can allow or deny
them as written (the engine refuses them as ``invalid.action``): left out of the requests. All are in the
governance and management stacks' types (AdministratorAccess); a new one makes the engine refuse the check."""


class UnknownResourceType(PolicyResolutionError):
    """A stack has a resource type :data:`TARGETS` does not describe: add it (with its sources) first."""


@dataclass(frozen=True)
class DeployRequest:
    """One request CloudFormation makes as the execution role while deploying a stack."""

    stack: str
    logical_id: str
    type: str
    handler: str
    action: str
    resource: str
    account: str
    context: Mapping[str, str] = field(default_factory=dict)
    resource_policy: Mapping[str, Any] | None = None
    """The key, bucket or queue policy of ``resource`` when the stack defines one: a KMS key allows nothing
    its key policy does not, and an explicit deny in a bucket or queue policy binds the execution role too."""

    def describe(self) -> str:
        return f"{self.stack}/{self.logical_id} ({self.type}, {self.handler}): {self.action} on {self.resource}"


# --- the schemas -------------------------------------------------------------------------------------


def _schemas_dir() -> Path:
    """cfn-lint's resource schemas, found without importing cfn-lint (which loads its rules and decoders:
    ~0.6 CPU s of every `make demo` and `make emulator`)."""
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or not spec.submodule_search_locations:
        raise PolicyResolutionError("cfn-lint is not installed: its resource schemas decide the bootstrap gate")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "schemas"


@cache
def _schema_index(region: str) -> Mapping[str, str]:
    path = _schemas_dir() / "providers" / f"{region}.json"
    if not path.is_file():
        raise PolicyResolutionError(f"cfn-lint has no resource schemas for region {region} ({path})")
    index: Mapping[str, str] = json.loads(path.read_text())
    return index


@cache
def handler_permissions(type_: str, handler: str, region: str = "us-east-1") -> tuple[str, ...]:
    """The schema's ``handlers.<handler>.permissions`` of ``type_`` (empty if the schema has none)."""
    schema_id = _schema_index(region).get(type_)
    if schema_id is None:
        raise UnknownResourceType(f"{type_}: no CloudFormation resource schema in cfn-lint for {region}")
    schema = json.loads((_schemas_dir() / "resources" / f"{schema_id}.json").read_text())
    permissions = schema.get("handlers", {}).get(handler, {}).get("permissions", [])
    return tuple(str(permission) for permission in permissions)


# --- which resource each action acts on ----------------------------------------------------------------

Resolver = Callable[["_Resource"], list[str]]


@dataclass(frozen=True)
class _Resource:
    assembly: Assembly
    stack: str
    logical_id: str

    @property
    def properties(self) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = (
            self.assembly.stacks[self.stack].resources[self.logical_id].get("Properties", {})
        )
        return properties

    def resolve(self, value: Any) -> Any:
        return self.assembly.resolve(self.stack, value, self.logical_id)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        stack = self.assembly.stacks[self.stack]
        return f"arn:aws:{service}:{stack.region if region else ''}:{stack.account}:{resource}"

    def named(self, property_name: str) -> str:
        """The resource's name property, else the name CloudFormation generates (``{stack}-{logical id}``
        is the resolver's stand-in, and has the stack name as prefix as the generated one does)."""
        value = self.properties.get(property_name)
        return str(self.resolve(value)) if value is not None else self.assembly.physical_id(self.stack, self.logical_id)


@dataclass(frozen=True)
class Targets:
    """Where a resource type's actions act: ``own`` gives the resource's own ARN(s) (``None``: ``*``, its
    ARN is never narrowed by a prescribed policy); ``elsewhere`` maps an action to the resources it acts
    on instead (an empty list: the action is not requested for this resource, e.g. ``iam:PassRole``
    without a role); ``anywhere`` lists actions with no resource-level permission (``*``)."""

    own: Resolver | None
    elsewhere: Mapping[str, Resolver] = field(default_factory=dict)
    anywhere: frozenset[str] = frozenset()
    passed_to: str | None = None
    """The service a passed role is for (``iam:PassedToService``)."""

    def resources(self, resource: _Resource, action: str) -> list[str]:
        if action in self.elsewhere:
            return self.elsewhere[action](resource)
        if action == "iam:PassRole":
            raise UnknownResourceType(
                f"{resource.stack}/{resource.logical_id}: the schema lists iam:PassRole; name the properties "
                "that hold the passed role in devtools.iam_engine.deploy_actions.TARGETS"
            )
        if action in self.anywhere or self.own is None:
            return ["*"]
        arns = self.own(resource)
        service = action.split(":", 1)[0]
        # Another service's action (kms:Decrypt while creating a function): it acts on that service's
        # resources, which the template does not name, so it is decided on *.
        return arns if all(arn.split(":")[2] == service for arn in arns) else ["*"]


def _own_arn(resource: _Resource) -> list[str]:
    return [resource.assembly.attribute(resource.stack, resource.logical_id, "Arn")]


def _unnamed(_: _Resource) -> list[str]:
    """Another resource the template does not name: decided on ``*``."""
    return ["*"]


def _roles(*paths: str) -> Resolver:
    """The role ARNs at ``paths`` of the properties (``Targets[].RoleArn``: each list item's ``RoleArn``)."""

    def resolve(resource: _Resource) -> list[str]:
        found: list[str] = []
        for path in paths:
            values: list[Any] = [resource.properties]
            for part in path.split("."):
                many = part.endswith("[]")
                key = part.removesuffix("[]")
                values = [value.get(key) for value in values if isinstance(value, Mapping)]
                if many:
                    values = [item for value in values if isinstance(value, list) for item in value]
            found.extend(str(resource.resolve(value)) for value in values if value is not None)
        return found

    return resolve


def _policy_targets(kind: str, arn_kind: str) -> Resolver:
    """An ``AWS::IAM::Policy``'s users, groups or roles: the inline policy is put on each of them."""

    def resolve(resource: _Resource) -> list[str]:
        names = [str(resource.resolve(name)) for name in resource.properties.get(kind, [])]
        return [
            name if name.startswith("arn:") else resource.arn("iam", f"{arn_kind}/{name}", region=False)
            for name in names
        ]

    return resolve


def _configuration_set(resource: _Resource) -> list[str]:
    name = resource.properties.get("ConfigurationSetName")
    return [resource.arn("ses", f"configuration-set/{resource.resolve(name)}")]


def _rule(resource: _Resource) -> list[str]:
    name = resource.named("Name")
    bus = resource.properties.get("EventBusName")
    bus_name = str(resource.resolve(bus)).rsplit("/", 1)[-1] if bus is not None else "default"
    return [resource.arn("events", f"rule/{name}" if bus_name == "default" else f"rule/{bus_name}/{name}")]


def _service_token(resource: _Resource) -> list[str]:
    token = resource.properties["ServiceToken"]
    function = token.get("Fn::GetAtt", [None])[0] if isinstance(token, Mapping) else None
    if isinstance(function, str) and function in resource.assembly.stacks[resource.stack].resources:
        # The resolver has no Lambda ARNs: the function's, from its name as the table gives it.
        return _named("lambda", "function:{name}", "FunctionName")(
            _Resource(resource.assembly, resource.stack, function)
        )
    return [str(resource.resolve(token))]


def _named(service: str, pattern: str, property_name: str, *, region: bool = True) -> Resolver:
    def resolve(resource: _Resource) -> list[str]:
        return [resource.arn(service, pattern.format(name=resource.named(property_name)), region=region)]

    return resolve


def _key(property_name: str) -> Resolver:
    def resolve(resource: _Resource) -> list[str]:
        return [str(resource.resolve(resource.properties[property_name]))]

    return resolve


def _alias(resource: _Resource) -> list[str]:
    alias = _named("kms", "{name}", "AliasName")(resource)
    key = str(resource.resolve(resource.properties["TargetKeyId"]))
    return [*alias, key if key.startswith("arn:") else resource.arn("kms", f"key/{key}")]


def _parameter(resource: _Resource) -> list[str]:
    return [resource.arn("ssm", "parameter/" + resource.named("Name").lstrip("/"))]


_ROLE = Targets(own=_own_arn)
_EC2 = Targets(own=None)  # new ids (vpc-..., subnet-...) are unknown before the create: * here
# Actions the Service Authorization Reference (as the pinned engine's data has it) lists with no resource
# type: a policy can allow them only on *.
_SES_ANYWHERE = frozenset({"ses:DescribeConfigurationSet"})
_EVENTS_ANYWHERE = frozenset({"events:PutPermission", "events:RemovePermission"})
_LOGS_ANYWHERE = frozenset(
    {
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:ListLogDeliveries",
        "logs:CreateLogDelivery",
        "logs:DeleteIndexPolicy",
        "logs:DeleteResourcePolicy",
        "logs:PutResourcePolicy",
        "logs:DescribeIndexPolicies",
        "logs:PutIndexPolicy",
    }
)

TARGETS: Mapping[str, Targets] = {
    # The customer accounts' types: the ones a narrow execution policy names, so each ARN is exact.
    "AWS::IAM::Role": _ROLE,
    "AWS::IAM::Policy": Targets(
        own=None,
        elsewhere={
            **{f"iam:{verb}RolePolicy": _policy_targets("Roles", "role") for verb in ("Get", "Put", "Delete")},
            **{f"iam:{verb}UserPolicy": _policy_targets("Users", "user") for verb in ("Get", "Put", "Delete")},
            **{f"iam:{verb}GroupPolicy": _policy_targets("Groups", "group") for verb in ("Get", "Put", "Delete")},
        },
    ),
    "AWS::SES::ConfigurationSet": Targets(
        own=_named("ses", "configuration-set/{name}", "Name"), anywhere=_SES_ANYWHERE
    ),
    "AWS::SES::ConfigurationSetEventDestination": Targets(
        own=_configuration_set,
        anywhere=_SES_ANYWHERE,
        elsewhere={"iam:PassRole": _roles("EventDestination.KinesisFirehoseDestination.IAMRoleARN")},
        passed_to="firehose.amazonaws.com",
    ),
    "AWS::Events::Rule": Targets(
        own=_rule, elsewhere={"iam:PassRole": _roles("RoleArn", "Targets[].RoleArn")}, passed_to="events.amazonaws.com"
    ),
    # The governance and management accounts' types (AdministratorAccess there): ARNs where cheap, else *.
    "AWS::Events::EventBus": Targets(own=_named("events", "event-bus/{name}", "Name"), anywhere=_EVENTS_ANYWHERE),
    "AWS::Events::EventBusPolicy": Targets(
        own=lambda resource: [resource.arn("events", f"event-bus/{resource.named('EventBusName')}")],
        anywhere=_EVENTS_ANYWHERE,
    ),
    "AWS::S3::Bucket": Targets(
        own=_own_arn,
        elsewhere={
            "iam:PassRole": _roles("ReplicationConfiguration.Role"),
            # Object actions (emptying, ACLs of delivered objects) act on the bucket's objects.
            **{
                action: lambda resource: [f"{_own_arn(resource)[0]}/*"]
                for action in ("s3:DeleteObject", "s3:PutObjectAcl")
            },
        },
        passed_to="s3.amazonaws.com",
    ),
    "AWS::S3::BucketPolicy": Targets(
        own=lambda resource: [f"arn:aws:s3:::{resource.resolve(resource.properties['Bucket'])}"]
    ),
    "AWS::SQS::Queue": Targets(own=_own_arn),
    "AWS::SQS::QueuePolicy": Targets(own=None),
    "AWS::SNS::Topic": Targets(
        own=_own_arn,
        elsewhere={
            action: _roles(
                "DeliveryStatusLogging[].SuccessFeedbackRoleArn", "DeliveryStatusLogging[].FailureFeedbackRoleArn"
            )
            for action in ("iam:PassRole", "iam:GetRole")
        },
        passed_to="sns.amazonaws.com",
    ),
    "AWS::SNS::TopicPolicy": Targets(own=None),
    "AWS::KMS::Key": Targets(own=_own_arn, anywhere=frozenset({"kms:CreateKey"})),
    "AWS::KMS::Alias": Targets(own=_alias, anywhere=frozenset({"kms:ListAliases"})),
    "AWS::SSM::Parameter": Targets(own=_parameter),
    "AWS::Logs::LogGroup": Targets(own=_own_arn, anywhere=_LOGS_ANYWHERE),
    "AWS::ECS::Cluster": Targets(
        own=_own_arn, anywhere=frozenset({"ecs:PutAccountSetting", "ecs:PutAccountSettingDefault"})
    ),
    "AWS::ECS::TaskDefinition": Targets(
        own=None,
        elsewhere={"iam:PassRole": _roles("TaskRoleArn", "ExecutionRoleArn")},
        passed_to="ecs-tasks.amazonaws.com",
    ),
    "AWS::ECS::Service": Targets(own=None, elsewhere={"iam:PassRole": _roles("Role")}, passed_to="ecs.amazonaws.com"),
    "AWS::Lambda::Function": Targets(
        own=_named("lambda", "function:{name}", "FunctionName"),
        elsewhere={
            # On code-signing configs, layers and capacity providers the template does not name.
            **{
                action: _unnamed
                for action in ("lambda:GetCodeSigningConfig", "lambda:GetLayerVersion", "lambda:PassCapacityProvider")
            },
            "iam:PassRole": _roles("Role"),
        },
        passed_to="lambda.amazonaws.com",
    ),
    # The submission site's (management account, AdministratorAccess): CloudFront's ARNs exist only once
    # created, and a function's versions, URL and permissions are decided on ``*`` like them.
    "AWS::Lambda::Version": Targets(own=None),
    "AWS::Lambda::LayerVersion": Targets(own=None),
    "AWS::Lambda::Url": Targets(own=None),
    "AWS::Lambda::Permission": Targets(own=None),
    "AWS::CloudFront::Distribution": Targets(own=None),
    "AWS::CloudFront::OriginAccessControl": Targets(own=None),
    "AWS::CloudFront::ResponseHeadersPolicy": Targets(own=None),
    "AWS::CloudWatch::Alarm": Targets(own=_named("cloudwatch", "alarm:{name}", "AlarmName")),
    "AWS::CloudWatch::Dashboard": Targets(own=_named("cloudwatch", "dashboard/{name}", "DashboardName", region=False)),
    "AWS::ApplicationAutoScaling::ScalableTarget": Targets(
        own=None, elsewhere={"iam:PassRole": _roles("RoleARN")}, passed_to="application-autoscaling.amazonaws.com"
    ),
    "AWS::ApplicationAutoScaling::ScalingPolicy": Targets(own=None),
    "AWS::EC2::VPC": _EC2,
    "AWS::EC2::Subnet": _EC2,
    "AWS::EC2::RouteTable": _EC2,
    "AWS::EC2::SubnetRouteTableAssociation": _EC2,
    "AWS::EC2::Route": _EC2,
    "AWS::EC2::EIP": _EC2,
    "AWS::EC2::NatGateway": _EC2,
    "AWS::EC2::InternetGateway": _EC2,
    "AWS::EC2::VPCGatewayAttachment": _EC2,
    "AWS::EC2::VPCEndpoint": _EC2,
    "AWS::EC2::SecurityGroup": _EC2,
    "AWS::EC2::FlowLog": Targets(
        own=None,
        elsewhere={"iam:PassRole": _roles("DeliverLogsPermissionArn")},
        passed_to="vpc-flow-logs.amazonaws.com",
    ),
}
"""Every resource type of the templates (sample app and its variants), with where its actions act."""

CUSTOM_RESOURCE = Targets(own=_service_token)


def _targets(type_: str) -> Targets | None:
    if type_.startswith("Custom::") or type_ == "AWS::CloudFormation::CustomResource":
        return CUSTOM_RESOURCE
    return TARGETS.get(type_)


def _actions(type_: str, handler: str, region: str) -> tuple[str, ...]:
    if _targets(type_) is CUSTOM_RESOURCE:
        return CUSTOM_RESOURCE_ACTIONS
    return handler_permissions(type_, handler, region)


def _resource_policies(assembly: Assembly, stack_name: str) -> dict[str, Mapping[str, Any]]:
    """The resource policies of the stack's keys, buckets and queues, by the ARNs requests name."""
    stack = assembly.stacks[stack_name]
    found: dict[str, Mapping[str, Any]] = {}
    for logical_id in stack.of_type("AWS::KMS::Key"):
        policy = assembly.key_policy(stack_name, logical_id)
        found[policy.arn] = policy.document
    for type_, lookup in (("AWS::S3::Bucket", assembly.bucket_policy), ("AWS::SQS::Queue", assembly.queue_policy)):
        for logical_id in stack.of_type(type_):
            policy = lookup(assembly.physical_id(stack_name, logical_id))
            found[policy.arn] = policy.document
            if type_ == "AWS::S3::Bucket":
                found[f"{policy.arn}/*"] = policy.document
    return found


def deploy_requests(
    assembly: Assembly, stack_name: str, handlers: tuple[str, ...] = HANDLERS
) -> Iterator[DeployRequest]:
    """Every request the execution role makes to deploy ``stack_name``: each resource's handlers'
    permissions, plus ``ssm:GetParameters`` for each SSM-typed parameter (CDK's ``BootstrapVersion``).

    Raises :class:`UnknownResourceType` naming the stack, logical id and type of the first resource whose
    type :data:`TARGETS` does not describe."""
    stack = assembly.stacks[stack_name]
    policies = _resource_policies(assembly, stack_name)
    for logical_id, resource in stack.resources.items():
        type_ = resource["Type"]
        targets = _targets(type_)
        if targets is None:
            raise UnknownResourceType(
                f"{stack_name}/{logical_id}: resource type {type_} is not in devtools.iam_engine.deploy_actions."
                "TARGETS: add it (which resource each of its schema's actions acts on) before deploying it"
            )
        where = _Resource(assembly, stack_name, logical_id)
        for handler in handlers:
            for action in _actions(type_, handler, stack.region):
                if action in NOT_IAM_ACTIONS:
                    continue
                context = (
                    {"iam:PassedToService": targets.passed_to} if action == "iam:PassRole" and targets.passed_to else {}
                )
                for arn in targets.resources(where, action):
                    yield DeployRequest(
                        stack_name, logical_id, type_, handler, action, arn, stack.account, context, policies.get(arn)
                    )
    for name, parameter in stack.template.get("Parameters", {}).items():
        if str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::"):
            arn = f"arn:aws:ssm:{stack.region}:{stack.account}:parameter/{str(parameter['Default']).lstrip('/')}"
            yield DeployRequest(stack_name, name, parameter["Type"], "create", "ssm:GetParameters", arn, stack.account)
