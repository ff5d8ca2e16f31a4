"""Builds the change coordinator's worker from settings: the only place it creates AWS clients."""

from __future__ import annotations

import boto3

from runtime import aws
from runtime.archive.store import ArchiveStore
from runtime.contract.settings import CoordinatorSettings, MeetingSettings, load
from runtime.coordinator.folding import FoldBatcher, Folder
from runtime.coordinator.handler import CoordinatorHandler, Meetings
from runtime.pipeline.composition import task_integration
from runtime.pipeline.worker import Worker
from runtime.telemetry.metrics import MetricsFactory


def build_handler(
    settings: CoordinatorSettings,
    session: boto3.session.Session | None = None,
    *,
    meeting_settings: MeetingSettings | None = None,
    pool: int = 10,
) -> CoordinatorHandler:
    """The handler; meetings only when ``TTP_GRAPH_TENANT_ID`` (and the rest) are set."""
    session = session or boto3.session.Session()
    s3 = aws.client("s3", session=session, pool=pool)
    archive = ArchiveStore(s3, settings.bucket_name)
    metrics = MetricsFactory(settings.metrics_namespace)
    meetings: Meetings | None = None
    meeting_settings = meeting_settings or load(MeetingSettings)
    if meeting_settings.enabled:
        from runtime.notify.meetings import build_meeting_coordinator

        # wait_seconds=0: a lease held by another coordinator task means retry later, not block a thread.
        meetings = build_meeting_coordinator(meeting_settings, settings, session, wait_seconds=0.0)
    return CoordinatorHandler(
        s3,
        settings.bucket_name,
        archive,
        FoldBatcher(Folder(archive, metrics), settings.fold_linger_seconds),
        metrics,
        meetings,
    )


def build_coordinator(settings: CoordinatorSettings, session: boto3.session.Session | None = None) -> Worker:
    session = session or boto3.session.Session()
    pool = max(10, settings.max_concurrency * 3)
    return Worker(
        aws.client("sqs", session=session, pool=pool),
        settings.queue_url,
        build_handler(settings, session, pool=pool),
        max_concurrency=settings.max_concurrency,
        visibility_timeout=settings.visibility_timeout_seconds,
        receive_wait_seconds=settings.receive_wait_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        drain_seconds=settings.drain_seconds,
        **task_integration(scale_in_protection=False),
    )
