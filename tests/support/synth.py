"""Helpers of the infrastructure tests: synthesize an app once, then read its templates."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import copy
import fcntl
import functools
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app_builder import Pipeline, build_app, default_context
from stacks.config import CONTEXT_KEY, ROUTING_KEY, SAMPLE_CUSTOMERS_KEY, PlatformConfig, config_from_context

if TYPE_CHECKING:
    from cfnlint.rules import RulesCollection

GOV = "222222222222"
MGMT = "111111111111"
REGION = "us-east-1"


class Synth:
    """A synthesized app: the pipeline (constructs) and every stack's template.

    One read from a cloud assembly another process synthesized (:func:`synthesize_shared`) has no
    constructs in this process: they are built from its context when a test asks for them (the
    ``pipeline``), and its ``config`` is the context's, as :func:`stacks.app_builder.build_app` derives it.
    """

    def __init__(
        self,
        pipeline: Pipeline | None,
        outdir: Path,
        templates: dict[str, dict[str, Any]],
        metadata: dict[str, dict[str, Any]],
        context: dict[str, Any] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self.outdir = outdir
        self.templates = templates
        self.metadata = metadata
        self.context = context
        self._config: PlatformConfig | None = None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = build_app(copy.deepcopy(self.context), nag=False, quotas=False)
        return self._pipeline

    @property
    def config(self) -> PlatformConfig:
        if self._pipeline is not None:
            return self._pipeline.config
        if self._config is None:
            self._config = config_of(self.context)
        return self._config

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
    builtin_validation: bool = False,
) -> Synth:
    """``builtin_validation``: off by default here (about 6 CPU s per synthesis, more with many stacks);
    the shared sample (``tests/infra/conftest.py``) runs it, so the product's own check is still tested."""
    pipeline = build_app(context, config=config, outdir=str(outdir), nag=nag, builtin_validation=builtin_validation)
    assembly = pipeline.app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    metadata = {
        stack.stack_name: json.loads((outdir / f"{stack.id}.metadata.json").read_text())
        for stack in assembly.stacks
        if read_metadata and (outdir / f"{stack.id}.metadata.json").exists()
    }
    return Synth(pipeline, outdir=outdir, templates=templates, metadata=metadata, context=context)


def app_without_validation(**props: Any) -> App:
    """An ``App`` for a test's own constructs, without aws-cdk-lib's built-in CloudFormation validation.

    A plain ``App()`` runs it on every synthesis, ``Template.from_stack`` included: about 4 CPU s the first
    time in a process (its WebAssembly engine) and more per large template, in every xdist worker that
    synthesizes one. It changes no template; the shared sample (:func:`shared_sample`) and the CLI's synth
    keep it, and ``tests/infra/test_compliance.py`` checks that it ran there."""
    return App(builtin_cloud_formation_validation=False, **props)


def config_of(context: dict[str, Any] | None) -> PlatformConfig:
    """The config :func:`build_app` derives from ``context`` (cdk.json's by default), without an app."""
    ctx = default_context() if context is None else context
    return config_from_context({**ctx, **{k: ctx.get(k) for k in (CONTEXT_KEY, SAMPLE_CUSTOMERS_KEY, ROUTING_KEY)}})


def read_synth(outdir: Path, context: dict[str, Any] | None, *, read_metadata: bool = True) -> Synth:
    """The templates (and nag metadata) of a cloud assembly on disk, by stack name, as :func:`synthesize`
    returns them; the constructs are built again only if a test asks for them."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        artifact["properties"].get("stackName", artifact_id): artifact_id
        for artifact_id, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    templates = {name: json.loads((outdir / f"{aid}.template.json").read_text()) for name, aid in stacks.items()}
    metadata = {
        name: json.loads((outdir / f"{aid}.metadata.json").read_text())
        for name, aid in stacks.items()
        if read_metadata and (outdir / f"{aid}.metadata.json").exists()
    }
    return Synth(None, outdir=outdir, templates=templates, metadata=metadata, context=context)


def synthesize_shared(
    factory: pytest.TempPathFactory, name: str, context: dict[str, Any] | None = None, **kwargs: Any
) -> Synth:
    """:func:`synthesize` once per test run for every xdist worker: the first to ask synthesizes into
    pytest's shared temporary root (keyed by the sources that shape the templates, the context and the
    options) while the others wait on a file lock and read the same assembly from disk.

    A cloud assembly is the whole product of a synthesis (what ``cdk deploy`` reads), so reading it back
    gives each test the same templates and metadata it would get from its own synthesis."""
    from tests.support.deployed import shared_root, source_hash

    root = shared_root(factory)
    options = json.dumps({"context": context, **kwargs}, sort_keys=True, default=str)
    key = hashlib.sha256(f"{source_hash()}\0{options}".encode()).hexdigest()[:16]
    outdir = root / f"synth-{name}-{key}"
    with (root / f"synth-{name}-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (outdir / "manifest.json").is_file():
            return read_synth(outdir, context, read_metadata=kwargs.get("read_metadata", True))
        building = root / f"synth-{name}-{key}.partial"
        shutil.rmtree(building, ignore_errors=True)  # a worker that died while synthesizing
        synth = synthesize(building, context, **kwargs)
        building.rename(outdir)
        synth.outdir = outdir
        return synth


def shared_sample(factory: pytest.TempPathFactory) -> Synth:
    """The sample app of cdk.json with cdk-nag and CDK's built-in CloudFormation validation (as an
    operator's synth runs them), synthesized once per test run (:func:`synthesize_shared`).

    Also what the tests that only deploy or read its templates use: the validation plugins add their
    reports (the ``*.metadata.json`` entries, ``validation-report.json``) and change no template, asset or
    manifest (compared byte for byte), so a second synthesis without them would only repeat the same work."""
    return synthesize_shared(factory, "sample", builtin_validation=True)


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


LINT_REGIONS = ["us-east-1"]
"""cfn-lint's options here: ``cfnlint.api.ManualArgs(regions=LINT_REGIONS)``. cfn-lint is imported by the
functions that lint (about 0.7 CPU s), not by every test process that imports this module."""


@functools.cache
def _lint_rules() -> RulesCollection:
    """cfn-lint's rules, loaded once per process: ``cfnlint.api.lint_file`` imports and builds every rule
    (and the schemas they read) again for each template, about a third of its time. The command line
    reuses one collection for all the templates it is given; each run initializes the rules for its
    template."""
    from cfnlint.api import ManualArgs
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn([], **ManualArgs(regions=LINT_REGIONS))).rules


def lint_errors(template: Path) -> list[str]:
    """cfn-lint's errors in one template file, as ``cfnlint.api.lint_file`` reports them with
    ``ManualArgs(regions=LINT_REGIONS)``."""
    from cfnlint.api import ManualArgs
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import run_template_by_file_path

    config = ConfigMixIn(["--template", str(template)], **ManualArgs(regions=LINT_REGIONS))
    matches = run_template_by_file_path(str(template), config, _lint_rules(), ignore_bad_template=False)
    return [f"{m.rule.id} {m.message} ({m.filename}:{m.linenumber})" for m in matches if m.rule.id.startswith("E")]
