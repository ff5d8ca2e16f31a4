"""``cdk_support.log_retention``: the one table of retention periods matches aws_logs.RetentionDays."""

from __future__ import annotations

import pytest
from aws_cdk import Stack
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from cdk_support.log_retention import ALLOWED_DAYS, RETENTION_DAYS, retention
from tests.support.synth import app_without_validation


def test_every_finite_cdk_retention_is_in_the_table() -> None:
    assert {member.name for member in logs.RetentionDays} - set(RETENTION_DAYS) == {"INFINITE"}
    assert list(ALLOWED_DAYS) == sorted(ALLOWED_DAYS)


def test_each_period_synthesizes_to_its_days() -> None:
    stack = Stack(app_without_validation(), "Logs")
    for days in ALLOWED_DAYS:
        logs.LogGroup(stack, f"Days{days}", retention=retention(days))
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["RetentionInDays"] for g in groups.values()) == list(ALLOWED_DAYS)


def test_unsupported_period_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported log retention 42 days"):
        retention(42)
