"""A stack's account, region and partition, read across jsii once per stack (synth time, issue 19).

Every ``Stack.of(scope)`` and every ``stack.account`` / ``.region`` / ``.partition`` is a round trip to the
jsii node process (a fraction of a millisecond each, on both sides); the customer constructs asked them about
40 times per customer for the same two stacks. The values never change once a stack exists (a literal
account and region, the partition's token), so the first answer is the answer, and the same strings render
the same templates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from constructs import IConstruct


@dataclass(frozen=True)
class StackFacts:
    """What the constructs of one stack read about it."""

    stack: Stack
    account: str
    region: str
    partition: str


_BY_STACK: dict[int, StackFacts] = {}
_BY_CONSTRUCT: dict[int, tuple[IConstruct, StackFacts]] = {}


def stack_facts(scope: IConstruct, *, construct: IConstruct | None = None) -> StackFacts:
    """The facts of the stack ``scope`` is in (``scope`` itself when it is a stack): one ``Stack.of`` per
    construct asked about, three property reads per stack. ``construct``: a construct just created under
    ``scope``, remembered as being in the same stack, so asking about it later costs no round trip."""
    known = _BY_CONSTRUCT.get(id(scope))
    if known is not None and known[0] is scope:
        facts = known[1]
    else:
        stack = scope if isinstance(scope, Stack) else Stack.of(scope)
        cached = _BY_STACK.get(id(stack))
        if cached is None or cached.stack is not stack:
            cached = StackFacts(stack, stack.account, stack.region, stack.partition)
            _BY_STACK[id(stack)] = cached
        facts = cached
        _BY_CONSTRUCT[id(scope)] = (scope, facts)
    if construct is not None:
        _BY_CONSTRUCT[id(construct)] = (construct, facts)
    return facts


@functools.cache
def seconds(amount: int) -> Duration:
    """``Duration.seconds(amount)``, one object per amount (a Duration is immutable; each call is a round trip)."""
    return Duration.seconds(amount)


@functools.cache
def minutes(amount: int) -> Duration:
    """``Duration.minutes(amount)``, one object per amount."""
    return Duration.minutes(amount)


@functools.cache
def hours(amount: int) -> Duration:
    """``Duration.hours(amount)``, one object per amount."""
    return Duration.hours(amount)


@functools.cache
def days(amount: int) -> Duration:
    """``Duration.days(amount)``, one object per amount."""
    return Duration.days(amount)
