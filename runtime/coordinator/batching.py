"""One write per object at a time, many messages per write: the coordinator's batching (the results'
fold, :class:`runtime.coordinator.folding.FoldBatcher`; the delivery consumer and the delivery fold).

For any object and any items: the first caller for a key opens a batch and lingers ``linger_seconds``
while the other handler threads (up to the worker's ``max_concurrency``) add their items; then the
leader applies the whole batch with one ``write`` and every caller gets that outcome. While one batch
of a key is written, the next keeps collecting, so the process's own compare-and-swap writes of one
object never race each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - the item type, beside K(ey) and O(utcome)
O = TypeVar("O")  # noqa: E741


class BatchFailed(Exception):
    """The batch these items were in could not be written; the message is retried."""


class _Batch(Generic[I, O]):
    def __init__(self) -> None:
        self.items: list[I] = []
        self.done = threading.Event()
        self.outcome: O | None = None
        self.error: BaseException | None = None


class KeyedBatcher(Generic[K, I, O]):
    """Thread-safe. ``write(key, items)`` applies one batch (it may raise: the leader gets the error,
    the other callers ``failure``, a :class:`BatchFailed`)."""

    def __init__(
        self,
        write: Callable[[K, list[I]], O],
        linger_seconds: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        failure: type[BatchFailed] = BatchFailed,
    ) -> None:
        self._write = write
        self._failure = failure
        self.linger_seconds = linger_seconds
        self._sleep = sleep
        self._lock = threading.Lock()
        self._open: dict[K, _Batch[I, O]] = {}
        self._writing: dict[K, threading.Lock] = {}
        self.writes = 0

    def submit(self, key: K, items: list[I]) -> O:
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None
            if batch is None:
                batch = self._open[key] = _Batch()
            batch.items.extend(items)
            writing = self._writing.setdefault(key, threading.Lock())
        if not leader:
            batch.done.wait()
            if batch.error is not None:
                raise self._failure(f"the batch of {key!r} failed: {batch.error}") from batch.error
            assert batch.outcome is not None
            return batch.outcome
        try:
            if self.linger_seconds > 0:
                self._sleep(self.linger_seconds)
            with writing:
                with self._lock:
                    del self._open[key]
                    pending = list(batch.items)
                batch.outcome = self._write(key, pending)
            with self._lock:
                self.writes += 1
        except BaseException as exc:
            batch.error = exc
            raise
        finally:
            with self._lock:
                if self._open.get(key) is batch:
                    del self._open[key]
                if key not in self._open and not writing.locked():
                    self._writing.pop(key, None)
            batch.done.set()
        return batch.outcome
