"""Builds the processor and the worker from settings: the only place that creates AWS clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from runtime import aws
from runtime.archive.processing_store import ProcessingStore
from runtime.archive.store import ArchiveStore
from runtime.archive.triggers import TriggerStore
from runtime.contract.names import LIVENESS_FILE
from runtime.contract.settings import SenderSettings, WorkerSettings
from runtime.notify.ses import CustomerSes, RateLimiter, SesMailer
from runtime.pipeline.routing import ProcessorHandler
from runtime.pipeline.state_machine import Processor
from runtime.pipeline.task_protection import ScaleInProtection, TaskProtectionClient
from runtime.pipeline.worker import Worker
from runtime.telemetry.metrics import MetricsFactory


def build_processor(
    settings: SenderSettings, session: boto3.session.Session | None = None, pool: int = 10
) -> Processor:
    session = session or boto3.session.Session()
    s3 = aws.client("s3", session=session, pool=pool)
    customer_ses = CustomerSes(
        settings.sender_role_arn,
        settings.sender_external_id.get_secret_value(),
        f"ttp-{settings.customer_code}",
        region=settings.ses_region,
        base_session=session,
    )
    mailer = SesMailer(
        customer_ses.client,
        settings.from_address,
        settings.contact_list_name,
        RateLimiter(settings.send_rate_per_second),
        contact_cache_seconds=settings.contact_cache_seconds,
        configuration_set=settings.configuration_set,
    )
    # no meeting coordinator and no Graph settings here: the change coordinator owns meetings (DESIGN §5)
    return Processor(
        settings.customer_code,
        ArchiveStore(s3, settings.bucket_name),
        TriggerStore(s3, settings.bucket_name),
        mailer,
        MetricsFactory(settings.metrics_namespace),
        lease_seconds=settings.visibility_timeout_seconds,
        store=ProcessingStore(s3, settings.bucket_name),
    )


def build_worker(settings: WorkerSettings, session: boto3.session.Session | None = None) -> Worker:
    session = session or boto3.session.Session()
    pool = max(10, settings.max_concurrency * 3)
    return Worker(
        aws.client("sqs", session=session, pool=pool),
        settings.queue_url,
        ProcessorHandler(settings.bucket_name, build_processor(settings, session, pool)),
        max_concurrency=settings.max_concurrency,
        visibility_timeout=settings.visibility_timeout_seconds,
        receive_wait_seconds=settings.receive_wait_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        drain_seconds=settings.drain_seconds,
        **task_integration(scale_in_protection=True),
    )


def task_integration(*, scale_in_protection: bool) -> dict[str, Any]:
    """The :class:`Worker` arguments of a service task: the liveness record the container health check
    reads (processor and coordinator) and, for a service that scales in (the processor), scale-in
    protection through the ECS agent (a no-op where ``ECS_AGENT_URI`` is not set). The coordinator runs
    one task without scaling: protection would only hold back its deployments."""
    client = TaskProtectionClient.from_environment() if scale_in_protection else None
    return {"liveness_path": Path(LIVENESS_FILE), "protection": ScaleInProtection(client)}
