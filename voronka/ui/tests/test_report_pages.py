"""Reports in the web interface: the menu, a page per report with its chart and linked numbers, dashboards,
plans; rights and bad filters."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from voronka.analytics.tests.company import build

pytestmark = pytest.mark.django_db

PERIOD = "date_from=2026-01-01&date_to=2026-02-28"


@pytest.fixture
def co(monkeypatch):
    return build(monkeypatch)


def browser(co, who) -> Client:
    c = Client()
    c.cookies["django_language"] = "en"
    c.force_login(co.users[who])
    return c


def test_menu_index_and_every_report_page(co):
    head = browser(co, "head")
    home = head.get("/").content.decode()
    assert 'href="/reports/"' in home
    r = head.get("/reports/")
    assert r.status_code == 200 and "End-to-end funnel" in r.content.decode()
    for slug in ("new-leads", "lead-conversion", "lead-speed", "deals", "funnel", "deal-amount", "lost-reasons",
                 "time-to-close", "stage-time", "managers", "support", "end-to-end", "plan-fact", "portrait"):
        r = head.get(f"/reports/{slug}/?{PERIOD}")
        assert r.status_code == 200, slug
    r = head.get(f"/reports/funnel/?{PERIOD}&pipeline={co.pipelines['sales'].pk}")
    text = r.content.decode()
    assert "<svg" in text and "Export to Excel" in text
    # the 3 deals that reached «Счёт» open as a list, and that list shows exactly them
    link = re.search(r'<a href="(/crm/deals/\?[^"]*reached_stage=\d+[^"]*)">3</a>', text)
    assert link, text
    listing = head.get(link.group(1).replace("&amp;", "&")).content.decode()
    assert all(f'/crm/deals/{co.deals[n].pk}/' in listing for n in ("D1", "D3", "D8"))
    assert f'/crm/deals/{co.deals["D2"].pk}/' not in listing
    # a month's new leads open the leads created in that month (in the viewer's time zone)
    text = head.get(f"/reports/new-leads/?{PERIOD}").content.decode()
    assert 'href="/crm/leads/?created_from=2026-02-01&amp;created_to=2026-02-28"' in text


def test_dashboards(co):
    head = browser(co, "head")
    r = head.get(f"/reports/dashboard/?{PERIOD}")
    text = r.content.decode()
    assert r.status_code == 200 and text.count("<svg") >= 4
    assert "150,000 ₽" in text or "150 000 ₽" in text or "150000" in text.replace(",", "").replace(" ", "")
    m1 = browser(co, "m1")
    r = m1.get(f"/reports/my/?{PERIOD}")
    assert r.status_code == 200 and "My dashboard" in r.content.decode()


def test_the_dashboards_new_leads_chart_takes_a_grain_that_fits_the_period(co):
    from voronka.ui.analytics_views import chart_grain

    assert [chart_grain(n) for n in (1, 31, 32, 92, 93, 365)] == ["day", "day", "week", "week", "month", "month"]
    head = browser(co, "head")
    for period, title in (("date_from=2026-02-01&date_to=2026-02-28", "New leads by day"),
                          (PERIOD, "New leads by week"),
                          ("date_from=2025-03-01&date_to=2026-02-28", "New leads by month")):
        text = head.get(f"/reports/dashboard/?{period}").content.decode()
        assert title in text, period
        others = {"New leads by day", "New leads by week", "New leads by month"} - {title}
        assert not any(o in text for o in others), period


def test_rights_and_bad_input(co):
    from voronka.identity.models import User

    User.objects.create_user("nobody", "n@example.ru", "x")
    nobody = Client()
    nobody.cookies["django_language"] = "en"
    nobody.force_login(User.objects.get(username="nobody"))
    assert 'href="/reports/"' not in nobody.get("/").content.decode()
    for url in ("/reports/", "/reports/new-leads/", "/reports/dashboard/", "/reports/plans/"):
        assert nobody.get(url).status_code == 404, url
    head = browser(co, "head")
    assert head.get("/reports/no-such-report/").status_code == 404
    r = head.get("/reports/new-leads/?date_from=2026-99-01")
    assert r.status_code == 422 and "Some filters are not valid." in r.content.decode()
    # a sales manager cannot export: no buttons
    assert "Export to Excel" not in browser(co, "m1").get(f"/reports/deals/?{PERIOD}").content.decode()


def test_plans_page(co):
    admin = browser(co, "admin")
    r = admin.post("/reports/plans/save/", {"period": "month", "starts_on": "2026-02-01", "amount": "300000",
                                            "count": "3", "date_from": "2026-02-01", "date_to": "2026-02-28"})
    assert r.status_code == 302
    text = admin.get("/reports/plans/?date_from=2026-02-01&date_to=2026-02-28").content.decode()
    assert "Company" in text and "16.7 %" in text.replace(",", ".")
    r = admin.post("/reports/plans/save/", {"period": "month", "starts_on": "", "amount": "-5"}, follow=True)
    assert "Some fields are not valid." in r.content.decode()
    stage = co.stages["sales.invoice"].pk
    admin.post("/reports/plans/probabilities/", {f"stage_{stage}": "60"})
    from voronka.analytics.models import StageSetting

    assert StageSetting.objects.get(stage_id=stage).probability == 60
    m1 = browser(co, "m1")
    r = m1.post("/reports/plans/save/", {"period": "month", "starts_on": "2026-02-01", "amount": "1"}, follow=True)
    assert "do not have the right" in r.content.decode()


def test_bad_dates_on_dashboards_and_plans_are_not_errors_of_the_server(co):
    head = browser(co, "head")
    assert head.get("/reports/dashboard/?date_from=nonsense").status_code == 200
    assert head.get("/reports/plans/?date_from=nonsense").status_code == 422


def test_became_a_deal_opens_the_leads_behind_it(co):
    from voronka.deals.actions import update_deal

    head = browser(co, "head")
    text = head.get(f"/reports/lead-conversion/?{PERIOD}").content.decode()
    # February: L2, L3, L4 created; L3 became a deal, later won
    for mode in ("any", "won"):
        link = re.search(r'<a href="(/crm/leads/\?[^"]*created_from=2026-02-01[^"]*with_deal=' + mode + r'[^"]*)">1</a>',
                         text)
        assert link, mode
        listing = head.get(link.group(1).replace("&amp;", "&")).content.decode()
        assert f'/crm/leads/{co.leads["L3"].pk}/' in listing, mode
        assert all(f'/crm/leads/{co.leads[n].pk}/' not in listing for n in ("L1", "L2", "L4")), mode
    # the deal re-opened: still a deal, no longer a won one
    update_deal(co.actors["admin"], co.deals["D3"].pk, stage=co.stages["sales.invoice"].pk)
    won = head.get("/crm/leads/?with_deal=won").content.decode()
    assert f'/crm/leads/{co.leads["L3"].pk}/' not in won and f'/crm/leads/{co.leads["L1"].pk}/' in won
    # rights still apply: «own» reads no lead, so the list is empty whatever the filter
    own = browser(co, "own").get("/crm/leads/?with_deal=any").content.decode()
    assert f'/crm/leads/{co.leads["L1"].pk}/' not in own and f'/crm/leads/{co.leads["L3"].pk}/' not in own


def test_support_numbers_open_the_clients_requests(co):
    head = browser(co, "head")
    text = head.get(f"/reports/support/?{PERIOD}").content.decode()
    # «Ромашка»: one request (C3, a complaint, rejected): the number opens exactly that deal
    link = re.search(r'<a href="(/crm/deals/\?[^"]*company=\d+[^"]*)">1</a>', text)
    assert link
    url = link.group(1).replace("&amp;", "&")
    assert f"pipeline={co.pipelines['complaints'].pk}" in url
    listing = head.get(url).content.decode()
    assert f'/crm/deals/{co.deals["C3"].pk}/' in listing
    assert all(f'/crm/deals/{co.deals[n].pk}/' not in listing for n in ("D1", "D2", "D3", "D8", "P1"))
    # open requests of the client: none (the list opened with semantics=process is empty of C3)
    opened = head.get(url + "&semantics=process").content.decode()
    assert f'/crm/deals/{co.deals["C3"].pk}/' not in opened
    by_contact = head.get(f"/reports/support/?{PERIOD}&by=contact").content.decode()
    assert re.search(r'<a href="/crm/deals/\?[^"]*contact=none[^"]*">1</a>', by_contact)
    # a manager of sales reads no complaint: no row, and the same link shows him nothing
    m1 = browser(co, "m1")
    assert "company=" not in m1.get(f"/reports/support/?{PERIOD}").content.decode()
    assert f'/crm/deals/{co.deals["C3"].pk}/' not in m1.get(url).content.decode()


def test_percentages_use_the_languages_decimal_separator():
    from django.utils import translation

    from voronka.ui.analytics_views import fmt

    with translation.override("en"):
        assert fmt(12.75, "percent") == "12.8 %"
        assert fmt(1234567, "money") == "1,234,567 ₽"
    with translation.override("ru"):
        assert fmt(12.75, "percent") == "12,8 %"
    assert fmt(None, "percent") == "—"
