"""Scoped cdk-nag acknowledgements (cdk-nag 3: ``Validations.of(construct).acknowledge``).

Each acknowledgement names one finding on one construct; IAM5 findings carry the exact resource
(``AwsSolutions-IAM5[Resource::<arn>]``), so a new wildcard elsewhere is still reported. Resource
strings may contain tokens (partition, references): they are rendered the way cdk-nag prints them
(``<AWS::Partition>``, ``<LogicalId>``, ``<LogicalId.Arn>``), so the constructs work whatever the
app's feature flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcard_resources(construct: IConstruct, resources: Iterable[str], reason: str) -> None:
    """Acknowledge ``AwsSolutions-IAM5`` for exactly these resources."""
    stack = Stack.of(construct)
    Validations.of(construct).acknowledge(
        *(
            Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{nag_string(stack, resource)}]", reason=reason)
            for resource in resources
        )
    )


def nag_string(stack: Stack, value: str) -> str:
    """``value`` as cdk-nag renders a policy resource (intrinsics flattened to ``<...>``)."""
    return _flatten(stack.resolve(value))


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Fn::Join":
            separator, parts = argument
            return str(separator).join(_flatten(part) for part in parts)
        if name == "Ref":
            return f"<{argument}>"
        if name == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
    raise ValueError(f"cannot render {value!r} for a cdk-nag acknowledgement")
