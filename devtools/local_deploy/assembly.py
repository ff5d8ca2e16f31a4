"""Reading a synthesized cloud assembly: its stacks in deployment order, their accounts and assets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_ARTIFACT = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT = "cdk:asset-manifest"


class DeployError(Exception):
    """The assembly cannot be deployed (or was not) as its templates say; the message names the cause."""


@dataclass(frozen=True)
class StackArtifact:
    """One ``aws:cloudformation:stack`` artifact of the manifest."""

    artifact_id: str
    stack_name: str
    account: str
    region: str
    template: dict[str, Any]
    depends_on: tuple[str, ...]
    assets: dict[str, Any] = field(default_factory=dict)


def read_assembly(outdir: Path) -> list[StackArtifact]:
    """Every stack of ``outdir/manifest.json``, each after the stacks it depends on.

    Ties are broken by the manifest's own order, so the same assembly always deploys in the same order.
    """
    manifest_path = outdir / "manifest.json"
    if not manifest_path.is_file():
        raise DeployError(f"{manifest_path}: no cloud assembly here (run `cdk synth` or `make deploy-local`)")
    manifest = json.loads(manifest_path.read_text())
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    stacks: dict[str, StackArtifact] = {}
    for artifact_id, artifact in artifacts.items():
        if artifact.get("type") != STACK_ARTIFACT:
            continue
        environment = str(artifact.get("environment", ""))
        parts = environment.removeprefix("aws://").split("/")
        if not environment.startswith("aws://") or len(parts) != 2 or not parts[0].isdigit():
            raise DeployError(
                f"{artifact_id}: environment {environment!r} is not aws://ACCOUNT/REGION; give the stack an env "
                "with an account and a region (the local deployer puts each stack in its own account)"
            )
        properties = artifact.get("properties", {})
        template = json.loads((outdir / properties["templateFile"]).read_text())
        dependencies = [str(d) for d in artifact.get("dependencies", [])]
        assets: dict[str, Any] = {}
        for dependency in dependencies:
            if artifacts.get(dependency, {}).get("type") == ASSET_MANIFEST_ARTIFACT:
                asset_file = artifacts[dependency]["properties"]["file"]
                assets = json.loads((outdir / asset_file).read_text())
        stacks[artifact_id] = StackArtifact(
            artifact_id=artifact_id,
            stack_name=str(properties.get("stackName", artifact_id)),
            account=parts[0],
            region=parts[1],
            template=template,
            depends_on=tuple(d for d in dependencies if artifacts.get(d, {}).get("type") == STACK_ARTIFACT),
            assets=assets,
        )
    return _in_dependency_order(stacks)


def _in_dependency_order(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    placed: set[str] = set()
    while len(ordered) < len(stacks):
        ready = [s for s in stacks.values() if s.artifact_id not in placed and set(s.depends_on) <= placed]
        if not ready:
            waiting = sorted(set(stacks) - placed)
            raise DeployError(f"the stacks {waiting} depend on each other (or on a stack not in the assembly)")
        for stack in ready:
            ordered.append(stack)
            placed.add(stack.artifact_id)
    return ordered
