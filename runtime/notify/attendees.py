"""A change's meeting attendees: every customer's ``aws-calendar`` subscribers, merged and capped.

:class:`ContactDirectory` reads each customer's subscribers through its read-only contact role;
:func:`merge_attendees` takes their union, de-duplicated case-insensitively, capped round-robin across
customers at Graph's limit of 500 attendees per event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from runtime import aws
from runtime.contract.names import CALENDAR_TOPIC
from runtime.contract.settings import env_var
from runtime.notify.errors import EmailConfigurationError, EmailError, MeetingConfigurationError, MeetingError
from runtime.notify.ses import CustomerSes, topic_subscribers
from runtime.telemetry import logger

MAX_ATTENDEES = 500
"""Graph: "The maximum number of attendees included in an event ... is 500" (event resource)."""


@dataclass(frozen=True)
class AttendeeSelection:
    attendees: list[str]
    dropped: list[str] = field(default_factory=list)
    total: int = 0


def merge_attendees(
    per_customer: Iterable[tuple[str, Iterable[str]]],
    *,
    organizer: str | None = None,
    limit: int = MAX_ATTENDEES,
) -> AttendeeSelection:
    """Union of the customers' subscribers, de-duplicated case-insensitively (first spelling wins).

    The organizer is left out (Graph adds the organizer itself). Over ``limit``, attendees are taken
    round-robin across customers so one large customer cannot crowd out the others; the rest are
    returned as ``dropped`` for the caller to report.
    """
    seen: set[str] = set()
    if organizer:
        seen.add(organizer.strip().casefold())
    queues: list[list[str]] = []
    for _code, addresses in per_customer:
        unique: list[str] = []
        for address in addresses:
            cleaned = address.strip()
            key = cleaned.casefold()
            if cleaned and key not in seen:
                seen.add(key)
                unique.append(cleaned)
        queues.append(unique)
    total = sum(len(q) for q in queues)
    ordered: list[str] = []
    index = 0
    while any(index < len(q) for q in queues):
        ordered.extend(q[index] for q in queues if index < len(q))
        index += 1
    return AttendeeSelection(ordered[:limit], ordered[limit:], total)


class ContactDirectory:
    """Each customer's ``aws-calendar`` subscribers, read through its read-only contact role."""

    def __init__(
        self,
        roles: Mapping[str, str],
        external_id: str | None,
        contact_list: str,
        *,
        region: str | None = None,
        base_session: boto3.session.Session | None = None,
        topic: str = CALENDAR_TOPIC,
        ses_factory: Callable[[str], Any] | None = None,
        external_ids: Mapping[str, str] | None = None,
    ) -> None:
        self.roles = dict(roles)
        self.external_id = external_id
        self.external_ids = dict(external_ids or {})
        """Customer code -> the ExternalId of its own contact-reader role (else ``external_id``)."""
        self.contact_list = contact_list
        self.topic = topic
        self._region = region
        self._base_session = base_session
        self._ses_factory = ses_factory
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _ses(self, code: str) -> Any:
        if self._ses_factory is not None:
            return self._ses_factory(code)
        with self._lock:
            if code not in self._clients:
                role = self.roles.get(code)
                if role is None:
                    raise MeetingConfigurationError(
                        f"no contact-reader role for customer {code!r}: add it to {env_var('calendar_contact_roles')}"
                    )
                external_id = self.external_ids.get(code) or self.external_id
                if not external_id:
                    raise MeetingConfigurationError(
                        f"no ExternalId for the contact-reader role of {code!r}: set "
                        f"{env_var('contact_reader_external_ids')} or {env_var('contact_reader_external_id')}"
                    )
                if self._base_session is None:  # one base for every customer: one loader, one STS client
                    self._base_session = aws.session()
                customer = CustomerSes(
                    role, external_id, f"ttp-calendar-{code}", region=self._region, base_session=self._base_session
                )
                self._clients[code] = customer.client("sesv2")
            return self._clients[code]

    def subscribers(self, code: str) -> list[str]:
        ses = self._ses(code)
        try:
            return topic_subscribers(ses, self.contact_list, self.topic)
        except EmailConfigurationError as exc:
            # The customer has no such list or topic: nobody there asked for invites. Not an error.
            logger.warning("no calendar subscribers for customer", extra={"customer": code, "reason": str(exc)})
            return []
        except EmailError as exc:
            raise MeetingError(f"cannot read calendar subscribers of {code}: {exc}") from exc
