"""Restore an archive object from bucket versioning (the runbook's backup/recovery, no second bucket).

``restore CHANGE_ID --before TIME`` takes the newest version of ``archive/{id}.json`` written before
TIME and writes it back as the current version, by compare-and-swap (``IfMatch`` the current ETag, or
``IfNoneMatch="*"`` when the object was deleted), appending a ``restored`` modification.

What happens to what was recorded *after* that version (read from the newest valid later version —
the current one, or the last good one before a corruption):

* entries that record side effects in the world — ``processed`` (emails were sent) and
  ``meeting_*`` (a meeting exists) — are carried forward, with ``meeting_metadata``, the live leases
  and the revision number (never lowered). Dropping them would make the next processing send the
  same emails again or create a second meeting;
* any other later entry (a ``submitted`` of a newer revision, an earlier ``restored`` …) would be
  lost: the restore is refused unless ``--force``, and with ``--force`` the lost entries are listed
  in the ``restored`` entry itself, so the audit trail still says what was discarded.

Nothing is deleted: every version stays in the bucket, so a restore can itself be undone.

The customers' processing objects (``processing/{C}/{id}.json``) are never touched: they belong to the
processors and hold their results, leases and progress whatever the archive says. The plan lists the
results they record that the restored archive does not (``unfolded_results``): the change coordinator
folds them into the archive after the restore (it folds what is missing, never twice), so the audit
trail converges without ops writing them. An invalid processing object is listed under ``findings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime import aws
from runtime.archive.documents import (
    MEETING_CANCELLED,
    MEETING_SCHEDULED,
    MEETING_UPDATED,
    PROCESSED,
    RESTORED,
    ArchiveDocument,
    ModificationEntry,
    describe_validation_error,
)
from runtime.contract import keys
from runtime.ops.clients import OpsClients
from runtime.ops.durations import now
from runtime.ops.errors import NothingToDo, OpsError
from runtime.ops.processing_view import read_processing

MAX_SCANNED_VERSIONS = 50

SIDE_EFFECT_ENTRIES = frozenset({PROCESSED, MEETING_SCHEDULED, MEETING_UPDATED, MEETING_CANCELLED})
"""Entries that record something done in the world (emails sent, a meeting): always carried forward."""


@dataclass
class ArchiveVersion:
    version_id: str
    last_modified: datetime
    is_latest: bool
    delete_marker: bool
    size: int | None = None
    etag: str | None = None
    valid: bool | None = None
    error: str | None = None


@dataclass
class RestorePlan:
    change_id: str
    before: datetime
    source: ArchiveVersion
    current_state: str  # valid | invalid | deleted
    current_version_id: str | None
    merged_from: str | None
    revision: int
    carried_forward: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    forced: bool = False
    dry_run: bool = False
    written: bool = False
    refused: str | None = None
    new_etag: str | None = None
    new_version_id: str | None = None
    unfolded_results: list[dict[str, Any]] = field(default_factory=list)
    """Results the processing objects record and the restored archive does not: the coordinator folds them."""
    findings: list[str] = field(default_factory=list)
    """Processing objects that could not be read or validated (each names its key); restore goes on."""

    @property
    def needs_attention(self) -> bool:
        """Refused: nothing was written (``refused`` says why)."""
        return self.refused is not None


class RestoredDetails(TypedDict):
    """What a ``restored`` modification records besides the common fields. ``ModificationEntry`` keeps
    fields it does not declare, so these are written (and read back by ``verify``) as they are."""

    restored_version_id: str
    restored_version_time: str
    replaced_version_id: str | None
    replaced_state: str
    carried_forward: int
    dropped: list[dict[str, Any]]


def list_versions(s3: Any, bucket: str, change_id: str) -> list[ArchiveVersion]:
    """Every version and delete marker of ``archive/{id}.json``, newest first."""
    key = keys.archive_key(change_id)
    found: list[ArchiveVersion] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for v in page.get("Versions", []):
            if v["Key"] == key:
                found.append(
                    ArchiveVersion(
                        v["VersionId"], v["LastModified"], v["IsLatest"], False, v.get("Size"), v.get("ETag")
                    )
                )
        for m in page.get("DeleteMarkers", []):
            if m["Key"] == key:
                found.append(ArchiveVersion(m["VersionId"], m["LastModified"], m["IsLatest"], True))
    # S3 lists a key's versions newest first, but LastModified has second precision: the sort is stable
    # (ties keep S3's order) and IsLatest breaks a tie with a delete marker.
    return sorted(found, key=lambda v: (v.last_modified, v.is_latest), reverse=True)


def _read(s3: Any, bucket: str, change_id: str, version: ArchiveVersion) -> ArchiveDocument | None:
    key = keys.archive_key(change_id)
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version.version_id)["Body"].read()
    try:
        doc = ArchiveDocument.from_json_bytes(body)
    except ValidationError as exc:
        version.valid, version.error = False, describe_validation_error(exc)
        return None
    if doc.change_id != change_id:
        version.valid, version.error = False, f"holds change_id {doc.change_id!r}"
        return None
    version.valid = True
    return doc


def versions_with_validity(clients: OpsClients, bucket: str, change_id: str, limit: int = 20) -> list[ArchiveVersion]:
    versions = list_versions(clients.s3, bucket, change_id)
    for version in versions[:limit]:
        if not version.delete_marker:
            _read(clients.s3, bucket, change_id, version)
    return versions


def _identity(entry: ModificationEntry) -> tuple[Any, ...]:
    return (entry.timestamp.isoformat(), entry.user_id, entry.modification_type, entry.customer_code, entry.revision)


def _summary(entry: ModificationEntry) -> dict[str, Any]:
    return {
        k: v
        for k, v in entry.to_json_dict().items()
        if k in ("timestamp", "user_id", "modification_type", "customer_code", "revision")
    }


def restore(
    clients: OpsClients,
    bucket: str,
    change_id: str,
    before: datetime,
    *,
    user: str,
    force: bool = False,
    dry_run: bool = False,
) -> RestorePlan:
    keys.validate_change_id(change_id)
    s3 = clients.s3
    key = keys.archive_key(change_id)
    versions = list_versions(s3, bucket, change_id)
    if not versions:
        raise OpsError(
            f"s3://{bucket}/{key} has no versions: nothing to restore (is bucket versioning enabled? "
            f"`aws s3api get-bucket-versioning --bucket {bucket}`)"
        )
    older = [v for v in versions if not v.delete_marker and v.last_modified < before]
    if not older:
        oldest = min(v.last_modified for v in versions)
        raise OpsError(
            f"no version of {key} was written before {before.isoformat()} (the oldest is from "
            f"{oldest.isoformat()}): choose a later --before; `restore {change_id} --list` shows them"
        )
    source = older[0]
    current = versions[0]
    if current.version_id == source.version_id:
        raise NothingToDo(
            f"the newest version before {before.isoformat()} is already the current one ({source.version_id}): "
            "nothing to restore; pick an earlier --before (`--list` shows the versions)"
        )
    source_doc = _read(s3, bucket, change_id, source)
    if source_doc is None:
        raise OpsError(
            f"version {source.version_id} of {key} ({source.last_modified.isoformat()}) is not a valid change "
            f"document ({source.error}): choose an earlier --before (`restore {change_id} --list`)"
        )

    # the newest valid version written after the source: what has been recorded since
    later = [v for v in versions[: versions.index(source)] if not v.delete_marker]
    latest_good: ArchiveDocument | None = None
    merged_from = None
    for version in later[:MAX_SCANNED_VERSIONS]:
        latest_good = _read(s3, bucket, change_id, version)
        if latest_good is not None:
            merged_from = version.version_id
            break

    if current.delete_marker:
        current_state, condition = "deleted", {"IfNoneMatch": "*"}
    else:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise OpsError(f"cannot read the current {key} ({aws.error_code(exc)})") from None
        current_state = "valid" if merged_from == current.version_id else "invalid"
        if current.valid is None and merged_from != current.version_id:
            _read(s3, bucket, change_id, current)
            current_state = "valid" if current.valid else "invalid"
        condition = {"IfMatch": head["ETag"]}

    restored = source_doc.model_copy(deep=True)
    source_ids = {_identity(m) for m in source_doc.modifications}
    carried: list[ModificationEntry] = []
    dropped: list[ModificationEntry] = []
    if latest_good is not None:
        for entry in latest_good.modifications:
            if _identity(entry) in source_ids:
                continue
            (carried if entry.modification_type in SIDE_EFFECT_ENTRIES else dropped).append(entry)
        restored.revision = max(source_doc.revision, latest_good.revision)
        restored.meeting_metadata = latest_good.meeting_metadata or source_doc.meeting_metadata
        restored.leases = latest_good.leases
        restored.meeting_lease = latest_good.meeting_lease

    plan = RestorePlan(
        change_id,
        before,
        source,
        current_state,
        None if current.delete_marker else current.version_id,
        merged_from,
        restored.revision,
        [_summary(m) for m in carried],
        [_summary(m) for m in dropped],
        forced=force,
        dry_run=dry_run,
    )
    folded = {
        (m.customer_code, m.revision) for m in [*source_doc.modifications, *carried] if m.modification_type == PROCESSED
    }
    for code in restored.customers:  # read only: processing objects are the processors'
        read = read_processing(s3, bucket, code, change_id)
        if read.error is not None:
            plan.findings.append(read.error)
        for revision in read.recorded_revisions():
            if (code, revision) not in folded:
                plan.unfolded_results.append({"customer_code": code, "revision": revision, "key": read.key})
    if dropped and not force:
        plan.refused = (
            f"{len(dropped)} entr{'y' if len(dropped) == 1 else 'ies'} recorded after that version would be lost "
            "(listed under dropped); re-run with --force to restore anyway (they are then listed in the restored entry)"
        )
        return plan
    details = RestoredDetails(
        restored_version_id=source.version_id,
        restored_version_time=source.last_modified.isoformat(),
        replaced_version_id=plan.current_version_id,
        replaced_state=current_state,
        carried_forward=len(carried),
        dropped=plan.dropped,
    )
    restored.modifications = [
        *source_doc.modifications,
        *carried,
        ModificationEntry.model_validate(
            {
                "timestamp": now(),
                "user_id": user,
                "modification_type": RESTORED,
                "revision": restored.revision,
                **details,
            }
        ),
    ]
    if dry_run:
        return plan
    try:
        response = s3.put_object(
            Bucket=bucket, Key=key, Body=restored.to_json_bytes(), ContentType="application/json", **condition
        )
    except ClientError as exc:
        if aws.http_status(exc) in (409, 412) or aws.error_code(exc) in (
            "PreconditionFailed",
            "ConditionalRequestConflict",
        ):
            raise OpsError(
                f"{key} changed while restoring (another writer): nothing was written; run restore again"
            ) from None
        raise
    plan.written = True
    plan.new_etag = response.get("ETag")
    plan.new_version_id = response.get("VersionId")
    return plan
