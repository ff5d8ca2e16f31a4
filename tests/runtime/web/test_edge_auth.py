"""The Lambda@Edge viewer-request check (runtime.web.edge_auth): RS256 ID tokens, identity header."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from runtime.web import edge_auth

CONFIG = {
    "issuer": "https://idp.example.com",
    "client_id": "ttp-site",
    "jwks_url": "https://idp.example.com/jwks",
    "authorize_url": "https://idp.example.com/authorize",
}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _num(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def token(key: Any = KEY, **claims: Any) -> str:
    body = {"iss": CONFIG["issuer"], "aud": "ttp-site", "exp": time.time() + 300, "email": "bob@example.com"}
    body.update(claims)
    signing = f"{_b64(json.dumps({'alg': 'RS256', 'kid': 'k1'}).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signing}.{_b64(key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


@pytest.fixture(autouse=True)
def jwks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    public = KEY.public_key().public_numbers()
    monkeypatch.setattr(
        edge_auth, "_jwks", {"k1": {"kty": "RSA", "kid": "k1", "n": _num(public.n), "e": _num(public.e)}}
    )
    yield


def request(uri: str, **headers: str) -> dict[str, Any]:
    return {
        "uri": uri,
        "headers": {k.lower(): [{"key": k, "value": v}] for k, v in {"host": "site.example", **headers}.items()},
    }


def test_a_valid_token_sets_the_identity_and_replaces_a_forged_one() -> None:
    forwarded = edge_auth.decide(
        request("/api/changes", cookie=f"a=b; ttp_id_token={token()}", **{"x-ttp-user": "mallory"}), CONFIG
    )
    assert forwarded["headers"]["x-ttp-user"] == [{"key": "x-ttp-user", "value": "bob@example.com"}]


@pytest.mark.parametrize(
    "bad",
    [
        token(exp=time.time() - 3600),
        token(aud="other-app"),
        token(iss="https://evil.example.com"),
        token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "not.a.token",
    ],
    ids=["expired", "audience", "issuer", "signature", "malformed"],
)
def test_the_api_refuses_a_bad_token_with_401_and_strips_the_header(bad: str) -> None:
    response = edge_auth.decide(
        request("/api/changes", authorization=f"Bearer {bad}", **{"x-ttp-user": "mallory"}), CONFIG
    )
    assert response["status"] == "401"
    assert "not signed in" in json.loads(response["body"])["message"]


def test_a_page_without_a_token_redirects_to_the_providers_sign_in() -> None:
    response = edge_auth.decide(request("/change.html"), CONFIG)
    assert response["status"] == "302"
    location = response["headers"]["location"][0]["value"]
    assert location.startswith("https://idp.example.com/authorize?client_id=ttp-site&response_type=id_token")
    assert "redirect_uri=https%3A%2F%2Fsite.example%2Fauth%2Fcallback.html" in location
    assert edge_auth.decide(request("/auth/callback.html"), CONFIG)["uri"] == "/auth/callback.html"
