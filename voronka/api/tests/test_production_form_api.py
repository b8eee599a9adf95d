"""F23 through the API: moving a deal into Production without the order's data is a 422 naming the missing
fields (code and label); with them the move completes and the robot copies them onto the production order.
A user who may not see the deal gets 404, and nothing moves."""

from __future__ import annotations

import pytest

from voronka.automation.tests.production_setup import order_of, production_company
from voronka.deals.models import Deal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


def test_move_into_production_asks_for_the_order_data(api, admin):
    from voronka.core.management.commands.worker import drain

    api.client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the API answers in the caller's language
    company = production_company(admin)
    deal = api.post("/deals", {"title": "Trailer frame", "opportunity": "690000"}).json()
    response = api.post(f"/deals/{deal['id']}/move", {"pipeline": "production", "stage": "placed",
                                                      "fields": {"custom": {"uf_product": "Frame"}}})
    assert response.status_code == 422, response.content
    body = response.json()
    assert set(body["fields"]) == {"custom.uf_quantity", "custom.uf_due_date", "custom.uf_notes"}
    assert body["message"] == "To enter stage «Order placed», fill in: Quantity, Due date, Production notes."
    assert Deal.objects.get(pk=deal["id"]).pipeline_id == company["sales"].pk
    drain()
    assert order_of(deal["id"], company["orders"].id) is None  # a refused move starts nothing

    data = {"uf_product": "Frame", "uf_quantity": 2, "uf_due_date": "2026-12-20", "uf_notes": "8 m, channel 16"}
    response = api.post(f"/deals/{deal['id']}/move", {"pipeline": "production", "stage": "placed",
                                                      "fields": {"custom": data}})
    assert response.status_code == 200, response.content
    assert response.json()["pipeline"] == company["production"].pk
    drain()
    order = order_of(deal["id"], company["orders"].id)
    assert order.title == "Order: Trailer frame" and order.custom == data


def test_a_stranger_cannot_move_the_deal(api, admin, manager_api):
    company = production_company(admin)
    deal = api.post("/deals", {"title": "Secret", "opportunity": "100"}).json()
    response = manager_api.post(f"/deals/{deal['id']}/move", {"pipeline": "production", "stage": "placed"})
    assert response.status_code == 404
    assert Deal.objects.get(pk=deal["id"]).pipeline_id == company["sales"].pk
