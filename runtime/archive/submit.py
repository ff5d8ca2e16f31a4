"""Archive-first submission of a change (the front end's upload sequence, as a library call).

1. Validate the document and the customer list; refuse before anything is written. Refused: a
   document over :data:`~runtime.contract.document_limits.MAX_CHANGE_DOCUMENT_BYTES` (its email must
   stay under SES's message size), a time without a UTC offset, a number JSON readers cannot hold
   (``NaN``, ``Infinity``, beyond a double).
2. Write ``archive/{id}.json`` by compare-and-swap: ``revision`` + 1 and a ``submitted`` modification.
   A new archive continues from the bucket's earlier versions of the key: a change whose archive was
   deleted (a withdrawn change, runbook) and is submitted again under the same id gets the revision after
   the last one it reached, never 1 again, so the results its customers' processing objects record for
   the old content never count for the new one (issue 17; :meth:`ArchiveStore.revision_in_history`).
   The submission states the whole user-owned content (docs/design.md §3): a declared field it does not
   give is absent from (or back to its default in) the new revision. Kept from the current revision:
   what the pipeline recorded (:data:`RECORDED_FIELDS`: the audit trail, the coordinator's meeting
   metadata, leases, the folded delivery counts) and every field unknown to us, unless the submission gives it anew.
3. Then one trigger per customer, ``customers/{code}/{id}.json`` — each creation fires that
   customer's queue. The archive is written first, so a processor never sees a trigger without it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive.documents import (
    REFUSE_NAIVE_TIMES,
    SUBMITTED,
    ArchiveDocument,
    JsonNumber,
    ModificationEntry,
    check_nesting,
    parse_json,
)
from runtime.archive.errors import InvalidSubmission
from runtime.archive.store import ArchiveStore, VersionedArchive
from runtime.archive.triggers import TriggerStore
from runtime.aws import error_code, http_status
from runtime.contract import keys
from runtime.contract.document_limits import MAX_CHANGE_DOCUMENT_BYTES
from runtime.contract.errors import describe_validation_error
from runtime.contract.metric_names import MetricName
from runtime.telemetry import MetricsFactory

__all__ = ["RECORDED_FIELDS", "InvalidSubmission", "Submission", "submit_change", "validate_change"]

RECORDED_FIELDS = (
    "modifications",
    "leases",
    "meeting_metadata",
    "meeting_lease",
    "delivery",
    "revision",
    "fold_segments",
)
"""Fields the pipeline records: a submission never sets them, and a resubmission keeps them."""


@dataclass(frozen=True)
class Submission:
    change_id: str
    revision: int
    customers: list[str]
    archive_etag: str


def _refuse_oversized(size: int) -> None:
    if size > MAX_CHANGE_DOCUMENT_BYTES:
        raise InvalidSubmission(
            f"change document is {size:,} bytes; the limit is {MAX_CHANGE_DOCUMENT_BYTES:,} bytes "
            "(MAX_CHANGE_DOCUMENT_BYTES, so that every customer's email stays under SES's message size): "
            "shorten the summary or description, or link to the details"
        )


def _refuse_non_finite_numbers(value: Any, path: str = "") -> None:
    """A number a double cannot hold (``NaN``, ``Infinity``, ``1e400``) is refused, naming its field:
    jq, JavaScript and Go's float64 cannot read it back, and the archive is read by all three."""
    if isinstance(value, float) and not math.isfinite(value):
        text = value.text if isinstance(value, JsonNumber) else repr(value)
        raise InvalidSubmission(
            f"invalid change document: {path or 'document'}: {text} is not a finite number "
            "(JSON readers such as jq, JavaScript and Go cannot hold it): remove it or send it as a string"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_non_finite_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_non_finite_numbers(item, f"{path}.{index}" if path else str(index))


def validate_change(raw: dict[str, Any] | str | bytes) -> ArchiveDocument:
    """The submitted change document, or :class:`InvalidSubmission` naming what is wrong and the fix."""
    if isinstance(raw, dict):
        try:
            check_nesting(raw)
        except ValueError as exc:
            raise InvalidSubmission(f"invalid change document: {exc}") from None
        _refuse_oversized(len(json.dumps(raw, ensure_ascii=False, default=str).encode()))
        payload: Any = raw
    else:
        _refuse_oversized(len(raw.encode() if isinstance(raw, str) else raw))
        try:
            payload = parse_json(raw)
        except ValueError as exc:  # JSONDecodeError, nesting, or a number too long for int()
            raise InvalidSubmission(f"change document cannot be read as JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidSubmission("change document must be a JSON object")
    _refuse_non_finite_numbers(payload)
    try:
        return ArchiveDocument.model_validate(payload, context={REFUSE_NAIVE_TIMES: True})
    except ValidationError as exc:
        raise InvalidSubmission(f"invalid change document: {describe_validation_error(exc)}") from None


def _checked(change: dict[str, Any] | str | bytes | ArchiveDocument) -> ArchiveDocument:
    """The submitted document, validated (JSON text or a dict) or checked for size and numbers (a model)."""
    if not isinstance(change, ArchiveDocument):
        return validate_change(change)
    _refuse_oversized(len(change.to_json_bytes()))
    _refuse_non_finite_numbers(change.to_python_dict())
    return change


def _targets(document: ArchiveDocument, customers: list[str] | None, user_id: str) -> list[str]:
    """The customers to notify (all the document's by default), refused before anything is written."""
    targets = list(customers) if customers is not None else list(document.customers)
    try:
        for code in targets:
            keys.validate_customer_code(code)
    except keys.InvalidKeyError as exc:
        raise InvalidSubmission(str(exc)) from None
    if not targets:
        raise InvalidSubmission("no customers to notify: pass customers or list them in the document")
    unknown = [c for c in targets if c not in document.customers]
    if unknown:
        raise InvalidSubmission(f"customers {unknown} are not in the document's customers {document.customers}")
    if not user_id:
        raise InvalidSubmission("user_id is required (who submits the change)")
    return targets


def _revision_in_history(archive: ArchiveStore, change_id: str) -> int:
    """The revision a deleted archive of ``change_id`` had reached (0 for a new change), refused with the
    fix when the bucket's versions cannot be read or none holds a readable revision."""
    key = keys.archive_key(change_id)
    try:
        found = archive.revision_in_history(change_id)
    except ClientError as exc:
        if http_status(exc) != 403 and error_code(exc) not in {"AccessDenied", "AllAccessDisabled"}:
            raise
        raise InvalidSubmission(
            f"cannot read the earlier versions of {key} ({error_code(exc) or http_status(exc)}): a new "
            "archive continues the revision numbering of a deleted one, so submit needs "
            "s3:ListBucketVersions on the bucket and s3:GetObjectVersion on archive/* (docs/runbook.md, "
            "permissions)"
        ) from None
    if found is None:
        raise InvalidSubmission(
            f"{key} was deleted and none of its earlier versions holds a readable revision, so this "
            "submission cannot be numbered after them (the customers' processing objects may record "
            f"those revisions as sent): `restore {change_id} --list` shows the versions; restore "
            "a valid one, then submit again"
        )
    return found


def submit_change(
    archive: ArchiveStore,
    triggers: TriggerStore,
    change: dict[str, Any] | str | bytes | ArchiveDocument,
    *,
    user_id: str,
    customers: list[str] | None = None,
    metrics: MetricsFactory | None = None,
) -> Submission:
    """Validate, write the new revision of the archive, then the triggers.

    ``change`` as JSON text or a dict goes through :func:`validate_change`; an :class:`ArchiveDocument`
    built in code has been validated already (its times without an offset were taken as UTC) and is
    checked for size and numbers only.
    """
    document = _checked(change)
    targets = _targets(document, customers, user_id)
    content = {k: v for k, v in document.to_python_dict().items() if k not in RECORDED_FIELDS}
    history: list[int] = []

    def previous_revision() -> int:
        """The revision a deleted archive of this change id had reached (0 for a new change); read once."""
        if not history:
            history.append(_revision_in_history(archive, document.change_id))
        return history[0]

    def mutate(current: ArchiveDocument | None) -> ArchiveDocument:
        kept: dict[str, Any] = {}
        if current is not None:
            unknown_fields = set(current.model_extra or {})
            kept = {k: v for k, v in current.to_python_dict().items() if k in RECORDED_FIELDS or k in unknown_fields}
        revision = (current.revision if current else previous_revision()) + 1
        updated = ArchiveDocument.model_validate({**kept, **content, "revision": revision})
        updated.modifications = [
            *(current.modifications if current else []),
            ModificationEntry(user_id=user_id, modification_type=SUBMITTED, revision=revision, customers=targets),
        ]
        return updated

    version: VersionedArchive = archive.update(document.change_id, mutate, create=True)
    for code in targets:
        triggers.put(keys.TriggerRef(code, document.change_id), version.document.revision)
        if metrics:
            with metrics.batch(code) as batch:
                batch.add(MetricName.TRIGGER_CREATION_RATE)
    return Submission(document.change_id, version.document.revision, targets, version.etag)
