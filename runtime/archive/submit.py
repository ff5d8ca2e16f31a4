"""Archive-first submission of a change (the front end's upload sequence, as a library call).

1. Validate the document and the customer list; refuse before anything is written.
2. Write ``archive/{id}.json`` by compare-and-swap: ``revision`` + 1, a ``submitted`` modification,
   and everything already recorded (modifications, leases, meeting metadata, unknown fields) kept.
3. Then one trigger per customer, ``customers/{code}/{id}.json`` — each creation fires that
   customer's queue. The archive is written first, so a processor never sees a trigger without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from runtime.archive.documents import SUBMITTED, ArchiveDocument, ModificationEntry, describe_validation_error
from runtime.archive.errors import InvalidSubmission
from runtime.archive.store import ArchiveStore, VersionedArchive
from runtime.archive.triggers import TriggerStore
from runtime.contract import keys
from runtime.contract.metric_names import MetricName
from runtime.telemetry.metrics import MetricsFactory

__all__ = ["InvalidSubmission", "Submission", "submit_change", "validate_change"]

# Fields the pipeline owns: a submission never overwrites what processors recorded.
_RECORDED_FIELDS = ("modifications", "leases", "meeting_metadata", "meeting_lease", "revision")


@dataclass(frozen=True)
class Submission:
    change_id: str
    revision: int
    customers: list[str]
    archive_etag: str


def validate_change(raw: dict[str, Any] | str | bytes) -> ArchiveDocument:
    try:
        payload = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, or a number too long for int()
        raise InvalidSubmission(f"change document is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidSubmission("change document must be a JSON object")
    try:
        return ArchiveDocument.model_validate(payload)
    except ValidationError as exc:
        raise InvalidSubmission(f"invalid change document: {describe_validation_error(exc)}") from None


def submit_change(
    archive: ArchiveStore,
    triggers: TriggerStore,
    change: dict[str, Any] | str | bytes | ArchiveDocument,
    *,
    user_id: str,
    customers: list[str] | None = None,
    metrics: MetricsFactory | None = None,
) -> Submission:
    document = change if isinstance(change, ArchiveDocument) else validate_change(change)
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

    incoming = document.to_json_dict()

    def mutate(current: ArchiveDocument | None) -> ArchiveDocument:
        merged = dict(current.to_json_dict()) if current else {}
        merged.update({k: v for k, v in incoming.items() if k not in _RECORDED_FIELDS})
        revision = (current.revision if current else 0) + 1
        merged["revision"] = revision
        updated = ArchiveDocument.model_validate(merged)
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
