"""A local fake of Microsoft Graph (calendar events) and of the Entra ID token endpoint, for tests and the demo.

It implements exactly the endpoints the runtime uses, with Graph's documented semantics where they
are documented (and says so where they are not):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``GET /common/discovery/instance`` —
  what msal asks for before it requests a token.
* ``POST /{tenant}/oauth2/v2.0/token`` — client credentials only; wrong client id / secret are refused
  with the identity platform's ``invalid_client`` error. Every request is counted.
* ``POST /v1.0/users/{organizer}/events`` — 201 with the event. A POST whose ``transactionId`` matches an
  event already in the mailbox creates nothing and answers 201 with that event: what Graph does for
  a retried create (observed behaviour; Graph's reference only says the property exists "to avoid
  redundant POST operations"). ``duplicate_transaction="conflict"`` answers 409 instead, to prove the
  client copes with either. (Error codes for cases Graph does not document are the fake's own.)
* ``GET /v1.0/users/{organizer}/events?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and
  ep/value eq '…')`` — the documented filter on a string extended property; the value comparison is
  case-insensitive, as documented. Extended properties are not returned in event bodies (documented).
  Cancelled events are in Deleted Items, so they are not listed.
* ``GET`` / ``PATCH /v1.0/users/{organizer}/events/{id}`` and ``POST …/{id}/cancel`` (202, no body; the
  event moves to Deleted Items; cancelling it again answers 404 — a modelling choice).
* Errors in Graph's shape ``{"error": {"code", "message", "innerError"}}``; 401
  ``InvalidAuthenticationToken`` for unknown or revoked tokens.

msal only accepts ``https`` authorities, so the server speaks TLS with a throw-away self-signed
certificate for 127.0.0.1 (its path is :attr:`FakeGraph.ca_path`; point ``REQUESTS_CA_BUNDLE`` at it).
It binds 127.0.0.1 only, on a free port, and never anything else.

Fault injection: :meth:`FakeGraph.fail_next` (e.g. ``fail_next(429, retry_after=1, times=2)``), with
``after_success=True`` to perform the operation and then answer with the error (a lost response).

This module holds the state, the routing and the fault injection; the event semantics are in
:mod:`devtools.fake_graph_events`, the identity platform's documents in :mod:`devtools.fake_graph_identity`,
the HTTPS transport in :mod:`devtools.fake_graph_server`.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from devtools.fake_graph_events import (
    DEFAULT_CODES,
    DEFAULT_MESSAGES,
    FILTER,
    PROPERTY_ID,
    Response,
    apply,
    graph_error,
    has_property,
    iso,
    new_event,
    now,
    public,
    refusal,
)
from devtools.fake_graph_identity import instance_discovery, openid_configuration, token_refusal, unknown_tenant
from devtools.fake_graph_server import LOOPBACK, TlsServer, make_certificate

if TYPE_CHECKING:
    from devtools.sandbox import Sandbox

GRAPH_PREFIX = "/v1.0"


@dataclass
class _Fault:
    status: int
    retry_after: str | None
    code: str
    message: str
    endpoint: str  # "graph" or "token"
    method: str | None
    path_contains: str | None
    after_success: bool

    def matches(self, endpoint: str, method: str, path: str) -> bool:
        return (
            self.endpoint == endpoint
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
        )


class FakeGraph:
    """Fake Graph + token server on ``https://127.0.0.1:<free port>``; thread-safe; ``start()`` / ``stop()``.

    ``organizer`` is the only mailbox it knows (others get ``ErrorInvalidUser``); ``latency`` adds
    seconds to every request (to widen race windows); counters (``token_requests``,
    ``create_requests``, ``list_requests``, ``patch_requests``, ``cancel_requests``) and ``requests``
    (method, path, status) let tests assert what a client really did.
    """

    def __init__(
        self,
        *,
        tenant_id: str = "fake-tenant",
        client_id: str = "fake-client-id",
        client_secret: str | None = None,
        organizer: str = "change-meetings@contoso.example",
        token_lifetime: int = 3599,
        duplicate_transaction: str = "return_existing",
        latency: float = 0.0,
    ) -> None:
        if duplicate_transaction not in {"return_existing", "conflict"}:
            raise ValueError("duplicate_transaction must be 'return_existing' or 'conflict'")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.organizer = organizer
        self.token_lifetime = token_lifetime
        self.duplicate_transaction = duplicate_transaction
        self.latency = latency
        self._lock = threading.RLock()
        self._server: TlsServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: Path | None = None
        self.ca_path = ""
        self.port = 0
        self.reset()

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGraph:
        if self._server is not None:
            return self
        self._tmp = Path(tempfile.mkdtemp(prefix="ttp-fake-graph-"))
        cert, key = make_certificate(self._tmp)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = TlsServer(self, context)
        host, port = str(self._server.server_address[0]), int(self._server.server_address[1])
        if not ipaddress.ip_address(host).is_loopback:  # belt and braces: never listen beyond loopback
            self._server.server_close()
            raise RuntimeError(f"fake Graph bound to {host}, not loopback")
        self.port = int(port)
        self.ca_path = str(cert)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-graph", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def graph_base_url(self) -> str:
        return f"{self.url}{GRAPH_PREFIX}"

    @property
    def authority_host(self) -> str:
        return self.url

    # ---- test controls and accessors ----------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._events: dict[str, dict[str, Any]] = {}
            self._tokens: dict[str, float] = {}
            self._faults: list[_Fault] = []
            self.token_requests = 0
            self.discovery_requests = 0
            self.create_requests = 0
            self.patch_requests = 0
            self.cancel_requests = 0
            self.list_requests = 0
            self.requests: list[tuple[str, str, int]] = []

    def fail_next(
        self,
        status: int = 429,
        *,
        retry_after: float | str | None = None,
        times: int = 1,
        code: str | None = None,
        message: str | None = None,
        endpoint: str = "graph",
        method: str | None = None,
        path_contains: str | None = None,
        after_success: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (Graph's error body, Retry-After)."""
        if endpoint not in {"graph", "token"}:
            raise ValueError("endpoint must be 'graph' or 'token'")
        fault = _Fault(
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            code=code or DEFAULT_CODES.get(status, "ErrorInternalServerError"),
            message=message or DEFAULT_MESSAGES.get(status, f"Injected failure {status}."),
            endpoint=endpoint,
            method=method,
            path_contains=path_contains,
            after_success=after_success,
        )
        with self._lock:
            self._faults.extend([fault] * times)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as if they had expired): Graph answers 401."""
        with self._lock:
            self._tokens.clear()

    def events(self, include_cancelled: bool = True) -> list[dict[str, Any]]:
        """Every event in the organizer's mailbox, oldest first (copies; internal fields start with '_')."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._events.values() if include_cancelled or not e["_cancelled"]]

    def event(self, event_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._events[event_id])

    @property
    def events_created(self) -> int:
        with self._lock:
            return len(self._events)

    def env(
        self,
        *,
        calendar_contact_roles: dict[str, str] | None = None,
        contact_reader_external_id: str | None = None,
    ) -> dict[str, str]:
        """The environment a worker needs to use this server (see :func:`worker_env`)."""
        return worker_env(
            self,
            calendar_contact_roles=calendar_contact_roles,
            contact_reader_external_id=contact_reader_external_id,
        )

    # ---- request handling ---------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response:
        if self.latency:
            time.sleep(self.latency)
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        endpoint = "graph" if parts.path.startswith(GRAPH_PREFIX + "/") else "token"
        with self._lock:
            fault = next((f for f in self._faults if f.matches(endpoint, method, parts.path)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None and not fault.after_success:
            return self._log(method, parts.path, self._fault_response(fault, headers))
        if endpoint == "graph":
            response = self._graph(method, segments[1:], query, headers, raw)
        else:
            response = self._identity(method, segments, raw)
        if fault is not None:  # the operation happened; the client sees an error (a lost response)
            response = self._fault_response(fault, headers)
        return self._log(method, parts.path, response)

    def _log(self, method: str, path: str, response: Response) -> Response:
        with self._lock:
            self.requests.append((method, path, response[0]))
        return response

    def _fault_response(self, fault: _Fault, headers: dict[str, str]) -> Response:
        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.endpoint == "token":
            body = {"error": fault.code, "error_description": fault.message}
            return fault.status, extra, body
        return graph_error(fault.status, fault.code, fault.message, headers, extra)

    # ---- identity platform --------------------------------------------------------------------

    def _identity(self, method: str, segments: list[str], raw: bytes) -> Response:
        if method == "GET" and segments == ["common", "discovery", "instance"]:
            with self._lock:
                self.discovery_requests += 1
            return 200, {}, instance_discovery(self.url, self.tenant_id)
        if method == "GET" and len(segments) == 4 and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            with self._lock:
                self.discovery_requests += 1
            if segments[0] != self.tenant_id:
                return unknown_tenant(segments[0])
            return 200, {}, openid_configuration(self.url, self.tenant_id)
        if method == "POST" and segments == [self.tenant_id, "oauth2", "v2.0", "token"]:
            return self._token(raw)
        return 404, {}, {"error": "not_found", "error_description": "fake identity platform: unknown endpoint"}

    def _token(self, raw: bytes) -> Response:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self._lock:
            self.token_requests += 1
        refused = token_refusal(form, self.client_id, self.client_secret)
        if refused is not None:
            return refused
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
        return (
            200,
            {},
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    # ---- Graph --------------------------------------------------------------------------------

    def _graph(
        self, method: str, segments: list[str], query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> Response:
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry < time.monotonic():
            return graph_error(401, "InvalidAuthenticationToken", DEFAULT_MESSAGES[401], headers)
        if len(segments) < 3 or segments[0] != "users" or segments[2] != "events":
            resource = segments[0] if segments else ""
            return graph_error(400, "BadRequest", f"Resource not found for the segment '{resource}'.", headers)
        if segments[1].casefold() != self.organizer.casefold():
            message = f"The requested user '{segments[1]}' is invalid."
            return graph_error(404, "ErrorInvalidUser", message, headers)
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return graph_error(400, "BadRequest", "Unable to read JSON request payload.", headers)
        rest = segments[3:]
        if not rest and method == "POST":
            return self._create(body, headers)
        if not rest and method == "GET":
            return self._list(query, headers)
        if len(rest) == 1 and method == "GET":
            return self._get(rest[0], headers)
        if len(rest) == 1 and method == "PATCH":
            return self._patch(rest[0], body, headers)
        if len(rest) == 2 and rest[1] == "cancel" and method == "POST":
            return self._cancel(rest[0], headers)
        return graph_error(405, "ErrorInvalidRequest", f"fake Graph does not implement {method} here", headers)

    def _create(self, body: dict[str, Any], headers: dict[str, str]) -> Response:
        refused = refusal(body, headers)
        if refused is not None:
            return refused
        if "start" not in body or "end" not in body:
            return graph_error(400, "ErrorInvalidRequest", "An event needs a start and an end.", headers)
        transaction = body.get("transactionId")
        with self._lock:
            self.create_requests += 1
            if transaction:
                existing = next((e for e in self._events.values() if e.get("transactionId") == transaction), None)
                if existing is not None:
                    if self.duplicate_transaction == "conflict":
                        return graph_error(
                            409,
                            "ErrorDuplicateTransactionId",
                            "An event with the same transactionId already exists.",
                            headers,
                        )
                    return 201, {}, public(existing)
            event = new_event(self.organizer, transaction, len(self._events))
            apply(event, body)
            self._events[event["id"]] = event
            return 201, {}, public(event)

    def _list(self, query: dict[str, str], headers: dict[str, str]) -> Response:
        with self._lock:
            self.list_requests += 1
        wanted = None
        expression = query.get("$filter")
        if expression is not None:
            match = FILTER.match(expression.strip())
            prop = PROPERTY_ID.match(match.group("id").replace("''", "'")) if match else None
            if match is None or prop is None:
                return graph_error(
                    400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.", headers
                )
            wanted = (prop, match.group("value").replace("''", "'"))
        try:
            top = int(query.get("$top", "10"))
        except ValueError:
            return graph_error(400, "BadRequest", "Invalid $top value.", headers)
        with self._lock:
            found = []
            for event in sorted(self._events.values(), key=lambda e: e["_created_seq"]):
                if event["_cancelled"]:
                    continue  # in Deleted Items, not in the calendar
                if wanted is not None and not has_property(event, *wanted):
                    continue
                found.append(public(event))
        context = f"{self.graph_base_url}/$metadata#users('{self.organizer}')/events"
        return 200, {}, {"@odata.context": context, "value": found[:top]}

    def _get(self, event_id: str, headers: dict[str, str]) -> Response:
        with self._lock:
            event = self._events.get(event_id)
            if event is None:
                return graph_error(404, "ErrorItemNotFound", DEFAULT_MESSAGES[404], headers)
            return 200, {}, public(event)

    def _patch(self, event_id: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
        refused = refusal(body, headers)
        if refused is not None:
            return refused
        with self._lock:
            self.patch_requests += 1
            event = self._events.get(event_id)
            if event is None:
                return graph_error(404, "ErrorItemNotFound", DEFAULT_MESSAGES[404], headers)
            if "transactionId" in body and body["transactionId"] != event.get("transactionId"):
                return graph_error(
                    400, "ErrorInvalidRequest", "transactionId cannot be changed after the event is created.", headers
                )
            apply(event, body)
            return 200, {}, public(event)

    def _cancel(self, event_id: str, headers: dict[str, str]) -> Response:
        with self._lock:
            self.cancel_requests += 1
            event = self._events.get(event_id)
            if event is None or event["_cancelled"]:
                return graph_error(404, "ErrorItemNotFound", DEFAULT_MESSAGES[404], headers)
            event["_cancelled"] = True
            event["isCancelled"] = True
            event["lastModifiedDateTime"] = iso(now())
            return 202, {}, None


def worker_env(
    server: FakeGraph,
    *,
    calendar_contact_roles: dict[str, str] | None = None,
    contact_reader_external_id: str | None = None,
) -> dict[str, str]:
    """The ``TTP_*`` variables (plus ``REQUESTS_CA_BUNDLE``) a worker needs to use a started fake.

    ``REQUESTS_CA_BUNDLE`` makes requests (and so msal) trust the fake's self-signed certificate; it
    replaces the default trust store of that process, which is fine for a local worker whose AWS
    endpoint is an emulator (boto3 does not read it).
    """
    if not server.port:
        raise RuntimeError("start the fake Graph server first")
    env = {
        "TTP_GRAPH_TENANT_ID": server.tenant_id,
        "TTP_GRAPH_CLIENT_ID": server.client_id,
        "TTP_GRAPH_CLIENT_SECRET": server.client_secret,
        "TTP_MEETING_ORGANIZER": server.organizer,
        "TTP_GRAPH_BASE_URL": server.graph_base_url,
        "TTP_GRAPH_AUTHORITY_HOST": server.authority_host,
        "REQUESTS_CA_BUNDLE": server.ca_path,
    }
    if calendar_contact_roles:
        env["TTP_CALENDAR_CONTACT_ROLES"] = json.dumps(calendar_contact_roles, sort_keys=True)
    if contact_reader_external_id:
        env["TTP_CONTACT_READER_EXTERNAL_ID"] = contact_reader_external_id
    return env


DEMO_CONTACT_READER_EXTERNAL_ID = "ttp-demo-contact-reader"


def start_for_demo(box: Sandbox) -> tuple[FakeGraph, dict[str, str]]:
    """What ``devtools/demo.py`` calls: a started fake and the worker environment that uses it.

    Every sandbox customer's contact-reader role is listed (the emulator lets any role be assumed),
    so meeting attendees come from each customer's ``aws-calendar`` subscribers as in production.
    The caller stops the server.
    """
    server = FakeGraph().start()
    roles = {code: resources.spec.contact_role_arn for code, resources in box.customers.items()}
    env = worker_env(server, calendar_contact_roles=roles, contact_reader_external_id=DEMO_CONTACT_READER_EXTERNAL_ID)
    return server, env
