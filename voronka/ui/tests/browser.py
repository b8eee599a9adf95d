"""Shared pieces of the browser tests: Debian's Chromium driven by Playwright, and signing in.

The ``browser`` fixture (one Chromium per test module) lives in this folder's ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MARKS = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true",
                       reason="Chromium is not installed on this machine (CI installs Debian's chromium)"),
]
# Playwright's sync API runs an event loop in the test's thread; the ORM calls in tests are ordinary blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"])


def sign_in(browser, live_server, username: str, password: str, *, language: str | None = None):
    """A new browser context signed in as ``username``: (context, page); ``page.base`` is the server's URL.
    ``language``: the language cookie to start with (none: the browser's Accept-Language, English)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    if language:
        context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    pg = context.new_page()
    pg.set_default_timeout(20000)
    pg.set_default_navigation_timeout(60000)  # a shared, busy machine: the first page may be slow
    pg.base = live_server.url
    pg.goto(live_server.url + "/login/")
    pg.fill("#id_username", username)
    pg.fill("#id_password", password)
    pg.click("button[type=submit]")
    pg.wait_for_url(live_server.url + "/")
    return context, pg
