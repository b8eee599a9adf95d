"""The permission matrix across entry points: REST API, web lists, boards, cards, search and totals show each
persona exactly what its role allows, and a refused write changes nothing."""

from __future__ import annotations

import pytest

from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.identity.models import ApiToken
from voronka.identity.tests.test_permissions import EXPECTED_LEADS, world  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.django_db

EXPECTED_DEALS = {
    "head": {"Сделка manager_a", "Сделка colleague_a", "Сделка manager_b", "Сделка operator", "Изготовление"},
    "manager_a": {"Сделка manager_a", "Сделка colleague_a"},
    "manager_b": {"Сделка manager_b"},
    "operator": set(),
    "master": {"Изготовление"},
}


def _api(client, user, method, url, **kwargs):
    _token, raw = ApiToken.issue(user)
    return getattr(client, method)(url, HTTP_AUTHORIZATION=f"Bearer {raw}", content_type="application/json", **kwargs)


@pytest.mark.parametrize("persona", sorted(EXPECTED_LEADS))
def test_every_entry_point_lists_the_same(client, world, persona):  # noqa: F811
    people, records = world
    user = people[persona]
    leads = {f"Лид {o}" for o in EXPECTED_LEADS[persona]}
    response = _api(client, user, "get", "/api/v1/leads?limit=100")
    assert response.status_code == 200
    assert {i["title"] for i in response.json()["items"]} == leads
    response = _api(client, user, "get", "/api/v1/deals?limit=100")
    assert {i["title"] for i in response.json()["items"]} == EXPECTED_DEALS[persona]
    client.force_login(user)
    page = client.get("/crm/leads/?all=1").content.decode()
    assert {f"Лид {o}" for o in ("manager_a", "colleague_a", "manager_b", "operator") if f"Лид {o}<" in page} == leads
    board = client.get("/crm/leads/board/").content.decode()
    assert {f"Лид {o}" for o in ("manager_a", "colleague_a", "manager_b", "operator") if f"Лид {o}<" in board} == leads
    found = client.get("/search/", {"q": "Лид"}).content.decode()
    assert {f"Лид {o}" for o in ("manager_a", "colleague_a", "manager_b", "operator") if f"Лид {o}<" in found} == leads
    # the board's column counter counts only what the persona may read
    if leads:
        assert f'data-count>{len(leads)}<' in board.replace('<span class="count" ', "<span ")


@pytest.mark.parametrize("persona, lead, status", [
    ("manager_a", "lead_colleague_a", 403),  # visible (department) but not own: may not change
    ("manager_a", "lead_manager_b", 404),  # invisible: not even its existence
    ("operator", "lead_manager_a", 404),
    ("head", "lead_manager_a", 200),
])
def test_api_update_rights(client, world, persona, lead, status):  # noqa: F811
    people, records = world
    obj = records[lead]
    before = (TimelineEntry.objects.count(), OutboxEvent.objects.count())
    response = _api(client, people[persona], "patch", f"/api/v1/leads/{obj.pk}", data={"title": "Изменено"})
    assert response.status_code == status, response.content
    obj.refresh_from_db()
    if status == 200:
        assert obj.title == "Изменено"
    else:
        assert obj.title == f"Лид {lead.removeprefix('lead_')}"
        assert (TimelineEntry.objects.count(), OutboxEvent.objects.count()) == before
        assert lead.removeprefix("lead_") not in response.json()["message"]  # the title does not leak


@pytest.mark.parametrize("persona", ["head", "manager_a", "operator"])
def test_nobody_but_the_administrator_deletes(client, world, persona):  # noqa: F811
    people, records = world
    obj = records["lead_manager_a"]
    response = _api(client, people[persona], "delete", f"/api/v1/leads/{obj.pk}")
    assert response.status_code in (403, 404)
    obj.refresh_from_db()
    assert obj.deleted_at is None


def test_card_of_an_invisible_record_says_not_found(client, world):  # noqa: F811
    people, records = world
    client.force_login(people["manager_b"])
    response = client.get(f"/crm/leads/{records['lead_manager_a'].pk}/")
    assert response.status_code == 404 and "Лид manager_a" not in response.content.decode()
