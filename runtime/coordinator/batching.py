"""One write per object at a time, many messages per write: the coordinator's batching (the results'
fold, :class:`runtime.coordinator.folding.FoldBatcher`; the delivery consumer and the delivery fold).

For any object and any items: the first caller for a key opens a batch and lingers ``linger_seconds``
while the other handler threads (up to the worker's ``max_concurrency``) add their items; then the
leader applies the whole batch with one ``write`` and every caller gets that outcome. While one batch
of a key is written, the next keeps collecting, so the process's own compare-and-swap writes of one
object never race each other.

**Bounded growth** (``max_lingers``, ``max_items``, ``busy_items``; off by default). When a linger
brought at least ``busy_items`` more items, many are arriving: the batch stays open for another linger,
at most ``max_lingers`` lingers in all, and is written at once when it holds ``max_items`` (each item
holds a handler thread, so the bound stays below the worker's concurrency). A linger that brings fewer
ends the batch, so a lone item waits one linger, as without the bounds.
"""

from __future__ import annotations

import threading
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
        self.full = threading.Event()
        """Set when the batch holds ``max_items``: its leader writes it without waiting out its linger."""
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
        sleep: Callable[[float], None] | None = None,
        failure: type[BatchFailed] = BatchFailed,
        max_lingers: int = 1,
        max_items: int | None = None,
        busy_items: int | None = None,
    ) -> None:
        self._write = write
        self._failure = failure
        self.linger_seconds = linger_seconds
        self._sleep = sleep
        """A linger without the early end of a full batch (tests); None: wait on the batch's ``full``."""
        self.max_lingers = max(1, max_lingers)
        self.max_items = max_items
        self.busy_items = busy_items
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
            if self.max_items is not None and len(batch.items) >= self.max_items:
                batch.full.set()
            writing = self._writing.setdefault(key, threading.Lock())
        if not leader:
            batch.done.wait()
            if batch.error is not None:
                raise self._failure(f"the batch of {key!r} failed: {batch.error}") from batch.error
            assert batch.outcome is not None
            return batch.outcome
        try:
            if self.linger_seconds > 0:
                self._linger(batch)
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

    def _linger(self, batch: _Batch[I, O]) -> None:
        """Wait one linger, and more while each brings ``busy_items`` items, within the bounds."""
        for _ in range(self.max_lingers):
            with self._lock:
                before = len(batch.items)
            if batch.full.is_set():
                return
            if self._sleep is not None:
                self._sleep(self.linger_seconds)
            elif batch.full.wait(self.linger_seconds):
                return
            with self._lock:
                arrived = len(batch.items) - before
            if self.busy_items is None or arrived < self.busy_items:
                return
