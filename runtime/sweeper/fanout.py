"""Step 4 of the sweeper's pass, the fan-out repair: re-creates the triggers a submission did not write
(see :mod:`runtime.sweeper.sweep` for the whole account and its cost)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime.archive import SUBMITTED, ArchiveDocument, ArchiveError, TriggerInfo, TriggerStore, is_already_there
from runtime.contract.keys import ARCHIVE_PREFIX, InvalidKeyError, TriggerRef, parse_archive_key
from runtime.ops.archive_view import ArchiveCache
from runtime.ops.durations import age_seconds
from runtime.ops.processing_view import ProcessingCache
from runtime.sweeper.report import CustomerSweep, Log, SweepAction, SweepReport

__all__ = ["FanOutRepair", "ListedArchive", "customers_of_current_revision", "list_archives"]


@dataclass(frozen=True)
class ListedArchive:
    """One ``archive/{id}.json`` as the listing shows it (no read)."""

    change_id: str
    key: str
    etag: str
    last_modified: datetime


def list_archives(s3: Any, bucket: str) -> list[ListedArchive]:
    """Every archive object: one ``ListObjectsV2`` request per 1,000 (keys that are not archives skipped).

    ``Delimiter="/"`` keeps the objects under ``archive/{id}/`` (the fold segments, one per fold of a
    change) out of the listing: they would multiply its requests by the folds of every change."""
    found: list[ListedArchive] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ARCHIVE_PREFIX, Delimiter="/")
    for page in pages:
        for item in page.get("Contents", []):
            try:
                change_id = parse_archive_key(item["Key"])
            except InvalidKeyError:
                continue
            found.append(ListedArchive(change_id, item["Key"], item["ETag"], item["LastModified"]))
    return found


def customers_of_current_revision(doc: ArchiveDocument) -> list[str]:
    """The customers the current revision was submitted for: its ``submitted`` entries' ``customers``
    (a submission may name fewer than the document lists), the document's ``customers`` when an entry
    names none. No ``submitted`` entry for the revision (an archive not written by ``submit``): none —
    who was meant to be notified is unknown, so no trigger is invented."""
    targets: list[str] = []
    for entry in doc.modifications:
        if entry.modification_type == SUBMITTED and entry.revision == doc.revision:
            targets += entry.customers if entry.customers is not None else doc.customers
    return [c for c in dict.fromkeys(targets) if c in doc.customers]


class FanOutRepair:
    """One pass's fan-out repair; ``stopping(report)`` is asked before each archive (a stop request)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        log: Log,
        *,
        grace_seconds: int,
        window_seconds: int,
        max_checked: int,
        stopping: Callable[[SweepReport], bool],
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.log = log
        self.grace_seconds = grace_seconds
        self.window_seconds = window_seconds
        self.max_checked = max_checked
        self.stopping = stopping

    def run(
        self,
        grouped: dict[str, list[TriggerInfo]],
        archives: ArchiveCache,
        processing: ProcessingCache,
        at: datetime,
        summaries: dict[str, CustomerSweep],
        report: SweepReport,
    ) -> None:
        """Re-create the triggers a submission did not write: one listing of ``archive/``, then only the
        archives modified within the window and past the grace period (most recent first, at most
        ``max_archives_checked_per_pass``), each read once and isolated from the others."""
        triggered = {(i.ref.customer_code, i.ref.change_id) for infos in grouped.values() for i in infos}
        try:
            listed = list_archives(self.s3, self.bucket)
        except ClientError as exc:
            report.errors.append(f"cannot list s3://{self.bucket}/{ARCHIVE_PREFIX}: {exc}")
            self.log("error", "sweeper cannot list archives (missing triggers not checked)", {"error": str(exc)})
            return
        due = [a for a in listed if self.grace_seconds <= age_seconds(a.last_modified, at) <= self.window_seconds]
        due.sort(key=lambda a: a.last_modified, reverse=True)
        if len(due) > self.max_checked:
            self.log(
                "warning",
                "more archives modified within the window than one pass checks; the oldest wait",
                {"archives": len(due), "checked": self.max_checked},
            )
            due = due[: self.max_checked]
        report.archives_checked = len(due)
        store = TriggerStore(self.s3, self.bucket)
        for archive in due:
            if self.stopping(report):
                break
            try:
                self._recreate_for_change(archive, triggered, archives, processing, store, at, summaries, report)
            except Exception as exc:  # this change only: the others go on
                detail = f"{type(exc).__name__}: {exc}"
                report.errors.append(f"{archive.key}: {detail}")
                self.log(
                    "exception",
                    "checking a change for missing triggers failed",
                    {"change_id": archive.change_id, "key": archive.key, "error": detail},
                )

    def _recreate_for_change(
        self,
        archive: ListedArchive,
        triggered: set[tuple[str, str]],
        archives: ArchiveCache,
        processing: ProcessingCache,
        store: TriggerStore,
        at: datetime,
        summaries: dict[str, CustomerSweep],
        report: SweepReport,
    ) -> None:
        change_id = archive.change_id
        loaded = archives.get(change_id)
        if loaded is None or isinstance(loaded, ArchiveError):
            return  # deleted since the listing, or invalid: no processor could use a trigger (`verify` says why)
        if loaded.etag != archive.etag:
            return  # rewritten since the listing (a new revision's triggers may be on their way): next pass
        doc = loaded.document
        age = age_seconds(archive.last_modified, at)
        for code in customers_of_current_revision(doc):
            summary = summaries.get(code)
            if summary is None or (code, change_id) in triggered or doc.is_processed(code, doc.revision):
                continue  # not configured here (no queue), a trigger is there, or the result is folded
            self._recreate_trigger(
                TriggerRef(code, change_id), doc.revision, age, processing, store, at, summary, report
            )

    def _recreate_trigger(
        self,
        ref: TriggerRef,
        revision: int,
        age: float,
        processing: ProcessingCache,
        store: TriggerStore,
        at: datetime,
        summary: CustomerSweep,
        report: SweepReport,
    ) -> None:
        """Write ``ref`` (create-only) unless the processing object records ``revision`` or a later one,
        or a live lease shows processing under way."""
        code, change_id = ref.customer_code, ref.change_id
        context = {"customer_code": code, "change_id": change_id, "key": ref.key, "revision": revision}

        def act(action: str, detail: str, level: str) -> None:
            report.actions.append(SweepAction(code, change_id, ref.key, age, action, detail))
            self.log(level, f"missing trigger: {detail}", {**context, "action": action})

        read = processing.get(code, change_id)
        if read.invalid:  # the processor could not record a result either (`stuck` explains it)
            act("not_recreated", f"{read.error}; not re-created", "warning")
            return
        if read.error is not None:  # unreadable (access, throttling): nothing is known, nothing written
            summary.errors += 1
            act("error", f"{read.error}; not re-created", "error")
            return
        if any(r >= revision for r in read.recorded_revisions()) or read.lease_live(at):
            return  # processed (or a later revision: superseded), or processing under way
        try:
            store.put(ref, revision, if_absent=True)
        except ClientError as exc:
            if is_already_there(exc):
                act("replaced", "a trigger was written meanwhile; its own event follows", "info")
            else:
                summary.errors += 1
                act("error", f"cannot re-create the trigger: {exc}", "error")
            return
        summary.recreated += 1
        act("recreated", f"revision {revision} had neither a trigger nor a recorded result; re-created", "warning")
