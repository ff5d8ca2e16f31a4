"""Builds the change coordinator's worker from settings: the only place it creates AWS clients.

With ``TTP_DELIVERY_QUEUE_URL`` set, the coordinator process also consumes the SES delivery events
(:class:`~runtime.coordinator.delivery.DeliveryHandler`) with a second :class:`Worker` on that queue:
:class:`CoordinatorProcess` runs both, and a stop request (SIGTERM) drains both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3

from runtime import aws
from runtime.archive import ArchiveStore, DeliveryStore
from runtime.contract.settings import CoordinatorSettings, MeetingSettings, load
from runtime.coordinator.delivery import DeliveryHandler
from runtime.coordinator.delivery_fold import DeliveryFold
from runtime.coordinator.folding import FoldBatcher, Folder
from runtime.coordinator.handler import CoordinatorHandler, Meetings
from runtime.telemetry import MetricsFactory, logger
from runtime.worker import SIGNAL_CHECK_SECONDS, MessageHandler, Worker, install_stop_signals, task_integration


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
        from runtime.notify import build_meeting_coordinator

        # wait_seconds=0: a lease held by another coordinator task means retry later, not block a thread.
        meetings = build_meeting_coordinator(meeting_settings, settings, session, wait_seconds=0.0)
    return CoordinatorHandler(
        s3,
        settings.bucket_name,
        archive,
        FoldBatcher(
            Folder(archive, metrics), settings.fold_linger_seconds, max_items=max(1, settings.max_concurrency // 2)
        ),
        metrics,
        meetings,
        DeliveryFold(DeliveryStore(s3, settings.bucket_name), archive, settings.fold_linger_seconds),
        max_waiting=settings.max_concurrency // 2,  # and a fold batch up to half (runtime.coordinator.processing_reads)
    )


def build_delivery_handler(
    settings: CoordinatorSettings, session: boto3.session.Session | None = None, *, pool: int = 10
) -> DeliveryHandler:
    """The delivery-event consumer: an event is accepted only from the account of the customer its tags
    name (``TTP_CUSTOMER_ACCOUNTS``), so no customer account reports on another customer's emails."""
    session = session or boto3.session.Session()
    s3 = aws.client("s3", session=session, pool=pool)
    return DeliveryHandler(
        DeliveryStore(s3, settings.bucket_name),
        MetricsFactory(settings.metrics_namespace),
        linger_seconds=settings.fold_linger_seconds,
        customer_accounts=settings.customer_accounts,
    )


class CoordinatorProcess:
    """The coordinator's workers in one process: the change coordinator's, and the delivery events'
    when configured. Each runs in its own thread; :meth:`request_stop` (SIGTERM) stops and drains all,
    and :meth:`run` returns once every one has drained. Behaves like a :class:`Worker` for the caller."""

    def __init__(self, workers: list[Worker]) -> None:
        if not workers:
            raise ValueError("a coordinator process needs at least one worker")
        self.workers = workers

    @property
    def handler(self) -> MessageHandler:
        """The change coordinator's own handler (the first worker's)."""
        return self.workers[0].handler

    def install_signal_handlers(self) -> None:
        install_stop_signals(self.request_stop)

    def request_stop(self) -> None:
        for worker in self.workers:
            worker.request_stop()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Run every worker until a stop request (or ``until()``); a worker that ends (or fails) stops
        the others too, so the process never runs half a coordinator."""
        errors: list[BaseException] = []

        def run_one(worker: Worker) -> None:
            try:
                worker.run(until)
            except BaseException as exc:
                logger.exception("worker failed", extra={"queue_url": worker.queue_url})
                errors.append(exc)
            finally:
                self.request_stop()

        threads = [
            threading.Thread(target=run_one, args=(w,), name=f"worker-{i}", daemon=True)
            for i, w in enumerate(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # with a timeout: see SIGNAL_CHECK_SECONDS
                thread.join(SIGNAL_CHECK_SECONDS)
        if errors:
            raise errors[0]


def build_coordinator(
    settings: CoordinatorSettings, session: boto3.session.Session | None = None
) -> CoordinatorProcess:
    session = session or boto3.session.Session()
    pool = max(10, settings.max_concurrency * 3)
    sqs = aws.client("sqs", session=session, pool=pool)

    def worker(queue_url: str, handler: MessageHandler, **ecs: Any) -> Worker:
        return Worker(
            sqs,
            queue_url,
            handler,
            max_concurrency=settings.max_concurrency,
            visibility_timeout=settings.visibility_timeout_seconds,
            receive_wait_seconds=settings.receive_wait_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            drain_seconds=settings.drain_seconds,
            **ecs,
        )

    # The change coordinator's own loop feeds the container health check; the one task is not
    # scaled in by anything, so it takes no scale-in protection (it would only hold back deployments).
    workers = [
        worker(
            settings.queue_url,
            build_handler(settings, session, pool=pool),
            **task_integration(scale_in_protection=False),
        )
    ]
    if settings.delivery_queue_url:
        workers.append(worker(settings.delivery_queue_url, build_delivery_handler(settings, session, pool=pool)))
    return CoordinatorProcess(workers)
