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
from typing import Any

import pytest

from tests.support import deployed as dp
from tests.support.webdriver import ELEMENT, Browser, find_browser

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
        # without the bootstrap gate, which decides the stacks before they are created (~3.5 CPU s; test_demo's
        # full run of make demo keeps it): the world is the one make emulator deploys
        [sys.executable, "-m", "devtools.local_run", "--skip-synth", "--no-bootstrap-gate", "--assembly", assembly],
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
        "var want = arguments[0]; document.querySelectorAll('#customers input[type=checkbox]')"
        ".forEach(function (box) { box.checked = want.indexOf(box.value) >= 0; });",
        customers,
    )


def _chosen(browser: Browser) -> Any:
    return browser.script(
        "return Array.from(document.querySelectorAll('#customers input:checked')).map(function (b) { return b.value; })"
    )


TAB, ENTER, SPACE = "\ue004", "\ue007", " "
FOCUS_STATE = """var e = document.activeElement, s = getComputedStyle(e);
return {id: e.id, tag: e.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0,
        inner: !e.matches(':focus')};"""
"""Where the focus is and how it is drawn. ``inner``: the focus is on a part inside a built-in control
(the calendar button of a date-time field), which the browser draws its own ring around."""
CONTROLS = "input:not([type=hidden]), select, textarea, button, a[href]"


def press(browser: Browser, *keys: str) -> None:
    """Keys pressed and released one after the other, as a keyboard sends them (WebDriver actions)."""
    strokes = [{"type": kind, "value": key} for key in keys for kind in ("keyDown", "keyUp")]
    browser.cmd("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": strokes}]})


def tab_to(browser: Browser, element_id: str, limit: int = 60) -> None:
    """Tab until ``element_id`` has the focus; every control passed on the way shows a visible focus ring."""
    passed = []
    for _ in range(limit):
        press(browser, TAB)
        state = browser.script(FOCUS_STATE)
        passed.append(state["id"] or state["tag"])
        if state["tag"] != "BODY" and not state["inner"]:
            assert state["outline"] != "none" and state["width"] >= 2, f"no visible focus on {state}"
        if state["id"] == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}; the focus went through {passed}")


def assert_fits_a_laptop_screen(browser: Browser) -> None:
    """At 100 % zoom in a 1366 px wide window (CHROMIUM_FLAGS): no sideways scrolling, 16 px text."""
    layout = browser.script(
        "var d = document.documentElement; return {wider: d.scrollWidth - d.clientWidth, zoom: window.devicePixelRatio,"
        " font: parseFloat(getComputedStyle(document.body).fontSize), width: window.innerWidth};"
    )
    assert layout["zoom"] == 1 and layout["width"] <= 1366 and layout["wider"] <= 0 and layout["font"] >= 16, layout


def unlabelled(browser: Browser) -> list[str]:
    """Form controls and links of the page without an accessible name (as the browser computes it)."""
    found = []
    for element in browser.cmd("POST", "/elements", {"using": "css selector", "value": CONTROLS}):
        ref = element[ELEMENT]
        if not browser.cmd("GET", f"/element/{ref}/displayed"):
            continue
        if not str(browser.cmd("GET", f"/element/{ref}/computedlabel")).strip():
            found.append(browser.cmd("GET", f"/element/{ref}/property/outerHTML")[:120])
    return found


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
    browser.click(browser.by_id("meeting_wanted"))
    for field, value in (("meeting.start_time", "2027-01-05T10:00"), ("meeting.end_time", "2027-01-05T11:00")):
        browser.script("document.getElementById(arguments[0]).value = arguments[1];", field, value)
    browser.type(browser.by_id("meeting.subject"), "CAB: edge gateways")
    browser.click(browser.by_id("save-draft-button"))
    browser.wait_text("#form-message", lambda t: "Draft CHG-WEB1 saved by alice@example.com" in t)

    browser.get(site + "/index.html")  # a fresh page: reopen the draft
    browser.wait_text("#whoami", lambda t: "alice" in t)
    browser.type(browser.by_id("open-draft-id"), "CHG-WEB1")
    browser.click(browser.by_id("open-draft-button"))
    browser.wait_text("#form-message", lambda t: "opened" in t)
    assert browser.script("return document.getElementById('title').value") == "Patch the edge gateways"
    assert _chosen(browser) == ["hts", "htsnonprod"]

    browser.click(browser.by_id("submit-button"))
    assert browser.wait_text("#trigger-hts", bool) == "hts trigger written"
    assert browser.wait_text("#trigger-htsnonprod", bool) == "htsnonprod trigger written"

    browser.click(browser.by_id("result-link"))
    browser.wait_text("#change-message", lambda t: t == "Processed for every customer.", timeout=180)
    rows = browser.text(browser.by_id("customer-rows"))
    assert "hts" in rows and "htsnonprod" in rows
    audit = browser.text(browser.by_id("audit-rows"))
    assert "alice@example.com submitted" in audit
    meeting = browser.text(browser.by_id("meeting"))
    assert meeting.startswith("Scheduled: CAB: edge gateways ·") and "attendees" in meeting, meeting
    assert "{" not in meeting  # words, not the stored JSON
    if SCREENSHOT:
        browser.screenshot(Path(SCREENSHOT))


def test_create_save_draft_and_submit_with_the_keyboard_only(browser: Browser, site: str) -> None:
    """Tab, Enter and Space (and typing into text fields): no click, no script setting a value."""
    browser.get(site + "/index.html")
    browser.wait_text("#whoami", lambda t: "alice" in t)
    browser.wait_text("#customers", lambda t: "htsnonprod" in t)
    assert unlabelled(browser) == []
    assert_fits_a_laptop_screen(browser)
    tab_to(browser, "change_id")
    press(browser, *"CHG-KEY1")
    tab_to(browser, "title")
    press(browser, *"Keyboard only change")
    tab_to(browser, "customer-hts")
    press(browser, SPACE)
    tab_to(browser, "customer-htsnonprod")
    press(browser, SPACE)
    assert _chosen(browser) == ["hts", "htsnonprod"]
    tab_to(browser, "save-draft-button")
    press(browser, ENTER)
    browser.wait_text("#form-message", lambda t: "Draft CHG-KEY1 saved by alice@example.com" in t)

    tab_to(browser, "submit-button")
    press(browser, SPACE)
    assert browser.wait_text("#trigger-hts", bool) == "hts trigger written"
    assert browser.wait_text("#trigger-htsnonprod", bool) == "htsnonprod trigger written"
    assert browser.script(FOCUS_STATE)["id"] == "result-link"  # the result is announced where the focus is
    press(browser, ENTER)
    browser.wait_text("#change-heading", lambda t: t.startswith("CHG-KEY1"))
    browser.wait_text("#customer-rows", lambda t: "htsnonprod" in t)
    assert unlabelled(browser) == []
    assert_fits_a_laptop_screen(browser)
    tab_to(browser, "resubmit-link")


def test_resubmit_a_new_revision_from_the_change_page(browser: Browser, site: str) -> None:
    browser.get(site + "/index.html")
    browser.wait_text("#customers", lambda t: "htsnonprod" in t)
    _fill(browser, "CHG-RE1", "Patch the gateways", ["hts", "htsnonprod"])
    browser.click(browser.by_id("submit-button"))
    browser.wait_text("#result-summary", lambda t: t == "CHG-RE1 revision 1 archived.")

    browser.get(site + "/change.html?id=CHG-RE1")
    browser.wait_text("#change-heading", lambda t: t.startswith("CHG-RE1"))
    browser.click(browser.by_id("resubmit-link"))
    browser.wait_text("#form-heading", lambda t: t == "Resubmit CHG-RE1 (revision 2)")
    assert browser.script("return document.getElementById('change_id').readOnly") is True
    assert browser.script("return document.getElementById('title').value") == "Patch the gateways"
    assert _chosen(browser) == ["hts", "htsnonprod"]
    title = browser.by_id("title")
    browser.clear(title)
    browser.type(title, "Patch the gateways, second window")
    browser.click(browser.by_id("submit-button"))
    browser.wait_text("#result-summary", lambda t: t == "CHG-RE1 revision 2 archived.")
    assert browser.text(browser.by_id("trigger-hts")) == "hts trigger written"
    assert browser.text(browser.by_id("trigger-htsnonprod")) == "htsnonprod trigger written"

    browser.click(browser.by_id("result-link"))
    browser.wait_text("#revisions", lambda t: t == "revision 1, revision 2")
    assert browser.wait_text("#change-heading", bool) == "CHG-RE1: Patch the gateways, second window"
    audit = browser.text(browser.by_id("audit-rows"))
    assert audit.count("alice@example.com submitted") == 2, audit
