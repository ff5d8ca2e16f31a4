"""What the cloud assembly records beside the templates (synth time per customer, issue 19).

cdk.json sets ``aws:cdk:disable-creation-stack-traces``: aws-cdk-lib captured and formatted a V8 stack
trace for every CloudFormation element and wrote it into ``*.metadata.json``, and from a Python app those
traces name no user code unless the host's frames are sent too (``JSII_HOST_STACK_TRACES``, which the CLI
sets with ``--debug-app`` together with ``CDK_DEBUG``, and CDK_DEBUG records them again).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.synth import Synth

REPO = Path(__file__).resolve().parents[3]
CREATION_STACK = "aws:cdk:creationStack"
LOGICAL_ID = "aws:cdk:logicalId"


def _entries(metadata: dict[str, list[dict[str, object]]], kind: str) -> list[dict[str, object]]:
    return [entry for entries in metadata.values() for entry in entries if entry["type"] == kind]


def test_the_sample_records_no_creation_stack_traces(sample: Synth) -> None:
    assert sample.metadata, "the sample's *.metadata.json were not read"
    for stack, metadata in sample.metadata.items():
        assert _entries(metadata, LOGICAL_ID), f"{stack}: no logical id metadata, so nothing was checked"
        assert _entries(metadata, CREATION_STACK) == [], f"{stack} records creation stack traces"


@pytest.mark.slow
def test_cdk_debug_records_creation_stack_traces_with_the_python_frames(tmp_path: Path) -> None:
    """What ``cdk synth --debug-app`` gives back: the traces, with the app's own file and line."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_OUTDIR": str(tmp_path),
        "CDK_VALIDATION": "false",
        "CDK_DEBUG": "true",
        "JSII_HOST_STACK_TRACES": "1",
    }
    command = [sys.executable, "app.py"]
    subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True)
    metadata = json.loads((tmp_path / "TtpCustomer-hts.metadata.json").read_text())
    traces = _entries(metadata, CREATION_STACK)
    assert traces
    assert any("cdk_constructs/" in frame for trace in traces for frame in trace["data"])  # type: ignore[union-attr]
