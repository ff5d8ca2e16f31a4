"""Lambda@Edge viewer-request check in front of every page and API call of the submission site.

The pattern AWS documents for OIDC at CloudFront: a viewer-request function validates the OpenID Connect
ID token the viewer presents (the ``ttp_id_token`` cookie, or ``Authorization: Bearer``) against the
provider's published keys (JWKS, RS256), its issuer, audience (the site's client id) and expiry. Valid:
the request goes on with :data:`IDENTITY_HEADER` set to the token's ``email`` (else ``sub``) — any copy the
viewer sent is removed first, so the API records who really signed in. Not valid: ``/api/…`` answers 401;
a page redirects to the provider's sign-in, which returns to ``/auth/callback.html`` (the one page served
without a token: it stores the token in a ``Secure; SameSite=Strict`` cookie and goes back).

Lambda@Edge has no environment variables: the construct bundles ``config.json`` beside this file
(``issuer``, ``client_id``, ``jwks_url``, ``authorize_url``). Standard library only: the function is
bundled alone, without the runtime package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

IDENTITY_HEADER = "x-ttp-user"
COOKIE = "ttp_id_token"
CALLBACK_PATH = "/auth/callback.html"
PUBLIC_PATHS = frozenset({CALLBACK_PATH, "/auth/callback.js"})
LEEWAY_SECONDS = 60
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_jwks: dict[str, dict[str, Any]] = {}


class InvalidToken(Exception):
    pass


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(_b64(text), "big")


def verify_rs256(signing_input: bytes, signature: bytes, n: int, e: int) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2), the signature ID tokens carry as RS256."""
    size = (n.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    decoded = pow(int.from_bytes(signature, "big"), e, n).to_bytes(size, "big")
    digest = _SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (size - 3 - len(digest)) + b"\x00" + digest
    return secrets.compare_digest(decoded, expected)


def _keys(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if not _jwks:
        with urllib.request.urlopen(config["jwks_url"], timeout=3) as response:
            _jwks.update({key["kid"]: key for key in json.load(response)["keys"] if key.get("kty") == "RSA"})
    return _jwks


def validate_token(token: str, config: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The token's claims, or :class:`InvalidToken` saying why it is refused."""
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(_b64(header_b64))
        claims = json.loads(_b64(claims_b64))
        signature = _b64(signature_b64)
    except ValueError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    if header.get("alg") != "RS256":
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not RS256")
    key = _keys(config).get(header.get("kid", ""))
    if key is None:
        raise InvalidToken(f"unknown key id {header.get('kid')!r}")
    if not verify_rs256(f"{header_b64}.{claims_b64}".encode(), signature, _int(key["n"]), _int(key["e"])):
        raise InvalidToken("bad signature")
    at = time.time() if now is None else now
    if claims.get("iss") != config["issuer"]:
        raise InvalidToken(f"issuer {claims.get('iss')!r} is not {config['issuer']!r}")
    audience = claims.get("aud")
    if config["client_id"] not in (audience if isinstance(audience, list) else [audience]):
        raise InvalidToken("the token is not for this site's client id")
    if float(claims.get("exp", 0)) + LEEWAY_SECONDS < at:
        raise InvalidToken("expired")
    if float(claims.get("nbf", 0)) - LEEWAY_SECONDS > at:
        raise InvalidToken("not valid yet")
    return dict(claims)


def _token(headers: dict[str, list[dict[str, str]]]) -> str:
    for item in headers.get("authorization", []):
        if item["value"].lower().startswith("bearer "):
            return item["value"][7:].strip()
    for item in headers.get("cookie", []):
        for part in item["value"].split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
    return ""


def _respond(status: int, description: str, headers: dict[str, str], body: str = "") -> dict[str, Any]:
    return {
        "status": str(status),
        "statusDescription": description,
        "headers": {k.lower(): [{"key": k, "value": v}] for k, v in headers.items()},
        "body": body,
    }


def decide(request: dict[str, Any], config: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The CloudFront request to forward (identity header set), or the response that refuses it."""
    headers = request["headers"]
    headers.pop(IDENTITY_HEADER, None)  # only this function sets it
    uri = request.get("uri", "/")
    if uri in PUBLIC_PATHS:
        return request
    token = _token(headers)
    reason = "no token"
    if token:
        try:
            claims = validate_token(token, config, now)
        except InvalidToken as exc:
            reason = str(exc)
        else:
            user = str(claims.get("email") or claims.get("sub") or "")
            headers[IDENTITY_HEADER] = [{"key": IDENTITY_HEADER, "value": user}]
            return request
    if uri.startswith("/api/"):
        body = json.dumps({"message": f"not signed in ({reason}): sign in through the site", "fields": {}})
        return _respond(401, "Unauthorized", {"Content-Type": "application/json"}, body)
    host = headers.get("host", [{"value": ""}])[0]["value"]
    query = urllib.parse.urlencode(
        {
            "client_id": config["client_id"],
            "response_type": "id_token",
            "response_mode": "fragment",
            "scope": "openid email",
            "redirect_uri": f"https://{host}{CALLBACK_PATH}",
            "nonce": secrets.token_urlsafe(16),
            "state": uri,
        }
    )
    return _respond(302, "Found", {"Location": f"{config['authorize_url']}?{query}", "Cache-Control": "no-store"})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = json.loads((Path(__file__).parent / "config.json").read_text())
    return decide(event["Records"][0]["cf"]["request"], config)
