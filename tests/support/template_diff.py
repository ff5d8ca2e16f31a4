"""Template facts the upgrade and onboarding tests compare: each resource's physical name, and the
resource-by-resource difference of two synthesized apps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.support.synth import normalise

NAME_PROPERTIES = (
    "BucketName",
    "QueueName",
    "RoleName",
    "LogGroupName",
    "ServiceName",
    "ClusterName",
    "TopicName",
    "AlarmName",
    "DashboardName",
    "AliasName",
    "Family",
    "FunctionName",
    "ConfigurationSetName",
    "Name",
    "StatementId",
)
"""Properties that hold a resource's physical name, in the order they are looked for (a rule's ``Name``
before its ``EventBusName``, which names another resource)."""


def physical_name(resource: dict[str, Any]) -> str | None:
    """The physical name the template gives the resource (JSON of an intrinsic), or None (generated)."""
    properties = resource.get("Properties", {})
    if resource["Type"] == "AWS::Events::EventBus":
        return _text(properties.get("Name"))
    for key in NAME_PROPERTIES:
        if key in properties:
            return _text(properties[key])
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def resource_names(templates: dict[str, dict[str, Any]]) -> list[list[str | None]]:
    """``[stack, logical id, type, physical name]`` of every resource, sorted (asset hashes normalised)."""
    rows: list[list[str | None]] = []
    for stack, template in templates.items():
        for logical_id, resource in normalise(template)["Resources"].items():
            rows.append([stack, logical_id, resource["Type"], physical_name(resource)])
    return sorted(rows, key=lambda row: (str(row[0]), str(row[1])))


def changed_paths(before: Any, after: Any, path: str = "") -> Iterator[str]:
    """Where two JSON values differ: dict keys are followed, lists of ``{"Name": ...}`` items (container
    environments) are matched by name, any other list differs as a whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            yield from changed_paths(before.get(key), after.get(key), f"{path}.{key}" if path else key)
    elif _named_items(before) and _named_items(after):
        old = {item["Name"]: item for item in before}
        new = {item["Name"]: item for item in after}
        for name in sorted(set(old) | set(new)):
            yield from changed_paths(old.get(name), new.get(name), f"{path}[{name}]")
    elif (
        isinstance(before, list)
        and isinstance(after, list)
        and len(before) == len(after)
        and all(isinstance(a, dict | list) and isinstance(b, dict | list) for a, b in zip(before, after, strict=True))
    ):
        for index, (a, b) in enumerate(zip(before, after, strict=True)):
            yield from changed_paths(a, b, f"{path}[{index}]")
    elif before != after:
        yield path


def _named_items(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "Name" in v for v in value)


def template_changes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Every change from ``before`` to ``after``, as (stack, logical id, what): ``what`` is ``added`` /
    ``removed`` (a stack or a resource) or the changed path inside the resource. A new stack is one
    ``(stack, "*", "added")``."""
    changes: set[tuple[str, str, str]] = set()
    for stack in sorted(set(before) | set(after)):
        if stack not in before or stack not in after:
            changes.add((stack, "*", "added" if stack in after else "removed"))
            continue
        old, new = normalise(before[stack]), normalise(after[stack])
        for section in sorted(set(old) | set(new)):
            if section == "Resources":
                continue
            if old.get(section) != new.get(section):
                changes.add((stack, f"<{section}>", "changed"))
        resources_before, resources_after = old.get("Resources", {}), new.get("Resources", {})
        for logical_id in sorted(set(resources_before) | set(resources_after)):
            if logical_id not in resources_before or logical_id not in resources_after:
                changes.add((stack, logical_id, "added" if logical_id in resources_after else "removed"))
                continue
            for path in changed_paths(resources_before[logical_id], resources_after[logical_id]):
                changes.add((stack, logical_id, path))
    return changes


def names_file_text(rows: list[list[str | None]]) -> str:
    """The committed list's format: one resource per line (diffs show the one row that changed)."""
    return "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n"
