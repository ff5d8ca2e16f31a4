"""``cleanup``: delete the triggers whose work is done — only those whose customer's result for the
current revision is *recorded* (the archive has its ``processed`` entry, or the customer's processing
object ``processing/{C}/{id}.json`` has the result and the coordinator has not folded it yet), each
``IfMatch`` the ETag it was listed with, so a trigger replaced by a newer submission meanwhile is never
deleted. The sweeper runs the same loop (:func:`iter_cleanup`).

Writes only ``customers/``; never ``archive/`` nor ``processing/``. An invalid processing object keeps
its trigger and is reported as a finding naming the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runtime.archive.store import ArchiveError, ArchiveStore, VersionedArchive
from runtime.archive.triggers import DeleteOutcome, TriggerInfo, TriggerStore
from runtime.ops.archive_view import ArchiveCache
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, now
from runtime.ops.processing_view import NOT_FOLDED, ProcessingCache, ProcessingRead, recorded
from runtime.ops.progress import Tracker, no_track
from runtime.ops.triggers_view import triggers_by_customer


@dataclass
class CleanupItem:
    customer: str
    change_id: str
    key: str
    age_seconds: float
    action: str  # deleted | would_delete | kept | replaced | already_gone | failed
    reason: str
    finding: str | None = None
    """An invalid or unreadable processing object (its key named): the trigger is kept."""


@dataclass
class CleanupReport:
    dry_run: bool
    items: list[CleanupItem]

    @property
    def failed(self) -> list[CleanupItem]:
        return [i for i in self.items if i.action == "failed"]

    @property
    def findings(self) -> list[str]:
        return [i.finding for i in self.items if i.finding]

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed) or bool(self.findings)

    def count(self, action: str) -> int:
        return sum(1 for i in self.items if i.action == action)


def recorded_result(
    loaded: VersionedArchive | ArchiveError | None, code: str, processing: ProcessingCache | None = None
) -> tuple[bool, str, str | None]:
    """Whether ``code``'s result for the archive's current revision is recorded — in the archive
    (folded) or, when ``processing`` is given, in the customer's processing object — and why not.
    The third value is a finding: the processing object could not be used (its key named)."""
    if loaded is None:
        return False, "archive missing", None
    if isinstance(loaded, ArchiveError):
        return False, "archive invalid", None
    doc = loaded.document
    if code not in doc.customers:
        return False, "archive does not list this customer", None
    if doc.is_processed(code, doc.revision):
        return True, f"archive records revision {doc.revision} as processed", None
    if processing is None:
        return False, f"revision {doc.revision} not processed yet", None
    read: ProcessingRead = processing.get(code, doc.change_id)
    if read.error is not None:
        return False, f"revision {doc.revision} not recorded in the archive; {read.error}", read.error
    state = recorded(doc, code, doc.revision, read)
    if state.where == NOT_FOLDED:
        return True, f"{read.key} records revision {doc.revision} (not folded into the archive yet)", None
    return False, f"revision {doc.revision} not processed yet", None


def iter_cleanup(
    s3: Any,
    bucket: str,
    infos: Iterable[TriggerInfo],
    *,
    dry_run: bool,
    reference: datetime,
    archives: ArchiveCache | None = None,
    processing: ProcessingCache | None = None,
) -> Iterator[CleanupItem]:
    """For each trigger (listed before the archive is read): delete it ``IfMatch`` its listed ETag
    when the customer's result for the current revision is recorded (archive or processing object);
    keep it otherwise. A trigger replaced by a newer submission after listing has another ETag, so it
    is never deleted."""
    store = TriggerStore(s3, bucket)
    cache = archives or ArchiveCache(ArchiveStore(s3, bucket))
    results = processing or ProcessingCache(s3, bucket)
    for info in infos:
        code, change_id = info.ref.customer_code, info.ref.change_id
        age = age_seconds(info.last_modified, reference)
        done, why, finding = recorded_result(cache.get(change_id), code, results)
        if not done:
            yield CleanupItem(code, change_id, info.ref.key, age, "kept", why, finding)
            continue
        if dry_run:
            yield CleanupItem(code, change_id, info.ref.key, age, "would_delete", why)
            continue
        outcome, detail = store.delete_if_unchanged(info)
        action = {
            DeleteOutcome.DELETED: "deleted",
            DeleteOutcome.ALREADY_GONE: "already_gone",
            DeleteOutcome.REPLACED: "replaced",
            DeleteOutcome.FAILED: "failed",
        }[outcome]
        yield CleanupItem(code, change_id, info.ref.key, age, action, detail or why)


def cleanup(
    clients: OpsClients,
    bucket: str,
    *,
    customer: str | None = None,
    dry_run: bool = False,
    reference: datetime | None = None,
    track: Tracker = no_track,
) -> CleanupReport:
    at = reference or now()
    infos = [i for items in triggers_by_customer(clients.s3, bucket, customer).values() for i in items]
    items = list(
        track(iter_cleanup(clients.s3, bucket, infos, dry_run=dry_run, reference=at), len(infos), "cleaning up")
    )
    return CleanupReport(dry_run, items)
