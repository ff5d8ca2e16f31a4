"""A minimal W3C WebDriver client (the HTTP protocol chromedriver speaks), standard library only.

Why not selenium: the few commands the browser tests need (navigate, find, click, type, read text,
screenshot) are a dozen JSON requests; this keeps the hash-locked dev requirements unchanged.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,900",
]


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    def __init__(self, chromium: str, chromedriver: str) -> None:
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="ttp-chromium-")
        self.driver = subprocess.Popen(
            [chromedriver, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"]},
        }
        try:
            self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})["sessionId"]
        except Exception:
            self.driver.terminate()
            raise

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"webdriver {method} {path}: {exc.read().decode()[:500]}") from None

    def cmd(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        found = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        if not isinstance(found, dict) or ELEMENT not in found:
            raise RuntimeError(f"no element {css}: {str(found)[:300]}")
        return str(found[ELEMENT])

    def by_id(self, element_id: str) -> str:
        return self.find(f'[id="{element_id}"]')

    def click(self, element: str) -> None:
        self.cmd("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self.cmd("POST", f"/element/{element}/value", {"text": text})

    def clear(self, element: str) -> None:
        self.cmd("POST", f"/element/{element}/clear", {})

    def text(self, element: str) -> str:
        return str(self.cmd("GET", f"/element/{element}/text"))

    def script(self, source: str, *args: Any) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": source, "args": list(args)})

    def wait_text(self, css: str, predicate: Any, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.text(self.find(css))
                if predicate(last):
                    return last
            except RuntimeError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{css}: still {last!r} after {timeout} s")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self) -> None:
        try:
            self.cmd("DELETE", "")
        finally:
            self.driver.terminate()
            self.driver.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)
