"""The processing store: ``processing/{code}/{change_id}.json`` read with its ETag and the storage clock,
written only by compare-and-swap: a typed use of :class:`~runtime.archive.versioned.VersionedJson`.

Only customer ``code``'s processor writes its processing objects, so conflicts are rare: a redelivery
of the same change, or a manual run. A claim on a new object costs one PUT: :meth:`ProcessingStore.update`
with ``assume_absent`` creates with ``IfNoneMatch="*"`` without any GET first, and reads only when that
PUT meets an object. Lease expiry is judged on the storage clock (:class:`StorageClock`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

from runtime.archive.cas import UNREAD, Backoff, RetryOptions
from runtime.archive.processing import ProcessingDocument
from runtime.archive.versioned import (
    StorageClock,
    Versioned,
    header_time,
    identity_of,
    per_customer_store,
    storage_time,
)
from runtime.contract import keys
from runtime.telemetry import MetricBatch

__all__ = [
    "ProcessingMutation",
    "ProcessingStore",
    "StorageClock",
    "VersionedProcessing",
    "header_time",
    "storage_time",
]

VersionedProcessing = Versioned[ProcessingDocument]

ProcessingMutation = Callable[[VersionedProcessing | None], ProcessingDocument | None]
"""Given the current version (None if the object does not exist), the new document, or None: no write."""


class ProcessingStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        clock: StorageClock | None = None,
        observe_client: bool = True,
        **retry: Unpack[RetryOptions],
    ) -> None:
        """``observe_client``: the storage clock also reads the ``Date`` of every other answer of ``s3``
        (the processor's; a reader that judges no lease of its own leaves the client alone)."""
        backoff = Backoff(**retry)
        self.objects = per_customer_store(
            s3, bucket, ProcessingDocument, kind="processing document", backoff=backoff, clock=clock
        )
        self._backoff = backoff  # the objects' own: tests shorten its attempts
        self.bucket = bucket
        self.clock = self.objects.clock
        if observe_client:
            self.clock.attach(s3)

    def load_optional(self, code: str, change_id: str) -> VersionedProcessing | None:
        return self.objects.load_optional(keys.processing_key(code, change_id), identity_of(code, change_id))

    def load_if_changed(self, code: str, change_id: str, etag: str) -> VersionedProcessing | None:
        """The object if its ETag is no longer ``etag``, else None: a GET ``IfNoneMatch`` that S3 answers
        with a bodiless 304 while nothing changed (the holder's check before each send, issue 17 item 4).
        Raises :class:`ArchiveMissing` when the object is gone."""
        return self.objects.load_if_changed(keys.processing_key(code, change_id), etag, identity_of(code, change_id))

    def update(
        self,
        code: str,
        change_id: str,
        mutate: ProcessingMutation,
        *,
        create: bool = True,
        current: VersionedProcessing | None = None,
        assume_absent: bool = False,
        metrics: MetricBatch | None = None,
    ) -> VersionedProcessing:
        """Apply ``mutate`` by compare-and-swap, retrying conflicts with jittered backoff.

        ``current`` saves the first GET; ``assume_absent`` makes the first attempt a create with
        ``IfNoneMatch="*"`` and no GET (on 412 the loop reads and re-applies ``mutate``)."""
        first = current if current is not None else (None if assume_absent else UNREAD)
        return self.objects.update(
            keys.processing_key(code, change_id),
            mutate,
            create=create,
            current=first,
            identity=identity_of(code, change_id),
            metrics=metrics,
        )
