"""The customers' processing objects as the procedures read them (read-only; DESIGN.md §1).

``processing/{C}/{id}.json`` is written only by customer C's processor; ops never writes it. Each
procedure reads one object per customer and change, at most once per command (:class:`ProcessingCache`):
a missing object means "nothing yet", an invalid one is remembered as a finding naming the key —
never raised.

A customer's result for a revision is **recorded** when the archive has a ``processed`` entry for
(C, R) (folded by the change coordinator, or written by a v1 processor) *or* the processing object has
``results[R]`` (recorded by the processor, maybe not folded yet): :func:`recorded`.

Lease expiry is judged on the storage's clock: the ``Date`` of the S3 answer that returned the object,
or the caller's reference time when the answer carries none (the in-process emulator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive.documents import ArchiveDocument, ModificationEntry
from runtime.archive.processing import ProcessingDocument, ProcessingLease, RevisionResult, SendProgress
from runtime.archive.processing_store import header_time
from runtime.aws import error_code, http_status
from runtime.contract import keys
from runtime.contract.errors import describe_validation_error


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


def _storage_date(response: dict[str, Any]) -> datetime | None:
    return header_time(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}, "date")


def read_processing(s3: Any, bucket: str, code: str, change_id: str) -> ProcessingRead:
    """One GET; 404 → nothing yet; unreadable or invalid → ``error`` naming the key (never raises
    for the object's content; an access error is reported the same way, so one bad object never
    stops a procedure)."""
    key = keys.processing_key(code, change_id)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read()
    except ClientError as exc:
        if http_status(exc) == 404 or error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return ProcessingRead(key)
        return ProcessingRead(key, error=f"{key} cannot be read: {error_code(exc) or http_status(exc)}")
    try:
        document = ProcessingDocument.model_validate_json(body)
    except ValidationError as exc:
        return ProcessingRead(
            key, error=f"{key} is not a valid processing document: {describe_validation_error(exc)}", invalid=True
        )
    if document.customer_code != code or document.change_id != change_id:
        return ProcessingRead(
            key,
            error=f"{key} holds {document.customer_code}/{document.change_id}, not {code}/{change_id}",
            invalid=True,
        )
    return ProcessingRead(key, document, storage_now=_storage_date(response))


class ProcessingCache:
    """Reads each (customer, change) processing object once per command."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._cache: dict[tuple[str, str], ProcessingRead] = {}

    def get(self, code: str, change_id: str) -> ProcessingRead:
        if (code, change_id) not in self._cache:
            self._cache[code, change_id] = read_processing(self._s3, self._bucket, code, change_id)
        return self._cache[code, change_id]


FOLDED = "folded"
"""The archive has a ``processed`` entry for (C, R) — folded by the coordinator, or a v1 record."""
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
