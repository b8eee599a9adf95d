"""Fixtures of the UI tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (see ``browser.py``)."""
    from playwright.sync_api import sync_playwright

    from .browser import launch

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server, admin_user):
    """A browser page signed in as the administrator (a module may define its own ``page``)."""
    from .browser import sign_in

    context, pg = sign_in(browser, live_server, "admin", "admin-pass")
    yield pg
    context.close()
