"""The processing store: ``processing/{code}/{change_id}.json`` read with its ETag and the storage clock,
written only by compare-and-swap (:class:`~runtime.archive.cas.CasLoop`, shared with the archive store).

Only customer ``code``'s processor writes its processing objects, so conflicts are rare: a redelivery
of the same change, or a manual run. A claim on a new object costs one PUT: :meth:`ProcessingStore.create_or_update`
creates with ``IfNoneMatch="*"`` without any GET first, and reads only when that PUT meets an object.

The storage clock (DESIGN.md §2, "one clock"): lease expiry is judged on S3's time, never the local
clock of whichever process reads the object. The storage time of an answer is its ``Date`` HTTP header;
when an answer has none (some emulators), its ``Last-Modified`` (exact for a write; a lower bound for a
read of an older object); only when neither exists, the local UTC clock. :class:`StorageClock` also
keeps the offset of the last ``Date`` it saw, so a write can stamp a lease expiry on storage time.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive.cas import UNREAD, Backoff, CasLoop, is_missing
from runtime.archive.documents import utcnow
from runtime.archive.errors import ArchiveInvalid, ArchiveMissing
from runtime.archive.processing import ProcessingDocument
from runtime.aws import error_code, http_status
from runtime.contract import keys
from runtime.contract.errors import describe_validation_error
from runtime.telemetry.metrics import MetricBatch

__all__ = ["ProcessingMutation", "ProcessingStore", "StorageClock", "VersionedProcessing", "storage_time"]


def header_time(headers: dict[str, Any], name: str) -> datetime | None:
    """An HTTP-date header as an aware UTC time (None when absent or unparsable)."""
    value = headers.get(name)
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(str(value))  # naive for "-0000" or a repeated header ("d GMT, d GMT")
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # an HTTP-date is always GMT


def storage_time(response: dict[str, Any], local: Callable[[], datetime] = utcnow) -> tuple[datetime, bool]:
    """The storage time of one S3 answer, and whether it came from its ``Date`` header.

    ``Date``, else ``Last-Modified``, else the local UTC clock (see the module docstring)."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    date = header_time(headers, "date")
    if date is not None:
        return date, True
    modified = header_time(headers, "last-modified")
    if modified is None and isinstance(response.get("LastModified"), datetime):
        modified = response["LastModified"]
    if modified is not None:
        return modified, False
    return local(), False


class StorageClock:
    """Storage time now: the last ``Date`` S3 sent plus the monotonic time elapsed since.

    Before any ``Date`` was seen, the latest write's ``Last-Modified``, then the local clock."""

    def __init__(self, local: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._local = local
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: tuple[datetime, float] | None = None

    def observe(self, at: datetime) -> None:
        with self._lock:
            self._seen = (at, self._monotonic())

    def observe_response(self, response: dict[str, Any], *, write: bool = False) -> datetime:
        at, from_date = storage_time(response, self._local)
        if from_date or write:  # the Last-Modified of a read can be old: it is no clock
            self.observe(at)
        return at

    def now(self) -> datetime:
        with self._lock:
            seen = self._seen
        if seen is None:
            return self._local()
        at, mono = seen
        return at + timedelta(seconds=max(0.0, self._monotonic() - mono))

    def attach(self, s3: Any) -> None:
        """Observe the ``Date`` of every answer of ``s3`` (the trigger HEAD, the archive GET...)."""

        def after_call(http_response: Any = None, parsed: Any = None, **_: Any) -> None:
            if isinstance(parsed, dict):
                at, from_date = storage_time(parsed, self._local)
                if from_date:
                    self.observe(at)

        with contextlib.suppress(AttributeError):  # a stub without botocore events: the store's answers still count
            s3.meta.events.register("after-call.s3", after_call)


@dataclass(frozen=True)
class VersionedProcessing:
    document: ProcessingDocument
    etag: str
    storage_now: datetime
    """Storage time of the answer that read or wrote this version (see :func:`storage_time`)."""


ProcessingMutation = Callable[[VersionedProcessing | None], ProcessingDocument | None]
"""Given the current version (None if the object does not exist), the new document, or None: no write."""


class ProcessingStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        clock: StorageClock | None = None,
        max_attempts: int = 25,
        base_delay: float = 0.02,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.clock = clock or StorageClock()
        self.clock.attach(s3)
        self._backoff = Backoff(max_attempts, base_delay, max_delay, sleep)
        if jitter is not None:
            self._backoff.jitter = jitter

    def load_optional(self, code: str, change_id: str) -> VersionedProcessing | None:
        key = keys.processing_key(code, change_id)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return self._parse(key, code, change_id, response)

    def load_if_changed(self, code: str, change_id: str, etag: str) -> VersionedProcessing | None:
        """The object if its ETag is no longer ``etag``, else None: a GET ``IfNoneMatch`` that S3 answers
        with a bodiless 304 while nothing changed (the holder's check before each send, issue 17 item 4).
        Raises :class:`ArchiveMissing` when the object is gone."""
        key = keys.processing_key(code, change_id)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, IfNoneMatch=etag)
        except ClientError as exc:
            if http_status(exc) == 304 or error_code(exc) in {"304", "NotModified"}:
                return None
            if is_missing(exc):
                raise ArchiveMissing(f"{key} does not exist") from None
            raise
        return self._parse(key, code, change_id, response)

    def _parse(self, key: str, code: str, change_id: str, response: dict[str, Any]) -> VersionedProcessing:
        body = response["Body"].read()
        try:
            document = ProcessingDocument.model_validate_json(body)
        except ValidationError as exc:
            raise ArchiveInvalid(
                f"{key} is not a valid processing document: {describe_validation_error(exc)}"
            ) from None
        if document.change_id != change_id or document.customer_code != code:
            raise ArchiveInvalid(f"{key} holds {document.customer_code}/{document.change_id}, not {code}/{change_id}")
        return VersionedProcessing(document, response["ETag"], self.clock.observe_response(response))

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
        key = keys.processing_key(code, change_id)

        def put(updated: ProcessingDocument, version: VersionedProcessing | None) -> VersionedProcessing:
            condition = {"IfMatch": version.etag} if version else {"IfNoneMatch": "*"}
            response = self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(updated.to_json_dict(), separators=(",", ":")).encode(),
                ContentType="application/json",
                **condition,
            )
            return VersionedProcessing(updated, response["ETag"], self.clock.observe_response(response, write=True))

        loop: CasLoop[VersionedProcessing, ProcessingDocument] = CasLoop(
            key, lambda: self.load_optional(code, change_id), mutate, put, self._backoff
        )
        if current is not None:
            return loop.run(create=create, current=current, metrics=metrics)
        return loop.run(create=create, current=None if assume_absent else UNREAD, metrics=metrics)
