"""The archive store: ``archive/{change_id}.json`` read with its ETag, written only by compare-and-swap.

Several customers' processors (and the submitter) update the same change concurrently. Every write
is an S3 conditional PUT — ``IfMatch`` the ETag we read, or ``IfNoneMatch="*"`` to create — so a
concurrent writer makes ours fail with 412 instead of silently overwriting it; we then re-read and
re-apply the same *mutation* (a pure function of the current document) after a jittered backoff.
Nothing another writer recorded can be lost this way, and unknown fields survive every rewrite
because the document model keeps them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive.documents import ArchiveDocument, describe_validation_error
from runtime.archive.errors import ArchiveConflict, ArchiveError, ArchiveInvalid, ArchiveMissing
from runtime.aws import error_code, http_status
from runtime.contract import keys
from runtime.contract.metric_names import MetricName
from runtime.telemetry.metrics import MetricBatch

__all__ = [
    "ArchiveConflict",
    "ArchiveError",
    "ArchiveInvalid",
    "ArchiveMissing",
    "ArchiveStore",
    "Mutation",
    "VersionedArchive",
]

Mutation = Callable[[ArchiveDocument | None], ArchiveDocument | None]
"""Given the current document (None if it does not exist), return the new one, or None for no write."""

_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


@dataclass(frozen=True)
class VersionedArchive:
    document: ArchiveDocument
    etag: str


def _is_conflict(exc: ClientError) -> bool:
    return http_status(exc) in (409, 412) or error_code(exc) in _CONFLICT_CODES


def _is_missing(exc: ClientError) -> bool:
    return http_status(exc) == 404 or error_code(exc) in {"NoSuchKey", "404", "NotFound"}


class ArchiveStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        max_attempts: int = 25,
        base_delay: float = 0.02,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter

    def load_optional(self, change_id: str) -> VersionedArchive | None:
        key = keys.archive_key(change_id)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        body = response["Body"].read()
        try:
            document = ArchiveDocument.from_json_bytes(body)
        except ValidationError as exc:
            raise ArchiveInvalid(f"{key} is not a valid change document: {describe_validation_error(exc)}") from None
        if document.change_id != change_id:
            raise ArchiveInvalid(f"{key} holds change_id {document.change_id!r}, not {change_id!r}")
        return VersionedArchive(document, response["ETag"])

    def load(self, change_id: str) -> VersionedArchive:
        found = self.load_optional(change_id)
        if found is None:
            raise ArchiveMissing(f"{keys.archive_key(change_id)} does not exist")
        return found

    def update(
        self,
        change_id: str,
        mutate: Mutation,
        *,
        create: bool = False,
        current: VersionedArchive | None = None,
        metrics: MetricBatch | None = None,
    ) -> VersionedArchive:
        """Apply ``mutate`` by compare-and-swap; retry on conflicts with full-jitter backoff.

        ``current`` (a version just read) saves the first GET. Returns the version written, or the
        current one when ``mutate`` decided nothing needs writing.
        """
        key = keys.archive_key(change_id)
        for attempt in range(self.max_attempts):
            version = current if attempt == 0 and current is not None else self.load_optional(change_id)
            if version is None and not create:
                raise ArchiveMissing(f"{key} does not exist")
            updated = mutate(version.document.model_copy(deep=True) if version else None)
            if updated is None:
                if version is None:
                    raise ArchiveMissing(f"{key} does not exist and the update created nothing")
                return version
            condition = {"IfMatch": version.etag} if version else {"IfNoneMatch": "*"}
            try:
                response = self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=updated.to_json_bytes(),
                    ContentType="application/json",
                    **condition,
                )
            except ClientError as exc:
                if _is_conflict(exc) or (version is not None and _is_missing(exc)):
                    self._sleep(self._jitter() * min(self._max_delay, self._base_delay * 2**attempt))
                    continue
                if metrics:
                    metrics.add(MetricName.ARCHIVE_UPDATE_FAILURE)
                raise
            if metrics:
                metrics.add(MetricName.ARCHIVE_UPDATE_SUCCESS)
            return VersionedArchive(updated, response["ETag"])
        if metrics:
            metrics.add(MetricName.ARCHIVE_UPDATE_FAILURE)
        raise ArchiveConflict(f"{key}: lost compare-and-swap {self.max_attempts} times in a row")
