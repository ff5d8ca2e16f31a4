"""Snapshot tests of the sample app's templates (asset hashes normalised so they do not churn).

Update after an intended change: ``.venv/bin/python -m pytest tests/infra/stacks/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_account_stack_name, customer_stack_name
from tests.support.synth import Synth, normalise

STACKS = [
    STORAGE_STACK,
    PLATFORM_STACK,
    customer_stack_name("hts"),
    customer_stack_name("htsnonprod"),
    customer_account_stack_name("hts"),
    customer_account_stack_name("htsnonprod"),
]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_sample_stacks_are_the_ones_snapshotted(sample: Synth) -> None:
    assert sorted(sample.templates) == sorted(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_template_snapshot(sample: Synth, snapshot_json: SnapshotAssertion, stack: str) -> None:
    assert normalise(sample.templates[stack]) == snapshot_json


def test_normalise_removes_only_hashes() -> None:
    image = {"Image": "1.dkr.ecr/repo:" + "a" * 64, "Name": "customer-hts-changes"}
    assert normalise(image) == {"Image": "1.dkr.ecr/repo:<asset-hash>", "Name": "customer-hts-changes"}
