"""The Graph calendar event of a change's meeting: what the archive asks for (:class:`Desired`), the
event body to create, the PATCH that brings an event or the recorded metadata in line, and the metadata
recorded from Graph's answer. Pure functions: :mod:`runtime.notify.meetings` makes the calls.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runtime.archive import ArchiveDocument, MeetingMetadata
from runtime.notify.attendees import AttendeeSelection
from runtime.notify.meeting_plan import TAG_PROPERTY_ID


@dataclass(frozen=True)
class Desired:
    """The meeting as the archive's current revision asks for it, attendees merged and capped."""

    subject: str
    start: datetime
    end: datetime
    location: str | None
    teams: bool
    attendees: AttendeeSelection


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def parse_graph_time(value: Any) -> datetime | None:
    """Graph's ``{"dateTime": "2026-05-01T10:00:00.0000000", "timeZone": "UTC"}`` (UTC without Prefer)."""
    if not isinstance(value, dict) or str(value.get("timeZone", "")).upper() not in {"UTC", "ETC/UTC"}:
        return None
    try:
        return datetime.strptime(str(value.get("dateTime", ""))[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def event_attendees(event: Mapping[str, Any]) -> list[str]:
    """The addresses of an event's attendees, as Graph returned them."""
    found = []
    for attendee in event.get("attendees") or []:
        address = ((attendee or {}).get("emailAddress") or {}).get("address")
        if address:
            found.append(str(address))
    return found


def _same_addresses(a: Sequence[str], b: Sequence[str]) -> bool:
    return {x.casefold() for x in a} == {x.casefold() for x in b}


def _graph_attendees(desired: Desired) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}, "type": "required"} for a in desired.attendees.attendees]


def _times(desired: Desired) -> dict[str, Any]:
    return {"start": graph_time(desired.start), "end": graph_time(desired.end)}


_TEAMS = {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}


def event_payload(doc: ArchiveDocument, desired: Desired, tx: str) -> dict[str, Any]:
    """The POST body of a new event, tagged with its transaction id both ways (docs/design.md §5)."""
    esc = html.escape
    rows = [("Change", doc.change_id), ("Title", doc.title), ("Revision", str(doc.revision))]
    if doc.implementation_start:
        end = f" to {doc.implementation_end.isoformat()}" if doc.implementation_end else ""
        rows.append(("Implementation window", f"{doc.implementation_start.isoformat()}{end}"))
    table = "".join(f'<tr><th align="left">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    summary = f"<p>{esc(doc.summary)}</p>" if doc.summary else ""
    payload: dict[str, Any] = {
        "subject": desired.subject,
        "body": {"contentType": "HTML", "content": f"<table>{table}</table>{summary}"},
        **_times(desired),
        "attendees": _graph_attendees(desired),
        "allowNewTimeProposals": False,
        "transactionId": tx,
        "singleValueExtendedProperties": [{"id": TAG_PROPERTY_ID, "value": tx}],
    }
    if desired.location:
        payload["location"] = {"displayName": desired.location}
    if desired.teams:
        payload |= _TEAMS
    return payload


def event_metadata(
    doc: ArchiveDocument, event: Mapping[str, Any], desired: Desired, tx: str, generation: int, organizer: str
) -> MeetingMetadata:
    """What the archive records of an event Graph created or we adopted (``organizer`` when Graph omits it)."""
    join_url = ((event.get("onlineMeeting") or {}).get("joinUrl")) or event.get("onlineMeetingUrl")
    organizer = ((event.get("organizer") or {}).get("emailAddress") or {}).get("address") or organizer
    return MeetingMetadata(
        meeting_id=str(event["id"]),
        join_url=join_url,
        ical_uid=event.get("iCalUId"),
        organizer=organizer,
        subject=desired.subject,
        start_time=desired.start,
        end_time=desired.end,
        attendees=desired.attendees.attendees,
        revision=doc.revision,
        cancelled=False,
        transaction_id=tx,
        generation=generation,
        location=desired.location,
        teams=desired.teams,
        attendees_total=desired.attendees.total,
        attendees_dropped=desired.attendees.dropped,
    )


def event_changes(event: Mapping[str, Any], desired: Desired) -> dict[str, Any]:
    """The PATCH body that makes an existing event (as Graph returned it) match ``desired``."""
    changes: dict[str, Any] = {}
    if event.get("subject") != desired.subject:
        changes["subject"] = desired.subject
    if parse_graph_time(event.get("start")) != desired.start or parse_graph_time(event.get("end")) != desired.end:
        changes |= _times(desired)
    if not _same_addresses(event_attendees(event), desired.attendees.attendees):
        changes["attendees"] = _graph_attendees(desired)
    return changes


def recorded_changes(meta: MeetingMetadata, desired: Desired) -> dict[str, Any]:
    """The PATCH body that makes the recorded event match ``desired`` (the archive's record, no GET)."""
    changes: dict[str, Any] = {}
    if meta.subject != desired.subject:
        changes["subject"] = desired.subject
    if (
        meta.start_time is None
        or meta.end_time is None
        or ((as_utc(meta.start_time), as_utc(meta.end_time)) != (desired.start, desired.end))
    ):
        changes |= _times(desired)
    if meta.location != desired.location and desired.location is not None:
        changes["location"] = {"displayName": desired.location}
    if desired.teams and not meta.teams:
        changes |= _TEAMS
    if not _same_addresses(meta.attendees, desired.attendees.attendees):
        # Sent alone, an attendees change notifies only the attendees that changed (Graph docs).
        changes["attendees"] = _graph_attendees(desired)
    return changes


def synced_metadata(meta: MeetingMetadata, desired: Desired, revision: int, join_url: str | None) -> MeetingMetadata:
    """The recorded metadata after a sync to ``revision``; fields never set stay unset (and unwritten)."""
    return MeetingMetadata.model_validate(
        {
            **meta.model_dump(exclude_unset=True),
            "subject": desired.subject,
            "start_time": desired.start,
            "end_time": desired.end,
            "attendees": desired.attendees.attendees,
            "revision": revision,
            "join_url": join_url,
            "location": desired.location,
            "teams": desired.teams or bool(meta.teams),
            "attendees_total": desired.attendees.total,
            "attendees_dropped": desired.attendees.dropped,
        }
    )
