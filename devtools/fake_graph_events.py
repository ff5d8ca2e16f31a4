"""What the fake Graph (:mod:`devtools.fake_graph`) knows of calendar events and of Graph's answers,
without state or sockets: the error body, request validation, how a POST or PATCH body changes an event,
an event as Graph shows it, and the documented filter on a string extended property.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import re
import secrets
import uuid
from typing import Any

MAX_ATTENDEES = 500

Response = tuple[int, dict[str, str], dict[str, Any] | None]
"""Status, headers and JSON body (None: no body) of one answer."""

DEFAULT_CODES = {
    400: "ErrorInvalidRequest",
    401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied",
    404: "ErrorItemNotFound",
    409: "ErrorDuplicateTransactionId",
    429: "TooManyRequests",
    500: "generalException",
    502: "badGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}
DEFAULT_MESSAGES = {
    401: "Access token has expired or is not yet valid.",
    403: "Access is denied. Check credentials and try again.",
    404: "The specified object was not found in the store.",
    429: "Please retry again later.",
    503: "The service is temporarily unavailable. Please retry later.",
}

FILTER = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)/id eq '(?P<id>(?:[^']|'')*)'"
    r" and (?P=var)/value eq '(?P<value>(?:[^']|'')*)'\s*\)$",
    re.IGNORECASE,
)
PROPERTY_ID = re.compile(r"^(?P<type>\w+) \{(?P<guid>[0-9a-fA-F-]{36})\} Name (?P<name>.+)$")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def graph_datetime(value: Any) -> dict[str, str] | None:
    """Normalise ``{"dateTime", "timeZone"}`` the way Graph echoes it (seven fractional digits)."""
    if not isinstance(value, dict) or "dateTime" not in value:
        return None
    raw = str(value["dateTime"])
    try:
        parsed = dt.datetime.fromisoformat(raw[:26].rstrip("Z"))
    except ValueError:
        return None
    return {"dateTime": parsed.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": str(value.get("timeZone", "UTC"))}


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str], extra: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """An error in Graph's shape, echoing the client's ``client-request-id`` as Graph does."""
    request_id = str(uuid.uuid4())
    client_request_id = headers.get("client-request-id", "")
    inner = {"date": now().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id}
    if client_request_id:
        inner["client-request-id"] = client_request_id
    out = {"request-id": request_id, **(extra or {})}
    if client_request_id:
        out["client-request-id"] = client_request_id
    return status, out, {"error": {"code": code, "message": message, "innerError": inner}}


def public(event: dict[str, Any]) -> dict[str, Any]:
    """The event as Graph returns it: no internal fields, no extended properties, its etag."""
    shown = {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}
    shown.pop("singleValueExtendedProperties", None)  # only returned with $expand (documented)
    if not shown.get("transactionId"):
        shown.pop("transactionId", None)  # only returned when an app set it (documented)
    shown["@odata.etag"] = f'W/"{event["changeKey"]}"'
    return shown


def refusal(body: dict[str, Any], headers: dict[str, str]) -> Response | None:
    """The 400 a POST or PATCH body earns (attendees, start, end), None when it is valid."""
    attendees = body.get("attendees")
    if attendees is not None:
        if not isinstance(attendees, list):
            return graph_error(400, "ErrorInvalidRequest", "attendees must be a collection.", headers)
        if len(attendees) > MAX_ATTENDEES:
            return graph_error(
                400,
                "ErrorInvalidRequest",
                f"An event can have at most {MAX_ATTENDEES} attendees; this one has {len(attendees)}.",
                headers,
            )
    for name in ("start", "end"):
        if name in body and graph_datetime(body[name]) is None:
            message = f"'{name}' is not a valid dateTimeTimeZone."
            return graph_error(400, "ErrorInvalidRequest", message, headers)
    return None


def apply(event: dict[str, Any], body: dict[str, Any]) -> None:
    """Change ``event`` as a POST or PATCH of ``body`` does (a new change key, a Teams link once online)."""
    for key in ("subject", "body", "location", "isOnlineMeeting", "onlineMeetingProvider", "allowNewTimeProposals"):
        if key in body:
            event[key] = copy.deepcopy(body[key])
    for name in ("start", "end"):
        if name in body:
            event[name] = graph_datetime(body[name])
    if "attendees" in body:
        event["attendees"] = [
            {
                "type": a.get("type", "required"),
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": copy.deepcopy(a.get("emailAddress", {})),
            }
            for a in body["attendees"]
        ]
    if "singleValueExtendedProperties" in body:
        merged = {p["id"]: p for p in event.get("singleValueExtendedProperties", [])}
        given = [p for p in body["singleValueExtendedProperties"] if isinstance(p, dict) and "id" in p]
        merged.update({p["id"]: p for p in given})
        event["singleValueExtendedProperties"] = list(merged.values())
    if event.get("isOnlineMeeting") and not event.get("onlineMeeting"):
        thread = secrets.token_hex(16)
        event["onlineMeeting"] = {
            "joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0",
        }
    event["lastModifiedDateTime"] = iso(now())
    event["changeKey"] = base64.b64encode(secrets.token_bytes(12)).decode()


def new_event(organizer: str, transaction: str | None, sequence: int) -> dict[str, Any]:
    """A new event in ``organizer``'s calendar before its body is applied (``_`` fields are the fake's own)."""
    event_id = "AAMkAD" + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode() + "="
    return {
        "id": event_id,
        "createdDateTime": iso(now()),
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
        "subject": "",
        "isCancelled": False,
        "isOrganizer": True,
        "type": "singleInstance",
        "organizer": {"emailAddress": {"name": organizer.split("@")[0], "address": organizer}},
        "attendees": [],
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "onlineMeeting": None,
        "transactionId": transaction,
        "_cancelled": False,
        "_created_seq": sequence,
    }


def has_property(event: dict[str, Any], prop: re.Match[str], value: str) -> bool:
    """Whether ``event`` carries the extended property ``prop`` (a :data:`PROPERTY_ID` match) with ``value``."""
    for candidate in event.get("singleValueExtendedProperties", []):
        parsed = PROPERTY_ID.match(str(candidate.get("id", "")))
        if (
            parsed is not None
            and parsed.group("type").casefold() == prop.group("type").casefold()
            and parsed.group("guid").casefold() == prop.group("guid").casefold()
            and parsed.group("name") == prop.group("name")  # the Name part is case-sensitive (documented)
            and str(candidate.get("value", "")).casefold() == value.casefold()  # the value is not
        ):
            return True
    return False
