"""``verify``: has a change reached everyone? Per customer, the customer's processing object
(``processing/{C}/{id}.json``: result per revision, lease, progress) beside the archive's folded
``processed`` entries and the triggers still there, so an operator can tell "done" from "recorded but
not in the audit trail yet" from "late" from "never sent" for one change id.

States (``CustomerProgress.state``; ``state_text`` says it in words — :data:`STATES`):

* ``processed`` — recorded and folded: the archive has the ``processed`` entry for the current revision;
* ``recorded_not_folded`` — the processing object records the result, the coordinator has not folded it;
* ``processing`` — in progress: a live lease on the current revision (processing object, or archive);
* ``pending`` — waiting: the trigger is there, nobody works on it now;
* ``not_triggered`` — no trigger, no result.

A result the processing object records for a revision that did not target the customer (another
customer's processor writing under this change id) is none of the change's: it is not counted, and a
finding names its key (the coordinator refuses to fold it, issue 17).

Delivery (SES events, ``delivery/{C}/{id}.json``): per customer, the recipients of the current revision
per last status — delivered, bounced (permanent, transient), complained, delayed, unsubscribed… —
from the delivery object, else from the counts folded into the archive; with ``recipients=True`` each
address's last event. Bounces and complaints are outcomes, not missing work: they never make a change
incomplete.

Read-only: one GET of the archive and two per listed customer (processing and delivery objects). A
missing or invalid archive is reported (``failed``), not raised; an invalid processing or delivery object
is a finding naming its key. A meeting the current revision asks for that is not scheduled (or not yet
updated or cancelled as it asks) is a finding too: the change is not complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.archive import (
    PROCESSED,
    ArchivedLease,
    ArchiveDocument,
    ArchiveInvalid,
    ArchiveStore,
    DeliveryStore,
    TriggerStore,
    archive_lease,
)
from runtime.contract import keys, names
from runtime.ops.archive_view import archive_has_history
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, now
from runtime.ops.processing_view import (
    FOLDED,
    NOT_FOLDED,
    ProcessingCache,
    ProcessingRead,
    describe_refused,
    recorded,
)
from runtime.ops.triggers_view import redrive_attempts

STATES = {
    "processed": "recorded and folded",
    "recorded_not_folded": "recorded, not folded yet",
    "processing": "in progress",
    "pending": "waiting",
    "not_triggered": "no trigger, no result",
}


@dataclass
class LeaseView:
    owner: str
    revision: int
    expires_at: datetime
    live: bool
    emails_sent: int | None
    """Archived leases only: the emails checkpointed in the lease (progress is in ``ProgressView``)."""
    source: str = "archive"  # processing (processing/{C}/{id}.json) | archive (an archived lease, or the meeting lease)
    message_id: str | None = None
    origin: str | None = None
    """Where an archived customer lease came from (``runtime.archive.ArchivedLease.origin``)."""


@dataclass
class ProgressView:
    revision: int
    recipients: int
    done: int
    rejected: int


@dataclass
class TriggerView:
    customer: str
    key: str
    etag: str
    last_modified: datetime
    age_seconds: float
    redrive_attempts: int = 0


@dataclass
class DeliveryView:
    """The delivery outcomes of one customer's emails of the current revision."""

    key: str
    source: str
    """``delivery`` (the consumer's object), ``archive`` (only the folded counts), or ``none``."""
    revision: int
    counts: dict[str, int] | None = None
    """``DeliveryCounts`` of the revision (delivered, bounced, bounced_permanent, …), None when unknown."""
    folded: bool = False
    """Whether the archive's ``delivery`` field holds the latest counts (same sequence)."""
    error: str | None = None


@dataclass
class RecipientView:
    """One address's last delivery event (``verify --recipients``)."""

    customer: str
    address: str
    status: str
    event_time: datetime
    revision: int
    message_id: str
    bounce_type: str | None = None
    bounce_subtype: str | None = None


@dataclass
class CustomerProgress:
    customer: str
    state: str  # processed | recorded_not_folded | processing | pending | not_triggered (STATES)
    processed_revisions: list[int]
    """Revisions with a ``processed`` entry in the archive (folded, or written by an older processor)."""
    processed_at: datetime | None
    emails_sent: int | None
    """The folded entry's count for the current revision."""
    lease: LeaseView | None
    trigger: TriggerView | None
    state_text: str = ""
    revision: int | None = None
    """The revision the state is about: the archive's current one."""
    sent: int | None = None
    rejected: int | None = None
    recipients: int | None = None
    """Counts of the current revision: from the processing object's result, else from the folded entry."""
    recorded_revisions: list[int] = field(default_factory=list)
    """Revisions whose result the processing object records."""
    progress: ProgressView | None = None
    processing_key: str = ""
    processing_exists: bool = False
    processing_error: str | None = None
    folded: dict[str, Any] | None = None
    """The archive's ``processed`` entry for the current revision, as stored."""
    delivery: DeliveryView | None = None


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
    findings: list[str] = field(default_factory=list)
    """Processing objects that could not be used (invalid, unreadable), each naming its key."""
    recipients: list[RecipientView] | None = None
    """With ``recipients=True``: every address's last delivery event, per customer."""

    @property
    def pending(self) -> list[str]:
        """Customers whose result for the current revision is not recorded anywhere yet."""
        return [c.customer for c in self.customers if c.state not in ("processed", "recorded_not_folded")]

    @property
    def not_folded(self) -> list[str]:
        """Customers whose result is recorded but not in the archive's audit trail yet."""
        return [c.customer for c in self.customers if c.state == "recorded_not_folded"]

    @property
    def complete(self) -> bool:
        return (
            self.exists
            and self.error is None
            and not self.pending
            and not self.not_folded
            and not any(c.trigger for c in self.customers)
            and not self.other_triggers
            and not self.findings
        )

    @property
    def failed(self) -> bool:
        """The archive is missing or invalid: there is nothing to verify against."""
        return self.error is not None

    @property
    def needs_attention(self) -> bool:
        return not self.complete


def _lease_view(lease: Any, at: datetime) -> LeaseView | None:
    """The archive's meeting lease."""
    if lease is None:
        return None
    return LeaseView(lease.owner, lease.revision, lease.expires_at, lease.is_live(at), len(lease.emails_sent))


def _archived_lease_view(lease: ArchivedLease | None, at: datetime) -> LeaseView | None:
    if lease is None:
        return None
    return LeaseView(
        lease.owner, lease.revision, lease.expires_at, lease.is_live(at), lease.emails_checkpointed, origin=lease.origin
    )


def _processing_lease_view(read: ProcessingRead, at: datetime) -> LeaseView | None:
    lease = read.lease
    if lease is None:
        return None
    return LeaseView(
        lease.owner, lease.revision, lease.expires_at, read.lease_live(at), None, "processing", lease.message_id
    )


def _progress_view(read: ProcessingRead) -> ProgressView | None:
    progress = read.progress
    if progress is None:
        return None
    return ProgressView(progress.revision, progress.recipients, progress.done, len(progress.rejected))


def _delivery_view(
    deliveries: DeliveryStore, doc: ArchiveDocument, code: str, recipients: list[RecipientView] | None
) -> DeliveryView:
    """The current revision's delivery counts of ``code``: the delivery object's, else the archive's."""
    revision = str(doc.revision)
    folded = doc.delivery.get(code, {}).get(revision)
    view = DeliveryView(keys.delivery_key(code, doc.change_id), "none", doc.revision)
    try:
        version = deliveries.load_optional(code, doc.change_id)
    except ArchiveInvalid as exc:
        view.error = str(exc)
        version = None
    if version is not None:
        counts = version.document.counts.get(revision)
        view.source = "delivery"
        view.counts = counts.model_dump(exclude={"sequence"}) if counts else None
        view.folded = counts is not None and folded is not None and folded.sequence >= counts.sequence
        if recipients is not None:
            recipients.extend(
                RecipientView(
                    code, address, s.status, s.event_time, s.revision, s.message_id, s.bounce_type, s.bounce_subtype
                )
                for address, s in version.document.last_events().items()
            )
    elif folded is not None:
        view.source, view.counts, view.folded = "archive", folded.model_dump(exclude={"sequence"}), True
    return view


def _customer_progress(
    report: VerifyReport,
    doc: ArchiveDocument,
    code: str,
    read: ProcessingRead,
    deliveries: DeliveryStore,
    trigger: TriggerView | None,
    at: datetime,
) -> CustomerProgress:
    """One customer's row; what cannot be read is added to ``report.findings``."""
    revisions = sorted(
        {
            m.revision
            for m in doc.modifications
            if m.modification_type == PROCESSED and m.customer_code == code and m.revision is not None
        }
    )
    if read.error is not None:
        report.findings.append(read.error)
    state_of = recorded(doc, code, doc.revision, read)
    if state_of.refused is not None:
        report.findings.append(describe_refused(read.key, code, state_of.refused))
    entry = state_of.folded
    # the processing object's lease wins; one an older processor left in the archive is still shown
    lease = _processing_lease_view(read, at) or _archived_lease_view(archive_lease(doc, code), at)
    if state_of.where == FOLDED:
        state = "processed"
    elif state_of.where == NOT_FOLDED:
        state = "recorded_not_folded"
    elif lease is not None and lease.live and lease.revision == doc.revision:
        state = "processing"
    elif trigger is not None:
        state = "pending"
    else:
        state = "not_triggered"
    emails = entry.emails_sent if entry is not None else None
    result = state_of.result
    progress = CustomerProgress(
        code,
        state,
        revisions,
        entry.timestamp if entry else None,
        emails,
        lease,
        trigger,
        state_text=STATES[state],
        revision=doc.revision,
        recorded_revisions=read.recorded_revisions(),
        progress=_progress_view(read),
        processing_key=read.key,
        processing_exists=read.exists,
        processing_error=read.error,
        folded=entry.to_json_dict() if entry is not None else None,
        delivery=_delivery_view(deliveries, doc, code, report.recipients),
    )
    if progress.delivery is not None and progress.delivery.error:
        report.findings.append(progress.delivery.error)
    if result is not None:
        progress.sent, progress.rejected, progress.recipients = result.sent, result.rejected, result.recipients
    elif entry is not None:
        progress.sent, progress.recipients, progress.rejected = entry.emails_sent, entry.recipients, entry.rejected
    return progress


def verify(
    clients: OpsClients,
    bucket: str,
    change_id: str,
    *,
    reference: datetime | None = None,
    recipients: bool = False,
) -> VerifyReport:
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
        version = ArchiveStore(clients.s3, bucket).load_results(change_id)
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
    processing = ProcessingCache(clients.s3, bucket)
    deliveries = DeliveryStore(clients.s3, bucket)
    report.recipients = [] if recipients else None
    for code in doc.customers:
        trigger = triggers.pop(code, None)
        read = processing.get(code, change_id)
        report.customers.append(_customer_progress(report, doc, code, read, deliveries, trigger, at))
    report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
    meeting = meeting_finding(doc, at)
    if meeting is not None:
        report.findings.append(meeting)
    return report


def meeting_finding(doc: ArchiveDocument, at: datetime) -> str | None:
    """What is wrong with the change's meeting, or None when it is in step with the archive.

    The coordinator's own rule (:func:`runtime.notify.meetings.plan`) says what still has to happen:
    anything but nothing means the meeting the current revision asks for (or its cancellation) is not
    done, so the change is not complete, however many emails went out."""
    from runtime.notify import Action, plan

    action = plan(doc)
    if action is Action.NONE:
        return None
    lease = doc.meeting_lease
    busy = (
        f"; the coordinator is at it now (meeting lease of {lease.owner} is live)"
        if lease and lease.is_live(at)
        else ""
    )
    check = (
        f"check the coordinator: its log group {names.COORDINATOR_LOG_GROUP_NAME}, its DLQ "
        f"{names.COORDINATOR_DLQ_NAME} and the MeetingFailure alarm"
    )
    if action is Action.CREATE:
        return (
            f"meeting: asked for by revision {doc.revision} but not scheduled (no meeting_metadata, no "
            f"meeting_scheduled){busy}: {check}"
        )
    if action is Action.SYNC:
        recorded = doc.meeting_metadata.revision if doc.meeting_metadata else None
        return (
            f"meeting: not brought in step with revision {doc.revision} yet (last reconciled with revision "
            f"{recorded or 0}){busy}: {check}"
        )
    return f"meeting: not cancelled yet, as revision {doc.revision} asks{busy}: {check}"
