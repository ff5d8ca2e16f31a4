"""The change's one meeting across all its customers (docs/design.md §5), kept in step with the archive.

The change coordinator (:mod:`runtime.coordinator`) calls :meth:`MeetingCoordinator.reconcile` when the
archive changes; customer processors never talk to Graph, so a meeting problem never holds back an
email. The archive decides what has to happen (:func:`plan`):

* the change asks for a meeting and none is recorded → **create** it;
* a newer revision than the one the meeting was last reconciled with → **sync**: PATCH the event when
  its time, subject, location or attendees changed (``meeting_updated``), else check that it still
  exists; an event deleted in the organizer's calendar (404) is **re-created** as the next generation;
* the change is cancelled and its meeting is not → **cancel** whatever generation is live
  (``meeting_cancelled``), also one whose creation crashed before the archive recorded it;
* a newer revision no longer asks for a meeting (a submission states the whole content) → **cancel**
  the live event; a later revision asking again creates the next generation.

Exactly-once creation rests on three layers, each covering the next one's gap:

1. A **meeting lease** in the archive (``meeting_lease``, claimed by compare-and-swap). Only its holder
   talks to Graph; another coordinator thread or task that finds a live lease held by someone else
   polls the archive briefly for the result and otherwise raises :class:`MeetingBusy` — the message is
   retried later.
2. **Find before create**: every event is tagged with a single-value extended property whose value is
   the change's transaction id. Before a POST, the holder lists the organizer's events filtered on that
   property (the filter form Graph documents for string extended properties). A holder that crashed
   between Graph's answer and the archive write left an event there; the retry adopts it (or, for a
   cancelled change, cancels it).
3. Graph's own ``transactionId`` (derived deterministically from the change id and the generation) on
   the POST: if two POSTs still happen (a lease that expired while its holder was mid-request), Graph
   does not create a second event for the same transaction id. Graph does not document filtering on
   ``transactionId``, which is why layer 2 uses an extended property.

Only the coordinator writes the meeting metadata and the ``meeting_*`` modifications (``user_id``
``coordinator``), by compare-and-swap of the archive.

Attendees are the union, de-duplicated case-insensitively, of every customer's ``aws-calendar``
subscribers, read through each customer's read-only contact role (:mod:`runtime.notify.attendees`);
past Graph's limit of 500 attendees per event they are capped round-robin across customers, and what
was dropped is logged and recorded in the meeting metadata (``attendees_dropped``).

The plan and the transaction ids are in :mod:`runtime.notify.meeting_plan`, the event bodies and the
metadata recorded from Graph's answers in :mod:`runtime.notify.meeting_events`; this module holds the
lease, the calls and the archive writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import boto3

from runtime import aws
from runtime.archive import (
    MEETING_CANCELLED,
    MEETING_SCHEDULED,
    MEETING_UPDATED,
    ArchiveDocument,
    ArchiveLease,
    ArchiveStore,
    MeetingMetadata,
    ModificationEntry,
    VersionedArchive,
    utcnow,
)
from runtime.contract.settings import (
    ConfigurationError,
    CoordinatorSettings,
    MeetingSettings,
    env_var,
)
from runtime.notify.attendees import MAX_ATTENDEES, AttendeeSelection, ContactDirectory, merge_attendees
from runtime.notify.errors import GraphError, MeetingBusy
from runtime.notify.graph import GraphCalendar, GraphClient, MsalTokenProvider, graph_scope
from runtime.notify.meeting_events import (
    Desired,
    as_utc,
    event_attendees,
    event_changes,
    event_metadata,
    event_payload,
    recorded_changes,
    synced_metadata,
)
from runtime.notify.meeting_plan import TAG_PROPERTY_ID, TRANSACTION_NAMESPACE, Action, plan, transaction_id
from runtime.telemetry import logger

__all__ = [
    "COORDINATOR_USER_ID",
    "TAG_PROPERTY_ID",
    "TRANSACTION_NAMESPACE",
    "Action",
    "MeetingCoordinator",
    "build_meeting_coordinator",
    "plan",
    "transaction_id",
]


class _LeaseHeld(Exception):
    def __init__(self, lease: ArchiveLease) -> None:
        super().__init__(f"{lease.owner} holds the meeting lease until {lease.expires_at.isoformat()}")
        self.lease = lease


COORDINATOR_USER_ID = "coordinator"
"""``user_id`` of the ``meeting_*`` modifications: the change coordinator writes them, no customer."""


class MeetingCoordinator:
    """Reconciles a change's meeting with its archive (the change coordinator's meeting half)."""

    def __init__(
        self,
        archive: ArchiveStore,
        calendar: GraphCalendar,
        directory: ContactDirectory,
        *,
        organizer: str,
        lease_seconds: int = 300,
        wait_seconds: float = 15.0,
        poll_seconds: float = 0.5,
        max_attendees: int = MAX_ATTENDEES,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        user_id: str = COORDINATOR_USER_ID,
    ) -> None:
        self.user_id = user_id
        self.archive = archive
        self.calendar = calendar
        self.directory = directory
        self.organizer = organizer
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.max_attendees = max_attendees
        self.clock = clock
        self._sleep = sleep
        self._monotonic = monotonic

    # ---- protocol -----------------------------------------------------------------------------

    def reconcile(self, version: VersionedArchive, owner: str) -> VersionedArchive:
        """Bring the meeting in line with the archive; return the archive version to continue with.

        Raises (and the coordinator retries the message) when Graph or the contact lists fail, or when
        another holder keeps the meeting lease for longer than ``wait_seconds``. ``owner`` identifies
        the caller's attempt (the coordinator passes ``sqs:{message id}``, so a redelivery of the same
        message reclaims its own lease at once).
        """
        change_id = version.document.change_id
        deadline = self._monotonic() + self.wait_seconds
        current = version
        while True:
            action = plan(current.document)
            if action is Action.NONE:
                return current
            try:
                claimed = self._claim(change_id, owner, current)
            except _LeaseHeld as held:
                if self._monotonic() >= deadline:
                    remaining = (held.lease.expires_at - self.clock()).total_seconds()
                    raise MeetingBusy(
                        f"meeting of {change_id}: {held}; retry after it ends", retry_after=max(0.0, remaining) + 1.0
                    ) from None
                self._sleep(self.poll_seconds)
                current = self.archive.load(change_id)
                continue
            action = plan(claimed.document)
            lease = claimed.document.meeting_lease
            if action is Action.NONE or lease is None or lease.owner != owner:
                return claimed  # someone recorded the result between our read and our claim
            try:
                return self._perform(action, claimed, owner)
            except Exception:
                self._expire_lease(change_id, owner)
                raise

    # ---- lease ----------------------------------------------------------------------------------

    def _claim(self, change_id: str, owner: str, current: VersionedArchive) -> VersionedArchive:
        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            if plan(doc) is Action.NONE:
                return None
            now = self.clock()
            lease = doc.meeting_lease
            if lease is not None and lease.owner != owner and lease.is_live(now):
                raise _LeaseHeld(lease)
            doc.meeting_lease = ArchiveLease(
                owner=owner, revision=doc.revision, expires_at=now + timedelta(seconds=self.lease_seconds)
            )
            return doc

        return self.archive.update(change_id, mutate, current=current)

    def _expire_lease(self, change_id: str, owner: str) -> None:
        """After a failure, let others proceed at once, but keep the lease as a trace (see :func:`plan`)."""

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            lease = doc.meeting_lease
            if lease is None or lease.owner != owner:
                return None
            lease.expires_at = self.clock()
            doc.meeting_lease = lease
            return doc

        try:
            self.archive.update(change_id, mutate)
        except Exception as exc:  # it expires on its own
            logger.warning("could not release the meeting lease; it will expire", extra={"error": str(exc)})

    def _record(
        self,
        change_id: str,
        owner: str,
        meta: MeetingMetadata | None,
        modification_type: str | None,
        current: VersionedArchive,
        **details: Any,
    ) -> VersionedArchive:
        """Write the outcome (metadata + modification) and clear our lease, by compare-and-swap."""
        user_id = self.user_id

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None
            lease = doc.meeting_lease
            ours = lease is not None and lease.owner == owner
            recorded = doc.meeting_metadata
            if (
                not ours
                and meta is not None
                and recorded is not None
                and recorded.meeting_id == meta.meeting_id
                and (recorded.revision or 0) >= (meta.revision or 0)
            ):
                # Our lease expired and another holder took over. It adopted the same event (same
                # transaction id) and recorded it already: do not write a duplicate entry.
                return None
            if meta is not None:
                doc.meeting_metadata = meta
            if ours:
                doc.meeting_lease = None
            if modification_type is not None:
                doc.modifications = [
                    *doc.modifications,
                    ModificationEntry(
                        user_id=user_id,
                        modification_type=modification_type,
                        revision=meta.revision if meta is not None else doc.revision,
                        meeting_metadata=meta,
                        **details,
                    ),
                ]
            return doc

        return self.archive.update(change_id, mutate, current=current)

    # ---- actions --------------------------------------------------------------------------------

    def _perform(self, action: Action, version: VersionedArchive, owner: str) -> VersionedArchive:
        if action is Action.CANCEL:
            return self._cancel(version, owner)
        desired = self._desired(version.document)
        if action is Action.CREATE:
            return self._create(version, owner, desired)
        return self._sync(version, owner, desired)

    def _desired(self, doc: ArchiveDocument) -> Desired:
        request = doc.meeting
        assert request is not None
        selection = self.attendees(doc)
        return Desired(
            subject=request.subject or doc.title,
            start=as_utc(request.start_time),
            end=as_utc(request.end_time),
            location=request.location,
            teams=request.teams,
            attendees=selection,
        )

    def attendees(self, doc: ArchiveDocument) -> AttendeeSelection:
        """Every customer's calendar subscribers, merged and capped (the cap is logged)."""
        per_customer = [(code, self.directory.subscribers(code)) for code in doc.customers]
        selection = merge_attendees(per_customer, organizer=self.organizer, limit=self.max_attendees)
        if selection.dropped:
            logger.warning(
                "meeting attendees capped at Graph's limit",
                extra={
                    "change_id": doc.change_id,
                    "limit": self.max_attendees,
                    "total": selection.total,
                    "dropped": selection.dropped,
                },
            )
        return selection

    def _find(self, tx: str) -> dict[str, Any] | None:
        found = self.calendar.find_by_extended_property(TAG_PROPERTY_ID, tx)
        if len(found) > 1:
            logger.error("several events carry one transaction id", extra={"transaction_id": tx, "count": len(found)})
        return found[0] if found else None

    def _create(
        self,
        version: VersionedArchive,
        owner: str,
        desired: Desired,
        *,
        generation: int | None = None,
        replaced: str | None = None,
    ) -> VersionedArchive:
        """Find before create; ``generation`` (and ``replaced``, the gone event's id) for a re-creation."""
        doc = version.document
        previous = doc.meeting_metadata
        if generation is None:
            generation = (previous.generation or 0) + 1 if previous is not None and previous.cancelled else 0
        tx = transaction_id(doc.change_id, generation)
        event = self._find(tx)
        if event is not None:
            # A previous holder created it but never recorded it (crash between Graph and the archive).
            logger.info("adopting the meeting a previous attempt created", extra={"event_id": event.get("id")})
            changes = event_changes(event, desired)
            if changes:
                event = {**event, **self.calendar.update(str(event["id"]), changes)}
        else:
            try:
                event = self.calendar.create(event_payload(doc, desired, tx))
            except GraphError as exc:
                if exc.status != 409:
                    raise
                # Graph refused a duplicate transaction id: the event exists; adopt it.
                event = self._find(tx)
                if event is None:
                    raise
        if desired.teams and not ((event.get("onlineMeeting") or {}).get("joinUrl")):
            event = {**event, **self.calendar.get(str(event["id"]))}  # Teams details can lag the POST answer
        meta = event_metadata(doc, event, desired, tx, generation, self.organizer)
        logger.info("meeting scheduled", extra={"change_id": doc.change_id, "event_id": meta.meeting_id})
        if replaced is not None:
            return self._record(doc.change_id, owner, meta, MEETING_SCHEDULED, version, replaced_meeting_id=replaced)
        return self._record(doc.change_id, owner, meta, MEETING_SCHEDULED, version)

    def _sync(self, version: VersionedArchive, owner: str, desired: Desired) -> VersionedArchive:
        doc = version.document
        meta = doc.meeting_metadata
        assert meta is not None
        changes = recorded_changes(meta, desired)
        join_url = meta.join_url
        try:
            if changes:
                event = self.calendar.update(meta.meeting_id, changes, missing_ok=True)
                join_url = ((event.get("onlineMeeting") or {}).get("joinUrl")) or join_url
            else:
                event = self.calendar.get(meta.meeting_id, missing_ok=True)  # one GET: is it still there?
                if event.get("isCancelled"):
                    raise GraphError(f"event {meta.meeting_id} was cancelled in the calendar", status=404)
        except GraphError as exc:
            if exc.status != 404:
                raise
            # Deleted (or cancelled) in the organizer's calendar: re-create it as the next generation.
            logger.warning(
                "meeting event is gone from the organizer's calendar; re-creating it",
                extra={"change_id": doc.change_id, "event_id": meta.meeting_id},
            )
            return self._create(
                version, owner, desired, generation=(meta.generation or 0) + 1, replaced=meta.meeting_id
            )
        updated = synced_metadata(meta, desired, doc.revision, join_url)
        if not changes:
            # Nothing visible changed: only remember that this revision was checked (no Graph call).
            return self._record(doc.change_id, owner, updated, None, version)
        logger.info("meeting updated", extra={"change_id": doc.change_id, "changed": sorted(changes)})
        return self._record(doc.change_id, owner, updated, MEETING_UPDATED, version, changed=sorted(changes))

    def _cancel(self, version: VersionedArchive, owner: str) -> VersionedArchive:
        """Cancel whatever generation is live: the recorded one, else one a crashed creation left behind."""
        doc = version.document
        meta = doc.meeting_metadata
        comment = (
            f"Change {doc.change_id} ({doc.title}) was cancelled."
            if doc.status == "cancelled"
            else f"Change {doc.change_id} ({doc.title}) no longer asks for a meeting (revision {doc.revision})."
        )
        existed = False
        if meta is not None and not meta.cancelled:
            existed = self.calendar.cancel(meta.meeting_id, comment)
        if not existed:
            # Nothing live is recorded, or the recorded event is gone: a creation (or a re-creation after
            # a deletion) that crashed before recording may have left the next generation's event.
            generation = 0 if meta is None else (meta.generation or 0) + 1
            tx = transaction_id(doc.change_id, generation)
            orphan = self._find(tx)
            if orphan is not None:
                existed = self.calendar.cancel(str(orphan["id"]), comment)
                meta = MeetingMetadata(
                    meeting_id=str(orphan["id"]),
                    ical_uid=orphan.get("iCalUId"),
                    organizer=self.organizer,
                    subject=orphan.get("subject"),
                    attendees=event_attendees(orphan),
                    transaction_id=tx,
                    generation=generation,
                )
            elif meta is None or meta.cancelled:
                return self._record(doc.change_id, owner, None, None, version)  # nothing live; clear the lease
        assert meta is not None
        cancelled = meta.model_copy(update={"cancelled": True, "revision": doc.revision})
        logger.info("meeting cancelled", extra={"change_id": doc.change_id, "event_id": meta.meeting_id})
        return self._record(doc.change_id, owner, cancelled, MEETING_CANCELLED, version, event_existed=existed)


# ---- wiring ------------------------------------------------------------------------------------


def build_meeting_coordinator(
    meeting_settings: MeetingSettings,
    settings: CoordinatorSettings,
    session: boto3.session.Session | None = None,
    *,
    wait_seconds: float = 15.0,
) -> MeetingCoordinator:
    """The meeting half of the change coordinator, from validated settings.

    Only the coordinator builds it: customer processors hold no Graph settings (docs/design.md §5).
    """
    s = meeting_settings
    if not (s.graph_tenant_id and s.graph_client_id and s.graph_client_secret and s.meeting_organizer):
        raise ConfigurationError(
            f"meetings need {env_var('graph_tenant_id')}, {env_var('graph_client_id')}, "
            f"{env_var('graph_client_secret')} and {env_var('meeting_organizer')}"
        )
    session = session or boto3.session.Session()
    tokens = MsalTokenProvider.shared(
        tenant_id=s.graph_tenant_id,
        client_id=s.graph_client_id,
        client_secret=s.graph_client_secret.get_secret_value(),
        authority_host=s.graph_authority_host,
        scope=graph_scope(s.graph_base_url),
    )
    calendar = GraphCalendar(GraphClient(s.graph_base_url, tokens), s.meeting_organizer)
    if not s.calendar_contact_roles:
        logger.warning(f"{env_var('calendar_contact_roles')} is empty: meetings will have no attendees")
    directory = ContactDirectory(
        s.calendar_contact_roles,
        s.contact_reader_external_id.get_secret_value() if s.contact_reader_external_id else None,
        settings.contact_list_name,
        region=settings.ses_region,
        base_session=session,
        external_ids=s.contact_reader_external_ids,
    )
    return MeetingCoordinator(
        ArchiveStore(aws.client("s3", session=session), settings.bucket_name),
        calendar,
        directory,
        organizer=s.meeting_organizer,
        lease_seconds=settings.visibility_timeout_seconds,
        wait_seconds=wait_seconds,
    )
