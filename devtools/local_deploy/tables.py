"""What the local deployer does with each resource type and each of its properties.

Every resource type of the templates is in exactly one of three tables, and every property of a type
the deployer creates is in exactly one handling of that type. A type or property in none of them stops
the deploy with a message naming the stack, the logical id, the type (and the property): a template that
grows a resource nobody taught the deployer about must not deploy "successfully" with a hole in it.

Measured on moto 5.2.5: its CloudFormation creates the
``CFN`` types, but silently skips the ``DIRECT`` types and some properties of the ones it creates; the
deployer applies those through the service APIs after the stack and records the policies moto keeps
nowhere. ``RECORDED`` types are kept in the deployed world's record, not emulated.
"""

from __future__ import annotations

from enum import StrEnum


class Handling(StrEnum):
    CFN = "created by the emulator's CloudFormation"
    REWRITTEN = "rewritten for the emulator's CloudFormation (moto bug), then created by it"
    DIRECT = "applied by the deployer through the service API"
    REAPPLIED = "created by the emulator's CloudFormation, then put again as AWS resolves it"
    RECORDED = "recorded, not emulated"


C, W, D, R, A = Handling.CFN, Handling.REWRITTEN, Handling.DIRECT, Handling.RECORDED, Handling.REAPPLIED
_TAGS = {"Tags": C}

# Types moto's CloudFormation creates, with what happens to each property.
CFN_TYPES: dict[str, dict[str, Handling]] = {
    # moto keeps a role's inline Policies as the repr of a Python dict: put with iam:PutRolePolicy instead.
    # AWS managed policies do not exist on the emulator: recorded in the deployed world.
    "AWS::IAM::Role": {
        **_TAGS,
        **dict.fromkeys(["AssumeRolePolicyDocument", "Description", "MaxSessionDuration", "RoleName"], C),
        "Policies": D,
        "ManagedPolicyArns": R,
    },
    # moto resolves a log group's Fn::GetAtt Arn without the ":*" AWS gives it: each policy document is put
    # again as AWS resolves it.
    "AWS::IAM::Policy": {"PolicyName": C, "Roles": C, "PolicyDocument": A},
    "AWS::SQS::Queue": {
        **_TAGS,
        **dict.fromkeys(
            [
                "KmsDataKeyReusePeriodSeconds",
                "KmsMasterKeyId",
                "MessageRetentionPeriod",
                "QueueName",
                "ReceiveMessageWaitTimeSeconds",
                "RedriveAllowPolicy",
                "RedrivePolicy",
                "VisibilityTimeout",
            ],
            C,
        ),
    },
    # moto fails on a key's tags, and keeps a key policy given as an object unreadable (DescribeKey then
    # answers HTTP 500): the key is created with a placeholder policy, the real one put with kms:PutKeyPolicy
    # and the tags with kms:TagResource.
    "AWS::KMS::Key": {"Description": C, "EnableKeyRotation": C, "KeyPolicy": D, "Tags": D},
    "AWS::KMS::Alias": {"AliasName": C, "TargetKeyId": C},
    "AWS::Logs::LogGroup": {**_TAGS, "LogGroupName": C, "RetentionInDays": C},
    # moto drops both roles of a task definition: the deployed world records them per family.
    "AWS::ECS::TaskDefinition": {
        **_TAGS,
        **dict.fromkeys(
            ["ContainerDefinitions", "Cpu", "Family", "Memory", "NetworkMode", "RequiresCompatibilities", "Volumes"],
            C,
        ),
        "RuntimePlatform": R,
        "TaskRoleArn": R,
        "ExecutionRoleArn": R,
    },
    "AWS::ECS::Cluster": {**_TAGS, "ClusterName": C, "ClusterSettings": C},
    "AWS::ECS::Service": {
        **_TAGS,
        **dict.fromkeys(
            [
                "Cluster",
                "DeploymentConfiguration",
                "DesiredCount",
                "EnableECSManagedTags",
                "LaunchType",
                "LoadBalancers",
                "NetworkConfiguration",
                "PlatformVersion",
                "PropagateTags",
                "ServiceName",
                "TaskDefinition",
            ],
            C,
        ),
    },
    "AWS::SNS::Topic": {**_TAGS, "DisplayName": C, "KmsMasterKeyId": C, "TopicName": C},
    # moto reads the parameter's tags as a list; CloudFormation's are a map: rewritten to a list.
    "AWS::SSM::Parameter": {"Description": C, "Name": C, "Type": C, "Value": C, "Tags": W},
    "AWS::Events::EventBus": {**_TAGS, "Name": C},
    # moto fails on a rule whose bus is a reference to a bus: rewritten to the bus's name.
    "AWS::Events::Rule": {
        **_TAGS,
        **dict.fromkeys(["Description", "EventPattern", "Name", "ScheduleExpression", "State", "Targets"], C),
        "EventBusName": W,
    },
    "AWS::CloudWatch::Dashboard": {**_TAGS, "DashboardBody": C, "DashboardName": C},
    # moto creates the bucket with its name, encryption and tags and silently drops the rest.
    "AWS::S3::Bucket": {
        **_TAGS,
        "BucketName": C,
        "BucketEncryption": C,
        "VersioningConfiguration": D,
        "NotificationConfiguration": D,
        "LifecycleConfiguration": D,
        "PublicAccessBlockConfiguration": D,
        "OwnershipControls": D,
        "LoggingConfiguration": R,
    },
    # The VPC: moto keeps it as a record of ids; nothing runs in it locally.
    "AWS::EC2::VPC": {
        **_TAGS,
        **dict.fromkeys(["CidrBlock", "EnableDnsHostnames", "EnableDnsSupport", "InstanceTenancy"], C),
    },
    "AWS::EC2::Subnet": {
        **_TAGS,
        **dict.fromkeys(["AvailabilityZone", "CidrBlock", "MapPublicIpOnLaunch", "VpcId"], C),
    },
    "AWS::EC2::RouteTable": {**_TAGS, "VpcId": C},
    "AWS::EC2::SubnetRouteTableAssociation": {"RouteTableId": C, "SubnetId": C},
    "AWS::EC2::Route": dict.fromkeys(["DestinationCidrBlock", "GatewayId", "NatGatewayId", "RouteTableId"], C),
    "AWS::EC2::EIP": {**_TAGS, "Domain": C},
    "AWS::EC2::NatGateway": {**_TAGS, "AllocationId": C, "SubnetId": C},
    "AWS::EC2::InternetGateway": {**_TAGS},
    "AWS::EC2::VPCGatewayAttachment": {"InternetGatewayId": C, "VpcId": C},
    "AWS::EC2::VPCEndpoint": {
        **_TAGS,
        **dict.fromkeys(["RouteTableIds", "ServiceName", "VpcEndpointType", "VpcId"], C),
    },
    "AWS::EC2::FlowLog": {
        **_TAGS,
        **dict.fromkeys(
            ["DeliverLogsPermissionArn", "LogDestinationType", "LogGroupName", "ResourceId", "ResourceType"], C
        ),
        "TrafficType": C,
    },
    "AWS::EC2::SecurityGroup": {**_TAGS, "GroupDescription": C, "SecurityGroupEgress": C, "VpcId": C},
}

# Types moto's CloudFormation silently skips: the deployer creates them through the service API.
DIRECT_TYPES: dict[str, dict[str, Handling]] = {
    "AWS::SQS::QueuePolicy": {"PolicyDocument": D, "Queues": D},
    "AWS::SNS::TopicPolicy": {"PolicyDocument": D, "Topics": D},
    "AWS::Events::EventBusPolicy": {"EventBusName": D, "Statement": D, "StatementId": D},
    "AWS::SES::ConfigurationSet": {"Name": D, "SuppressionOptions": D, "Tags": D},
}

# Types kept in the deployed world's record only: nothing local would act on them (alarms, scaling),
# or moto cannot hold them (an EventBridge destination of SES; a Lambda-backed custom resource and its
# provider function, which would need Docker), or would misapply them: moto enforces a bucket policy's
# Deny statements without their conditions, so the sample's "deny unless TLS" would deny every request
# to the bucket; the policy engine reads the bucket policy from the deployed world instead.
RECORDED_TYPES: frozenset[str] = frozenset(
    {
        "AWS::S3::BucketPolicy",
        "AWS::CloudWatch::Alarm",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::SES::ConfigurationSetEventDestination",
        "AWS::Lambda::Function",
        "Custom::VpcRestrictDefaultSG",
        # The submission site: served locally by devtools.site_server (its API under the deployed role).
        "AWS::Lambda::Url",
        "AWS::Lambda::Permission",
        "AWS::Lambda::Version",
        "AWS::Lambda::LayerVersion",
        "Custom::CDKBucketDeployment",
        "AWS::CloudFront::Distribution",
        "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::ResponseHeadersPolicy",
    }
)

# Resource attributes (beside Type and Properties) the deployer understands; any other stops it.
RESOURCE_ATTRIBUTES = frozenset({"DependsOn", "DeletionPolicy", "UpdateReplacePolicy", "Metadata"})
# Template sections; Conditions, Mappings, Transform and the like stop it.
TEMPLATE_SECTIONS = frozenset(
    {"AWSTemplateFormatVersion", "Description", "Parameters", "Rules", "Resources", "Outputs", "Metadata"}
)


def handling_of(type_: str) -> Handling | None:
    if type_ in CFN_TYPES:
        return Handling.CFN
    if type_ in DIRECT_TYPES:
        return Handling.DIRECT
    if type_ in RECORDED_TYPES:
        return Handling.RECORDED
    return None


def property_table(type_: str) -> dict[str, Handling] | None:
    """The handling of each property of a created type; None for a recorded type (kept whole)."""
    return CFN_TYPES.get(type_) or DIRECT_TYPES.get(type_)
