"""What the archive says must happen to a change's meeting (:func:`plan`), and the ids that make its
creation exactly-once (docs/design.md §5): pure functions of the document, no Graph, no I/O.

:mod:`runtime.notify.meetings` acts on the plan; ``verify`` shows it to the operator.
"""

from __future__ import annotations

import enum
import uuid

from runtime.archive import ArchiveDocument

TRANSACTION_NAMESPACE = uuid.UUID("4217f0d7-c3c5-4af1-a85c-154b1b143a60")
"""Namespace of the uuid5 transaction ids: the same change id always gives the same transaction id."""

TAG_PROPERTY_ID = "String {0cc04442-9010-431e-8b9f-58dc6027500b} Name TtpMeetingTransactionId"
"""The single-value extended property every event we create carries (value: its transaction id)."""


class Action(enum.Enum):
    NONE = "none"
    CREATE = "create"
    SYNC = "sync"
    CANCEL = "cancel"


def transaction_id(change_id: str, generation: int = 0) -> str:
    """The Graph ``transactionId`` of a change's meeting: a uuid5 of the change id.

    ``generation`` counts meetings re-created after a cancellation (a cancelled change submitted
    again), so a new meeting does not collide with the cancelled one's transaction id. A uuid is
    lowercase hex, which also makes the case-insensitive extended-property filter exact.
    """
    key = change_id if generation == 0 else f"{change_id}#{generation}"
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, key))


def plan(doc: ArchiveDocument) -> Action:
    """What the archive says must happen to the meeting; a pure function of the document."""
    meta = doc.meeting_metadata
    if doc.status == "cancelled":
        if meta is not None and not meta.cancelled:
            return Action.CANCEL
        # No live meeting recorded. A lease left behind means a creation (or re-creation) was under way
        # and did not record its outcome (it crashed or failed): an event may exist, so look for it.
        return Action.CANCEL if doc.meeting_lease is not None else Action.NONE
    if doc.meeting is None:
        # A submission states the whole content (docs/design.md §3): a later revision without ``meeting``
        # withdraws the request, so the live event is cancelled; never asked for → nothing to do.
        if meta is not None and not meta.cancelled and (meta.revision or 0) < doc.revision:
            return Action.CANCEL
        return Action.NONE
    if meta is None or meta.cancelled:
        return Action.CREATE
    if (meta.revision or 0) < doc.revision:
        return Action.SYNC
    return Action.NONE
