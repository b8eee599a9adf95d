"""Deep list pages inside a batch: a keyset after the page before, one count per batch, same rows as OFFSET."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(rest, lead_pipeline):
    for b in range(6):
        status, body = rest("batch", {"cmd": {f"a{n}": f"crm.lead.add?fields[TITLE]=L{b:02d}{n:02d}" for n in range(50)}})
        assert status == 200 and not body["result"]["result_error"]
    from voronka.leads.models import Lead

    return list(Lead.objects.order_by("id").values_list("id", flat=True))


def _pages(rest, order: str, starts):
    cmd = {f"c{n}": f"crm.lead.list?select[0]=ID&order[ID]={order}&start={s}" for n, s in enumerate(starts)}
    with CaptureQueriesContext(connection) as ctx:
        status, body = rest("batch", {"halt": 0, "cmd": cmd})
    assert status == 200 and not body["result"]["result_error"], body
    sql = [q["sql"].upper() for q in ctx.captured_queries]
    return body["result"], sql


def test_pages_of_a_batch_continue_from_the_page_before(rest, leads):
    result, sql = _pages(rest, "ASC", [50, 100, 150, 200, 250])
    got = [int(r["ID"]) for n in range(5) for r in result["result"][f"c{n}"]]
    assert got == leads[50:300]
    assert sum("COUNT(" in q for q in sql) == 1  # counted once for the whole batch
    assert sum("OFFSET" in q for q in sql) == 1  # only the first page skips rows; the others start after an id
    assert len(sql) == 1 + 1 + 5 + 1  # webhook, user fields, a query per page, one count (no phones: not selected)
    assert set(result["result_total"].values()) == {300}
    assert result["result_next"] == {"c0": 100, "c1": 150, "c2": 200, "c3": 250}

    result, sql = _pages(rest, "DESC", [0, 50, 100])
    got = [int(r["ID"]) for n in range(3) for r in result["result"][f"c{n}"]]
    assert got == list(reversed(leads))[:150]
    assert sum("OFFSET" in q for q in sql) == 0 and sum("COUNT(" in q for q in sql) == 1


def test_a_write_inside_the_batch_is_seen_by_the_pages_after_it(rest, leads):
    cmd = {"p1": "crm.lead.list?select[0]=ID&start=50", "del": f"crm.lead.delete?id={leads[0]}",
           "p2": "crm.lead.list?select[0]=ID&start=100"}
    status, body = rest("batch", {"halt": 0, "cmd": cmd})
    result = body["result"]
    assert result["result_total"] == {"p1": 300, "p2": 299}
    assert [int(r["ID"]) for r in result["result"]["p2"]] == leads[101:151]  # OFFSET again after the delete


def test_other_orders_and_filters_page_by_offset(rest, leads):
    cmd = {f"c{n}": f"crm.lead.list?select[0]=ID&order[TITLE]=DESC&filter[%3EID]={leads[9]}&start={50 * n}"
           for n in range(6)}
    status, body = rest("batch", {"cmd": cmd})
    got = [int(r["ID"]) for n in range(6) for r in body["result"]["result"][f"c{n}"]]
    assert got == list(reversed(leads[10:]))
    assert body["result"]["result_total"]["c0"] == 290 and "c5" not in body["result"]["result_next"]
