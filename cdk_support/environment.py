"""Container environments derived from ``runtime.contract.settings`` (the runtime's contract), no aws_cdk import.

The stacks set exactly the fields of the runtime's pydantic-settings models, as ``TTP_<FIELD>``.
Values the infrastructure knows are passed in; every other field gets the model's default, so a
new runtime setting with a default flows into the task definition without an infra change. A new
*required* field (or a value for a field that does not exist) stops the synth with a message naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from runtime.contract.settings import env_var


@runtime_checkable
class Deferred(Protocol):
    """A value known only when the app is synthesized (``cdk_support.lazy.LiveMapping``): it renders itself
    as a token whose producer applies :func:`render` then."""

    def rendered(self, render: Callable[[Any], str]) -> str: ...


class EnvironmentContractError(ValueError):
    """The infrastructure and ``runtime.contract.settings`` disagree about a setting."""


def render(value: Any) -> str:
    """An environment-variable string that pydantic-settings parses back to ``value``."""
    if isinstance(value, Deferred):
        return value.rendered(render)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def setting_default(model: type[BaseModel], name: str) -> Any:
    """The default of ``model.<name>``: props of the constructs default to it instead of repeating the number."""
    field = model.model_fields[name]
    if field.default is PydanticUndefined:
        raise EnvironmentContractError(f"{model.__name__}.{name} has no default")
    return field.default


def settings_environment(
    model: type[BaseModel],
    values: Mapping[str, Any],
    *,
    exclude: Iterable[str] = (),
) -> dict[str, str]:
    """``TTP_*`` variables for every field of ``model``; ``exclude`` lists fields set another way (secrets)."""
    excluded = set(exclude)
    fields = model.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise EnvironmentContractError(
            f"{model.__name__} has no field(s) {unknown}: runtime/settings.py changed; update the construct"
        )
    environment: dict[str, str] = {}
    for name, field in fields.items():
        if name in excluded:
            continue
        if name in values:
            value = values[name]
        elif field.default is not PydanticUndefined and field.default is not None:
            value = field.default
        elif field.default_factory is not None:
            value = field.default_factory()  # type: ignore[call-arg]
        elif field.default is None:
            continue  # optional and unset: the runtime's own default applies
        else:
            raise EnvironmentContractError(
                f"{model.__name__}.{name} ({env_var(name)}) is required by the runtime but the infrastructure "
                "does not set it: add it to the construct"
            )
        if value is None:
            continue
        environment[env_var(name)] = render(value)
    return environment
