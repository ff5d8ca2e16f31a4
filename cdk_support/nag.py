"""Scoped cdk-nag acknowledgements (cdk-nag 3: ``Validations.of(construct).acknowledge``).

Each acknowledgement names one finding on one construct; IAM5 findings carry the exact resource
(``AwsSolutions-IAM5[Resource::<arn>]``), so a new wildcard elsewhere is still reported. Resource
strings may contain tokens (partition, references): they are rendered the way cdk-nag prints them
(``<AWS::Partition>``, ``<LogicalId>``, ``<LogicalId.Arn>``), so the constructs work whatever the
app's feature flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from aws_cdk import Acknowledgment, Aws, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcard_resources(construct: IConstruct, resources: Iterable[str], reason: str) -> None:
    """Acknowledge ``AwsSolutions-IAM5`` for exactly these resources."""
    rendered = []
    stack: Stack | None = None
    for resource in resources:
        text = _without_pseudo_parameters(resource)
        if TOKEN_MARK in text:  # another token: only the stack can resolve it
            stack = stack or Stack.of(construct)
            text = nag_string(stack, resource)
        rendered.append(Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{text}]", reason=reason))
    Validations.of(construct).acknowledge(*rendered)


def nag_string(stack: Stack, value: str) -> str:
    """``value`` as cdk-nag renders a policy resource (intrinsics flattened to ``<...>``)."""
    return _flatten(stack.resolve(value))


TOKEN_MARK = "${Token["
"""How an unresolved CDK token starts inside a string."""


@cache
def _pseudo_parameter_tokens() -> dict[str, str]:
    """The tokens of the pseudo parameters (the same string in every stack) and cdk-nag's rendering of each."""
    return {
        Aws.PARTITION: "<AWS::Partition>",
        Aws.REGION: "<AWS::Region>",
        Aws.ACCOUNT_ID: "<AWS::AccountId>",
        Aws.URL_SUFFIX: "<AWS::URLSuffix>",
    }


def _without_pseudo_parameters(value: str) -> str:
    """``value`` with the pseudo parameters rendered in Python: what :func:`nag_string` gives for them, without a
    round trip to the jsii process per acknowledgement (issue 19: synth time per customer)."""
    if TOKEN_MARK not in value:
        return value
    for token, rendered in _pseudo_parameter_tokens().items():
        value = value.replace(token, rendered)
    return value


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
