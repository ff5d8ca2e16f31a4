"""Fixtures of the coordinator tests: an in-process moto platform, the fake Graph, event bodies."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS
from devtools.fake_graph import FakeGraph
from runtime.archive.documents import utcnow
from runtime.archive.processing import ProcessingDocument, RevisionResult
from runtime.archive.store import ArchiveStore
from runtime.contract import keys
from runtime.coordinator.folding import FoldBatcher, Folder
from runtime.coordinator.handler import CoordinatorHandler, Meetings
from runtime.telemetry.metrics import MetricsFactory
from tests.support.aws_platform import Platform


@pytest.fixture(scope="module")
def shared_platform() -> Iterator[Platform]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield Platform(sb.create_sandbox(sb.sample_customers(), notifications=False))


@pytest.fixture
def platform(shared_platform: Platform) -> Platform:
    shared_platform.metrics_stream = io.StringIO()
    return shared_platform


_IDS = itertools.count(1)


@pytest.fixture
def change_id() -> str:
    return f"CHG-C{next(_IDS)}"


@pytest.fixture(scope="module")
def graph_server() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
def fake(graph_server: FakeGraph) -> FakeGraph:
    graph_server.reset()
    return graph_server


class S3Counter:
    """Wraps the S3 client and counts the PUTs of archive objects."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.archive_puts = 0
        self.archive_gets = 0

    def put_object(self, **kwargs: Any) -> Any:
        if str(kwargs.get("Key", "")).startswith(keys.ARCHIVE_PREFIX):
            self.archive_puts += 1
        return self._target.put_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        if str(kwargs.get("Key", "")).startswith(keys.ARCHIVE_PREFIX):
            self.archive_gets += 1
        return self._target.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def make_handler(
    platform: Platform,
    *,
    s3: Any = None,
    linger: float = 0.0,
    meetings: Meetings | None = None,
) -> CoordinatorHandler:
    client = s3 or platform.s3
    archive = ArchiveStore(client, platform.bucket, sleep=lambda _s: None)
    metrics = MetricsFactory("CustomMetrics", platform.metrics_stream)
    return CoordinatorHandler(
        client, platform.bucket, archive, FoldBatcher(Folder(archive, metrics), linger), metrics, meetings
    )


def result(revision: int, sent: int = 3, rejected: int = 0, finished_ago: float = 2.0) -> RevisionResult:
    finished = utcnow() - timedelta(seconds=finished_ago)
    return RevisionResult(
        revision=revision,
        recipients=sent + rejected,
        sent=sent,
        rejected=rejected,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
    )


def write_processing(platform: Platform, code: str, change_id: str, *results: RevisionResult) -> None:
    """What a v2 processor leaves after step 7 (written directly: the processor is another branch's)."""
    doc = ProcessingDocument(customer_code=code, change_id=change_id, results={str(r.revision): r for r in results})
    platform.s3.put_object(
        Bucket=platform.bucket,
        Key=keys.processing_key(code, change_id),
        Body=json.dumps(doc.to_json_dict()).encode(),
        ContentType="application/json",
    )


def s3_event(bucket: str, key: str) -> str:
    """An S3 event notification body (keys URL-encoded, as S3 sends them)."""
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
                }
            ]
        }
    )


def processed(platform: Platform, change_id: str) -> list[dict[str, Any]]:
    return platform.processed_entries(change_id)


def as_time(value: str) -> datetime:
    return datetime.fromisoformat(value)
