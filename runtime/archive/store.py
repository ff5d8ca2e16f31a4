"""The archive store: ``archive/{change_id}.json`` read with its ETag, written only by compare-and-swap.

Several customers' processors (and the submitter) update the same change concurrently. Every write
is an S3 conditional PUT — ``IfMatch`` the ETag we read, or ``IfNoneMatch="*"`` to create — so a
concurrent writer makes ours fail with 412 instead of silently overwriting it; we then re-read and
re-apply the same *mutation* (a pure function of the current document) after a jittered backoff.
Nothing another writer recorded can be lost this way, and unknown fields survive every rewrite
because the document model keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, Unpack

from botocore.exceptions import ClientError

from runtime.archive.cas import UNREAD, Backoff, RetryOptions, is_missing
from runtime.archive.customer_view import customer_view
from runtime.archive.documents import ArchiveDocument, FoldHead, parse_json
from runtime.archive.errors import ArchiveConflict, ArchiveError, ArchiveInvalid, ArchiveMissing
from runtime.archive.folds import FoldedResults, FoldSegments, read_folded, with_results
from runtime.archive.versioned import Versioned, VersionedJson
from runtime.contract import keys
from runtime.telemetry import MetricBatch

__all__ = [
    "ArchiveConflict",
    "ArchiveError",
    "ArchiveInvalid",
    "ArchiveMissing",
    "ArchiveStore",
    "Mutation",
    "VersionedArchive",
]

MAX_HISTORY_READS = 20
"""Earlier versions of an archive :meth:`ArchiveStore.revision_in_history` reads at most, newest first,
looking for one whose revision can be read."""

Mutation = Callable[[ArchiveDocument | None], ArchiveDocument | None]
"""Given the current document (None if it does not exist), return the new one, or None for no write."""

VersionedArchive = Versioned[ArchiveDocument]


def _identity(change_id: str) -> Callable[[ArchiveDocument], str | None]:
    def problem(document: ArchiveDocument) -> str | None:
        return None if document.change_id == change_id else f"change_id {document.change_id!r}, not {change_id!r}"

    return problem


class ArchiveStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        **retry: Unpack[RetryOptions],
    ) -> None:
        self.objects: VersionedJson[ArchiveDocument] = VersionedJson(
            s3,
            bucket,
            kind="change document",
            parse=ArchiveDocument.from_json_bytes,
            dump=lambda document: document.to_json_bytes(),  # a customer's view refuses (read-only)
            backoff=Backoff(**retry),
        )
        """The versioned-JSON store underneath; its S3 client and bucket serve the stores of the other
        documents of the same bucket."""
        self.bucket = bucket
        self.segments = FoldSegments(s3, bucket, self.objects.backoff)
        """The fold segments and their heads (:mod:`runtime.archive.folds`)."""

    def results(self, change_id: str, known: FoldedResults | None = None) -> tuple[FoldHead | None, FoldedResults]:
        """The change's fold head and the segments it lists (those ``known`` lacks read); see :func:`read_folded`."""
        return read_folded(self.segments, change_id, known)

    def with_results(self, document: ArchiveDocument) -> ArchiveDocument:
        """``document`` as readers of the results see it: its inline entries and its segments' (a view
        for reading, never for writing back)."""
        if not document.fold_segments:
            return document
        head, results = self.results(document.change_id)
        return with_results(document, head, results)

    def load_results(self, change_id: str) -> VersionedArchive | None:
        """The archive (None when absent) with its folded results read: what every reader of ``processed``
        entries uses (``verify``, ``stuck``, ``cleanup``, the sweeper, ``restore``, the web site).
        ``ArchiveInvalid`` also when the head or a segment it lists is missing or invalid."""
        found = self.load_optional(change_id)
        if found is None or not found.document.fold_segments:
            return found
        return Versioned(self.with_results(found.document), found.etag, found.storage_now, found.dated)

    def read_json(self, change_id: str) -> dict[str, Any]:
        """The stored document as JSON with its fold segments' entries among its ``modifications``: what a
        report or a test prints (:meth:`load_results`, as stored). :class:`ArchiveMissing` when absent."""
        key = keys.archive_key(change_id)
        try:
            body = self.objects.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                raise ArchiveMissing(f"{key} does not exist") from exc
            raise
        stored: dict[str, Any] = json.loads(body)
        if stored.get("fold_segments"):
            view = self.with_results(ArchiveDocument.from_json_bytes(body))
            stored["modifications"] = [m.to_json_dict() for m in view.modifications]
        return stored

    def load_if_changed(self, change_id: str, etag: str) -> VersionedArchive | None:
        """The archive if its ETag is no longer ``etag`` (None: unchanged, a bodiless 304);
        :class:`ArchiveMissing` when it is gone."""
        return self.objects.load_if_changed(keys.archive_key(change_id), etag, _identity(change_id))

    @property
    def max_attempts(self) -> int:
        return self.objects.backoff.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self.objects.backoff.max_attempts = value

    def load_optional(self, change_id: str) -> VersionedArchive | None:
        return self.objects.load_optional(keys.archive_key(change_id), _identity(change_id))

    def revision_in_history(self, change_id: str) -> int | None:
        """The revision of the newest earlier version of ``archive/{id}.json`` that states one: 0 when the
        key has no version at all, None when versions exist but none of the newest
        :data:`MAX_HISTORY_READS` can be read as JSON with a revision.

        For a change submitted again after its archive was deleted (a delete marker is the current
        version): the bucket keeps every archive version, so the numbering continues instead of starting
        at 1 again, where the customers' processing objects still record the old submission's results.
        Needs ``s3:ListBucketVersions`` and ``s3:GetObjectVersion``. Only the exact key counts
        (``archive/CHG-1.json`` is a prefix of ``archive/CHG-1.json.json``)."""
        key = keys.archive_key(change_id)
        versions: list[tuple[Any, str]] = []
        for page in self.objects.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            versions += [(v["LastModified"], v["VersionId"]) for v in page.get("Versions", []) if v["Key"] == key]
        if not versions:
            return 0
        # S3 lists a key's versions newest first; LastModified has second precision, so the sort is stable
        versions.sort(key=lambda v: v[0], reverse=True)
        for _, version_id in versions[:MAX_HISTORY_READS]:
            body = self.objects.s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)["Body"].read()
            try:
                data = parse_json(body)
            except ValueError:
                continue
            revision = data.get("revision") if isinstance(data, dict) else None
            if isinstance(revision, int) and not isinstance(revision, bool) and revision >= 0:
                return revision
        return None

    def load(self, change_id: str) -> VersionedArchive:
        found = self.load_optional(change_id)
        if found is None:
            raise ArchiveMissing(f"{keys.archive_key(change_id)} does not exist")
        return found

    def load_customer_view(self, change_id: str, customer_code: str) -> VersionedArchive:
        """The archive as ``customer_code``'s processor reads it: its customer's part only, validated in a
        time that does not grow with the customers listed (:mod:`runtime.archive.customer_view`); read-only.
        :class:`ArchiveMissing` when absent, :class:`ArchiveInvalid` as :meth:`load`."""
        key = keys.archive_key(change_id)
        found = self.objects.load_optional(
            key, _identity(change_id), parse=partial(customer_view, customer_code=customer_code)
        )
        if found is None:
            raise ArchiveMissing(f"{key} does not exist")
        return found

    def load_with_results(self, change_id: str) -> VersionedArchive:
        """:meth:`load_results`, :class:`ArchiveMissing` when the change has no archive."""
        found = self.load_results(change_id)
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
        """Apply ``mutate`` by compare-and-swap (:class:`~runtime.archive.cas.CasLoop`); retry on conflicts
        with full-jitter backoff.

        ``current`` (a version just read) saves the first GET. Returns the version written, or the
        current one when ``mutate`` decided nothing needs writing.
        """
        return self.objects.update(
            keys.archive_key(change_id),
            lambda version: mutate(version.document.model_copy(deep=True) if version else None),
            create=create,
            current=UNREAD if current is None else current,
            identity=_identity(change_id),
            metrics=metrics,
        )
