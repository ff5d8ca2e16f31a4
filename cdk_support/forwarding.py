"""Props handed on to a nested construct, or to a rule: one call instead of a keyword argument per setting.

A construct's props and those of the constructs it builds name one setting the same way (``cdk.json``'s
key: ``max_receive_count``, ``cpu``, ``from_address``, ...), each documented once, in the props that
declare it. :func:`forwarded` copies every such field, so a caller states only what differs: a value
renamed (``customer_account=props.account``), converted, or taken from elsewhere (the platform's props).
:func:`check_fields` hands a validation rule its settings the same way.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def forwarded(target: type[T], source: Any, /, **values: Any) -> T:
    """``target(**values)``, plus each other field of the dataclass ``target`` that ``source`` (a dataclass
    instance or a pydantic model: ``cdk.json``'s validated config) has under the same name (a field
    ``source`` lacks keeps ``target``'s default).

    A keyword ``target`` does not declare is a ``TypeError`` naming it, as the constructor's own would be."""
    accepted = {f.name for f in dataclasses.fields(target) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - accepted)
    if unknown:
        raise TypeError(f"{target.__name__} has no field {', '.join(unknown)}")
    is_dataclass = dataclasses.is_dataclass(source)
    declared = [f.name for f in dataclasses.fields(source)] if is_dataclass else list(type(source).model_fields)
    shared = {name for name in declared if name in accepted and name not in values}
    return target(**{name: getattr(source, name) for name in sorted(shared)}, **values)


def check_fields(check: Callable[..., None], source: Any) -> None:
    """``check`` (a rule of keyword parameters, e.g. :func:`cdk_support.capacity.check_shutdown`) applied to
    the fields of ``source`` (props or ``cdk.json``'s config) of the same names; a parameter ``source`` has no
    field for keeps its default."""
    parameters = inspect.signature(check).parameters
    check(**{name: getattr(source, name) for name in parameters if hasattr(source, name)})
