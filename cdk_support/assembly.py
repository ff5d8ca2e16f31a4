"""Reading a synthesized cloud assembly (``cdk.out``) without the CDK: its stack artifacts, the account
and region each is bound to, and the resources of a template.

Plain ``json`` and ``pathlib``, so the synth-time quota check (:mod:`cdk_support.quotas`) and the local
tools that read an assembly (``devtools``) walk manifests and templates the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACK_ARTIFACT = "aws:cloudformation:stack"
ENVIRONMENT_PREFIX = "aws://"


@dataclass(frozen=True)
class AssemblyStack:
    """One stack of an assembly: its name, where it deploys, its template."""

    name: str
    account: str
    region: str
    template: Mapping[str, Any]

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template.get("Resources", {})
        return resources

    def of_type(self, type_: str) -> dict[str, Mapping[str, Any]]:
        """The resources of one type, by logical id."""
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == type_}


@dataclass(frozen=True)
class SynthesizedStack(AssemblyStack):
    """A stack as the quota check measures it: also its template's size and file."""

    template_bytes: int
    template_path: str = ""


def stack_artifacts(outdir: Path | str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(artifact id, artifact)`` of every stack in ``outdir/manifest.json``, in the manifest's order."""
    manifest = json.loads((Path(outdir) / "manifest.json").read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") == STACK_ARTIFACT:
            yield artifact_id, artifact


def environment_of(artifact: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(account, region)`` of an artifact's ``aws://ACCOUNT/REGION``; None when it is not of that form
    (the values may still be CDK's ``unknown-account`` / ``unknown-region`` of an environment-agnostic stack)."""
    environment = str(artifact.get("environment", ""))
    parts = environment.removeprefix(ENVIRONMENT_PREFIX).split("/")
    if not environment.startswith(ENVIRONMENT_PREFIX) or len(parts) != 2:
        return None
    return parts[0], parts[1]


def template_path(outdir: Path | str, artifact: Mapping[str, Any]) -> Path:
    return Path(outdir) / str(artifact["properties"]["templateFile"])


def resources_of(template: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(logical id, type, properties)`` of every resource of a template (properties ``{}`` when absent)."""
    for logical_id, resource in template.get("Resources", {}).items():
        yield logical_id, resource.get("Type", ""), resource.get("Properties", {}) or {}


def read_assembly(directory: Path | str) -> list[SynthesizedStack]:
    """The stacks of a cloud assembly directory (``cdk.out``): templates and environments from its manifest."""
    stacks = []
    for artifact_id, artifact in stack_artifacts(directory):
        path = template_path(directory, artifact)
        text = path.read_text()
        account, region = environment_of(artifact) or ("unknown-account", "unknown-region")
        name = artifact.get("displayName") or artifact_id
        stacks.append(SynthesizedStack(name, account, region, json.loads(text), len(text.encode()), str(path)))
    return stacks


def synthesized_stacks(template_paths: Iterable[str]) -> list[SynthesizedStack]:
    """The stacks of these template files, named and placed by the manifest beside each (the synth-time
    quota check: CDK writes the manifest before its validation plugins run, so no stack has to be asked
    across jsii for its name, account and region, several round trips per stack). A template the manifest
    does not list is named by its file, in ``unknown-account`` / ``unknown-region``."""
    artifacts: dict[Path, dict[str, tuple[str, Mapping[str, Any]]]] = {}
    stacks = []
    for path_text in template_paths:
        path = Path(path_text)
        if path.parent not in artifacts:
            listed = stack_artifacts(path.parent) if (path.parent / "manifest.json").is_file() else iter(())
            artifacts[path.parent] = {
                str(artifact["properties"]["templateFile"]): (artifact_id, artifact) for artifact_id, artifact in listed
            }
        found = artifacts[path.parent].get(path.name)
        name, (account, region) = path.stem, ("unknown-account", "unknown-region")
        if found is not None:
            artifact_id, artifact = found
            name = str(artifact["properties"].get("stackName", artifact_id))
            account, region = environment_of(artifact) or (account, region)
        text = path.read_text()
        stacks.append(SynthesizedStack(name, account, region, json.loads(text), len(text.encode()), path_text))
    return stacks
