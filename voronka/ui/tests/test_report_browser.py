"""Reports in a real browser (Chromium via Playwright): the head opens his dashboard, the funnel's band opens
the deals behind it, and a report's filter bar regroups the table."""

from __future__ import annotations

import pytest

from voronka.analytics.tests.company import build

from .browser import MARKS, sign_in

pytestmark = MARKS


@pytest.fixture
def head_page(browser, live_server, monkeypatch):
    co = build(monkeypatch)
    context, pg = sign_in(browser, live_server, "head", "head-pass", language="en")
    pg.base, pg.co = live_server.url, co
    yield pg
    context.close()


def test_dashboard_funnel_click_and_regrouping(head_page):
    page = head_page
    page.click("nav >> text=Reports")
    page.click("text=Head's dashboard")
    page.fill("#d-from", "2026-01-01")
    page.fill("#d-to", "2026-02-28")
    page.click("form.toolbar button[type=submit]")
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart").count() >= 4
    # the funnel band of «Счёт» (3 deals) opens exactly those deals
    band = page.locator("svg.chart a").filter(has=page.locator("title", has_text="Счёт: 3"))
    band.locator("rect").first.click()
    page.wait_for_url("**/crm/deals/?**")
    rows = page.locator("#rows tr")
    titles = sorted(rows.nth(i).inner_text() for i in range(rows.count()))
    assert len(titles) == 3 and not any("D2" in t for t in titles)
    # a report's filter bar: new leads by source
    page.goto(page.base + "/reports/new-leads/?date_from=2026-01-01&date_to=2026-02-28")
    page.select_option("#r-group", "source")
    page.click("#report-filters button[type=submit]")
    page.wait_for_selector(".report-table tbody th:has-text('phone')")
    assert page.locator(".report-table tbody tr").count() == 2
