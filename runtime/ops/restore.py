"""Restore an archive object from bucket versioning (the runbook's backup/recovery, no second bucket).

``restore CHANGE_ID --before TIME`` takes the newest version of ``archive/{id}.json`` written before
TIME and writes it back as the current version, appending a ``restored`` modification. The write is a
compare-and-swap against the versions the plan was built from: ``IfMatch`` the ETag of the current
version *as listed* (``IfNoneMatch="*"`` when it was a delete marker), so a resubmission or a fold landing
between the listing and the write is never overwritten; the restore plans again from a fresh listing
(bounded) and stops, saying what was written meanwhile, when the new plan would lose more than the first.

What happens to what was recorded *after* that version (read from the newest valid later version —
the current one, or the last good one before a corruption; the results the coordinator folded into
segments, ``archive/{id}/folds/``, are not in the document and stay as they are: ``restore`` never
rewrites them, so every result folded before or after the restored version still counts):

* entries that record side effects in the world — ``processed`` (emails were sent) and
  ``meeting_*`` (a meeting exists) — are carried forward, with ``meeting_metadata``, the live leases,
  the folded delivery counts (``delivery``: per customer and revision, the later fold's) and the
  revision number (never lowered). Dropping them would make the next processing send the
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
from runtime.archive import (
    MEETING_CANCELLED,
    MEETING_SCHEDULED,
    MEETING_UPDATED,
    PROCESSED,
    RESTORED,
    ArchiveDocument,
    ArchiveStore,
    DeliveryCounts,
    ModificationEntry,
)
from runtime.contract import keys
from runtime.contract.errors import describe_validation_error
from runtime.ops.clients import OpsClients
from runtime.ops.durations import now
from runtime.ops.errors import NothingToDo, OpsError
from runtime.ops.processing_view import read_processing

MAX_SCANNED_VERSIONS = 50
MAX_PLANS = 3
"""Plans (each from a fresh listing) before a restore that keeps meeting concurrent writes gives up."""

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
    """Plan from one listing of the versions, then write conditional on the current version *of that
    listing* (its ETag, or absence when it was a delete marker). Another writer landing after the
    listing makes the write fail (412) instead of being overwritten; the restore then plans again from
    a fresh listing — at most :data:`MAX_PLANS` times — as long as the new plan would lose nothing the
    first one did not show (a later ``processed`` or ``meeting_*`` entry is simply carried forward too).
    Anything else (a resubmission: its ``submitted`` entry would be lost) stops it with what changed."""
    keys.validate_change_id(change_id)
    first: _Planned | None = None
    for _attempt in range(MAX_PLANS):
        planned = _plan(clients, bucket, change_id, before, user=user, force=force, dry_run=dry_run)
        if first is None:
            first = planned
        elif planned.plan.dropped != first.plan.dropped:
            raise OpsError(_changed_message(planned, first))
        if planned.plan.refused or dry_run:
            return planned.plan
        if _write(clients.s3, bucket, planned):
            return planned.plan
    key = keys.archive_key(change_id)
    raise OpsError(
        f"{key} changed while restoring, {MAX_PLANS} times in a row (writers are busy on it): nothing was "
        f"written; run restore again when it is quiet (`verify {change_id}` shows who writes)"
    )


@dataclass
class _Planned:
    """A plan, the document it would write and the condition that ties the write to its listing."""

    plan: RestorePlan
    document: ArchiveDocument
    condition: dict[str, str]
    versions: list[ArchiveVersion]


def _changed_message(now_planned: _Planned, first: _Planned) -> str:
    """What was written after the first plan was made, and that nothing was written."""
    key = keys.archive_key(now_planned.plan.change_id)
    known = {v.version_id for v in first.versions}
    new_versions = [v for v in now_planned.versions if v.version_id not in known]
    written = ", ".join(
        f"{'a delete marker' if v.delete_marker else 'version ' + v.version_id} at {v.last_modified.isoformat()}"
        for v in new_versions
    )
    seen = {_entry_key(e) for e in first.plan.dropped}
    lost = [e for e in now_planned.plan.dropped if _entry_key(e) not in seen]
    described = "; ".join(
        f"{e.get('modification_type')} of revision {e.get('revision')} by {e.get('user_id')} at {e.get('timestamp')}"
        for e in lost
    )
    return (
        f"{key} changed while restoring ({written or 'a new version'} was written after the versions were listed"
        + (f", recording: {described}" if described else "")
        + f"): this restore would now lose {'it' if len(lost) == 1 else 'them'} too, so nothing was written. "
        f"Check `verify {now_planned.plan.change_id}` and `restore {now_planned.plan.change_id} --list`, then "
        "run restore again (it plans from the new versions)"
    )


def _entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in ("timestamp", "user_id", "modification_type", "customer_code", "revision"))


def _write(s3: Any, bucket: str, planned: _Planned) -> bool:
    """The compare-and-swap write; False when the current version is no longer the listed one."""
    key = keys.archive_key(planned.plan.change_id)
    try:
        response = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=planned.document.to_json_bytes(),
            ContentType="application/json",
            **planned.condition,
        )
    except ClientError as exc:
        if aws.http_status(exc) in (409, 412) or aws.error_code(exc) in (
            "PreconditionFailed",
            "ConditionalRequestConflict",
        ):
            return False
        raise
    planned.plan.written = True
    planned.plan.new_etag = response.get("ETag")
    planned.plan.new_version_id = response.get("VersionId")
    return True


def _newest_delivery(source: ArchiveDocument, later: ArchiveDocument) -> dict[str, dict[str, DeliveryCounts]]:
    """The folded delivery counts of both versions, per customer and revision the higher ``sequence``'s:
    they report emails already sent, so going back to an older version must not lose them."""
    merged = {code: dict(revisions) for code, revisions in source.delivery.items()}
    for code, revisions in later.delivery.items():
        for revision, counts in revisions.items():
            known = merged.setdefault(code, {}).get(revision)
            if known is None or counts.sequence > known.sequence:
                merged[code][revision] = counts
    return merged


def _plan(
    clients: OpsClients,
    bucket: str,
    change_id: str,
    before: datetime,
    *,
    user: str,
    force: bool,
    dry_run: bool,
) -> _Planned:
    s3 = clients.s3
    versions = list_versions(s3, bucket, change_id)
    source, current = _source_and_current(versions, bucket, change_id, before)
    source_doc = _read(s3, bucket, change_id, source)
    if source_doc is None:
        raise OpsError(
            f"version {source.version_id} of {keys.archive_key(change_id)} ({source.last_modified.isoformat()}) is "
            f"not a valid change document ({source.error}): choose an earlier --before (`restore {change_id} --list`)"
        )
    latest_good, merged_from = _newest_valid_since(s3, bucket, change_id, versions[: versions.index(source)])
    current_state, condition = _write_condition(s3, bucket, change_id, current, merged_from)
    restored, carried, dropped = _merge(source_doc, latest_good)
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
    # the folded results in segments are not the document's: a restore leaves them (and their head) as they are
    folded = ArchiveStore(s3, bucket).with_results(restored).modifications
    _find_unfolded_results(plan, s3, bucket, restored, [*source_doc.modifications, *carried, *folded])
    if dropped and not force:
        plan.refused = (
            f"{len(dropped)} entr{'y' if len(dropped) == 1 else 'ies'} recorded after that version would be lost "
            "(listed under dropped); re-run with --force to restore anyway (they are then listed in the restored entry)"
        )
        return _Planned(plan, restored, condition, versions)
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
    return _Planned(plan, restored, condition, versions)


def _source_and_current(
    versions: list[ArchiveVersion], bucket: str, change_id: str, before: datetime
) -> tuple[ArchiveVersion, ArchiveVersion]:
    """The version to restore (the newest written before ``before``) and the current one; an
    :class:`OpsError` (or :class:`NothingToDo`) saying what to choose instead when there is none."""
    key = keys.archive_key(change_id)
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
    source, current = older[0], versions[0]
    if current.version_id == source.version_id:
        raise NothingToDo(
            f"the newest version before {before.isoformat()} is already the current one ({source.version_id}): "
            "nothing to restore; pick an earlier --before (`--list` shows the versions)"
        )
    return source, current


def _newest_valid_since(
    s3: Any, bucket: str, change_id: str, later: list[ArchiveVersion]
) -> tuple[ArchiveDocument | None, str | None]:
    """The newest valid version written after the source (what has been recorded since) and its id."""
    for version in [v for v in later if not v.delete_marker][:MAX_SCANNED_VERSIONS]:
        document = _read(s3, bucket, change_id, version)
        if document is not None:
            return document, version.version_id
    return None, None


def _write_condition(
    s3: Any, bucket: str, change_id: str, current: ArchiveVersion, merged_from: str | None
) -> tuple[str, dict[str, str]]:
    """The current object's state and the condition of the restoring write.

    The write is conditional on the current version *as listed*: the plan is built from that listing,
    so a write landing after it (a resubmission, a fold) makes ours fail instead of being overwritten."""
    if current.delete_marker:
        return "deleted", {"IfNoneMatch": "*"}
    current_state = "valid" if merged_from == current.version_id else "invalid"
    if current.valid is None and merged_from != current.version_id:
        _read(s3, bucket, change_id, current)
        current_state = "valid" if current.valid else "invalid"
    return current_state, {"IfMatch": _listed_etag(s3, bucket, keys.archive_key(change_id), current)}


def _merge(
    source_doc: ArchiveDocument, latest_good: ArchiveDocument | None
) -> tuple[ArchiveDocument, list[ModificationEntry], list[ModificationEntry]]:
    """The source version with what was recorded since: the entries with side effects carried forward,
    the others dropped (listed); revision, meeting, leases and delivery counts from the newest."""
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
        restored.delivery = _newest_delivery(source_doc, latest_good)
        # the folded results in segments stay readable: their readers look for them by this mark
        restored.fold_segments = latest_good.fold_segments or source_doc.fold_segments
    return restored, carried, dropped


def _find_unfolded_results(
    plan: RestorePlan, s3: Any, bucket: str, restored: ArchiveDocument, kept: list[ModificationEntry]
) -> None:
    """Results the processing objects record that the restored archive does not (the coordinator folds
    them), and the processing objects that could not be read. Read only: they are the processors'."""
    folded = {(m.customer_code, m.revision) for m in kept if m.modification_type == PROCESSED}
    for code in restored.customers:
        read = read_processing(s3, bucket, code, plan.change_id)
        if read.error is not None:
            plan.findings.append(read.error)
        for revision in read.recorded_revisions():
            if (code, revision) not in folded:
                plan.unfolded_results.append({"customer_code": code, "revision": revision, "key": read.key})


def _listed_etag(s3: Any, bucket: str, key: str, version: ArchiveVersion) -> str:
    """The ETag of the listed version (the listing has it; a HEAD *of that version* otherwise, never of
    whatever is current by now)."""
    if version.etag:
        return version.etag
    try:
        etag: str = s3.head_object(Bucket=bucket, Key=key, VersionId=version.version_id)["ETag"]
    except ClientError as exc:
        raise OpsError(f"cannot read version {version.version_id} of {key} ({aws.error_code(exc)})") from None
    return etag
