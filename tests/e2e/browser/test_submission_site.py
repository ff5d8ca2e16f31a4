"""The submission site in a real browser (Debian's chromium + chromedriver) against the local world that
``make emulator`` runs: the sample synthesized with the site, deployed on the emulator, every service
running, the site's API under its deployed role behind the local sign-in stand-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import deployed as dp
from tests.support.webdriver import Browser, find_browser

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOT = os.environ.get("TTP_SITE_SCREENSHOT")  # docs/change-page.png is made with this set

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m devtools.local_run` (make emulator) in the background on the session's sample assembly
    (what make emulator synthesizes: ``demo.synthesize`` with the demo's context); the site address it prints."""
    if find_browser() is None:
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver; .ci/run does)"
        )
    assembly = dp.sample_assembly_dir(tmp_path_factory)
    log = (tmp_path_factory.mktemp("logs") / "local_run.err").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_run", "--skip-synth", "--assembly", str(assembly)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert process.stdout is not None
    url = ""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not url:
        line = process.stdout.readline().decode()
        if not line:
            break
        if line.startswith("# submission site"):
            url = line.rsplit(" ", 1)[-1].strip()
    if not url:
        process.kill()
        raise AssertionError(f"make emulator printed no site address (stderr in {log.name})")
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(60)


@pytest.fixture(scope="module")
def browser(site: str) -> Iterator[Browser]:
    found = find_browser()
    assert found is not None
    driver = Browser(*found)
    try:
        driver.get(site + "/")  # redirected to the local sign-in stand-in
        driver.type(driver.by_id("user"), "alice@example.com")
        driver.click(driver.by_id("sign-in"))
        driver.wait_text("#whoami", lambda t: "alice@example.com" in t)
        yield driver
    finally:
        driver.quit()


def _status(url: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _fill(browser: Browser, change_id: str, title: str, customers: list[str]) -> None:
    for field, value in (("change_id", change_id), ("title", title), ("summary", "Gateway patch window")):
        element = browser.by_id(field)
        browser.clear(element)
        if value:
            browser.type(element, value)
    browser.script(
        "var want = arguments[0]; Array.from(document.getElementById('customers').options)"
        ".forEach(function (o) { o.selected = want.indexOf(o.value) >= 0; });",
        customers,
    )


def test_unauthenticated_api_request_is_refused(site: str) -> None:
    change = {"change_id": "CHG-ANON", "title": "x", "customers": ["hts"]}
    assert _status(f"{site}/api/customers") == 401
    assert _status(f"{site}/api/changes", json.dumps(change).encode()) == 401
    forged = urllib.request.Request(f"{site}/api/customers", headers={"x-ttp-user": "mallory"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=30)
    assert refused.value.code == 401


def test_bad_field_shows_the_models_message_and_writes_nothing(browser: Browser, site: str) -> None:
    browser.get(site + "/index.html")
    browser.wait_text("#whoami", lambda t: "alice" in t)
    _fill(browser, "CHG-BAD1", "", ["hts"])
    browser.click(browser.by_id("submit-button"))
    message = browser.wait_text('[id="error-title"]', bool)
    assert message == "String should have at least 1 character"
    status = browser.script("return fetch('/api/changes/CHG-BAD1').then(function (r) { return r.status; });")
    assert status == 404


def test_draft_reopen_submit_to_two_customers_and_follow_to_processed(browser: Browser, site: str) -> None:
    browser.get(site + "/index.html")
    browser.wait_text("#whoami", lambda t: "alice" in t)
    _fill(browser, "CHG-WEB1", "Patch the edge gateways", ["hts", "htsnonprod"])
    browser.click(browser.by_id("save-draft-button"))
    browser.wait_text("#form-message", lambda t: "Draft CHG-WEB1 saved by alice@example.com" in t)

    browser.get(site + "/index.html")  # a fresh page: reopen the draft
    browser.wait_text("#whoami", lambda t: "alice" in t)
    browser.type(browser.by_id("open-draft-id"), "CHG-WEB1")
    browser.click(browser.by_id("open-draft-button"))
    browser.wait_text("#form-message", lambda t: "opened" in t)
    assert browser.script("return document.getElementById('title').value") == "Patch the edge gateways"
    assert browser.script(
        "return Array.from(document.getElementById('customers').selectedOptions).map(function (o) { return o.value; })"
    ) == ["hts", "htsnonprod"]

    browser.click(browser.by_id("submit-button"))
    assert browser.wait_text("#trigger-hts", bool) == "hts trigger written"
    assert browser.wait_text("#trigger-htsnonprod", bool) == "htsnonprod trigger written"

    browser.click(browser.by_id("result-link"))
    browser.wait_text("#change-message", lambda t: t == "Processed for every customer.", timeout=180)
    rows = browser.text(browser.by_id("customer-rows"))
    assert "hts" in rows and "htsnonprod" in rows
    audit = browser.text(browser.by_id("audit-rows"))
    assert "alice@example.com submitted" in audit
    if SCREENSHOT:
        browser.screenshot(Path(SCREENSHOT))
