"""The customers' processing objects as the procedures read them (read-only; docs/design.md §1).

``processing/{C}/{id}.json`` is written only by customer C's processor; ops never writes it. Each
procedure reads one object per customer and change, at most once per command (:class:`ProcessingCache`):
a missing object means "nothing yet", an invalid one is remembered as a finding naming the key —
never raised.

A customer's result for a revision is **recorded** when the archive has a ``processed`` entry for
(C, R) (folded by the change coordinator, or written by an older processor) *or* the processing object has
``results[R]`` (recorded by the processor, maybe not folded yet): :func:`recorded`.

Lease expiry is judged on the storage's clock: the ``Date`` of the S3 answer that returned the object,
or the caller's reference time when the answer carries none (the in-process emulator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime.archive import (
    ArchiveDocument,
    ArchiveInvalid,
    ModificationEntry,
    ProcessingDocument,
    ProcessingLease,
    ProcessingStore,
    RevisionResult,
    SendProgress,
)
from runtime.aws import error_code, http_status
from runtime.contract import keys


@dataclass(frozen=True)
class ProcessingRead:
    """One GET of ``processing/{C}/{id}.json``: the document, nothing (missing), or the error."""

    key: str
    document: ProcessingDocument | None = None
    error: str | None = None
    storage_now: datetime | None = None
    """The storage's clock at the read (the answer's ``Date``), when it said."""
    invalid: bool = False
    """The object exists but is not a valid processing document (``error`` says why); False when it
    could not be read at all (access, throttling): then nothing is known about it."""

    @property
    def exists(self) -> bool:
        return self.document is not None or self.error is not None

    @property
    def lease(self) -> ProcessingLease | None:
        return self.document.lease if self.document else None

    @property
    def progress(self) -> SendProgress | None:
        return self.document.progress if self.document else None

    def result_for(self, revision: int) -> RevisionResult | None:
        return self.document.result_for(revision) if self.document else None

    def recorded_revisions(self) -> list[int]:
        if self.document is None:
            return []
        return sorted(r.revision for r in self.document.results.values())

    def lease_live(self, reference: datetime) -> bool:
        lease = self.lease
        return lease is not None and lease.is_live(self.storage_now or reference)


def read_processing(s3: Any, bucket: str, code: str, change_id: str) -> ProcessingRead:
    """One GET; 404 → nothing yet; unreadable or invalid → ``error`` naming the key (never raises
    for the object's content; an access error is reported the same way, so one bad object never
    stops a procedure)."""
    return _read(ProcessingStore(s3, bucket, observe_client=False), code, change_id)


def _read(store: ProcessingStore, code: str, change_id: str) -> ProcessingRead:
    key = keys.processing_key(code, change_id)
    try:
        version = store.load_optional(code, change_id)
    except ClientError as exc:
        return ProcessingRead(key, error=f"{key} cannot be read: {error_code(exc) or http_status(exc)}")
    except ArchiveInvalid as exc:
        return ProcessingRead(key, error=str(exc), invalid=True)
    if version is None:
        return ProcessingRead(key)
    return ProcessingRead(key, version.document, storage_now=version.storage_now if version.dated else None)


class ProcessingCache:
    """Reads each (customer, change) processing object once per command."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._store = ProcessingStore(s3, bucket, observe_client=False)
        self._cache: dict[tuple[str, str], ProcessingRead] = {}

    def get(self, code: str, change_id: str) -> ProcessingRead:
        if (code, change_id) not in self._cache:
            self._cache[code, change_id] = _read(self._store, code, change_id)
        return self._cache[code, change_id]


FOLDED = "folded"
"""The archive has a ``processed`` entry for (C, R) — folded by the coordinator, or an older processor's record."""
NOT_FOLDED = "not_folded"
"""Only the processing object records (C, R): the coordinator has not folded it into the archive yet."""


@dataclass(frozen=True)
class Recorded:
    """Whether (and where) customer C's result for revision R is recorded."""

    where: str | None  # FOLDED | NOT_FOLDED | None (not recorded)
    folded: ModificationEntry | None
    result: RevisionResult | None
    refused: RevisionResult | None = None
    """A result the processing object records for a revision that did not target the customer."""

    @property
    def recorded(self) -> bool:
        return self.where is not None


def recorded(doc: ArchiveDocument, code: str, revision: int, processing: ProcessingRead) -> Recorded:
    """A processing object's result for a revision that did not target the customer is no result of this
    change (the coordinator refuses to fold it): it counts as not recorded, and ``refused`` holds it."""
    folded = doc.processed_entry(code, revision)
    result = processing.result_for(revision)
    if folded is not None:
        return Recorded(FOLDED, folded, result)
    if result is not None and not doc.targets(code, revision):
        return Recorded(None, None, None, refused=result)
    if result is not None:
        return Recorded(NOT_FOLDED, None, result)
    return Recorded(None, None, None)


def describe_refused(key: str, code: str, result: RevisionResult) -> str:
    """The finding of a result :func:`recorded` does not count."""
    return (
        f"{key} records a result for revision {result.revision} ({result.sent} sent), which did not target "
        f"customer {code!r}: the coordinator refuses to fold it (a security event: check who wrote it)"
    )


def describe_lease(lease: ProcessingLease, live: bool) -> str:
    return (
        f"lease of {lease.owner} for revision {lease.revision} until {lease.expires_at.isoformat()} "
        f"({'live' if live else 'expired'})"
    )


def describe_progress(progress: SendProgress) -> str:
    rejected = f", {len(progress.rejected)} rejected" if progress.rejected else ""
    done = f"{progress.done} of {progress.recipients} recipient(s) done"
    return f"progress of revision {progress.revision}: {done}{rejected}"
