"""The Lambda@Edge viewer-request check (runtime.web.edge_auth): the OIDC authorization-code flow with PKCE
as AWS's authorization@edge samples run it, the session cookie, the identity header."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from runtime.web import edge_auth

CONFIG = {
    "issuer": "https://idp.example.com",
    "client_id": "ttp-site",
    "authorize_url": "https://idp.example.com/authorize",
    "token_url": "https://idp.example.com/token",
    "jwks_url": "https://idp.example.com/jwks",
    "callback_path": "/auth/callback",
}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
REDIRECT_URI = "https://site.example/auth/callback"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _num(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def token(key: Any = KEY, kid: str = "k1", **claims: Any) -> str:
    body = {"iss": CONFIG["issuer"], "aud": "ttp-site", "exp": time.time() + 300, "email": "bob@example.com"}
    body.update(claims)
    signing = f"{_b64(json.dumps({'alg': 'RS256', 'kid': kid}).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signing}.{_b64(key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


@pytest.fixture(autouse=True)
def jwks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    public = KEY.public_key().public_numbers()
    monkeypatch.setattr(
        edge_auth, "_jwks", {"k1": {"kty": "RSA", "kid": "k1", "n": _num(public.n), "e": _num(public.e)}}
    )
    monkeypatch.setattr(edge_auth, "_jwks_fetched_at", time.monotonic())  # no network: the keys are fresh
    yield


def request(uri: str, querystring: str = "", **headers: str) -> dict[str, Any]:
    return {
        "uri": uri,
        "querystring": querystring,
        "method": "GET",
        "headers": {k.lower(): [{"key": k, "value": v}] for k, v in {"host": "site.example", **headers}.items()},
    }


def set_cookies(response: dict[str, Any]) -> dict[str, tuple[str, set[str]]]:
    """name → (value, attributes in lower case) of every Set-Cookie the response carries."""
    found = {}
    for item in response["headers"].get("set-cookie", []):
        first, *attributes = [part.strip() for part in item["value"].split(";")]
        name, _, value = first.partition("=")
        found[name] = (value, {a.lower() for a in attributes})
    return found


def location_query(response: dict[str, Any]) -> dict[str, str]:
    location = response["headers"]["location"][0]["value"]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


class TokenEndpoint:
    """The provider's token endpoint: records the form it is sent, answers with ``id_token``."""

    def __init__(self, id_token: str | Callable[[str], str]) -> None:
        self.id_token = id_token
        self.forms: list[dict[str, str]] = []

    def __call__(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        assert url == CONFIG["token_url"]
        self.forms.append(form)
        made = self.id_token if isinstance(self.id_token, str) else self.id_token(self.nonce)
        return {"id_token": made, "access_token": "opaque", "token_type": "Bearer"}

    nonce = ""


def start_sign_in(uri: str = "/change.html", querystring: str = "id=CHG-1") -> tuple[dict[str, str], dict[str, str]]:
    """The redirect a signed-out page request gets: (authorize query, transaction cookies)."""
    response = edge_auth.decide(request(uri, querystring), CONFIG)
    assert response["status"] == "302", response
    return location_query(response), {name: value for name, (value, _) in set_cookies(response).items()}


def callback(query: dict[str, str], cookies: dict[str, str], endpoint: TokenEndpoint, **headers: str) -> dict[str, Any]:
    return edge_auth.decide(
        request(CONFIG["callback_path"], urllib.parse.urlencode(query), cookie=cookie_header(cookies), **headers),
        CONFIG,
        exchange=endpoint,
    )


def test_a_page_without_a_session_starts_the_code_flow_with_pkce_state_and_nonce() -> None:
    response = edge_auth.decide(request("/change.html", "id=CHG-1"), CONFIG)
    assert response["status"] == "302"
    location = response["headers"]["location"][0]["value"]
    assert location.startswith("https://idp.example.com/authorize?")
    query = location_query(response)
    assert query["response_type"] == "code"
    assert query["client_id"] == "ttp-site"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"] == "openid email"
    assert query["code_challenge_method"] == "S256"
    cookies = set_cookies(response)
    assert set(cookies) == {edge_auth.STATE_COOKIE, edge_auth.NONCE_COOKIE, edge_auth.VERIFIER_COOKIE}
    for _, attributes in cookies.values():
        assert {"httponly", "secure", "samesite=lax", f"max-age={edge_auth.SIGN_IN_SECONDS}"} <= attributes
    verifier = cookies[edge_auth.VERIFIER_COOKIE][0]
    assert 43 <= len(verifier) <= 128
    assert query["code_challenge"] == _b64(hashlib.sha256(verifier.encode()).digest())
    assert cookies[edge_auth.STATE_COOKIE][0] == query["state"]
    assert cookies[edge_auth.NONCE_COOKIE][0] == query["nonce"]
    assert "id_token" not in location and "response_mode" not in location  # no implicit flow
    again = location_query(edge_auth.decide(request("/change.html", "id=CHG-1"), CONFIG))
    assert again["state"] != query["state"] and again["nonce"] != query["nonce"]


def test_the_callback_exchanges_the_code_checks_the_token_and_sets_the_session() -> None:
    query, cookies = start_sign_in("/change.html", "id=CHG-1")
    endpoint = TokenEndpoint(token(nonce=query["nonce"]))
    response = callback({"code": "the-code", "state": query["state"]}, cookies, endpoint)

    assert endpoint.forms == [
        {
            "grant_type": "authorization_code",
            "code": "the-code",
            "redirect_uri": REDIRECT_URI,
            "client_id": "ttp-site",
            "code_verifier": cookies[edge_auth.VERIFIER_COOKIE],
        }
    ]
    assert response["status"] == "302", response.get("body")
    assert response["headers"]["location"][0]["value"] == "/change.html?id=CHG-1"
    assert response["headers"]["cache-control"][0]["value"] == "no-store"
    set_by_callback = set_cookies(response)
    session, attributes = set_by_callback[edge_auth.SESSION_COOKIE]
    assert session == endpoint.id_token
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
    for name in (edge_auth.STATE_COOKIE, edge_auth.NONCE_COOKIE, edge_auth.VERIFIER_COOKIE):
        assert set_by_callback[name][0] == "" and "max-age=0" in set_by_callback[name][1]

    forwarded = edge_auth.decide(
        request("/api/changes", cookie=f"a=b; {edge_auth.SESSION_COOKIE}={session}", **{"x-ttp-user": "mallory"}),
        CONFIG,
    )
    assert forwarded["headers"]["x-ttp-user"] == [{"key": "x-ttp-user", "value": "bob@example.com"}]


def _wrong_state(query: dict[str, str], cookies: dict[str, str]) -> None:
    query["state"] = query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")


def _no_verifier(query: dict[str, str], cookies: dict[str, str]) -> None:
    del cookies[edge_auth.VERIFIER_COOKIE]


def _no_nonce_cookie(query: dict[str, str], cookies: dict[str, str]) -> None:
    del cookies[edge_auth.NONCE_COOKIE]


def _no_code(query: dict[str, str], cookies: dict[str, str]) -> None:
    del query["code"]


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_wrong_state, "state"),
        (_no_verifier, "code_verifier"),
        (_no_nonce_cookie, "nonce"),
        (_no_code, "code"),
    ],
    ids=["wrong-state", "missing-code-verifier", "missing-nonce-cookie", "missing-code"],
)
def test_a_callback_that_did_not_start_here_is_refused_before_the_exchange(
    spoil: Callable[[dict[str, str], dict[str, str]], None], reason: str
) -> None:
    query, cookies = start_sign_in()
    endpoint = TokenEndpoint(token(nonce=query["nonce"]))
    answer = {"code": "the-code", "state": query["state"]}
    spoil(answer, cookies)
    response = callback(answer, cookies, endpoint)
    assert response["status"] == "400"
    assert reason in response["body"] and "sign in again" in response["body"]
    assert endpoint.forms == []  # the code was never exchanged
    assert edge_auth.SESSION_COOKIE not in set_cookies(response)


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda nonce: token(nonce="someone-elses-nonce"), "nonce"),
        (lambda nonce: token(), "nonce"),
        (lambda nonce: token(nonce=nonce, exp=time.time() - 3600), "expired"),
        (lambda nonce: token(key=OTHER_KEY, nonce=nonce), "signature"),
        (lambda nonce: token(nonce=nonce, aud="other-app"), "client id"),
        (lambda nonce: token(nonce=nonce, iss="https://evil.example.com"), "issuer"),
        (lambda nonce: "not.a.token", "malformed"),
    ],
    ids=["wrong-nonce", "no-nonce", "expired", "bad-signature", "wrong-audience", "wrong-issuer", "malformed"],
)
def test_the_callback_refuses_an_id_token_that_fails_a_check(make_token: Callable[[str], str], reason: str) -> None:
    query, cookies = start_sign_in()
    endpoint = TokenEndpoint(make_token)
    endpoint.nonce = query["nonce"]
    response = callback({"code": "the-code", "state": query["state"]}, cookies, endpoint)
    assert len(endpoint.forms) == 1
    assert response["status"] == "401"
    assert reason in response["body"]
    assert edge_auth.SESSION_COOKIE not in set_cookies(response)


def test_the_providers_error_and_a_failed_exchange_are_shown_not_a_session() -> None:
    query, cookies = start_sign_in()
    endpoint = TokenEndpoint(token(nonce=query["nonce"]))
    refused = callback(
        {"error": "access_denied", "error_description": "not assigned", "state": query["state"]}, cookies, endpoint
    )
    assert refused["status"] == "400" and "access_denied" in refused["body"] and endpoint.forms == []

    def failing(url: str, form: dict[str, str]) -> dict[str, Any]:
        raise edge_auth.InvalidToken("the token endpoint answered 400: invalid_grant")

    response = edge_auth.decide(
        request(CONFIG['callback_path'], urllib.parse.urlencode({"code": "c", "state": query["state"]}),
                cookie=cookie_header(cookies)),
        CONFIG,
        exchange=failing,
    )  # fmt: skip
    assert response["status"] == "401" and "invalid_grant" in response["body"]
    assert edge_auth.SESSION_COOKIE not in set_cookies(response)


@pytest.mark.parametrize(
    "bad",
    [
        token(exp=time.time() - 3600),
        token(aud="other-app"),
        token(iss="https://evil.example.com"),
        token(key=OTHER_KEY),
        "not.a.token",
    ],
    ids=["expired", "audience", "issuer", "signature", "malformed"],
)
def test_the_api_refuses_a_bad_session_with_401_and_strips_the_header(bad: str) -> None:
    response = edge_auth.decide(
        request("/api/changes", cookie=f"{edge_auth.SESSION_COOKIE}={bad}", **{"x-ttp-user": "mallory"}), CONFIG
    )
    assert response["status"] == "401"
    assert "not signed in" in json.loads(response["body"])["message"]
    assert "set-cookie" not in response["headers"]  # an API call never starts a sign-in


def test_an_id_token_sent_as_a_bearer_header_is_not_a_session() -> None:
    response = edge_auth.decide(request("/api/changes", authorization=f"Bearer {token()}"), CONFIG)
    assert response["status"] == "401"


def test_the_return_path_never_leaves_the_site() -> None:
    query, cookies = start_sign_in("//evil.example/x", "")
    response = callback({"code": "c", "state": query["state"]}, cookies, TokenEndpoint(token(nonce=query["nonce"])))
    assert response["headers"]["location"][0]["value"] == "/"


def test_a_rotated_key_is_fetched_once_and_a_forged_key_id_does_not_call_the_provider_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    public = OTHER_KEY.public_key().public_numbers()
    fetched: list[str] = []

    class Answer(io.BytesIO):
        def __enter__(self) -> Answer:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def urlopen(url: str, timeout: float) -> Answer:
        fetched.append(url)
        keys = [{"kty": "RSA", "kid": "k2", "n": _num(public.n), "e": _num(public.e)}]
        return Answer(json.dumps({"keys": keys}).encode())

    monkeypatch.setattr(edge_auth.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(edge_auth, "_jwks_fetched_at", time.monotonic() - edge_auth.JWKS_REFRESH_SECONDS - 1)
    rotated = token(key=OTHER_KEY, kid="k2")
    assert edge_auth.validate_token(rotated, CONFIG)["email"] == "bob@example.com"
    assert fetched == [CONFIG["jwks_url"]]
    with pytest.raises(edge_auth.InvalidToken, match="unknown key id"):
        edge_auth.validate_token(token(kid="forged"), CONFIG)
    assert fetched == [CONFIG["jwks_url"]]  # within JWKS_REFRESH_SECONDS: no second call
