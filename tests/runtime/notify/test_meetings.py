"""The change's one meeting (docs/design.md §5) against moto (archive, contact lists) and the local fake Graph.

The change coordinator reconciles it on archive events (:class:`CoordinatorHandler`); processors never
call Graph. ``process`` below is the coordinator handling one ``archive/{id}.json`` event.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools import hand_layout
from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS
from devtools.fake_graph import FakeGraph
from runtime.archive.documents import ArchiveDocument, ProcessingLease, utcnow
from runtime.archive.store import ArchiveStore
from runtime.contract import keys
from runtime.contract.names import CALENDAR_TOPIC
from runtime.contract.settings import ConfigurationError, CoordinatorSettings, MeetingSettings, load
from runtime.notify import meetings as meetings_module
from runtime.notify.attendees import MAX_ATTENDEES, ContactDirectory, merge_attendees
from runtime.notify.graph import GraphCalendar, GraphClient, MsalTokenProvider, TimeoutSession, graph_scope
from runtime.notify.meetings import MeetingCoordinator, transaction_id
from runtime.pipeline import Outcome, Result
from tests.runtime.coordinator.conftest import make_handler, s3_event
from tests.support.aws_platform import Faulty, Platform

MEETING = {
    "start_time": "2026-12-01T10:00:00Z",
    "end_time": "2026-12-01T11:00:00Z",
    "subject": "CHG maintenance bridge",
    "teams": True,
    "location": "Bridge 1",
}
ALL = ["hts", "htsnonprod", "customer-a"]
# sample_customers(): hts "Lead@HTS.example.com" and customer-a "lead@hts.example.com" opted in (one person),
# htsnonprod "dev@htsnonprod.example.com"; everyone else keeps the topic's default OPT_OUT.
CALENDAR_PEOPLE = {"lead@hts.example.com", "dev@htsnonprod.example.com"}
EXTERNAL_ID = "ttp-contact-reader-external-id"


class Crash(BaseException):
    """A process dying: not an Exception, so no handler in the runtime runs."""


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def shared_platform() -> Iterator[Platform]:
    """One emulated account set for the module (building it costs over a second); tests use their own change ids.
    Not the deployed assembly: a third customer (``customer-a``, sharing a subscriber with ``hts``) that
    ``cdk.json`` does not have, and in-process Graph calls; the deployed meeting path is test_graph_worker.py."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield Platform(hand_layout.create_sandbox(sb.sample_customers(), notifications=False))


@pytest.fixture
def platform(shared_platform: Platform) -> Platform:
    return shared_platform


_CHANGE_IDS = itertools.count(1)


@pytest.fixture
def change_id() -> str:
    return f"CHG-{next(_CHANGE_IDS)}"


@pytest.fixture(scope="module")
def graph_server() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
def fake(graph_server: FakeGraph) -> FakeGraph:
    graph_server.reset()
    return graph_server


class Meetings:
    """Builds meeting coordinators and coordinator handlers wired to the fake Graph; one token provider."""

    def __init__(self, platform: Platform, fake: FakeGraph, clients: dict[str, Any]) -> None:
        self.platform = platform
        self.fake = fake
        self.sleeps: list[float] = []
        self.tokens = MsalTokenProvider(
            tenant_id=fake.tenant_id,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            authority_host=fake.authority_host,
            scope=graph_scope(fake.graph_base_url),
            http_client=TimeoutSession(ca_bundle=fake.ca_path),
        )
        self.roles = {code: c.spec.contact_role_arn for code, c in platform.box.customers.items()}
        # Shared across the module like in a worker process: creating boto3 clients dominates these tests.
        if "directory" not in clients:
            clients["directory"] = self.contact_directory(self.roles)
        self.directory: ContactDirectory = clients["directory"]
        self._ses: dict[str, Any] = clients.setdefault("ses", {})

    def contact_directory(self, roles: dict[str, str]) -> ContactDirectory:
        return ContactDirectory(roles, EXTERNAL_ID, sb.DEFAULT_CONTACT_LIST_NAME, region=self.platform.box.region)

    def coordinator(
        self,
        *,
        s3: Any = None,
        clock: Callable[[], datetime] = utcnow,
        wait_seconds: float = 10.0,
        roles: dict[str, str] | None = None,
        max_attendees: int = MAX_ATTENDEES,
    ) -> MeetingCoordinator:
        client = GraphClient(
            self.fake.graph_base_url,
            self.tokens,
            session_factory=lambda: TimeoutSession(ca_bundle=self.fake.ca_path),
            sleep=self.sleeps.append,
        )
        return MeetingCoordinator(
            ArchiveStore(s3 or self.platform.s3, self.platform.bucket, sleep=lambda _s: None),
            GraphCalendar(client, self.fake.organizer),
            self.directory if roles is None else self.contact_directory(roles),
            organizer=self.fake.organizer,
            lease_seconds=60,
            wait_seconds=wait_seconds,
            poll_seconds=0.02,
            max_attendees=max_attendees,
            clock=clock,
        )

    def handle(self, change_id: str, owner: str, *, s3: Any = None, **kwargs: Any) -> Result:
        """The coordinator handling one archive event of ``change_id``."""
        handler = make_handler(self.platform, s3=s3, meetings=self.coordinator(s3=s3, **kwargs))
        [result] = handler(s3_event(self.platform.bucket, keys.archive_key(change_id)), owner, None)
        return result


@pytest.fixture(scope="module")
def shared_clients() -> dict[str, Any]:
    return {}


@pytest.fixture
def meetings(platform: Platform, fake: FakeGraph, shared_clients: dict[str, Any]) -> Meetings:
    return Meetings(platform, fake, shared_clients)


def submit(platform: Platform, change_id: str, customers: list[str] | None = None, **fields: Any) -> None:
    fields.setdefault("meeting", MEETING)
    platform.submit(change_id, customers=customers or ["hts", "htsnonprod"], **fields)


def events_of(fake: FakeGraph, change_id: str) -> list[dict[str, Any]]:
    return [e for e in fake.events() if e.get("transactionId") == transaction_id(change_id)]


def attendees(event: dict[str, Any]) -> set[str]:
    return {a["emailAddress"]["address"].lower() for a in event["attendees"]}


def meeting_entries(platform: Platform, kind: str, change_id: str) -> list[dict[str, Any]]:
    return [m for m in platform.archive(change_id)["modifications"] if m["modification_type"] == kind]


DONE = {Outcome.PROCESSED, Outcome.ALREADY_RECORDED}


def process(meetings: Meetings, code: str, change_id: str, owner: str, **kwargs: Any) -> Result:
    """The coordinator handles one archive event (``code`` names the event's origin in the tests only)."""
    return meetings.handle(change_id, owner, **kwargs)


def process_all(meetings: Meetings, codes: list[str], change_id: str, tag: str) -> None:
    """One archive event per customer (e.g. each fold of a result): the first reconciles, the rest find it done."""
    for code in codes:
        result = process(meetings, code, change_id, f"sqs:{code}-{tag}")
        assert result.outcome in DONE, result


# ---- creation ------------------------------------------------------------------------------------


def test_first_archive_event_schedules_one_teams_meeting_for_the_union_of_subscribers(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id, customers=ALL)
    assert process(meetings, "hts", change_id, "sqs:m1").outcome is Outcome.PROCESSED

    [event] = fake.events()
    assert attendees(event) == CALENDAR_PEOPLE  # union, Lead@HTS / lead@hts counted once
    assert event["transactionId"] == transaction_id(change_id)
    assert event["isOnlineMeeting"] is True and event["onlineMeetingProvider"] == "teamsForBusiness"
    assert event["location"] == {"displayName": "Bridge 1"} and event["subject"] == "CHG maintenance bridge"
    assert event["start"] == {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"}

    archive = platform.archive(change_id)
    meta = archive["meeting_metadata"]
    assert meta["meeting_id"] == event["id"] and meta["ical_uid"] == event["iCalUId"]
    assert meta["join_url"] == event["onlineMeeting"]["joinUrl"]
    assert meta["organizer"] == fake.organizer and meta["revision"] == 1 and meta["cancelled"] is False
    assert {a.lower() for a in meta["attendees"]} == CALENDAR_PEOPLE and meta["attendees_dropped"] == []
    assert "meeting_lease" not in archive
    [scheduled] = meeting_entries(platform, "meeting_scheduled", change_id)
    assert scheduled["user_id"] == "coordinator" and "customer_code" not in scheduled
    assert scheduled["meeting_metadata"]["meeting_id"] == event["id"]

    process_all(meetings, ["htsnonprod", "customer-a"], change_id, "r1")
    assert fake.create_requests == 1 and fake.list_requests == 1  # later events only read the archive
    assert len(meeting_entries(platform, "meeting_scheduled", change_id)) == 1
    assert fake.token_requests == 1


def test_change_without_meeting_never_calls_graph(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    platform.submit(change_id, customers=["hts"])
    process_all(meetings, ["hts"], change_id, "r1")
    assert fake.requests == [] and "meeting_metadata" not in platform.archive(change_id)


def test_racing_coordinator_threads_create_exactly_one_event(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    """Two archive events of one change handled at once (two coordinator threads or tasks)."""
    rounds = 10
    for i in range(rounds):
        change = f"{change_id}-R{i}"
        submit(platform, change)
        barrier = threading.Barrier(2)
        results: dict[str, Any] = {}

        def run(
            owner: str, change: str = change, barrier: threading.Barrier = barrier, results: dict[str, Any] = results
        ) -> None:
            barrier.wait(5)
            results[owner] = meetings.handle(change, owner, wait_seconds=10)

        threads = [threading.Thread(target=run, args=(owner,)) for owner in ("sqs:a", "sqs:b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert {r.outcome for r in results.values()} <= DONE, results
        assert len(events_of(fake, change)) == 1
        assert fake.create_requests == i + 1  # only the lease holder ever POSTed
        assert fake.list_requests == i + 1  # ... and only it searched
        assert len(meeting_entries(platform, "meeting_scheduled", change)) == 1
    assert fake.events_created == rounds


def hold_meeting_lease(platform: Platform, change_id: str, owner: str, seconds: float) -> None:
    def hold(doc: ArchiveDocument | None) -> ArchiveDocument | None:
        assert doc is not None
        doc.meeting_lease = ProcessingLease(
            owner=owner, revision=doc.revision, expires_at=utcnow() + timedelta(seconds=seconds)
        )
        return doc

    ArchiveStore(platform.s3, platform.bucket).update(change_id, hold)


def test_live_meeting_lease_of_another_owner_leaves_the_message_for_retry(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    hold_meeting_lease(platform, change_id, "sqs:other", 300)
    result = process(meetings, "hts", change_id, "sqs:m1", wait_seconds=0.1)
    assert result.outcome is Outcome.RETRY and "busy" in result.reason
    # comes back when the holder's lease ends, not after the short backoff that would spend its receives
    assert result.retry_after is not None and 290 <= result.retry_after <= 302
    assert [r for r in fake.requests if r[1].startswith("/v1.0/")] == []
    assert platform.archive(change_id)["meeting_lease"]["owner"] == "sqs:other"


def test_waiting_handler_continues_once_the_holder_records_the_meeting(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    gate, release = threading.Event(), threading.Event()
    s3 = Faulty(platform.s3)
    s3.fail("put_object", lambda **_: None)  # the claim goes through

    def pause(**_: Any) -> None:  # the record of the result waits for our signal
        gate.set()
        release.wait(10)

    s3.fail("put_object", pause)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(r=meetings.handle(change_id, "sqs:holder", s3=s3)))
    thread.start()
    assert gate.wait(10)  # the holder created the event and is about to record it
    threading.Timer(0.2, release.set).start()
    waiter = process(meetings, "htsnonprod", change_id, "sqs:waiter", wait_seconds=10)
    thread.join(10)
    assert outcome["r"].outcome is Outcome.PROCESSED and waiter.outcome in DONE
    assert fake.create_requests == 1 and len(fake.events()) == 1


# ---- crash recovery ------------------------------------------------------------------------------


def crash_after_graph(meetings: Meetings, code: str, change_id: str, owner: str, **kwargs: Any) -> None:
    """Reconcile until Graph created the event, then die before the archive records it."""
    s3 = Faulty(meetings.platform.s3)
    s3.fail("put_object", lambda **_: None)  # meeting lease claim
    s3.fail("put_object", Crash())  # the write of meeting_metadata
    with pytest.raises(Crash):
        meetings.handle(change_id, owner, s3=s3, **kwargs)
    assert meetings.fake.events_created == 1
    assert "meeting_metadata" not in meetings.platform.archive(change_id)


def test_redelivered_message_after_a_crash_adopts_the_event_instead_of_creating_another(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    crash_after_graph(meetings, "hts", change_id, "sqs:m1")
    assert platform.archive(change_id)["meeting_lease"]["owner"] == "sqs:m1"  # the crash left its lease

    assert process(meetings, "hts", change_id, "sqs:m1").outcome is Outcome.PROCESSED  # the same message again
    [event] = fake.events()
    assert fake.create_requests == 1  # found by its extended property, never POSTed again
    assert platform.archive(change_id)["meeting_metadata"]["meeting_id"] == event["id"]
    assert len(meeting_entries(platform, "meeting_scheduled", change_id)) == 1


def test_other_message_waits_out_a_crashed_holders_lease_then_adopts(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    clock = Clock()
    crash_after_graph(meetings, "hts", change_id, "sqs:m1", clock=clock)

    first = process(meetings, "htsnonprod", change_id, "sqs:m2", clock=clock, wait_seconds=0.05)
    assert first.outcome is Outcome.RETRY
    assert fake.list_requests == 1  # only the crashed holder's search so far

    clock.advance(61)  # the crashed holder's lease (60 s) expires
    assert process(meetings, "htsnonprod", change_id, "sqs:m2", clock=clock).outcome is Outcome.PROCESSED
    assert fake.create_requests == 1 and fake.events_created == 1
    assert platform.archive(change_id)["meeting_metadata"]["meeting_id"] == fake.events()[0]["id"]


def test_graph_conflict_on_a_duplicate_transaction_adopts_the_existing_event(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Had Graph answered a duplicate transactionId with 409 instead of the event, we would still end with one."""
    submit(platform, change_id)
    monkeypatch.setattr(fake, "duplicate_transaction", "conflict")
    coordinator = meetings.coordinator()
    tx = transaction_id(change_id)
    existing = coordinator.calendar.create(
        {
            "subject": "created by a lease holder whose lease expired",
            "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
            "transactionId": tx,
            "singleValueExtendedProperties": [{"id": meetings_module.TAG_PROPERTY_ID, "value": tx}],
        }
    )
    original_find = coordinator._find
    searches: list[str] = []

    def search_misses_once(tx: str) -> Any:  # the other POST landed between our search and our POST
        searches.append(tx)
        return None if len(searches) == 1 else original_find(tx)

    monkeypatch.setattr(coordinator, "_find", search_misses_once)
    [result] = make_handler(platform, meetings=coordinator)(
        s3_event(platform.bucket, keys.archive_key(change_id)), "sqs:m1", None
    )
    assert result.outcome is Outcome.PROCESSED
    assert fake.events_created == 1 and fake.create_requests == 2
    assert platform.archive(change_id)["meeting_metadata"]["meeting_id"] == existing["id"]


# ---- updates and cancellation --------------------------------------------------------------------


def test_new_revision_with_a_new_time_updates_the_meeting_once(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    process_all(meetings, ["hts", "htsnonprod"], change_id, "r1")
    moved = {**MEETING, "start_time": "2026-12-02T09:00:00Z", "end_time": "2026-12-02T10:30:00Z"}
    submit(platform, change_id, meeting=moved)
    process_all(meetings, ["hts", "htsnonprod"], change_id, "r2")

    [event] = fake.events()
    assert event["start"]["dateTime"] == "2026-12-02T09:00:00.0000000"
    assert event["end"]["dateTime"] == "2026-12-02T10:30:00.0000000"
    assert fake.patch_requests == 1 and fake.create_requests == 1
    [updated] = meeting_entries(platform, "meeting_updated", change_id)
    assert updated["changed"] == ["end", "start"] and updated["revision"] == 2
    meta = platform.archive(change_id)["meeting_metadata"]
    assert meta["revision"] == 2 and meta["start_time"].startswith("2026-12-02T09:00:00")
    assert meta["join_url"] == event["onlineMeeting"]["joinUrl"] and meta["meeting_id"] == event["id"]


def test_new_revision_without_a_meeting_change_does_not_touch_graph(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    process_all(meetings, ["hts", "htsnonprod"], change_id, "r1")
    submit(platform, change_id, summary="Only the summary changed")
    process_all(meetings, ["hts", "htsnonprod"], change_id, "r2")
    assert fake.patch_requests == 0 and fake.create_requests == 1
    assert meeting_entries(platform, "meeting_updated", change_id) == []
    assert platform.archive(change_id)["meeting_metadata"]["revision"] == 2


def test_new_calendar_subscriber_is_added_by_an_attendees_only_update(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    process_all(meetings, ["hts"], change_id, "r1")
    ses = platform.ses("htsnonprod")
    ses.create_contact(
        ContactListName=sb.DEFAULT_CONTACT_LIST_NAME,
        EmailAddress="oncall@htsnonprod.example.com",
        TopicPreferences=[{"TopicName": CALENDAR_TOPIC, "SubscriptionStatus": "OPT_IN"}],
    )
    try:
        submit(platform, change_id)
        process_all(meetings, ["hts"], change_id, "r2")
    finally:
        ses.delete_contact(ContactListName=sb.DEFAULT_CONTACT_LIST_NAME, EmailAddress="oncall@htsnonprod.example.com")
    [event] = fake.events()
    assert attendees(event) == CALENDAR_PEOPLE | {"oncall@htsnonprod.example.com"}
    [updated] = meeting_entries(platform, "meeting_updated", change_id)
    assert updated["changed"] == ["attendees"]  # sent alone, Graph notifies only the attendees that changed


def test_cancelled_change_cancels_the_meeting_once(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    process_all(meetings, ["hts", "htsnonprod"], change_id, "r1")
    submit(platform, change_id, status="cancelled")
    process_all(meetings, ["hts", "htsnonprod"], change_id, "r2")

    [event] = fake.events()
    assert event["_cancelled"] is True and fake.cancel_requests == 1
    meta = platform.archive(change_id)["meeting_metadata"]
    assert meta["cancelled"] is True and meta["revision"] == 2 and meta["meeting_id"] == event["id"]
    [cancelled] = meeting_entries(platform, "meeting_cancelled", change_id)
    assert cancelled["user_id"] == "coordinator" and cancelled["event_existed"] is True


def test_resubmitting_a_cancelled_change_schedules_a_new_meeting(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    process_all(meetings, ["hts"], change_id, "r1")
    submit(platform, change_id, status="cancelled")
    process_all(meetings, ["hts"], change_id, "r2")
    submit(platform, change_id, status="approved")
    process_all(meetings, ["hts"], change_id, "r3")
    old, new = fake.events()
    assert old["_cancelled"] and not new["_cancelled"]
    assert new["transactionId"] == transaction_id(change_id, 1) != old["transactionId"]
    meta = platform.archive(change_id)["meeting_metadata"]
    assert meta["meeting_id"] == new["id"] and meta["generation"] == 1 and meta["cancelled"] is False


def test_cancellation_after_a_crashed_creation_finds_and_cancels_the_orphan(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    clock = Clock()
    crash_after_graph(meetings, "hts", change_id, "sqs:m1", clock=clock)
    submit(platform, change_id, status="cancelled")
    clock.advance(61)
    assert process(meetings, "htsnonprod", change_id, "sqs:m2", clock=clock).outcome is Outcome.PROCESSED
    [event] = fake.events()
    assert event["_cancelled"] is True and fake.create_requests == 1
    archive = platform.archive(change_id)
    assert archive["meeting_metadata"]["cancelled"] is True and "meeting_lease" not in archive


def test_cancelled_change_that_never_had_a_meeting_does_not_call_graph(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id, status="cancelled")
    process_all(meetings, ["hts"], change_id, "r1")
    assert fake.requests == []


# ---- Graph failures ------------------------------------------------------------------------------


def test_graph_429_on_create_is_waited_out(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    fake.fail_next(429, retry_after=2, times=2, method="POST")
    process_all(meetings, ["hts"], change_id, "r1")
    assert meetings.sleeps == [2.0, 2.0]
    assert fake.events_created == 1 and "meeting_metadata" in platform.archive(change_id)


def test_graph_4xx_keeps_the_lease_trace_and_the_retry_succeeds(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    fake.fail_next(403, code="ErrorAccessDenied", message="Access is denied.", method="POST")
    first = process(meetings, "hts", change_id, "sqs:m1")
    assert first.outcome is Outcome.RETRY and "ErrorAccessDenied" in first.reason
    archive = platform.archive(change_id)
    assert "meeting_metadata" not in archive and archive["meeting_lease"]["owner"] == "sqs:m1"
    # the failed holder expired its lease, so another message need not wait for it
    process_all(meetings, ["htsnonprod"], change_id, "r1")
    assert process(meetings, "hts", change_id, "sqs:m1").outcome in DONE
    assert fake.events_created == 1


# ---- attendees -----------------------------------------------------------------------------------


def test_merge_attendees_dedupes_case_insensitively_and_caps_round_robin() -> None:
    big = [f"user{i}@a.example.com" for i in range(400)]
    selection = merge_attendees(
        [
            ("a", [*big, "USER1@A.example.com"]),
            ("b", [f"user{i}@b.example.com" for i in range(150)] + ["User0@A.EXAMPLE.com", "organizer@x.example"]),
            ("c", ["only@c.example.com", " Only@C.example.com "]),
        ],
        organizer="Organizer@X.example",
    )
    assert selection.total == 551 and len(selection.attendees) == MAX_ATTENDEES == 500
    assert len(selection.dropped) == 51 and set(selection.dropped) <= set(big)
    assert "only@c.example.com" in selection.attendees  # the small customer is not crowded out
    assert sum(a.endswith("@b.example.com") for a in selection.attendees) == 150
    assert len({a.casefold() for a in selection.attendees + selection.dropped}) == 551
    assert "organizer@x.example" not in {a.casefold() for a in selection.attendees}


def test_attendees_past_the_cap_are_dropped_logged_and_recorded(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[dict[str, Any]] = []
    monkeypatch.setattr(meetings_module.logger, "warning", lambda msg, extra=None, **_: warnings.append(extra or {}))
    submit(platform, change_id)
    assert process(meetings, "hts", change_id, "sqs:m1", max_attendees=1).outcome is Outcome.PROCESSED
    meta = platform.archive(change_id)["meeting_metadata"]
    assert meta["attendees"] == ["Lead@HTS.example.com"] and meta["attendees_dropped"] == ["dev@htsnonprod.example.com"]
    assert meta["attendees_total"] == 2
    assert len(fake.events()[0]["attendees"]) == 1
    [warning] = [w for w in warnings if "dropped" in w]
    assert warning["dropped"] == ["dev@htsnonprod.example.com"] and warning["limit"] == 1


def test_customer_without_a_contact_reader_role_is_a_clear_error(
    platform: Platform, fake: FakeGraph, meetings: Meetings, change_id: str
) -> None:
    submit(platform, change_id)
    result = process(meetings, "hts", change_id, "sqs:m1", roles={"hts": meetings.roles["hts"]})
    assert result.outcome is Outcome.RETRY
    assert "htsnonprod" in result.reason and "TTP_CALENDAR_CONTACT_ROLES" in result.reason
    assert fake.create_requests == 0


# ---- settings and wiring -------------------------------------------------------------------------


GRAPH_VARS = [
    "TTP_GRAPH_TENANT_ID",
    "TTP_GRAPH_CLIENT_ID",
    "TTP_GRAPH_CLIENT_SECRET",
    "TTP_MEETING_ORGANIZER",
    "TTP_GRAPH_BASE_URL",
    "TTP_GRAPH_AUTHORITY_HOST",
    "TTP_CALENDAR_CONTACT_ROLES",
    "TTP_CONTACT_READER_EXTERNAL_ID",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in GRAPH_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_tenant_without_the_other_graph_settings_names_every_missing_variable(clean_env: pytest.MonkeyPatch) -> None:
    assert load(MeetingSettings).enabled is False
    clean_env.setenv("TTP_GRAPH_TENANT_ID", "tenant")
    clean_env.setenv("TTP_GRAPH_CLIENT_ID", "client")
    with pytest.raises(ConfigurationError) as raised:
        load(MeetingSettings)
    message = str(raised.value)
    assert "TTP_GRAPH_CLIENT_SECRET" in message and "TTP_MEETING_ORGANIZER" in message
    assert "TTP_GRAPH_CLIENT_ID," not in message  # it is set


def test_contact_roles_need_role_arns_and_the_external_id(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TTP_CALENDAR_CONTACT_ROLES", '{"hts": "arn:aws:iam::333333333333:role/ttp-contact-reader-hts"}')
    with pytest.raises(ConfigurationError, match="TTP_CONTACT_READER_EXTERNAL_ID"):
        load(MeetingSettings)
    clean_env.setenv("TTP_CONTACT_READER_EXTERNAL_ID", EXTERNAL_ID)
    assert load(MeetingSettings).calendar_contact_roles["hts"].endswith("ttp-contact-reader-hts")
    clean_env.setenv("TTP_CALENDAR_CONTACT_ROLES", '{"hts": "not-an-arn"}')
    with pytest.raises(ConfigurationError, match=r"TTP_CALENDAR_CONTACT_ROLES: the value of hts"):
        load(MeetingSettings)


def test_coordinator_wiring_builds_the_meetings_from_the_fake_servers_env(
    platform: Platform, fake: FakeGraph, clean_env: pytest.MonkeyPatch, change_id: str
) -> None:
    from runtime.coordinator.composition import build_handler
    from runtime.notify.meetings import build_meeting_coordinator

    roles = {code: c.spec.contact_role_arn for code, c in platform.box.customers.items()}
    for name, value in fake.env(calendar_contact_roles=roles, contact_reader_external_id=EXTERNAL_ID).items():
        clean_env.setenv(name, value)
    settings = load(CoordinatorSettings, bucket_name=platform.bucket, queue_url="https://sqs.example/q")
    session = boto3.session.Session(region_name=platform.box.region)
    handler = build_handler(settings, session)
    again = build_meeting_coordinator(load(MeetingSettings), settings, session)
    assert isinstance(handler.meetings, MeetingCoordinator)
    assert again.calendar.client.tokens is handler.meetings.calendar.client.tokens  # one msal app

    submit(platform, change_id)
    [result] = handler(s3_event(platform.bucket, keys.archive_key(change_id)), "sqs:w1", None)
    assert result.outcome is Outcome.PROCESSED
    [event] = fake.events()
    assert attendees(event) == CALENDAR_PEOPLE
    assert platform.archive(change_id)["meeting_metadata"]["meeting_id"] == event["id"]


def test_coordinator_without_graph_settings_acks_archive_events(
    platform: Platform, clean_env: pytest.MonkeyPatch, change_id: str
) -> None:
    from runtime.coordinator.composition import build_handler

    settings = load(CoordinatorSettings, bucket_name=platform.bucket, queue_url="https://sqs.example/q")
    handler = build_handler(settings, boto3.session.Session(region_name=platform.box.region))
    assert handler.meetings is None
    submit(platform, change_id)
    [result] = handler(s3_event(platform.bucket, keys.archive_key(change_id)), "sqs:w1", None)
    assert result.outcome is Outcome.ALREADY_RECORDED and "not configured" in result.reason
