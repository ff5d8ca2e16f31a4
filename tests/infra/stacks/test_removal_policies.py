"""A failed first create must leave nothing behind that blocks its retry (issue 12).

CloudFormation keeps a ``Retain`` resource when a create rolls back; with a fixed physical name
(``/ecs/change-processor/{code}``, ``ttp-metadata-…``) the next attempt then fails with "already exists".
``RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE`` (CloudFormation ``DeletionPolicy: RetainExceptOnCreate``)
keeps the resource on update and delete but removes it when the create that made it rolls back.
Checked on every template of every shape of the app.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.synth import Synth

VARIANTS = ["sample", "multi", "single", "single_byo"]


def _physical_names(resource: dict[str, Any]) -> dict[str, Any]:
    """The properties that fix the resource's physical name (``BucketName``, ``LogGroupName``, ``Name`` …)."""
    return {key: value for key, value in resource.get("Properties", {}).items() if key.endswith("Name")}


def _named_retained(synth: Synth) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack, template in synth.templates.items()
        for logical_id, resource in template["Resources"].items()
        if _physical_names(resource) and resource.get("DeletionPolicy", "Delete") != "Delete"
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_named_resource_is_retained_after_a_failed_create(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    retained = _named_retained(synth)
    assert retained, "expected the named log groups and the bucket to be retained on delete"
    wrong = [
        (stack, logical_id, resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        for stack, logical_id, resource in retained
        if resource.get("DeletionPolicy") != "RetainExceptOnCreate" or resource.get("UpdateReplacePolicy") != "Retain"
    ]
    assert wrong == []


def test_the_retained_named_resources_are_the_expected_ones(sample: Synth) -> None:
    """Every log group of a runtime task and the metadata bucket keep their data on update and delete."""
    retained = {
        (resource["Type"], str(next(iter(_physical_names(resource).values()))))
        for _, _, resource in _named_retained(sample)
    }
    assert retained == {
        ("AWS::Logs::LogGroup", "/ecs/change-processor/hts"),
        ("AWS::Logs::LogGroup", "/ecs/change-processor/htsnonprod"),
        ("AWS::Logs::LogGroup", "/ecs/change-processor/sweeper"),
        ("AWS::Logs::LogGroup", "/ecs/change-processor/coordinator"),
        ("AWS::S3::Bucket", sample.config.metadata_bucket_name),
    }


def test_the_access_log_bucket_is_kept_the_same_way(sample: Synth) -> None:
    """Unnamed, so it never blocks a retry; still retained like the bucket whose history it holds."""
    buckets = sample.resources("TtpStorage", "AWS::S3::Bucket")
    (access_logs,) = [r for r in buckets.values() if "BucketName" not in r["Properties"]]
    assert (access_logs["DeletionPolicy"], access_logs["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
