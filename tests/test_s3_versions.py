"""The emulator's ``ListObjectVersions`` under a prefix copies only that prefix's versions and answers as
moto does (``devtools/s3_versions.py``)."""

from __future__ import annotations

import copy
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3 import models as s3_models

from devtools import s3_versions
from devtools.emulator import FAKE_CREDENTIALS

BUCKET = "versions"
KEYS = ["archive/CHG-1.json", "archive/CHG-1.json.json", "archive/CHG-2.json", "customers/a/CHG-1.json", "z/last"]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s3_versions.install()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for round_ in range(3):
            for key in KEYS:
                client.put_object(Bucket=BUCKET, Key=key, Body=f"{key} {round_}".encode())
        client.delete_object(Bucket=BUCKET, Key="archive/CHG-2.json")  # a delete marker is the latest
        yield client


def _listing(s3: Any, **kwargs: Any) -> list[tuple[str, str, bool, str]]:
    """Every version and delete marker, page by page (``MaxKeys`` per page), as (key, id, latest, kind)."""
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, **kwargs):
        for kind in ("Versions", "DeleteMarkers"):
            found += [(v["Key"], v["VersionId"], v["IsLatest"], kind) for v in page.get(kind, [])]
    return found


@pytest.mark.parametrize("page_size", [1, 2, 1000])
@pytest.mark.parametrize("prefix", ["archive/CHG-1.json", "archive/", "customers/", "z/", "nothing/"])
def test_a_prefix_lists_what_the_whole_bucket_lists_under_it(s3: Any, prefix: str, page_size: int) -> None:
    whole = _listing(s3, PaginationConfig={"PageSize": 1000})  # no prefix: moto's own listing of every key
    assert len(whole) == 3 * len(KEYS) + 1
    under = [entry for entry in whole if entry[0].startswith(prefix)]
    assert sorted(_listing(s3, Prefix=prefix, PaginationConfig={"PageSize": page_size})) == sorted(under)


def test_a_prefix_listing_copies_no_version_outside_the_prefix(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[str] = []

    def deepcopy(value: Any, memo: Any = None) -> Any:
        copied.extend({version.name for version in value})
        return copy.deepcopy(value, memo)

    monkeypatch.setattr(s3_models, "copy", types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy), raising=True)
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix="archive/CHG-1.json")
    assert {v["Key"] for v in listed["Versions"]} == {"archive/CHG-1.json", "archive/CHG-1.json.json"}
    assert sorted(copied) == ["archive/CHG-1.json", "archive/CHG-1.json.json"]
