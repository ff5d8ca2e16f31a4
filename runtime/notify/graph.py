"""Microsoft Graph for the meetings (docs/design.md §5): app-only tokens and the few calendar calls we need.

Why not the Graph SDK: we use four endpoints and need exact control over what is retried and how
long we wait, with an injectable ``sleep`` so tests never really wait.

* :class:`MsalTokenProvider` — client-credentials tokens from ONE msal
  ``ConfidentialClientApplication`` per process (``MsalTokenProvider.shared``), so tokens come from
  msal's cache instead of a token request per Graph call. The application is created lazily: msal
  fetches the authority's OpenID configuration in its constructor, and a worker must still start
  (and send emails) when the identity platform is briefly unreachable.
* :class:`GraphClient` — one request with Graph's error semantics: 429 and 503 (and 502/504) are
  retried after ``Retry-After`` (bounded: a longer wait is handed back to the queue as a retryable
  error instead of blocking a worker thread); a 401 drops the rejected token from msal's cache and
  retries once with a fresh one; any other 4xx raises :class:`GraphError` carrying Graph's error
  ``code`` and ``message``, which are also logged.
* :class:`GraphCalendar` — the organizer's calendar: find events by a single-value extended
  property, create, get, update, cancel.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack
from urllib.parse import quote, urlsplit

import msal
import requests

from runtime.notify.errors import GraphAuthError, GraphError, GraphThrottled
from runtime.telemetry import logger

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for every identity-platform and Graph request
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def graph_scope(base_url: str) -> str:
    """``https://graph.microsoft.com/v1.0`` -> ``https://graph.microsoft.com/.default``.

    The ``.default`` scope of the Graph host in use, so national clouds (and the local fake) get
    tokens for their own resource without another setting.
    """
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


class TimeoutSession(requests.Session):
    """A requests Session that never waits forever: a default (connect, read) timeout on every call.

    msal's own ``timeout`` option only applies to the http client msal builds itself, and we pass
    our own (to share connection pooling and CA settings), so the default lives here.

    ``ca_bundle`` pins the CA file for every request. (A plain ``Session.verify`` is silently
    overridden by ``REQUESTS_CA_BUNDLE`` when that is set; without ``ca_bundle`` the environment's
    trust store applies, which is what a deployed worker wants.)
    """

    def __init__(self, timeout: tuple[float, float] = DEFAULT_TIMEOUT, ca_bundle: str | None = None) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.ca_bundle = ca_bundle

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        if self.ca_bundle is not None:
            kwargs["verify"] = self.ca_bundle
        return super().request(method, url, *args, **kwargs)


# ---- tokens ------------------------------------------------------------------------------------

_PROVIDERS: dict[tuple[str, str, str, str], MsalTokenProvider] = {}
_PROVIDERS_LOCK = threading.Lock()


class GraphCredentials(TypedDict):
    """The client credentials of the app registration, and which token they ask for."""

    tenant_id: str
    client_id: str
    client_secret: str
    authority_host: str
    scope: str


def _authority(credentials: GraphCredentials) -> str:
    return f"{credentials['authority_host'].rstrip('/')}/{credentials['tenant_id']}"


class MsalTokenProvider:
    """Access tokens for Graph from one msal ``ConfidentialClientApplication`` (client credentials)."""

    def __init__(
        self,
        *,
        http_client: requests.Session | None = None,
        app_factory: Callable[..., Any] = msal.ConfidentialClientApplication,
        **credentials: Unpack[GraphCredentials],
    ) -> None:
        self.authority = _authority(credentials)
        self.client_id = credentials["client_id"]
        self.scope = credentials["scope"]
        self._secret = credentials["client_secret"]
        self._http = http_client or TimeoutSession()
        self._factory = app_factory
        self._app: Any = None
        # One lock for the app and its cache: concurrent cold-cache callers must not each fetch a
        # token (msal's cache is thread-safe, but a miss in N threads means N token requests).
        self._lock = threading.Lock()

    @classmethod
    def shared(
        cls, *, http_client: requests.Session | None = None, **credentials: Unpack[GraphCredentials]
    ) -> MsalTokenProvider:
        """The process-wide provider for these credentials: one msal application per process."""
        digest = hashlib.sha256(credentials["client_secret"].encode()).hexdigest()
        key = (_authority(credentials), credentials["client_id"], digest, credentials["scope"])
        with _PROVIDERS_LOCK:
            provider = _PROVIDERS.get(key)
            if provider is None:
                provider = cls(http_client=http_client, **credentials)
                _PROVIDERS[key] = provider
            return provider

    @property
    def app(self) -> Any:
        """The msal application (created on first use)."""
        with self._lock:
            return self._ensure_app()

    def _ensure_app(self) -> Any:
        if self._app is None:
            try:
                self._app = self._factory(
                    self.client_id,
                    client_credential=self._secret,
                    authority=self.authority,
                    http_client=self._http,
                    # The authority host is configured by the operator (and is a local fake in
                    # tests): skip msal's instance discovery against login.microsoftonline.com.
                    instance_discovery=False,
                )
            except (ValueError, requests.RequestException) as exc:
                raise GraphAuthError(f"cannot initialise msal for {self.authority}: {exc}", retryable=True) from exc
        return self._app

    def token(self) -> str:
        with self._lock:
            app = self._ensure_app()
            try:
                result = app.acquire_token_for_client(scopes=[self.scope])
            except (ValueError, requests.RequestException) as exc:
                raise GraphAuthError(f"token request to {self.authority} failed: {exc}", retryable=True) from exc
        if isinstance(result, Mapping) and result.get("access_token"):
            return str(result["access_token"])
        error = result.get("error", "unknown_error") if isinstance(result, Mapping) else "unknown_error"
        description = result.get("error_description", "") if isinstance(result, Mapping) else ""
        logger.error("token request rejected", extra={"error": error, "error_description": description})
        # invalid_client / unauthorized_client will not heal by retrying soon; anything else might.
        retryable = error not in {"invalid_client", "unauthorized_client", "invalid_scope", "invalid_request"}
        raise GraphAuthError(f"token request rejected: {error}: {description}", code=str(error), retryable=retryable)

    def invalidate(self, token: str) -> None:
        """Drop ``token`` from msal's cache so the next :meth:`token` call fetches a new one.

        msal's ``acquire_token_for_client`` has no force-refresh; removing the rejected access token
        is the supported way to make it go to the identity platform again.
        """
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == token:
                    cache.remove_at(entry)


# ---- requests ----------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def _error_fields(response: requests.Response) -> tuple[str, str]:
    try:
        payload = response.json()
    except ValueError:
        return "", response.text[:300]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", "")), str(error.get("message", ""))
    return "", str(payload)[:300]


class GraphClient:
    """Authenticated JSON requests to Graph with bounded, Retry-After-honouring retries."""

    def __init__(
        self,
        base_url: str,
        tokens: MsalTokenProvider | Any,
        *,
        session_factory: Callable[[], requests.Session] = TimeoutSession,
        max_attempts: int = 5,
        max_retry_after: float = 30.0,
        backoff_base: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._session_factory = session_factory
        self._local = threading.local()  # a Session per thread: requests does not promise thread safety
        self.max_attempts = max_attempts
        self.max_retry_after = max_retry_after
        self.backoff_base = backoff_base
        self._sleep = sleep

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            self._local.session = session
        return session

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        # Encode the query ourselves: OData wants %20 for spaces (urlencode would send '+').
        query = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in (params or {}).items())
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        expected_errors: frozenset[int] = frozenset(),
    ) -> dict[str, Any] | None:
        """Send one request; return the JSON body (None when empty). Raises :class:`GraphError`.

        ``expected_errors``: statuses the caller handles itself (raised, but logged at info level).
        """
        url = self.url(path, params)
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = self.tokens.token()
            client_request_id = str(uuid.uuid4())
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "client-request-id": client_request_id,
                "return-client-request-id": "true",
            }
            try:
                response = self._session().request(method, url, json=body, headers=headers)
            except requests.RequestException as exc:
                if attempt >= self.max_attempts:
                    raise GraphError(f"Graph {method} {path} failed: {exc}", retryable=True) from exc
                delay = self._backoff(attempt)
                logger.warning("Graph request failed; retrying", extra={"path": path, "error": str(exc), "wait": delay})
                self._sleep(delay)
                continue
            status = response.status_code
            if status == 401 and not refreshed:
                # An expired or revoked token: fetch a new one once. A second 401 is a real problem.
                refreshed = True
                attempt -= 1
                self.tokens.invalidate(token)
                logger.info("Graph answered 401; refreshing the token once", extra={"path": path})
                continue
            if status in RETRYABLE_STATUSES:
                self._sleep(self._throttled_wait(method, path, response, attempt))
                continue
            if status >= 400:
                raise _failure(method, path, response, client_request_id, expected=status in expected_errors)
            return _json_body(method, path, response)

    def _throttled_wait(self, method: str, path: str, response: requests.Response, attempt: int) -> float:
        """How long to wait before retrying a throttled request; :class:`GraphThrottled` (the message goes
        back to the queue) when Graph asks for longer than ``max_retry_after`` or the attempts are spent."""
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait = retry_after if retry_after is not None else self._backoff(attempt)
        if wait > self.max_retry_after or attempt >= self.max_attempts:
            code, message = _error_fields(response)
            logger.warning(
                "Graph throttling: giving the work back to the queue",
                extra={"path": path, "status": status, "retry_after": retry_after, "attempt": attempt},
            )
            raise GraphThrottled(
                f"Graph {method} {path} answered {status} {code}: {message} "
                f"(Retry-After {retry_after}, attempt {attempt}/{self.max_attempts})",
                retry_after=wait,
                status=status,
                code=code,
                graph_message=message,
                request_id=response.headers.get("request-id", ""),
            )
        logger.info("Graph throttling; waiting", extra={"path": path, "status": status, "wait": wait})
        return wait

    def _backoff(self, attempt: int) -> float:
        return min(self.max_retry_after, self.backoff_base * 2.0 ** (attempt - 1))


def _failure(
    method: str, path: str, response: requests.Response, client_request_id: str, *, expected: bool
) -> GraphError:
    """The error of a failed request, logged with Graph's ids (at info level when the caller ``expected``
    the status and handles it itself)."""
    status = response.status_code
    request_id = response.headers.get("request-id", "")
    code, message = _error_fields(response)
    log = logger.info if expected else logger.error
    log(
        "Graph request failed",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "graph_code": code,
            "graph_message": message,
            "request_id": request_id,
            "client_request_id": client_request_id,
        },
    )
    error_type = GraphAuthError if status == 401 else GraphError
    return error_type(
        f"Graph {method} {path} failed with {status} {code}: {message}",
        status=status,
        code=code,
        graph_message=message,
        request_id=request_id,
        retryable=status >= 500,
    )


def _json_body(method: str, path: str, response: requests.Response) -> dict[str, Any] | None:
    """The answer's JSON object (a list is wrapped as ``{"value": [...]}``); None when the body is empty."""
    if not response.content:
        return None
    try:
        payload = response.json()
    except ValueError as exc:
        raise GraphError(
            f"Graph {method} {path} returned non-JSON ({response.status_code})", status=response.status_code
        ) from exc
    return payload if isinstance(payload, dict) else {"value": payload}


# ---- the organizer's calendar ------------------------------------------------------------------


def _segment(value: str) -> str:
    return quote(value, safe="")


class GraphCalendar:
    """Events in one organizer mailbox (application permission Calendars.ReadWrite)."""

    SELECT = "id,iCalUId,subject,start,end,attendees,organizer,isOnlineMeeting,onlineMeeting,transactionId,location"

    def __init__(self, client: GraphClient, organizer: str) -> None:
        self.client = client
        self.organizer = organizer
        self._events = f"/users/{_segment(organizer)}/events"

    def find_by_extended_property(self, property_id: str, value: str) -> list[dict[str, Any]]:
        """Events carrying a string single-value extended property with this value.

        The filter syntax documented by Graph for string-typed extended properties:
        ``singleValueExtendedProperties/Any(ep: ep/id eq '{id}' and ep/value eq '{value}')``.
        """
        odata_value = value.replace("'", "''")
        odata_id = property_id.replace("'", "''")
        params = {
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{odata_id}' and ep/value eq '{odata_value}')",
            "$select": self.SELECT,
            "$top": "10",
        }
        payload = self.client.request("GET", self._events, params=params) or {}
        value_list = payload.get("value", [])
        return [event for event in value_list if isinstance(event, dict)]

    def create(self, event: Mapping[str, Any]) -> dict[str, Any]:
        created = self.client.request("POST", self._events, body=event)
        if not created or "id" not in created:
            raise GraphError("Graph created an event but returned no id")
        return created

    def get(self, event_id: str, *, missing_ok: bool = False) -> dict[str, Any]:
        """``missing_ok``: a 404 is expected by the caller (still raised, logged at info level)."""
        event = self.client.request(
            "GET",
            f"{self._events}/{_segment(event_id)}",
            params={"$select": self.SELECT},
            expected_errors=frozenset({404}) if missing_ok else frozenset(),
        )
        if not event:
            raise GraphError(f"Graph returned nothing for event {event_id}")
        return event

    def update(self, event_id: str, changes: Mapping[str, Any], *, missing_ok: bool = False) -> dict[str, Any]:
        """``missing_ok``: a 404 is expected by the caller (still raised, logged at info level)."""
        updated = self.client.request(
            "PATCH",
            f"{self._events}/{_segment(event_id)}",
            body=changes,
            expected_errors=frozenset({404}) if missing_ok else frozenset(),
        )
        return updated or {}

    def cancel(self, event_id: str, comment: str) -> bool:
        """Cancel (organizer only; Graph sends the cancellation and moves the event to Deleted Items).

        Returns False when the event no longer exists (already cancelled or deleted), which is the
        outcome we wanted, so a retry after a crash is harmless.
        """
        try:
            self.client.request(
                "POST",
                f"{self._events}/{_segment(event_id)}/cancel",
                body={"comment": comment},
                expected_errors=frozenset({404}),
            )
        except GraphError as exc:
            if exc.status == 404:
                logger.info("event to cancel no longer exists", extra={"event_id": event_id, "graph_code": exc.code})
                return False
            raise
        return True
