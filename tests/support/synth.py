"""Helpers of the infrastructure tests: synthesize an app once, then read its templates."""

from __future__ import annotations

import os

from cfnlint.api import ManualArgs, lint_file

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from stacks.app_builder import Pipeline, build_app, default_context
from stacks.config import PlatformConfig

GOV = "222222222222"
MGMT = "111111111111"
REGION = "us-east-1"


@dataclass
class Synth:
    """A synthesized app: the pipeline (constructs) and every stack's template."""

    pipeline: Pipeline
    outdir: Path
    templates: dict[str, dict[str, Any]]
    metadata: dict[str, dict[str, Any]]

    @property
    def config(self) -> PlatformConfig:
        return self.pipeline.config

    def template(self, stack_name: str) -> Template:
        return Template.from_json(self.templates[stack_name], skip_cyclical_dependencies_check=True)

    def resources(self, stack_name: str, type_: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[stack_name]["Resources"].items()
            if resource["Type"] == type_
        }

    def only(self, stack_name: str, type_: str) -> dict[str, Any]:
        found = self.resources(stack_name, type_)
        assert len(found) == 1, f"{stack_name}: expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))


def synthesize(
    outdir: Path,
    context: dict[str, Any] | None = None,
    *,
    config: PlatformConfig | None = None,
    nag: bool = True,
    read_metadata: bool = True,
) -> Synth:
    pipeline = build_app(context, config=config, outdir=str(outdir), nag=nag)
    assembly = pipeline.app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    metadata = {
        stack.stack_name: json.loads((outdir / f"{stack.id}.metadata.json").read_text())
        for stack in assembly.stacks
        if read_metadata and (outdir / f"{stack.id}.metadata.json").exists()
    }
    return Synth(pipeline=pipeline, outdir=outdir, templates=templates, metadata=metadata)


def sample_context(**ttp_overrides: Any) -> dict[str, Any]:
    """cdk.json's context with some ``ttp`` keys replaced."""
    context = copy.deepcopy(default_context())
    context["ttp"].update(copy.deepcopy(ttp_overrides))
    return context


SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ttp/graph-AbCdEf"
MEETINGS = {
    "graph_tenant_id": "00000000-0000-0000-0000-000000000001",
    "graph_client_id": "00000000-0000-0000-0000-000000000002",
    "meeting_organizer": "change-bot@example.com",
    "graph_client_secret": "ttp/graph-client-secret",
    "contact_reader_external_id": "ttp-contact-reader-9c1e",
}


def task_definition(synth: Synth, stack_name: str, family: str) -> dict[str, Any]:
    """The task definition of that family (the platform stack has the sweeper's and the coordinator's)."""
    found = [
        resource
        for resource in synth.resources(stack_name, "AWS::ECS::TaskDefinition").values()
        if resource["Properties"].get("Family") == family
    ]
    assert len(found) == 1, f"{stack_name}: expected one task definition of family {family}, found {len(found)}"
    return found[0]


def env_of(task_definition: dict[str, Any], container: int = 0) -> dict[str, str]:
    definition = task_definition["Properties"]["ContainerDefinitions"][container]
    return {item["Name"]: item["Value"] for item in definition.get("Environment", [])}


def secrets_of(task_definition: dict[str, Any], container: int = 0) -> dict[str, Any]:
    definition = task_definition["Properties"]["ContainerDefinitions"][container]
    return {item["Name"]: item["ValueFrom"] for item in definition.get("Secrets", [])}


def statements(policy_resource: dict[str, Any]) -> list[dict[str, Any]]:
    document = policy_resource["Properties"].get("PolicyDocument") or policy_resource["Properties"]["KeyPolicy"]
    return list(document["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_named(synth: Synth, stack_name: str, role_name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, role in synth.resources(stack_name, "AWS::IAM::Role").items():
        if role["Properties"].get("RoleName") == role_name:
            return logical_id, role
    raise AssertionError(f"{stack_name}: no role named {role_name}")


def policies_of_role(synth: Synth, stack_name: str, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to a role."""
    found: list[dict[str, Any]] = []
    for policy in synth.resources(stack_name, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            found += statements(policy)
    return found


def settings_from(model: type[Any], env: dict[str, str], monkeypatch: Any, **extra_env: str) -> Any:
    """Load a runtime settings model exactly as the container would: from these environment variables."""
    for key in list(os.environ):
        if key.startswith("TTP_"):
            monkeypatch.delenv(key)
    for key, value in {**env, **extra_env}.items():
        monkeypatch.setenv(key, _deployed(value))
    return model()


def settings_in(model: type[Any], env: dict[str, str], **extra_env: str) -> Any:
    """:func:`settings_from` outside a test's own monkeypatch (the environment is restored on return)."""
    import pytest

    with pytest.MonkeyPatch.context() as monkeypatch:
        return settings_from(model, env, monkeypatch, **extra_env)


PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::URLSuffix": "amazonaws.com"}


def _deployed(value: Any) -> str:
    """A value as CloudFormation hands it to the container: a pseudo parameter's ``Ref`` resolved."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[value["Ref"]]
    return str(value)


HASH = re.compile(r"[0-9a-f]{64}")


def normalise(template: dict[str, Any]) -> Any:
    """Asset hashes (image tags, S3 keys of assets) depend on file contents outside the template."""
    return json.loads(HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


def lint_errors(template: Path) -> list[str]:
    matches = lint_file(template, ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message} ({m.filename}:{m.linenumber})" for m in matches if m.rule.id.startswith("E")]
