"""The change coordinator's last fold, as ``health`` shows it beside the coordinator's queue and DLQ.

Read from the archive, the one record that works everywhere: the coordinator's ``ResultsFolded`` metric
exists only where CloudWatch Logs turns its EMF lines into metrics (not on a local emulator), and its
log lines need a Logs Insights query. Every fold appends ``processed`` entries to a change's audit
trail, and every other writer of the archive (``submit``, ``restore``) appends an entry of its own. So
an archive document whose trail *ends* with a ``processed`` entry was last written by the coordinator
(that fold, or the meeting or delivery-count update it made after it), and its ``LastModified`` is when.

Since the segmented archive (:mod:`runtime.archive.folds`) a fold writes ``archive/{id}/folds/head``
instead: the newest head in the same listing is the last fold, with no read. A document ending with a
``processed`` entry newer than that head (an older coordinator's fold) still counts.

The newest such document is the last fold. The listing of ``archive/`` (one request per 1,000
changes) orders the documents by ``LastModified``; they are read newest first, at most
:data:`MAX_ARCHIVES_READ`, until one ends with a fold. A change submitted again after its fold (a newer
``submitted`` entry) is skipped, so the answer can be older than a fold that a later submission
followed; it never claims a fold that did not happen. Read-only; a listing or read that fails is
reported in ``error``, never raised (health reports what it can).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.archive import PROCESSED, ArchiveInvalid, ArchiveStore
from runtime.contract import keys
from runtime.ops.durations import age_seconds

MAX_ARCHIVES_READ = 20
"""Archive documents read at most (newest first) looking for the last one the coordinator wrote."""


@dataclass
class LastFold:
    at: datetime | None
    """When the coordinator last wrote an archive after folding into it (None: none found)."""
    change_id: str | None
    age_seconds: float | None
    archives: int
    """Archive documents in the bucket."""
    archives_read: int
    source: str = "archive"
    """Where it was read: the newest ``archive/`` document whose audit trail ends with a fold (written by
    older coordinators), or ``fold head``: the newest ``archive/{id}/folds/head`` (no read needed)."""
    error: str | None = None


def last_fold(s3: Any, bucket: str, reference: datetime) -> LastFold:
    try:
        listed, heads = _archives_newest_first(s3, bucket)
    except ClientError as exc:
        error = f"cannot list s3://{bucket}/{keys.ARCHIVE_PREFIX} ({aws.error_code(exc)}): check s3:ListBucket"
        return LastFold(None, None, None, 0, 0, error=error)
    store = ArchiveStore(s3, bucket)
    read = 0
    for change_id, last_modified, etag in listed[:MAX_ARCHIVES_READ]:
        if heads and last_modified <= heads[0][1]:
            break  # older than the newest fold head: the head is the last fold
        read += 1
        try:
            version = store.load_optional(change_id)
        except ArchiveInvalid:
            continue
        except ClientError as exc:
            error = f"cannot read {keys.archive_key(change_id)} ({aws.error_code(exc)}): check s3:GetObject"
            return LastFold(None, None, None, len(listed), read, error=error)
        if version is None or not version.document.modifications:
            continue
        if version.document.modifications[-1].modification_type != PROCESSED:
            continue
        # Rewritten since the listing (by the coordinator: the trail still ends with its fold): the read's time.
        at = last_modified if version.etag.strip('"') == etag.strip('"') else version.storage_now
        return LastFold(at, change_id, age_seconds(at, reference), len(listed), read)
    if heads:  # the segmented archive: a fold writes its change's head, never the document
        change_id, at, _ = heads[0]
        return LastFold(at, change_id, age_seconds(at, reference), len(listed), read, source="fold head")
    return LastFold(None, None, None, len(listed), read)


Listed = list[tuple[str, datetime, str]]


def _archives_newest_first(s3: Any, bucket: str) -> tuple[Listed, Listed]:
    """The archive documents and the fold heads (``archive/{id}/folds/head``), each newest first."""
    found: Listed = []
    heads: Listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.ARCHIVE_PREFIX):
        for item in page.get("Contents", []):
            listed = (item["Key"], item["LastModified"], item["ETag"])
            try:
                found.append((keys.parse_archive_key(item["Key"]), *listed[1:]))
                continue
            except keys.InvalidKeyError:
                pass
            try:
                heads.append((keys.parse_fold_head_key(item["Key"]), *listed[1:]))
            except keys.InvalidKeyError:
                continue
    return (
        sorted(found, key=lambda listed: listed[1], reverse=True),
        sorted(heads, key=lambda listed: listed[1], reverse=True),
    )
