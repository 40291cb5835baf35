"""Playwright fixtures: one Debian Chromium per session, a fresh browser context per test.

The pages come from pytest-django's ``live_server`` (a thread of this process,
on the same test database the ``worker`` fixture's Celery process uses), so a
test can create rows with the ORM, act in the browser and see the worker's
results. ``playwright install`` cannot download browsers here; Debian's
``chromium`` (tests/stack/install.sh) is used instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses ORM
# calls from a thread with a running loop unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
# The README's pictures are rewritten only when asked (`make screenshots`); a test run leaves the tree clean
# and puts its pictures under var/test/screenshots instead.
SCREENSHOTS = REPO / ("docs" if os.environ.get("WRITE_SCREENSHOTS") == "1" else "var/test") / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(reason=f"{CHROMIUM} is missing: run `bash tests/stack/install.sh` as root (it installs chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors(list):
    """Console errors and uncaught exceptions seen by a page (a CSP violation shows up here)."""


@pytest.fixture
def page(browser, live_server, request) -> Iterator:
    """A page in a new context (own cookies), with the live server as base URL."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors = PageErrors()

    def on_console(message) -> None:
        # HTTP failures are judged by on_response below: a 400 from the decode endpoint while someone
        # types is an answer the page handles, not an error. The rest (CSP refusals included) counts.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    def on_response(response) -> None:
        path = urlsplit(response.url).path
        # Django's admin pages name no icon, so Chromium asks for /favicon.ico; that 404 is not ours.
        if response.status >= 500 or (response.status == 404 and path != "/favicon.ico"):
            errors.append(f"HTTP {response.status} for {response.request.method} {path}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.errors = errors
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            # Left in pytest's temp dir for whoever reads the failure.
            failure = Path(str(request.config._tmp_path_factory.getbasetemp())) / f"{request.node.name}.png"
            # A failed screenshot must not hide the test's own failure.
            with contextlib.suppress(Exception):
                page.screenshot(path=str(failure), full_page=True)
                print(f"screenshot of the failing page: {failure}")
        context.close()
    assert not errors, f"the browser reported errors: {errors}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def log_in(page, username: str, password: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    assert page.locator("#signed-in-user").inner_text() == f"Signed in as {username}"


def unlabelled_fields(page) -> list[str]:
    """Form fields without a label tied to them (<label for>, a wrapping label, or aria-label[ledby]).

    Buttons (``input type=submit`` included) are named by their own text, so they are not fields here.
    """
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
              'input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]), select, textarea'))
            .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.name || el.id || el.outerHTML.slice(0, 80))"""
    )


def fields_without_help(page, form: str) -> list[str]:
    """Fields of ``form`` with no help text tied to them (aria-describedby on the field or its radio fieldset)."""
    return page.evaluate(
        """form => Array.from(document.querySelector(form).querySelectorAll(
              'input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea'))
            .filter(el => {
              const group = el.closest('fieldset[aria-describedby]');
              const ids = ((el.getAttribute('aria-describedby') || '') + ' '
                           + (group ? group.getAttribute('aria-describedby') : '')).split(/\\s+/);
              return !ids.some(id => {
                const help = id && document.getElementById(id);
                return help && help.classList.contains('form-text') && help.textContent.trim() !== '';
              });
            })
            .map(el => el.name || el.id)""",
        form,
    )


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 = no sideways scrolling)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def screenshot(page, name: str) -> Path:
    """Save the whole page, as tall as its content and 1100 px wide, to SCREENSHOTS/<name>."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    size = page.viewport_size
    page.set_viewport_size({"width": 1100, "height": 400})
    try:
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    finally:
        page.set_viewport_size(size)
    return path
