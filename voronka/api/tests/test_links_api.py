"""Links through the API: create, list from both ends, rights (hidden far ends, 404s), bad input, unlink."""

from __future__ import annotations

import pytest

from voronka.core import entity_types
from voronka.deals.actions import create_deal
from voronka.identity.models import ApiToken, Department, User

from .conftest import bearer

pytestmark = pytest.mark.django_db

DEAL = entity_types.DEAL


@pytest.fixture
def records(admin, manager_user, lead_pipeline, deal_pipelines):
    stranger = User.objects.create_user("stranger", "s@example.ru", "pass", department=Department.objects.create(name="Цех"))
    return {"mine": create_deal(admin, title="Моя сделка", responsible=manager_user.pk),
            "other": create_deal(admin, title="Производство заказа", responsible=stranger.pk)}


def test_links_api(api, manager_user, records):
    mine, other = records["mine"], records["other"]
    response = api.post("/links", {"source": {"entity_type_id": DEAL, "id": mine.pk},
                                   "target": {"entity_type_id": DEAL, "id": other.pk}, "role": "production"})
    assert response.status_code == 201, response.content
    link = response.json()
    assert link["source"] == {"entity_type_id": DEAL, "id": mine.pk} and link["role"] == "production"
    items = api.get("/links", entity_type_id=DEAL, entity_id=other.pk).json()["items"]
    assert [(i["direction"], i["other"]) for i in items] == [
        ("in", {"entity_type_id": DEAL, "id": mine.pk, "title": "Моя сделка"})]
    assert api.get(f"/links/{link['id']}").json() == link

    manager_api = bearer(ApiToken.issue(manager_user, name="t")[1])
    items = manager_api.get("/links", entity_type_id=DEAL, entity_id=mine.pk).json()["items"]
    assert items[0]["other"] == {"entity_type_id": DEAL, "hidden": True}
    assert manager_api.get(f"/links/{link['id']}").status_code == 404
    assert manager_api.get("/links", entity_type_id=DEAL, entity_id=other.pk).status_code == 404
    assert manager_api.delete(f"/links/{link['id']}").status_code == 404

    bad = api.post("/links", {"source": {"entity_type_id": DEAL, "id": mine.pk},
                              "target": {"entity_type_id": DEAL, "id": mine.pk}})
    assert bad.status_code == 422 and "target" in bad.json()["fields"]
    assert api.post("/links", {"source": {"entity_type_id": DEAL, "id": mine.pk}}).status_code == 422
    assert api.delete(f"/links/{link['id']}").status_code == 204
    assert api.get(f"/links/{link['id']}").status_code == 404
