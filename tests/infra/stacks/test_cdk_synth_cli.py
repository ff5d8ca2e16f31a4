"""The pinned CDK CLI synthesizes the sample app offline (``npx cdk synth``), like a developer would."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.app_builder import REPO_ROOT
from tests.support.synth import Synth, normalise

PINNED = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]


def _cli_env(outdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    if shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / "aws-cdk").is_dir():
        pytest.fail("the pinned CDK CLI is not installed: run `npm ci` (make setup)")
    outdir = tmp_path_factory.mktemp("cli-synth")
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "--output", str(outdir)],
        cwd=REPO_ROOT,
        env=_cli_env(outdir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return outdir, result


def test_cli_is_the_pinned_version() -> None:
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == PINNED
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "--version"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split()[0] == PINNED


def test_cli_synth_succeeds_offline(cli_out: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    outdir, result = cli_out
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Successfully synthesized" in result.stderr + result.stdout
    assert len(list(outdir.glob("*.template.json"))) == 6
    assert not (REPO_ROOT / "cdk.context.json").exists(), "synth must not need context lookups"


def _without_cli_extras(template: dict[str, Any]) -> dict[str, Any]:
    """The CLI adds path/asset metadata and the CDKMetadata (version reporting) resource; nothing else."""
    template = copy.deepcopy(template)
    resources = template["Resources"]
    resources.pop("CDKMetadata", None)
    for resource in resources.values():
        resource.pop("Metadata", None)
    conditions = template.get("Conditions", {})
    conditions.pop("CDKMetadataAvailable", None)
    if "Conditions" in template and not conditions:
        del template["Conditions"]
    return normalise(template)  # the runtime/ asset hash moves whenever runtime/ is edited


def test_cli_synth_matches_the_in_process_app(
    cli_out: tuple[Path, subprocess.CompletedProcess[str]], sample: Synth
) -> None:
    outdir, _ = cli_out
    for name, template in sample.templates.items():
        from_cli = json.loads((outdir / f"{name}.template.json").read_text())
        assert _without_cli_extras(from_cli) == _without_cli_extras(template), name
