"""``verify``: has a change reached everyone? The archive's state next to the triggers still there, per
customer (processed, processing, pending, not triggered), so an operator can tell "done" from "late"
from "never sent" for one change id.

Read-only. A missing or invalid archive is reported (``failed``), not raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.archive.documents import PROCESSED
from runtime.archive.store import ArchiveInvalid, ArchiveStore
from runtime.archive.triggers import TriggerStore
from runtime.contract import keys
from runtime.ops.archive_view import archive_has_history
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, now
from runtime.ops.triggers_view import redrive_attempts


@dataclass
class LeaseView:
    owner: str
    revision: int
    expires_at: datetime
    live: bool
    emails_sent: int


@dataclass
class TriggerView:
    customer: str
    key: str
    etag: str
    last_modified: datetime
    age_seconds: float
    redrive_attempts: int = 0


@dataclass
class CustomerProgress:
    customer: str
    state: str  # processed | pending | processing | not_triggered
    processed_revisions: list[int]
    processed_at: datetime | None
    emails_sent: int | None
    lease: LeaseView | None
    trigger: TriggerView | None


@dataclass
class VerifyReport:
    change_id: str
    archive_key: str
    exists: bool
    error: str | None = None
    etag: str | None = None
    title: str | None = None
    status: str | None = None
    revision: int | None = None
    customers: list[CustomerProgress] = field(default_factory=list)
    modifications: list[dict[str, Any]] = field(default_factory=list)
    meeting: dict[str, Any] | None = None
    meeting_metadata: dict[str, Any] | None = None
    meeting_lease: LeaseView | None = None
    other_triggers: list[TriggerView] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        return [c.customer for c in self.customers if c.state != "processed"]

    @property
    def complete(self) -> bool:
        return (
            self.exists
            and self.error is None
            and not self.pending
            and not any(c.trigger for c in self.customers)
            and not self.other_triggers
        )

    @property
    def failed(self) -> bool:
        """The archive is missing or invalid: there is nothing to verify against."""
        return self.error is not None

    @property
    def needs_attention(self) -> bool:
        return not self.complete


def _lease_view(lease: Any, at: datetime) -> LeaseView | None:
    if lease is None:
        return None
    return LeaseView(lease.owner, lease.revision, lease.expires_at, lease.is_live(at), len(lease.emails_sent))


def verify(clients: OpsClients, bucket: str, change_id: str, *, reference: datetime | None = None) -> VerifyReport:
    at = reference or now()
    keys.validate_change_id(change_id)
    report = VerifyReport(change_id, keys.archive_key(change_id), exists=False)
    triggers: dict[str, TriggerView] = {}
    for info in TriggerStore(clients.s3, bucket).list():
        if info.ref.change_id == change_id:
            attempts, _ = redrive_attempts(clients.s3, bucket, info.ref.key)
            triggers[info.ref.customer_code] = TriggerView(
                info.ref.customer_code,
                info.ref.key,
                info.etag,
                info.last_modified,
                age_seconds(info.last_modified, at),
                attempts,
            )
    try:
        version = ArchiveStore(clients.s3, bucket).load_optional(change_id)
    except ArchiveInvalid as exc:
        report.exists, report.error = True, str(exc)
        report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
        return report
    if version is None:
        report.error = f"{report.archive_key} does not exist"
        if archive_has_history(clients.s3, bucket, change_id):
            report.error += f" (earlier versions exist: `restore {change_id} --list`)"
        report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
        return report
    doc = version.document
    report.exists, report.etag = True, version.etag
    report.title, report.status, report.revision = doc.title, doc.status, doc.revision
    report.modifications = [m.to_json_dict() for m in doc.modifications]
    report.meeting = doc.meeting.to_json_dict() if doc.meeting else None
    report.meeting_metadata = doc.meeting_metadata.to_json_dict() if doc.meeting_metadata else None
    report.meeting_lease = _lease_view(doc.meeting_lease, at)
    for code in doc.customers:
        revisions = sorted(
            {
                m.revision
                for m in doc.modifications
                if m.modification_type == PROCESSED and m.customer_code == code and m.revision is not None
            }
        )
        entry = doc.processed_entry(code)
        lease = _lease_view(doc.leases.get(code), at)
        trigger = triggers.pop(code, None)
        if entry is not None:
            state = "processed"
        elif lease is not None and lease.live and lease.revision == doc.revision:
            state = "processing"
        elif trigger is not None:
            state = "pending"
        else:
            state = "not_triggered"
        emails = entry.emails_sent if entry is not None else None
        report.customers.append(
            CustomerProgress(code, state, revisions, entry.timestamp if entry else None, emails, lease, trigger)
        )
    report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
    return report
