"""The head's dashboard runs eleven reports: the read models' checks (built? stages unchanged? observer? which
stages are won?) are answered once per page (``core.memo``), so the page's statements are pinned here."""

from __future__ import annotations

import collections

import pytest
from django.utils import translation

from .company import build

pytestmark = pytest.mark.django_db

URL = "/reports/dashboard/?date_from=2026-01-01&date_to=2026-02-28"
# the page's statements at the time of writing (39 for the head, 41 for m1; 82 before the checks were kept per
# page): the session and the user, the settings versions, the read models' state table (once), the stages, the
# eleven reports, the menu's badges. A few more are tolerated (the layout may gain a badge); repeated checks not.
LIMIT = {"head": 42, "m1": 44}


@pytest.mark.parametrize("who", ["head", "m1"])
def test_the_dashboard_asks_each_check_once(client, monkeypatch, who):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with translation.override("en"):
        co = build(monkeypatch)
    client.force_login(co.users[who])
    assert client.get(URL).status_code == 200  # the first request warms the process's caches (settings, rights)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(URL)
    assert page.status_code == 200
    sqls = [q["sql"] for q in ctx.captured_queries]
    print(f"dashboard for {who}: {len(sqls)} statements")
    repeated = {s: n for s, n in collections.Counter(sqls).items() if n > 1}
    assert not repeated, repeated
    assert sum("dailytotalstate" in s for s in sqls) == 1
    assert len(sqls) <= LIMIT[who]


def test_a_report_sees_a_rebuild_made_after_the_previous_one(monkeypatch):
    """The answers live for one report (or one page): the next report asks again, so a change of the stages
    made between two reports is noticed at once (the funnel falls back to counting the records)."""
    from voronka.analytics import reports
    from voronka.pipelines.actions import reorder_stages

    with translation.override("en"):
        co = build(monkeypatch)
        q = {"date_from": "2026-01-01", "date_to": "2026-02-28", "pipeline": str(co.pipelines["sales"].pk)}
        before = reports.run(co.actors["admin"], "funnel", q)
        assert before.details["read_model"] is True
        st = co.stages
        reorder_stages(co.actors["admin"], co.pipelines["sales"].pk, [st["sales.invoice"].pk, st["sales.new"].pk,
                                                                      st["sales.won"].pk, st["sales.lost"].pk])
        after = reports.run(co.actors["admin"], "funnel", q)
        assert after.details["read_model"] is False
