"""SIGTERM stops a service whichever of its threads the kernel hands it to.

A process-directed signal goes to any thread that does not block it. CPython runs the Python handler
only in the main thread, the next time that thread executes bytecode; a main thread blocked without a
timeout (``Thread.join()``, ``Event.wait()``) never does, so the stop request waited for an unrelated
wake-up: for ever in the coordinator (its main thread joins its workers), until the 20 s long poll
returned in the worker. Seen once in the suite: a coordinator that ignored SIGTERM for 30 s. Here the
signal is sent to a thread other than the main one (``signal.pthread_kill``), as the kernel may.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime.coordinator.composition import CoordinatorProcess
from runtime.worker import Worker

STOP_BOUND_SECONDS = 5.0
"""Well above the time a stop takes (well under a second) and far below the 20 s long poll."""


class LongPollingSqs:
    """An idle queue whose receive blocks like a deployed 20 s long poll."""

    def __init__(self) -> None:
        self.polling = threading.Event()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.polling.set()
        time.sleep(kwargs.get("WaitTimeSeconds", 20))
        return {"Messages": []}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [], "Failed": []}


@pytest.fixture
def restored_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _worker(sqs: LongPollingSqs) -> Worker:
    return Worker(sqs, "https://sqs.local/q", lambda body, owner, cancelled: [], receive_wait_seconds=20)


def _stop_from_another_thread(ready: threading.Event, service: Any) -> tuple[threading.Thread, list[float]]:
    """Once ``ready``, send SIGTERM to a thread that is not the main one; after the bound, stop the
    service directly so that a failing run ends instead of hanging the suite."""
    sent_at: list[float] = []

    def send() -> None:
        assert ready.wait(30)
        time.sleep(0.3)
        sent_at.append(time.monotonic())
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        time.sleep(STOP_BOUND_SECONDS + 5)
        service.request_stop()  # the rescue: only reached when the signal did not stop it

    thread = threading.Thread(target=send, name="signal-sender", daemon=True)
    thread.start()
    return thread, sent_at


def _run_and_time(run: Callable[[], None], sent_at: list[float]) -> float:
    run()
    return time.monotonic() - sent_at[0]


@pytest.mark.usefixtures("restored_signal_handlers")
def test_a_worker_stops_promptly_when_sigterm_lands_on_another_thread() -> None:
    sqs = LongPollingSqs()
    worker = _worker(sqs)
    worker.install_signal_handlers()
    _, sent_at = _stop_from_another_thread(sqs.polling, worker)
    elapsed = _run_and_time(worker.run, sent_at)
    assert elapsed < STOP_BOUND_SECONDS, f"the worker took {elapsed:.1f} s to stop after SIGTERM"


@pytest.mark.usefixtures("restored_signal_handlers")
def test_a_coordinator_process_stops_promptly_when_sigterm_lands_on_another_thread() -> None:
    queues = [LongPollingSqs(), LongPollingSqs()]
    process = CoordinatorProcess([_worker(sqs) for sqs in queues])
    process.install_signal_handlers()
    both_polling = threading.Event()
    threading.Thread(target=lambda: [q.polling.wait(30) for q in queues] and both_polling.set(), daemon=True).start()
    _, sent_at = _stop_from_another_thread(both_polling, process)
    elapsed = _run_and_time(process.run, sent_at)
    assert elapsed < STOP_BOUND_SECONDS, f"the coordinator took {elapsed:.1f} s to stop after SIGTERM"
