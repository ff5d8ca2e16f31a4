"""The queue worker: long-polls one queue and runs a message handler on each message.

The handler is the customer processor's (``runtime.pipeline.ProcessorHandler``) or the change
coordinator's; the worker owns only the SQS mechanics and knows nothing of changes: each handled record
is a :class:`~runtime.worker.outcome.Handled` that states its fate and logs itself.

* Bounded concurrency (a thread pool of ``max_concurrency``), one long-poll receive at a time.
* A heartbeat thread extends the visibility of every in-flight message, so slow work is never
  handed to a second consumer (:mod:`runtime.worker.in_flight`).
* Message fate follows the handler's outcomes: ack → delete; retry → visible again after a backoff
  that doubles per receive; dead-letter → visible at once, so the queue's redrive policy moves it
  to the DLQ after ``maxReceiveCount`` receives (the worker never needs the DLQ's URL).
* SIGTERM: stop receiving (at once: the long poll runs on a thread of its own, which the loop
  abandons; an idle worker stops within a second, not at the end of a 20 s poll), let in-flight
  work finish for ``drain_seconds``, then interrupt sending
  (the customer processor checkpoints its progress and releases its lease) and wait for every
  handler to end: each message is settled by its own outcome (an interrupted one is visible again
  at once). A message is never made visible while its work still runs (a slow or throttled
  ``SendEmail`` that cannot be interrupted): another task would receive it and work on it at the
  same time (docs/design.md §2).

  What bounds that wait is the ECS stop timeout (``drain_seconds`` is validated below it): at the
  stop timeout ECS kills the task. So that such a kill is no worse than returning the messages, after
  the drain time the heartbeat keeps the remaining messages invisible only ``OVERTIME_VISIBILITY_SECONDS``
  ahead: a killed task's messages are back within that; otherwise every call the work waits on has its
  own timeout (botocore), so the wait ends on its own.
* Liveness: the iterations of the receive loop (an empty long poll included) refresh a small record
  (``liveness_path``, :mod:`runtime.worker.liveness`), at most once per ``LIVENESS_REFRESH_SECONDS``,
  that the container health check reads; the
  heartbeat thread does not, so a wedged loop makes the task unhealthy and ECS replaces it.
* Scale-in protection (:mod:`runtime.worker.task_protection`; the processor's worker only): set
  before the first message of a busy spell starts, renewed while busy, released after a quiet spell
  and when the worker stops.
"""

from __future__ import annotations

import math
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from runtime.contract.settings import WorkerSettings
from runtime.contract.sqs_limits import MAX_BATCH_SIZE, MAX_VISIBILITY_TIMEOUT_SECONDS
from runtime.contract.thresholds import LIVENESS_MARGIN_SECONDS, LIVENESS_REFRESH_SECONDS
from runtime.telemetry import log_context, logger
from runtime.worker.in_flight import InFlight
from runtime.worker.liveness import stale_after_seconds, write_liveness
from runtime.worker.outcome import Fate, Handled, HandlerFailed, overall_fate, retry_after
from runtime.worker.task_protection import ScaleInProtection

__all__ = ["SIGNAL_CHECK_SECONDS", "MessageHandler", "Worker", "install_stop_signals"]

MessageHandler = Callable[[str, str, threading.Event | None], Sequence[Handled]]
"""What a worker runs on each message: ``(body, owner, cancelled) -> outcomes``; the outcomes' fates
decide the message's (:func:`~runtime.worker.outcome.overall_fate`). The processor and the change
coordinator each provide one."""


SIGNAL_CHECK_SECONDS = 0.5
"""The longest a main thread waits without a timeout. A SIGTERM the kernel hands to another thread
only marks the signal as pending, and CPython runs its handler in the main thread when that thread next
executes bytecode: a main thread blocked without a timeout (``Event.wait()``, ``Thread.join()``) would
hold the stop request back until an unrelated wake-up (tests/runtime/worker/test_stop_signal_on_any_thread.py)."""


def install_stop_signals(request_stop: Callable[[], None]) -> None:
    """SIGTERM (ECS stopping the task) and SIGINT call ``request_stop``: stop receiving, then drain."""

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("stop requested; draining", extra={"signal": signal.Signals(signum).name})
        request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _setting_default(name: str) -> Any:
    """The default of a :class:`WorkerSettings` field: one source for the worker's own defaults."""
    return WorkerSettings.model_fields[name].default


DEFAULT_MAX_CONCURRENCY = int(_setting_default("max_concurrency"))
DEFAULT_VISIBILITY_TIMEOUT = int(_setting_default("visibility_timeout_seconds"))
DEFAULT_RECEIVE_WAIT_SECONDS = int(_setting_default("receive_wait_seconds"))
DEFAULT_RETRY_BASE_SECONDS = float(_setting_default("retry_base_seconds"))
DEFAULT_DRAIN_SECONDS = float(_setting_default("drain_seconds"))

OVERTIME_VISIBILITY_SECONDS = 10
"""After the drain time: how far ahead the messages of work still running are kept invisible, so a
task killed at the ECS stop timeout hands them back within this (see the module docstring)."""
OVERTIME_HEARTBEAT_SECONDS = 2.0
"""After the drain time: how often those messages' visibility is extended (several tries per window)."""
OVERTIME_LOG_SECONDS = 10.0
"""After the drain time: how often the worker says which work it is still waiting for."""


class _ReceiveRequest:
    """One receive handed to the receiving thread, and what came of it (read once ``done``)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = False
        self.abandoned = False
        """The loop stopped waiting (a stop request): the messages still received go back at once."""
        self.received: list[dict[str, Any]] = []
        self.failure: Exception | None = None


class Worker:
    """The receive loop of one customer's queue: bounded concurrency, message fate, drain on stop."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: MessageHandler,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
        receive_wait_seconds: int = DEFAULT_RECEIVE_WAIT_SECONDS,
        retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        heartbeat_seconds: float | None = None,
        liveness_path: Path | None = None,
        liveness_margin_seconds: float = LIVENESS_MARGIN_SECONDS,
        protection: ScaleInProtection | None = None,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.max_concurrency = max_concurrency
        self.visibility_timeout = visibility_timeout
        self.receive_wait_seconds = receive_wait_seconds
        self.retry_base_seconds = retry_base_seconds
        self.drain_seconds = drain_seconds
        self.heartbeat_seconds = heartbeat_seconds or max(1.0, visibility_timeout / 3)
        self.instance_id = uuid.uuid4().hex[:12]
        self.stopping = threading.Event()
        self._wake = threading.Event()
        """Set when the current receive ends or a stop is requested: what the loop waits on."""
        self.cancelled = threading.Event()
        self._stop_requested_at: float | None = None
        self.in_flight = InFlight(
            sqs, queue_url, visibility_timeout=visibility_timeout, heartbeat_seconds=self.heartbeat_seconds
        )
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_concurrency)
        self.handled = 0
        self.liveness_path = liveness_path
        """Where each loop iteration records it ran (None: nowhere, as in tests and local runs)."""
        self.liveness_stale_after = stale_after_seconds(receive_wait_seconds, liveness_margin_seconds)
        self.liveness_refresh_seconds = min(LIVENESS_REFRESH_SECONDS, liveness_margin_seconds / 4)
        """The least time between two writes of the record (a busy loop iterates many times a second)."""
        self._liveness_written_at: float | None = None
        self._liveness_failed = False
        self.protection = protection or ScaleInProtection(None)
        self._receives: queue.SimpleQueue[_ReceiveRequest | None] = queue.SimpleQueue()
        self._receive_lock = threading.Lock()
        self._receiver: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        install_stop_signals(self.request_stop)

    def request_stop(self) -> None:
        """Stop receiving; the drain budget counts from now, not from when the current long poll ends."""
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self.stopping.set()
        self._wake.set()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Receive and process until SIGTERM (or ``until()`` is true), then drain."""
        logger.info("worker started", extra={"queue_url": self.queue_url, "instance": self.instance_id})
        heartbeat = threading.Thread(target=self.in_flight.heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        futures: set[Future[None]] = set()
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="process") as pool:
            while not self.stopping.is_set() and not (until and until()):
                self._record_liveness()
                futures = {f for f in futures if not f.done()}  # once per iteration: what still runs
                self.protection.update(busy=bool(futures))
                free = self._acquire_slots()
                if free == 0:
                    continue
                try:
                    messages = self._receive_unless_stopped(free)
                except Exception as exc:
                    logger.warning("receive failed; backing off", extra={"error": str(exc)})
                    self._release_slots(free)
                    self.stopping.wait(2.0)
                    continue
                self._release_slots(free - len(messages))
                if not messages and self.receive_wait_seconds == 0:
                    self.stopping.wait(0.2)  # short polling on an empty queue must not spin
                if messages and not self.stopping.is_set():
                    self.protection.update(busy=True)  # protected before the work starts
                for message in messages:
                    if self.stopping.is_set():
                        self.in_flight.return_to_queue(message["ReceiptHandle"], 0)
                        self._slots.release()
                        continue
                    futures.add(pool.submit(self._handle, message))
            self._drain(futures)
        self.stopping.set()
        if self._receiver is not None:
            self._receives.put(None)  # it ends once its current receive, if any, has returned
            self._receiver = None
        self.in_flight.stop_heartbeat()
        heartbeat.join(timeout=5)
        self.protection.release()
        logger.info("worker stopped", extra={"handled": self.handled})

    def _record_liveness(self) -> None:
        if self.liveness_path is None:
            return
        now = time.monotonic()
        if self._liveness_written_at is not None and now - self._liveness_written_at < self.liveness_refresh_seconds:
            return
        self._liveness_written_at = now
        try:
            write_liveness(self.liveness_path, self.liveness_stale_after)
        except OSError as exc:  # the health check will say so; the work goes on
            if not self._liveness_failed:
                logger.warning("cannot write the liveness record", extra={"error": str(exc)})
            self._liveness_failed = True

    def _acquire_slots(self) -> int:
        if not self._slots.acquire(timeout=1.0):
            return 0
        free = 1
        while free < min(MAX_BATCH_SIZE, self.max_concurrency) and self._slots.acquire(blocking=False):
            free += 1
        return free

    def _release_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _drain(self, futures: set[Future[None]]) -> None:
        """Wait for in-flight work: ``drain_seconds`` from the stop request, then interrupt it and wait
        until every handler has ended (it settles its own message); see the module docstring."""
        pending = {f for f in futures if not f.done()}
        if not pending:
            return
        logger.info(
            "draining in-flight messages", extra={"in_flight": len(pending), "drain_seconds": self.drain_seconds}
        )
        deadline = (self._stop_requested_at or time.monotonic()) + self.drain_seconds
        pending = _wait_until(pending, deadline)
        if not pending:
            return
        logger.warning("drain time is up; interrupting in-flight work", extra={"in_flight": len(pending)})
        self.cancelled.set()
        self.in_flight.shorten(
            min(OVERTIME_VISIBILITY_SECONDS, self.visibility_timeout),
            min(OVERTIME_HEARTBEAT_SECONDS, self.heartbeat_seconds),
        )
        while pending:
            pending = _wait_until(pending, time.monotonic() + OVERTIME_LOG_SECONDS)
            if pending:
                logger.warning(
                    "in-flight work has not ended yet; its messages stay invisible until it does",
                    extra={"in_flight": len(pending)},
                )

    # ---- SQS ----------------------------------------------------------------------------------

    def _receive_unless_stopped(self, count: int) -> list[dict[str, Any]]:
        """One receive, on the receiving thread so that a stop request does not wait for the long poll
        to end (up to ``receive_wait_seconds``, 20 s deployed): an idle worker stops at once (issue 22).
        Messages the abandoned poll still receives are made visible again at once, or, when the
        process has exited first, after their visibility timeout: never lost, never worked on. The
        thread lives as long as the loop (:meth:`_receiving`): one started per receive cost ~3 % of the
        worker's CPU per trigger (issue 21)."""
        request = _ReceiveRequest(count)
        self._wake.clear()
        if self._receiver is None:
            self._receiver = threading.Thread(target=self._receiving, name="receive", daemon=True)
            self._receiver.start()
        self._receives.put(request)
        while not request.done and not self.stopping.is_set():
            self._wake.wait(SIGNAL_CHECK_SECONDS)
        with self._receive_lock:
            if not request.done:
                request.abandoned = True
                return []
        if request.failure is not None:
            raise request.failure
        return request.received

    def _receiving(self) -> None:
        """The receiving thread: the loop's receives one after the other, until :meth:`run` ends it."""
        while (request := self._receives.get()) is not None:
            try:
                request.received = self._receive(request.count)
            except Exception as exc:
                request.failure = exc
            with self._receive_lock:
                request.done = True
                late = request.abandoned
            self._wake.set()
            if late:
                for message in request.received:
                    self.in_flight.return_to_queue(message["ReceiptHandle"], 0)

    def _receive(self, count: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.receive_wait_seconds,
            VisibilityTimeout=self.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return list(response.get("Messages", []))

    # ---- one message --------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> None:
        message_id = message["MessageId"]
        receipt = message["ReceiptHandle"]
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        self.in_flight.add(message_id, receipt)
        try:
            with log_context(message_id=message_id, receive_count=receives):
                try:
                    # the owner is unique per receive: a redelivery of this message must not share its lease
                    owner = f"sqs:{message_id}:{uuid.uuid4().hex}"
                    results: Sequence[Handled] = self.handler(message.get("Body", ""), owner, self.cancelled)
                except Exception as exc:  # defensive: a bug must not lose the message
                    logger.exception("processing raised")
                    results = [HandlerFailed(f"unexpected {type(exc).__name__}: {exc}")]
                fate = overall_fate(results)
                for result in results:
                    result.log(fate)
                self.in_flight.remove(message_id)  # no heartbeat may extend it once it is settled
                self._settle(receipt, fate, receives, retry_after(results) if fate is Fate.RETRY else None)
        finally:
            self.in_flight.remove(message_id)
            with self._lock:
                self.handled += 1
            self._slots.release()

    def _settle(self, receipt: str, fate: Fate, receives: int, retry_after: float | None = None) -> None:
        if fate is Fate.ACK:
            try:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
            except Exception as exc:  # the message comes back; the trigger is gone, so it is a cheap duplicate
                logger.warning("could not delete message", extra={"error": str(exc)})
        elif fate is Fate.DEAD_LETTER:
            self.in_flight.return_to_queue(receipt, 0)
        else:
            delay = 0 if self.cancelled.is_set() else self.retry_base_seconds * 2 ** max(0, receives - 1)
            if retry_after is not None and not self.cancelled.is_set():
                delay = math.ceil(max(0.0, retry_after))  # e.g. when another receive's lease ends
            self.in_flight.return_to_queue(
                receipt, int(min(delay, self.visibility_timeout, MAX_VISIBILITY_TIMEOUT_SECONDS))
            )


def _wait_until(pending: set[Future[None]], deadline: float) -> set[Future[None]]:
    """Wait until every future is done or ``deadline`` (monotonic) passes; the ones not done yet."""
    remaining = deadline - time.monotonic()
    if remaining > 0:
        wait(pending, timeout=remaining)
    return {f for f in pending if not f.done()}
