"""Props handed on by name (``cdk_support.forwarding``): what is copied, what is not, and a wrong keyword."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from cdk_support.capacity import check_shutdown
from cdk_support.forwarding import check_fields, forwarded


@dataclass(frozen=True)
class Outer:
    cpu: int
    name: str
    only_outer: str = "x"


@dataclass(frozen=True, kw_only=True)
class Inner:
    cpu: int
    name: str
    retention_days: int = 14


class Config(BaseModel):
    cpu: int
    name: str


def test_fields_of_the_same_name_are_copied_and_the_others_keep_their_default() -> None:
    assert forwarded(Inner, Outer(cpu=256, name="a")) == Inner(cpu=256, name="a", retention_days=14)


def test_a_keyword_overrides_the_source() -> None:
    assert forwarded(Inner, Outer(cpu=256, name="a"), name="b", retention_days=3) == Inner(
        cpu=256, name="b", retention_days=3
    )


def test_a_pydantic_model_is_a_source_too() -> None:
    assert forwarded(Inner, Config(cpu=512, name="c")) == Inner(cpu=512, name="c")


def test_a_keyword_the_target_does_not_declare_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="Inner has no field nmae"):
        forwarded(Inner, Outer(cpu=256, name="a"), nmae="b")


def test_a_rule_gets_the_fields_of_its_parameters_names() -> None:
    @dataclass(frozen=True)
    class Times:
        drain_seconds: float
        visibility_timeout_seconds: int
        stop_timeout_seconds: int

    check_fields(check_shutdown, Times(10, 30, 60))
    with pytest.raises(ValueError, match="drain_seconds \\(60\\) must be below the stop timeout \\(30s\\)"):
        check_fields(check_shutdown, Times(60, 120, 30))
