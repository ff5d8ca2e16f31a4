"""The local sign-in stand-in (devtools.site_server) that replaces the edge check in `make emulator` and
`make demo`: pages redirect to it, the API refuses without it, the identity header is its own."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from cdk_constructs.submission_site import CONTENT_SECURITY_POLICY
from devtools import site_server


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    """The stand-in's handler as ``serve`` runs it (no AWS call: ``/api/me`` needs only the identity)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTP_BUCKET_NAME", "ttp-metadata-local")
        patch.setattr(site_server.Handler, "csp", CONTENT_SECURITY_POLICY)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), site_server.Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield "127.0.0.1", int(httpd.server_address[1])
        httpd.shutdown()
        httpd.server_close()


def fetch(
    server: tuple[str, int], method: str, path: str, body: bytes | None = None, **headers: str
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(*server, timeout=10)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


def test_a_page_without_the_stand_ins_cookie_goes_to_the_labelled_sign_in(server: tuple[str, int]) -> None:
    response = fetch(server, "GET", "/change.html?id=CHG-1")
    assert response.status == 302
    assert response.headers["Location"] == "/local-sign-in?next=" + urllib.parse.quote("/change.html?id=CHG-1")
    connection = http.client.HTTPConnection(*server, timeout=10)
    connection.request("GET", response.headers["Location"])
    page = connection.getresponse()
    text = page.read().decode()
    assert page.status == 200 and "LOCAL SIGN-IN STAND-IN" in text and "not IAM Identity Center" in text
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_signing_in_sets_an_httponly_cookie_and_the_api_sees_only_that_name(server: tuple[str, int]) -> None:
    form = urllib.parse.urlencode({"user": "alice@example.com", "next": "/change.html?id=CHG-1"}).encode()
    signed_in = fetch(
        server, "POST", site_server.SIGN_IN, form, **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert signed_in.status == 303 and signed_in.headers["Location"] == "/change.html?id=CHG-1"
    cookie = signed_in.headers["Set-Cookie"]
    assert cookie.startswith(f"{site_server.COOKIE}=alice%40example.com;") and "HttpOnly" in cookie
    session = cookie.split(";", 1)[0]

    connection = http.client.HTTPConnection(*server, timeout=10)
    connection.request("GET", "/api/me", headers={"Cookie": session, "x-ttp-user": "mallory"})
    me = connection.getresponse()
    assert me.status == 200 and json.loads(me.read()) == {"user": "alice@example.com"}
    assert fetch(server, "GET", "/index.html", Cookie=session).status == 200


def test_the_api_without_the_stand_ins_cookie_is_refused_even_with_a_forged_header(server: tuple[str, int]) -> None:
    assert fetch(server, "GET", "/api/customers").status == 401
    assert fetch(server, "GET", "/api/customers", None, **{"x-ttp-user": "mallory"}).status == 401
    change = json.dumps({"change_id": "CHG-ANON", "title": "x", "customers": ["hts"]}).encode()
    assert fetch(server, "POST", "/api/changes", change, **{"Content-Type": "application/json"}).status == 401


def test_an_off_site_next_is_not_followed(server: tuple[str, int]) -> None:
    form = urllib.parse.urlencode({"user": "alice", "next": "//evil.example/"}).encode()
    response = fetch(server, "POST", site_server.SIGN_IN, form)
    assert response.headers["Location"] == "/"
