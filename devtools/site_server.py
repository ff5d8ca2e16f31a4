"""The submission site on loopback (``make emulator``, ``make demo``): its pages and its API, the API being
the deployed function's own handler (``runtime.web.app.handler``) run under the deployed API role's
credentials, assumed on the emulator, so the emulator's policy engine decides every request it makes.

In place of CloudFront and the Lambda@Edge OIDC check, a **local sign-in stand-in** (clearly labelled on
its page): ``/local-sign-in`` sets a ``ttp_local_user`` cookie with the name typed in; every page without
it redirects there, every ``/api/…`` request without it gets 401. As the edge check does, the server
strips any ``x-ttp-user`` the browser sends and sets it from the signed-in name; the pages get the
distribution's security headers (the same Content-Security-Policy).

    python -m devtools.site_server --assembly cdk.out.local --endpoint URL   # prints "site http://127.0.0.1:PORT"
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import os
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devtools.processes import terminate_with

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "runtime" / "web" / "static"
API_HANDLER = "runtime.web.app.handler"
COOKIE = "ttp_local_user"
SIGN_IN = "/local-sign-in"
LOCAL_OIDC = {
    "issuer": "https://local-sign-in.invalid",
    "client_id": "ttp-local",
    "authorize_url": "https://local-sign-in.invalid/authorize",
    "token_url": "https://local-sign-in.invalid/token",
    "jwks_url": "https://local-sign-in.invalid/jwks",
}
"""``ttp.site`` of the local world: never contacted (the stand-in replaces the edge check locally)."""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class SitePlan:
    """The deployed site API: its account, region, role and environment (from the template)."""

    account: str
    region: str
    role_arn: str
    environment: dict[str, str]


def site_plan(assembly: Path, endpoint: str) -> SitePlan | None:
    """The API function of the deployed assembly (None when ``ttp.site`` is off), its role's ARN read
    from the emulator's CloudFormation (the role's generated name)."""
    from devtools.local_deploy.assembly import read_assembly
    from devtools.local_deploy.resolve import Aws

    for stack in read_assembly(assembly):
        for resource in stack.template.get("Resources", {}).values():
            properties = resource.get("Properties", {})
            if resource.get("Type") != "AWS::Lambda::Function" or properties.get("Handler") != API_HANDLER:
                continue
            role_logical_id = properties["Role"]["Fn::GetAtt"][0]
            cfn = Aws(endpoint).client("cloudformation", stack.account, stack.region)
            role_name = cfn.describe_stack_resource(StackName=stack.stack_name, LogicalResourceId=role_logical_id)[
                "StackResourceDetail"
            ]["PhysicalResourceId"]
            variables = properties.get("Environment", {}).get("Variables", {})
            if not all(isinstance(v, str) for v in variables.values()):
                raise ValueError(f"{stack.stack_name}: the site API's environment is not literal: {variables}")
            return SitePlan(stack.account, stack.region, f"arn:aws:iam::{stack.account}:role/{role_name}", variables)
    return None


def start(assembly: Path, endpoint: str, logfile: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """Start the site server as its own process under the API role's credentials; (process, its URL)."""
    from devtools.local_deploy.resolve import Aws
    from devtools.local_run import assume

    plan = site_plan(assembly, endpoint)
    if plan is None:
        return None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **plan.environment,
        **assume(Aws(endpoint), plan.role_arn, plan.region),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": plan.region,
        "AWS_DEFAULT_REGION": plan.region,
        "PYTHONPATH": str(ROOT),
    }
    log = logfile.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.site_server", "--serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        preexec_fn=terminate_with(os.getpid()),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
    except BaseException:  # a Ctrl-C while it starts stops it too
        stop(process)
        raise
    if not line.startswith("site "):
        stop(process)
        raise RuntimeError(f"the site server did not start (log {logfile}): {line!r}")
    return process, line.removeprefix("site ")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait (SIGKILL after 10 s): the caller returns only once the server is gone."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _event(handler: BaseHTTPRequestHandler, body: bytes, user: str) -> dict[str, Any]:
    url = urllib.parse.urlsplit(handler.path)
    headers = {k.lower(): v for k, v in handler.headers.items() if k.lower() != "x-ttp-user"}
    headers["x-ttp-user"] = user
    return {
        "version": "2.0",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "http": {"method": handler.command, "path": url.path},
            "requestId": "local",
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def _sign_in_page(back: str) -> bytes:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local sign-in stand-in</title>
<link rel="stylesheet" href="/site.css"></head><body><main>
<p class="local-banner" role="note">LOCAL SIGN-IN STAND-IN — not IAM Identity Center. It exists only in
<code>make emulator</code> / <code>make demo</code>; the deployed site signs you in through your OIDC provider.</p>
<h1>Sign in (local)</h1>
<form method="post" action="{SIGN_IN}"><input type="hidden" name="next" value="{html.escape(back)}">
<label for="user">Your name or email</label><input id="user" name="user" autocomplete="username" required>
<button type="submit" id="sign-in">Sign in</button></form></main></body></html>""".encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "ttp-site-local"
    csp = ""

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _user(self) -> str:
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return urllib.parse.unquote(value)
        return ""

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", self.csp)
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == SIGN_IN:
            if self.command == "POST":
                form = urllib.parse.parse_qs(body.decode())
                user = form.get("user", [""])[0].strip()
                back = form.get("next", ["/"])[0]
                back = back if back.startswith("/") and not back.startswith("//") else "/"
                cookie = f"{COOKIE}={urllib.parse.quote(user)}; Path=/; HttpOnly; SameSite=Strict"
                self._send(303, b"", "text/plain", {"Location": back, "Set-Cookie": cookie})
            else:
                back = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("next", ["/"])[0]
                self._send(200, _sign_in_page(back), "text/html; charset=utf-8")
            return
        if path == "/site.css":
            self._send(200, (STATIC / "site.css").read_bytes(), "text/css")
            return
        user = self._user()
        if path.startswith("/api/"):
            if not user:
                message = {"message": "not signed in (local stand-in): sign in at /local-sign-in", "fields": {}}
                self._send(401, json.dumps(message).encode(), "application/json")
                return
            from runtime.web.app import handler

            response = handler(_event(self, body, user), None)
            data = response.get("body") or ""
            raw = base64.b64decode(data) if response.get("isBase64Encoded") else data.encode()
            headers = response.get("headers") or {}
            content_type = headers.pop("Content-Type", headers.pop("content-type", "application/json"))
            self._send(response["statusCode"], raw, content_type)
            return
        if not user:
            target = f"{SIGN_IN}?next={urllib.parse.quote(self.path)}"
            self._send(302, b"", "text/plain", {"Location": target})
            return
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        file = (STATIC / relative).resolve()
        if STATIC.resolve() not in file.parents or not file.is_file():
            self._send(404, b"not found", "text/plain")
            return
        self._send(200, file.read_bytes(), mimetypes.guess_type(file.name)[0] or "application/octet-stream")

    do_GET = do_POST = do_PUT = _handle


def serve(port: int = 0) -> None:
    from runtime.contract.site_headers import CONTENT_SECURITY_POLICY

    Handler.csp = CONTENT_SECURITY_POLICY
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"site http://127.0.0.1:{httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m devtools.site_server", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="serve here (the credentials are in the environment)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local")
    parser.add_argument("--endpoint", help="the emulator (AWS_ENDPOINT_URL) of a deployed local world")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
    else:
        started = start(args.assembly, args.endpoint, Path("site-server.log"))
        if started is None:
            sys.exit("no site in the assembly: set ttp.site (the demo's context does)")
        started[0].wait()
