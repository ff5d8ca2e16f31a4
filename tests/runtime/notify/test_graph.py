"""runtime.notify.graph against the local fake Graph: tokens, retries, error reporting; and the fake's own semantics."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from devtools.fake_graph import FakeGraph, worker_env
from runtime.notify import graph as graph_module
from runtime.notify.errors import GraphAuthError, GraphError, GraphThrottled
from runtime.notify.graph import (
    GraphCalendar,
    GraphClient,
    MsalTokenProvider,
    TimeoutSession,
    graph_scope,
    parse_retry_after,
)

PROPERTY = "String {0cc04442-9010-431e-8b9f-58dc6027500b} Name TtpMeetingTransactionId"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGraph) -> FakeGraph:
    server.reset()
    server.duplicate_transaction = "return_existing"
    return server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def tokens_for(fake: FakeGraph, secret: str | None = None) -> MsalTokenProvider:
    return MsalTokenProvider(
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
        client_secret=secret or fake.client_secret,
        authority_host=fake.authority_host,
        scope=graph_scope(fake.graph_base_url),
        http_client=TimeoutSession(ca_bundle=fake.ca_path),
    )


def calendar_for(
    fake: FakeGraph, sleep: Sleeps | None = None, tokens: MsalTokenProvider | None = None, **kwargs: Any
) -> GraphCalendar:
    client = GraphClient(
        fake.graph_base_url,
        tokens or tokens_for(fake),
        session_factory=lambda: TimeoutSession(ca_bundle=fake.ca_path),
        sleep=sleep if sleep is not None else Sleeps(),
        **kwargs,
    )
    return GraphCalendar(client, fake.organizer)


def event_body(transaction: str = "tx-1", **extra: Any) -> dict[str, Any]:
    return {
        "subject": "Maintenance",
        "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
        "transactionId": transaction,
        "singleValueExtendedProperties": [{"id": PROPERTY, "value": transaction}],
        **extra,
    }


def statuses(fake: FakeGraph, method: str | None = None) -> list[int]:
    return [s for m, p, s in fake.requests if p.startswith("/v1.0/") and (method is None or m == method)]


# ---- tokens --------------------------------------------------------------------------------------


def test_one_token_request_serves_many_calls_from_many_threads(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                calendar.find_by_extended_property(PROPERTY, "nothing")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert fake.list_requests == 30
    assert fake.token_requests == 1
    assert fake.discovery_requests == 1  # msal's OIDC discovery, once per application


def test_expired_token_is_refreshed_once_on_401(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    calendar.find_by_extended_property(PROPERTY, "x")
    fake.revoke_tokens()  # as if the cached token had expired on the server side
    assert calendar.find_by_extended_property(PROPERTY, "x") == []
    assert fake.token_requests == 2
    assert statuses(fake) == [200, 401, 200]


def test_second_401_fails_after_exactly_one_refresh(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    fake.fail_next(401, times=2)
    with pytest.raises(GraphAuthError) as raised:
        calendar.find_by_extended_property(PROPERTY, "x")
    assert raised.value.status == 401 and raised.value.code == "InvalidAuthenticationToken"
    assert fake.token_requests == 2
    assert statuses(fake) == [401, 401]


def test_wrong_client_secret_is_a_non_retryable_auth_error(fake: FakeGraph) -> None:
    calendar = calendar_for(fake, tokens=tokens_for(fake, secret="not-the-secret"))
    with pytest.raises(GraphAuthError) as raised:
        calendar.create(event_body())
    assert raised.value.code == "invalid_client" and not raised.value.retryable
    assert "AADSTS7000215" in str(raised.value)
    assert fake.create_requests == 0


def test_shared_provider_is_one_msal_application_per_process(fake: FakeGraph) -> None:
    arguments: dict[str, Any] = {
        "tenant_id": fake.tenant_id,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "authority_host": fake.authority_host,
        "scope": graph_scope(fake.graph_base_url),
    }
    first = MsalTokenProvider.shared(**arguments, http_client=TimeoutSession(ca_bundle=fake.ca_path))
    assert MsalTokenProvider.shared(**arguments) is first
    assert first.app is first.app
    assert MsalTokenProvider.shared(**{**arguments, "client_secret": "other"}) is not first


def test_graph_scope_is_the_default_scope_of_the_graph_host() -> None:
    assert graph_scope("https://graph.microsoft.com/v1.0") == "https://graph.microsoft.com/.default"
    assert graph_scope("https://127.0.0.1:4443/v1.0") == "https://127.0.0.1:4443/.default"


# ---- throttling and errors -----------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    calendar = calendar_for(fake, sleeps)
    fake.fail_next(429, retry_after=7, times=2, method="POST")
    created = calendar.create(event_body())
    assert sleeps == [7.0, 7.0]
    assert statuses(fake, "POST") == [429, 429, 201]
    assert [e["id"] for e in fake.events()] == [created["id"]]


def test_503_honours_retry_after_too(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    calendar = calendar_for(fake, sleeps)
    fake.fail_next(503, retry_after=3)
    calendar.find_by_extended_property(PROPERTY, "x")
    assert sleeps == [3.0]


def test_retry_after_beyond_the_bound_is_handed_back_without_blocking(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    calendar = calendar_for(fake, sleeps, max_retry_after=30.0)
    fake.fail_next(429, retry_after=120)
    with pytest.raises(GraphThrottled) as raised:
        calendar.find_by_extended_property(PROPERTY, "x")
    assert sleeps == []
    assert raised.value.retryable and raised.value.retry_after == 120.0
    assert raised.value.code == "TooManyRequests"


def test_throttling_gives_up_after_max_attempts(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    calendar = calendar_for(fake, sleeps, max_attempts=3)
    fake.fail_next(503, retry_after=1, times=5)
    with pytest.raises(GraphThrottled):
        calendar.find_by_extended_property(PROPERTY, "x")
    assert sleeps == [1.0, 1.0]
    assert statuses(fake) == [503, 503, 503]


def test_429_without_retry_after_backs_off_exponentially(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    calendar = calendar_for(fake, sleeps, backoff_base=0.5)
    fake.fail_next(429, times=3)
    calendar.find_by_extended_property(PROPERTY, "x")
    assert sleeps == [0.5, 1.0, 2.0]


def test_other_4xx_fails_at_once_with_graph_code_and_message_logged(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(graph_module.logger, "error", lambda msg, extra=None, **_: logged.append((msg, extra or {})))
    calendar = calendar_for(fake)
    fake.fail_next(403, code="ErrorAccessDenied", message="Access is denied. Check credentials and try again.")
    with pytest.raises(GraphError) as raised:
        calendar.create(event_body())
    error = raised.value
    assert (error.status, error.code, error.retryable) == (403, "ErrorAccessDenied", False)
    assert "ErrorAccessDenied" in str(error) and "Access is denied" in str(error)
    assert statuses(fake) == [403]  # not retried
    [(_, extra)] = logged
    assert extra["graph_code"] == "ErrorAccessDenied" and extra["status"] == 403
    assert extra["graph_message"].startswith("Access is denied") and extra["request_id"]


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_lost_create_response_is_retried_without_a_second_event(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    calendar = calendar_for(fake, sleeps)
    fake.fail_next(503, method="POST", after_success=True)  # Graph created it, the answer was lost
    created = calendar.create(event_body("tx-lost"))
    assert fake.create_requests == 2 and fake.events_created == 1
    assert fake.events()[0]["id"] == created["id"]


def test_cancel_of_a_gone_event_reports_false(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    created = calendar.create(event_body())
    assert calendar.cancel(created["id"], "bye") is True
    assert calendar.cancel(created["id"], "bye again") is False


# ---- the fake's Graph semantics ------------------------------------------------------------------


def test_fake_answers_a_duplicate_transaction_id_with_the_existing_event(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    first = calendar.create(event_body("tx-dup"))
    second = calendar.create(event_body("tx-dup", subject="Something else"))
    assert second["id"] == first["id"] and second["subject"] == "Maintenance"
    assert fake.events_created == 1 and fake.create_requests == 2
    fake.duplicate_transaction = "conflict"
    with pytest.raises(GraphError) as raised:
        calendar.create(event_body("tx-dup"))
    assert raised.value.status == 409 and fake.events_created == 1


def test_fake_filters_on_the_extended_property_like_graph(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    created = calendar.create(event_body("ABC-1"))
    found = calendar.find_by_extended_property(PROPERTY, "abc-1")  # the value compares case-insensitively
    assert [e["id"] for e in found] == [created["id"]]
    renamed = PROPERTY.replace("TtpMeeting", "ttpmeeting")  # the Name part of the id does not
    assert calendar.find_by_extended_property(renamed, "ABC-1") == []
    assert "singleValueExtendedProperties" not in created  # not returned without $expand
    calendar.cancel(created["id"], "bye")
    assert calendar.find_by_extended_property(PROPERTY, "ABC-1") == []  # moved to Deleted Items
    with pytest.raises(GraphError) as raised:
        calendar.client.request("GET", f"/users/{fake.organizer}/events", params={"$filter": "subject eq 'x'"})
    assert raised.value.status == 400 and raised.value.code == "ErrorInvalidUrlQueryFilter"


def test_fake_refuses_unknown_mailboxes_and_bad_tokens(fake: FakeGraph) -> None:
    calendar = calendar_for(fake)
    with pytest.raises(GraphError) as raised:
        calendar.client.request("GET", "/users/someone-else@contoso.example/events")
    assert raised.value.code == "ErrorInvalidUser"
    response = requests.get(
        f"{fake.graph_base_url}/users/{fake.organizer}/events",
        headers={"Authorization": "Bearer forged"},
        verify=fake.ca_path,
        timeout=5,
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_fake_listens_on_loopback_only_and_gives_the_worker_env(fake: FakeGraph) -> None:
    assert fake._server is not None
    host = str(fake._server.server_address[0])
    assert ipaddress.ip_address(host).is_loopback
    roles = {"hts": "arn:aws:iam::333333333333:role/r"}
    env = worker_env(fake, calendar_contact_roles=roles, contact_reader_external_id="x")
    assert env["TTP_GRAPH_BASE_URL"] == f"https://127.0.0.1:{fake.port}/v1.0"
    assert env["TTP_GRAPH_AUTHORITY_HOST"] == f"https://127.0.0.1:{fake.port}"
    assert env["TTP_GRAPH_CLIENT_SECRET"] == fake.client_secret and env["REQUESTS_CA_BUNDLE"] == fake.ca_path
    assert env["TTP_CALENDAR_CONTACT_ROLES"] == '{"hts": "arn:aws:iam::333333333333:role/r"}'
    with pytest.raises(RuntimeError):
        worker_env(FakeGraph())  # not started
