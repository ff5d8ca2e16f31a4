"""Builds the processor and its worker from settings: the only place that creates the processor's AWS clients."""

from __future__ import annotations

import boto3

from runtime import aws
from runtime.archive import ArchiveStore, ProcessingStore, TriggerStore
from runtime.contract.settings import SenderSettings, WorkerSettings
from runtime.notify import CustomerSes, RateLimiter, SesMailer
from runtime.pipeline.routing import ProcessorHandler
from runtime.pipeline.state_machine import Processor
from runtime.telemetry import MetricsFactory
from runtime.worker import Worker, task_integration


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
    # no meeting coordinator and no Graph settings here: the change coordinator owns meetings (docs/design.md §5)
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
