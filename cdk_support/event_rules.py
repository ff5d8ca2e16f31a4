"""What the platform's EventBridge rules share: the pattern of an S3 object-created event and the trust of
an EventBridge execution role.

Both the default routing (``cdk_constructs.metadata_bucket``) and the sharded routing
(``cdk_constructs.sharded_routing``) build rules on the bucket's events and roles that EventBridge assumes
to deliver across accounts; one definition keeps their patterns and trust conditions from drifting apart.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

S3_EVENT_SOURCE = "aws.s3"
"""The ``source`` of the events S3 sends to EventBridge."""


def object_created_pattern(bucket_name: str, key_filters: list[object]) -> dict[str, object]:
    """The event pattern of objects created in ``bucket_name`` whose key matches one of ``key_filters``
    (EventBridge content filters such as ``{"prefix": …}`` or ``{"wildcard": …}``)."""
    return {
        "source": [S3_EVENT_SOURCE],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": key_filters},
        },
    }


def events_execution_principal(partition: str, region: str, account: str, rule_prefix: str) -> iam.IPrincipal:
    """EventBridge as the principal of an execution role, limited to this account's rules named
    ``rule_prefix*`` (``aws:SourceAccount`` and ``aws:SourceArn``: the confused-deputy guard AWS documents)."""
    return iam.ServicePrincipal("events.amazonaws.com").with_conditions(
        {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:events:{region}:{account}:rule/{rule_prefix}*"},
        }
    )
