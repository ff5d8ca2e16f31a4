"""``delivery/{customer_code}/{change_id}.json``: what became of one customer's emails of one change.

Only the delivery-event consumer (:mod:`runtime.coordinator.delivery`) writes it, by compare-and-swap,
from the SES events of the customer's account. Per revision, per recipient (lower-cased address), the
**last status** SES reported: ``sent``, ``delivered``, ``bounced`` (with its type and subtype),
``complained``, ``delayed``, ``unsubscribed``, ``rejected`` or ``rendering_failed``, with the SES event's
own time and message id. ``counts`` per revision are derived from those statuses on every write.

**Ordering.** SES delivers its events at least once and in no particular order. A status replaces the
recorded one only when its event is *newer* by the SES event's own timestamp; for equal timestamps the
status of higher :data:`PRECEDENCE` wins (a complaint says more than the delivery it follows). An
exact duplicate, or an older event, changes nothing: applying the same events in any order, any number
of times, gives the same document.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field

from runtime.archive.documents import CustomerCodeField, DeliveryCounts, _Document, utcnow

DeliveryStatus = Literal[
    "sent", "delivered", "bounced", "complained", "delayed", "unsubscribed", "rejected", "rendering_failed"
]
BounceType = Literal["permanent", "transient", "undetermined"]

PRECEDENCE: dict[str, int] = {
    "complained": 7,
    "unsubscribed": 6,
    "bounced": 5,
    "rejected": 4,
    "rendering_failed": 3,
    "delivered": 2,
    "delayed": 1,
    "sent": 0,
}
"""For two events of one recipient with the same timestamp: the higher one is the recipient's status.
The later stages of an email's life rank above the earlier ones (``sent`` < ``delayed`` < ``delivered``),
and the recipient's own acts (complaint, unsubscribe) above what their mail server said."""


class RecipientStatus(_Document):
    status: DeliveryStatus
    event_time: datetime
    """The SES event's own timestamp (``bounce.timestamp``, ``delivery.timestamp``…, else ``mail.timestamp``)."""
    message_id: str = Field(min_length=1)
    """SES's message id (``mail.messageId``)."""
    revision: int = Field(ge=0)
    bounce_type: BounceType | None = None
    bounce_subtype: str | None = None

    def rank(self) -> tuple[datetime, int]:
        return self.event_time, PRECEDENCE[self.status]


@dataclass(frozen=True, eq=False)
class RecipientEvent:
    """One recipient's share of one SES event (a bounce of three recipients is three of these)."""

    address: str
    status: RecipientStatus

    @property
    def revision(self) -> int:
        return self.status.revision


def count_statuses(statuses: list[RecipientStatus], sequence: int) -> DeliveryCounts:
    tally = Counter(s.status for s in statuses)
    bounce_types = Counter(s.bounce_type for s in statuses if s.status == "bounced")
    return DeliveryCounts(
        sequence=sequence,
        recipients=len(statuses),
        sent=tally["sent"],
        delivered=tally["delivered"],
        bounced=tally["bounced"],
        bounced_permanent=bounce_types["permanent"],
        bounced_transient=bounce_types["transient"],
        complained=tally["complained"],
        delayed=tally["delayed"],
        unsubscribed=tally["unsubscribed"],
        rejected=tally["rejected"],
        rendering_failed=tally["rendering_failed"],
    )


class DeliveryDocument(_Document):
    customer_code: CustomerCodeField
    change_id: str = Field(min_length=1)
    revisions: dict[str, dict[str, RecipientStatus]] = Field(default_factory=dict)
    """Revision (a string: JSON keys are strings) -> lower-cased address -> its last status."""
    counts: dict[str, DeliveryCounts] = Field(default_factory=dict)
    """Revision -> recipients per status, derived from ``revisions`` at every write."""
    sequence: int = Field(0, ge=0)
    """How many writes recorded something: orders the counts of two reads of this object."""
    updated_at: datetime | None = None

    def apply(self, events: list[RecipientEvent]) -> tuple[DeliveryDocument, list[RecipientEvent]]:
        """A copy with the events that are news recorded (see the module docstring), and those events.

        With nothing new, the copy equals this document and the list is empty: no write is needed."""
        revisions = {rev: dict(statuses) for rev, statuses in self.revisions.items()}
        recorded: list[RecipientEvent] = []
        for event in events:
            statuses = revisions.setdefault(str(event.revision), {})
            current = statuses.get(event.address)
            if current is None or event.status.rank() > current.rank():
                statuses[event.address] = event.status
                recorded.append(event)
        if not recorded:
            return self, []
        sequence = self.sequence + 1
        counts = {rev: count_statuses(list(statuses.values()), sequence) for rev, statuses in revisions.items()}
        updated = self.model_copy(
            update={"revisions": revisions, "counts": counts, "sequence": sequence, "updated_at": utcnow()}
        )
        return updated, recorded

    def last_events(self) -> dict[str, RecipientStatus]:
        """Per address, its last status over every revision (the newest event, then the highest revision)."""
        latest: dict[str, RecipientStatus] = {}
        for statuses in self.revisions.values():
            for address, status in statuses.items():
                known = latest.get(address)
                if known is None or (status.rank(), status.revision) > (known.rank(), known.revision):
                    latest[address] = status
        return dict(sorted(latest.items()))
