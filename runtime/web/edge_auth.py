"""Lambda@Edge viewer-request check in front of every page and API call of the submission site.

The pattern of AWS's authorization@edge samples for OIDC at CloudFront, with the authorization-code flow
and PKCE (RFC 7636) instead of the implicit flow, so no token ever travels in a URL or is readable by
the page's script:

1. A page request without a valid session is redirected to the provider's authorization endpoint
   (``response_type=code``, ``code_challenge`` = S256 of a fresh ``code_verifier``, a fresh ``state``
   and ``nonce``). The three secrets go into short-lived cookies (``HttpOnly; Secure; SameSite=Lax``,
   :data:`SIGN_IN_SECONDS`, the callback's path only). ``Lax``, not ``Strict``: the callback is a
   top-level navigation coming from the provider's site, which a ``Strict`` cookie would not follow.
2. The provider sends the browser to the callback (``callback_path``) with ``code`` and ``state``.
   Before anything is exchanged, ``state`` must equal its cookie and the ``code_verifier`` and ``nonce`` cookies must be
   there (a callback this browser did not start is refused). The code is then exchanged at the token
   endpoint with the verifier; the ID token must carry the cookie's ``nonce``, this provider's issuer,
   this site's client id as audience, be unexpired, and be signed RS256 by a key of the provider's JWKS.
3. The ID token becomes the session cookie (:data:`SESSION_COOKIE`, ``HttpOnly; Secure; SameSite=Lax``,
   until the token expires); the sign-in cookies are cleared; the browser goes back to the page it asked
   for (a path on this site only).
4. Every other request is forwarded only with a session that passes the same checks (nonce excepted: it
   was checked when the session was made), with :data:`IDENTITY_HEADER` set to the token's ``email``
   (else ``sub``); a copy the viewer sent is removed first. Without one, ``/api/…`` answers 401.

The site's client is public (no client secret): PKCE is what binds the code to the browser that asked
for it, and a secret could not be kept in an edge function anyway. Lambda@Edge has no environment
variables: the construct bundles ``config.json`` beside this file (``issuer``, ``client_id``,
``authorize_url``, ``token_url``, ``jwks_url``, ``callback_path``). Standard library only, one network
call per sign-in (two on a cold start or a key rotation), each bounded well inside the viewer-request
limit of 5 seconds.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

IDENTITY_HEADER = "x-ttp-user"
SESSION_COOKIE = "ttp_session"
STATE_COOKIE = "ttp_auth_state"
NONCE_COOKIE = "ttp_auth_nonce"
VERIFIER_COOKIE = "ttp_auth_verifier"
SCOPE = "openid email"
SIGN_IN_SECONDS = 300
"""How long a started sign-in may take at the provider before its cookies expire."""
LEEWAY_SECONDS = 60
NETWORK_TIMEOUT_SECONDS = 2.0
"""Per call to the provider: a cold start's JWKS fetch plus the code exchange stay under the 5 s limit."""
JWKS_REFRESH_SECONDS = 300
"""An unknown key id refetches the JWKS at most this often (a forged ``kid`` cannot make every request
call the provider)."""
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_jwks: dict[str, dict[str, Any]] = {}
_jwks_fetched_at = float("-inf")

Exchange = Callable[[str, dict[str, str]], dict[str, Any]]


class InvalidToken(Exception):
    """The ID token (or the exchange that should have produced one) is refused; the text says why."""


class BadCallback(Exception):
    """A callback this browser did not start (or the provider's error): refused before any exchange."""


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64_text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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


def _key(config: dict[str, Any], kid: str) -> dict[str, Any] | None:
    global _jwks_fetched_at
    if kid not in _jwks and time.monotonic() - _jwks_fetched_at > JWKS_REFRESH_SECONDS:
        with urllib.request.urlopen(config["jwks_url"], timeout=NETWORK_TIMEOUT_SECONDS) as response:
            keys = {key["kid"]: key for key in json.load(response)["keys"] if key.get("kty") == "RSA"}
        _jwks.clear()
        _jwks.update(keys)
        _jwks_fetched_at = time.monotonic()
    return _jwks.get(kid)


def validate_token(
    token: str, config: dict[str, Any], now: float | None = None, nonce: str | None = None
) -> dict[str, Any]:
    """The token's claims, or :class:`InvalidToken` saying why it is refused. ``nonce``: the value the
    sign-in sent, which the token must carry (the callback's check)."""
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(_b64(header_b64))
        claims = json.loads(_b64(claims_b64))
        signature = _b64(signature_b64)
    except ValueError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    if header.get("alg") != "RS256":
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not RS256")
    key = _key(config, str(header.get("kid", "")))
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
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise InvalidToken("the token's nonce is not the one this sign-in sent")
    return dict(claims)


def exchange_code(url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST the authorization code to the provider's token endpoint; its JSON answer."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_SECONDS) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise InvalidToken(f"the token endpoint answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise InvalidToken(f"the token endpoint could not be reached: {exc}") from None
    return answer


def _cookies(headers: dict[str, list[dict[str, str]]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in headers.get("cookie", []):
        for part in item["value"].split(";"):
            name, _, value = part.strip().partition("=")
            found.setdefault(name, value)
    return found


def _cookie(name: str, value: str, max_age: int, path: str = "/") -> dict[str, str]:
    return {
        "key": "Set-Cookie",
        "value": f"{name}={value}; Path={path}; Secure; HttpOnly; SameSite=Lax; Max-Age={max(max_age, 0)}",
    }


def _respond(
    status: int, description: str, headers: dict[str, str], body: str = "", cookies: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": str(status),
        "statusDescription": description,
        "headers": {k.lower(): [{"key": k, "value": v}] for k, v in {**headers, "Cache-Control": "no-store"}.items()},
        "body": body,
    }
    if cookies:
        response["headers"]["set-cookie"] = cookies
    return response


def _page(status: int, description: str, message: str) -> dict[str, Any]:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title></head><body><main>'
        f"<h1>Sign-in failed</h1><p>{html.escape(message)}</p>"
        '<p><a href="/">Sign in again</a></p></main></body></html>'
    )
    return _respond(status, description, {"Content-Type": "text/html; charset=utf-8"}, body)


def _start_sign_in(request: dict[str, Any], config: dict[str, Any], host: str) -> dict[str, Any]:
    back = request.get("uri", "/") + (f"?{request['querystring']}" if request.get("querystring") else "")
    state = f"{secrets.token_urlsafe(24)}.{_b64_text(back.encode())}"
    nonce = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # 64 characters of the unreserved set RFC 7636 allows
    query = urllib.parse.urlencode(
        {
            "client_id": config["client_id"],
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": f"https://{host}{config['callback_path']}",
            "state": state,
            "nonce": nonce,
            "code_challenge": _b64_text(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
    )
    cookies = [
        _cookie(name, value, SIGN_IN_SECONDS, config["callback_path"])
        for name, value in ((STATE_COOKIE, state), (NONCE_COOKIE, nonce), (VERIFIER_COOKIE, verifier))
    ]
    return _respond(302, "Found", {"Location": f"{config['authorize_url']}?{query}"}, cookies=cookies)


def _return_path(state: str) -> str:
    try:
        back = _b64(state.rsplit(".", 1)[1]).decode()
    except (IndexError, ValueError):
        return "/"
    return back if back.startswith("/") and not back.startswith("//") and "\\" not in back else "/"


def _callback(
    request: dict[str, Any], config: dict[str, Any], host: str, now: float | None, exchange: Exchange
) -> dict[str, Any]:
    query = dict(urllib.parse.parse_qsl(request.get("querystring", ""), keep_blank_values=True))
    cookies = _cookies(request["headers"])
    try:
        if "error" in query:
            raise BadCallback(f"the provider refused: {query['error']}: {query.get('error_description', '')}")
        state, nonce, verifier = cookies.get(STATE_COOKIE), cookies.get(NONCE_COOKIE), cookies.get(VERIFIER_COOKIE)
        if not state:
            raise BadCallback("no sign-in state cookie (it lasts 5 minutes, or this browser did not start the sign-in)")
        if not secrets.compare_digest(query.get("state", ""), state):
            raise BadCallback("the state does not match this browser's sign-in (another tab, or a forged callback)")
        if not verifier:
            raise BadCallback("no code_verifier cookie: this browser did not start the sign-in")
        if not nonce:
            raise BadCallback("no nonce cookie: this browser did not start the sign-in")
        if not query.get("code"):
            raise BadCallback("the provider sent no authorization code")
    except BadCallback as exc:
        return _page(400, "Bad Request", f"{exc}: sign in again")
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": f"https://{host}{config['callback_path']}",
        "client_id": config["client_id"],
        "code_verifier": verifier,
    }
    try:
        answer = exchange(config["token_url"], form)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidToken("the token endpoint returned no id_token (is the scope openid allowed?)")
        claims = validate_token(id_token, config, now, nonce=nonce)
    except InvalidToken as exc:
        return _page(401, "Unauthorized", f"sign-in refused: {exc}; sign in again")
    lifetime = int(float(claims["exp"]) - (time.time() if now is None else now))
    cookies_out = [_cookie(SESSION_COOKIE, id_token, lifetime)]
    cleared = (STATE_COOKIE, NONCE_COOKIE, VERIFIER_COOKIE)
    cookies_out += [_cookie(name, "", 0, config["callback_path"]) for name in cleared]
    return _respond(302, "Found", {"Location": _return_path(state)}, cookies=cookies_out)


def decide(
    request: dict[str, Any], config: dict[str, Any], now: float | None = None, exchange: Exchange = exchange_code
) -> dict[str, Any]:
    """The CloudFront request to forward (identity header set), or the response that answers it."""
    headers = request["headers"]
    headers.pop(IDENTITY_HEADER, None)  # only this function sets it
    host = headers.get("host", [{"value": ""}])[0]["value"]
    uri = request.get("uri", "/")
    if uri == config["callback_path"]:
        return _callback(request, config, host, now, exchange)
    session = _cookies(headers).get(SESSION_COOKIE, "")
    reason = "no session"
    if session:
        try:
            claims = validate_token(session, config, now)
        except InvalidToken as exc:
            reason = str(exc)
        else:
            user = str(claims.get("email") or claims.get("sub") or "")
            headers[IDENTITY_HEADER] = [{"key": IDENTITY_HEADER, "value": user}]
            return request
    if uri.startswith("/api/"):
        body = json.dumps({"message": f"not signed in ({reason}): reload the page to sign in", "fields": {}})
        return _respond(401, "Unauthorized", {"Content-Type": "application/json"}, body)
    return _start_sign_in(request, config, host)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = json.loads((Path(__file__).parent / "config.json").read_text())
    return decide(event["Records"][0]["cf"]["request"], config)
