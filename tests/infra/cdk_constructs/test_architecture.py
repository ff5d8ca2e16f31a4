"""The image is built for the CPU architecture its tasks run on (issue 12).

An image asset without a platform is built for the machine that runs ``cdk deploy``: from Apple Silicon or
a Graviton CI runner an x86-64 task fails with "exec format error". ``cpu_architecture`` is one property
(``ttp.cpu_architecture`` / ``RuntimeTaskBaseProps.cpu_architecture``) that sets both the task
definition's ``RuntimePlatform`` and the image asset's ``platform``; checked on the synthesized cloud
assembly (the asset manifests ``cdk deploy`` builds from) for both architectures.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_constructs.runtime_task import IMAGE_PLATFORMS
from tests.support.synth import Synth, sample_context, synthesize

DOCKER_PLATFORM = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}


@pytest.fixture(scope="module")
def graviton(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("graviton"), sample_context(cpu_architecture="ARM64"), nag=False)


def _image_platforms(synth: Synth) -> dict[str, str]:
    """Image tag (the asset hash) -> the platform ``docker build`` is told to target, over every stack."""
    platforms: dict[str, str] = {}
    for manifest in synth.outdir.glob("*.assets.json"):
        for asset_hash, asset in json.loads(manifest.read_text()).get("dockerImages", {}).items():
            platforms[asset_hash] = asset["source"].get("platform", "<unpinned>")
    return platforms


def _image_tag(image: Any) -> str:
    text = json.dumps(image)
    return text.rsplit(":", 1)[1].strip('"}] ')


def _tasks(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    return [
        (stack, resource)
        for stack in synth.templates
        for resource in synth.resources(stack, "AWS::ECS::TaskDefinition").values()
    ]


@pytest.mark.parametrize(("variant", "architecture"), [("sample", "X86_64"), ("graviton", "ARM64")])
def test_every_task_runs_an_image_built_for_its_architecture(
    variant: str, architecture: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    platforms = _image_platforms(synth)
    tasks = _tasks(synth)
    assert len(tasks) == 2 + len(synth.config.customers)  # sweeper, coordinator, one processor per customer
    for stack, task in tasks:
        runtime_platform = task["Properties"]["RuntimePlatform"]
        assert runtime_platform == {"CpuArchitecture": architecture, "OperatingSystemFamily": "LINUX"}, stack
        tag = _image_tag(task["Properties"]["ContainerDefinitions"][0]["Image"])
        assert platforms[tag] == DOCKER_PLATFORM[architecture], (stack, task["Properties"]["Family"])


def test_the_two_architectures_map_to_the_two_docker_platforms() -> None:
    assert {name: platform.platform for name, platform in IMAGE_PLATFORMS.items()} == DOCKER_PLATFORM


def test_an_unknown_architecture_is_refused_naming_the_field(tmp_path_factory: pytest.TempPathFactory) -> None:
    from stacks.config import ConfigError

    with pytest.raises(ConfigError, match=r"ttp\.cpu_architecture"):
        synthesize(tmp_path_factory.mktemp("bad-arch"), sample_context(cpu_architecture="arm64"), nag=False)
