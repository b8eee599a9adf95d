"""Keyset pagination: every record appears exactly once, in order, whatever the page size and ties."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voronka.core.errors import ValidationFailed
from voronka.core.selectors import keyset_page, records_visible_to
from voronka.leads.actions import create_leads
from voronka.leads.models import Lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(admin, lead_pipeline):
    results = create_leads(admin, [{"title": f"Лид {i}", "opportunity": i % 4} for i in range(23)])
    base = timezone.now()
    for r in results:  # many ties on created_at to exercise the id tie-breaker
        Lead.objects.filter(pk=r.obj.pk).update(created_at=base - datetime.timedelta(minutes=r.obj.pk % 5))
    return [r.obj.pk for r in results]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 30), order=st.sampled_from(["-id", "id", "created_at", "-created_at", "opportunity",
                                                         "-opportunity"]))
def test_pages_cover_everything_once_in_order(admin, leads, limit, order):
    qs = records_visible_to(admin, 1)
    seen, cursor = [], None
    for _ in range(100):
        page = keyset_page(qs, order=order, cursor=cursor, limit=limit)
        seen.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    name = order.lstrip("-")
    expected = list(qs.order_by(order, "-id" if order.startswith("-") else "id")) if name != "id" else list(qs.order_by(order))
    assert [o.pk for o in seen] == [o.pk for o in expected]
    assert len({o.pk for o in seen}) == len(leads)


def test_broken_cursor_is_a_clear_error(admin, leads):
    with pytest.raises(ValidationFailed) as err:
        keyset_page(records_visible_to(admin, 1), cursor="%%%not-base64")
    assert "cursor" in err.value.fields


@pytest.mark.parametrize("values", [["x", "abc"], ["not a date", 5], [None, True]])
def test_forged_cursor_is_a_clear_error(admin, leads, values):
    from voronka.core.selectors import _encode

    with pytest.raises(ValidationFailed):
        keyset_page(records_visible_to(admin, 1), order="-created_at", cursor=_encode(values))


def test_first_pages_of_a_board_equal_one_keyset_page_per_stage(admin, lead_pipeline):
    from voronka.core.selectors import first_pages
    from voronka.pipelines.models import Stage

    stages = list(Stage.objects.filter(pipeline=lead_pipeline).order_by("sort"))
    open_stages = [s for s in stages if not s.required_fields][:3]
    items = [{"title": f"Лид {i}", "stage": open_stages[i % 3].pk} for i in range(40)]
    assert all(r.ok for r in create_leads(admin, items))
    base = records_visible_to(admin, 1).filter(pipeline=lead_pipeline).select_related("responsible")
    wanted = [s.pk for s in stages]
    pages = first_pages(base, "stage", wanted, limit=5, related=("responsible",))
    assert list(pages) == wanted
    assert sum(1 for p in pages.values() if p.next_cursor) == 3  # three columns hold more than one page
    for stage in stages:
        one = keyset_page(base.filter(stage=stage), order="-id", limit=5)
        assert [o.pk for o in pages[stage.pk].items] == [o.pk for o in one.items]
        assert pages[stage.pk].next_cursor == one.next_cursor
        if one.next_cursor:  # the cursor of the combined query continues where the column ends
            rest = keyset_page(base.filter(stage=stage), order="-id", cursor=pages[stage.pk].next_cursor, limit=100)
            assert not {o.pk for o in rest.items} & {o.pk for o in one.items}
    assert all(o.responsible is not None for p in pages.values() for o in p.items)
