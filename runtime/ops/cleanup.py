"""``cleanup``: delete the triggers whose work is done — only those whose customer's result for the
current revision is *recorded* (the archive has its ``processed`` entry, or the customer's processing
object ``processing/{C}/{id}.json`` has the result and the coordinator has not folded it yet), each
``IfMatch`` the ETag it was listed with, so a trigger replaced by a newer submission meanwhile is never
deleted. The sweeper runs the same loop (:func:`iter_cleanup`).

Writes only ``customers/``; never ``archive/`` nor ``processing/``. An invalid processing object keeps
its trigger and is reported as a finding naming the key.

An object under ``customers/`` whose key is not a valid trigger (``invalid_trigger_key``) is listed
under ``invalid`` and kept: it is removed only when the operator names its exact key
(``remove_invalid``), ``IfMatch`` the ETag it was listed with — never by this loop on its own, nor by the
sweeper. The bucket is versioned, so a removed object can be brought back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.archive import ArchiveError, ArchiveStore, DeleteOutcome, TriggerInfo, TriggerStore, VersionedArchive
from runtime.contract import keys
from runtime.ops.archive_view import ArchiveCache
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, now
from runtime.ops.errors import OpsUsageError
from runtime.ops.processing_view import NOT_FOLDED, ProcessingCache, ProcessingRead, recorded
from runtime.ops.progress import Tracker, no_track
from runtime.ops.triggers_view import INVALID_TRIGGER_KEY, InvalidTriggerObject, list_customer_objects


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
class InvalidObjectItem:
    """An object under ``customers/`` that is not a valid trigger, and what cleanup did with it."""

    key: str
    """Verbatim (it may hold markup or control characters: escape it to show it)."""
    customer: str | None
    age_seconds: float
    action: str  # kept | would_remove | removed | replaced | already_gone | failed
    reason: str
    diagnosis: str = INVALID_TRIGGER_KEY


INVALID_LEFT = frozenset({"kept", "replaced", "failed"})
"""Actions after which an invalid object is still there and needs the operator."""


@dataclass
class CleanupReport:
    dry_run: bool
    items: list[CleanupItem]
    invalid: list[InvalidObjectItem] = field(default_factory=list)

    @property
    def failed(self) -> list[CleanupItem]:
        return [i for i in self.items if i.action == "failed"]

    @property
    def findings(self) -> list[str]:
        return [i.finding for i in self.items if i.finding]

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed) or bool(self.findings) or any(i.action in INVALID_LEFT for i in self.invalid)

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
    remove_invalid: Collection[str] = (),
    reference: datetime | None = None,
    track: Tracker = no_track,
) -> CleanupReport:
    """Delete the recorded triggers; list the objects that are not valid triggers, removing those whose
    exact key is in ``remove_invalid`` (each must be one this listing finds invalid: a valid trigger or
    a key that is not there is refused before anything is deleted)."""
    at = reference or now()
    listing = list_customer_objects(clients.s3, bucket, customer)
    _check_removable(remove_invalid, listing.invalid, listing.triggers, customer)
    infos = [i for items in listing.triggers.values() for i in items]
    items = list(
        track(iter_cleanup(clients.s3, bucket, infos, dry_run=dry_run, reference=at), len(infos), "cleaning up")
    )
    requested = set(remove_invalid)
    invalid = [
        _invalid_item(clients.s3, bucket, obj, remove=obj.key in requested, dry_run=dry_run, reference=at)
        for obj in sorted(listing.invalid, key=lambda o: o.key)
    ]
    return CleanupReport(dry_run, items, invalid)


def _check_removable(
    requested: Collection[str],
    invalid: list[InvalidTriggerObject],
    triggers: dict[str, list[TriggerInfo]],
    customer: str | None,
) -> None:
    listed = {obj.key for obj in invalid}
    valid = {info.ref.key for infos in triggers.values() for info in infos}
    prefix = keys.trigger_prefix(customer) if customer else keys.CUSTOMERS_PREFIX
    for key in requested:
        if key in listed:
            continue
        if key in valid:
            raise OpsUsageError(
                f"--remove-invalid {key!r}: that is a valid trigger, not an invalid one; cleanup deletes a valid "
                "trigger only once its result is recorded (`stuck` says why it is still there)"
            )
        raise OpsUsageError(
            f"--remove-invalid {key!r}: not an object under {prefix} whose key is an invalid trigger key; give the "
            "key exactly as `cleanup --json` lists it under invalid"
        )


def _invalid_item(
    s3: Any, bucket: str, obj: InvalidTriggerObject, *, remove: bool, dry_run: bool, reference: datetime
) -> InvalidObjectItem:
    age = age_seconds(obj.last_modified, reference)

    def item(action: str, reason: str) -> InvalidObjectItem:
        return InvalidObjectItem(obj.key, obj.customer, age, action, reason)

    if not remove:
        return item("kept", f"{obj.problem}; removed only when asked: `cleanup --remove-invalid KEY`")
    if dry_run:
        return item("would_remove", obj.problem)
    try:
        s3.delete_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)
    except ClientError as exc:
        status, code = aws.http_status(exc), aws.error_code(exc)
        if status == 412 or code == "PreconditionFailed":
            return item("replaced", "rewritten since it was listed: kept; list it again and decide")
        if status == 404 or code in {"NoSuchKey", "404"}:
            return item("already_gone", "already deleted")
        return item("failed", f"{code or status}: {exc}")
    return item("removed", f"{obj.problem}; removed as asked (bucket versioning keeps its earlier version)")
