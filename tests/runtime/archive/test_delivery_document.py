"""The per-recipient delivery status (``delivery/{code}/{id}.json``): ordering, duplicates, counts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from runtime.archive.delivery import DeliveryDocument, RecipientEvent, RecipientStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(address: str, status: str, seconds: float, revision: int = 1, **extra: object) -> RecipientEvent:
    return RecipientEvent(
        address,
        RecipientStatus.model_validate(
            {
                "status": status,
                "event_time": T0 + timedelta(seconds=seconds),
                "message_id": f"msg-{revision}",
                "revision": revision,
                **extra,
            }
        ),
    )


def empty() -> DeliveryDocument:
    return DeliveryDocument.model_validate({"customer_code": "hts", "change_id": "CHG-1"})


def apply_all(events: list[RecipientEvent]) -> DeliveryDocument:
    doc = empty()
    for e in events:
        doc, _ = doc.apply([e])
    return doc


def test_an_older_event_never_overwrites_a_newer_status() -> None:
    doc, recorded = empty().apply([event("a@x.example", "delivered", 10)])
    assert len(recorded) == 1
    later, recorded = doc.apply([event("a@x.example", "sent", 1), event("a@x.example", "delayed", 5)])
    assert recorded == [] and later is doc
    assert doc.revisions["1"]["a@x.example"].status == "delivered"


def test_an_exact_duplicate_is_a_no_op() -> None:
    first = event("a@x.example", "bounced", 3, bounce_type="permanent", bounce_subtype="General")
    doc, _ = empty().apply([first])
    again, recorded = doc.apply([event("a@x.example", "bounced", 3, bounce_type="permanent", bounce_subtype="General")])
    assert recorded == [] and again.sequence == doc.sequence == 1


def test_equal_timestamps_follow_the_precedence() -> None:
    doc = apply_all([event("a@x.example", "complained", 5), event("a@x.example", "delivered", 5)])
    assert doc.revisions["1"]["a@x.example"].status == "complained"
    doc = apply_all([event("b@x.example", "delivered", 5), event("b@x.example", "bounced", 5, bounce_type="transient")])
    assert doc.revisions["1"]["b@x.example"].status == "bounced"


def test_any_order_gives_the_same_statuses_and_counts() -> None:
    events = [
        event("a@x.example", "sent", 0),
        event("a@x.example", "delivered", 2),
        event("a@x.example", "complained", 9),
        event("b@x.example", "sent", 0),
        event("b@x.example", "bounced", 3, bounce_type="permanent", bounce_subtype="NoEmail"),
        event("c@x.example", "sent", 0),
        event("c@x.example", "delayed", 4),
        event("d@x.example", "sent", 0),
        event("d@x.example", "delivered", 1),
        event("d@x.example", "unsubscribed", 20),
        event("e@x.example", "rejected", 0),
        event("f@x.example", "bounced", 6, bounce_type="transient", bounce_subtype="MailboxFull"),
        event("g@x.example", "rendering_failed", 0),
        event("h@x.example", "sent", 0),
    ]
    results = set()
    shuffler = random.Random(13)
    for _ in range(60):
        order = shuffler.sample(events, len(events))
        doc = apply_all([*order, *reversed(order)])  # and every event twice
        statuses = {a: s.status for a, s in doc.revisions["1"].items()}
        counts = doc.counts["1"].model_dump(exclude={"sequence"})
        results.add((tuple(sorted(statuses.items())), tuple(sorted(counts.items()))))
    assert len(results) == 1
    (statuses_items, counts_items) = results.pop()
    assert dict(statuses_items) == {
        "a@x.example": "complained",
        "b@x.example": "bounced",
        "c@x.example": "delayed",
        "d@x.example": "unsubscribed",
        "e@x.example": "rejected",
        "f@x.example": "bounced",
        "g@x.example": "rendering_failed",
        "h@x.example": "sent",
    }
    assert dict(counts_items) == {
        "recipients": 8,
        "sent": 1,
        "delivered": 0,
        "bounced": 2,
        "bounced_permanent": 1,
        "bounced_transient": 1,
        "complained": 1,
        "delayed": 1,
        "unsubscribed": 1,
        "rejected": 1,
        "rendering_failed": 1,
    }


def test_revisions_are_counted_apart_and_the_last_event_spans_them() -> None:
    doc = apply_all(
        [
            event("a@x.example", "delivered", 1, revision=1),
            event("a@x.example", "bounced", 50, revision=2, bounce_type="transient"),
            event("b@x.example", "delivered", 60, revision=1),
        ]
    )
    assert doc.counts["1"].delivered == 2 and doc.counts["2"].bounced_transient == 1
    last = doc.last_events()
    assert list(last) == ["a@x.example", "b@x.example"]
    assert (last["a@x.example"].status, last["a@x.example"].revision) == ("bounced", 2)
    assert doc.sequence == 3
