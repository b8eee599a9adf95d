"""A smart process defined through the API and driven through its pipeline by robots (the issue's test)."""

from __future__ import annotations

import pytest

from voronka.activities.models import Task
from voronka.api.tests.conftest import bearer
from voronka.automation.models import Run
from voronka.identity.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def licences(admin):
    from voronka.customfields.actions import define_field
    from voronka.items import actions

    t = actions.create_type(admin, kind="list", name="Licence", name_plural="Licences", code="licences")
    for code, label, kind in (("uf_key", "Key", "string"), ("uf_seats", "Seats", "integer")):
        define_field(admin, entity_type_id=t.id, code=code, label=label, kind=kind)
    return t


@pytest.fixture
def contact(admin):
    from voronka.parties.actions import create_contact

    return create_contact(admin, last_name="Иванов", first_name="Иван")


@pytest.fixture
def api(admin_user):
    return bearer(ApiToken.issue(admin_user, name="tests")[1])


@pytest.fixture
def manager_api(manager_user):
    return bearer(ApiToken.issue(manager_user, name="tests")[1])


@pytest.fixture
def drive():
    from voronka.core.management.commands.worker import drain

    return drain


def define_production(api) -> dict:
    r = api.post("/types", {"name": "Production order", "name_plural": "Production", "code": "production",
                            "links": ["contact", "company"], "stages": [
                                {"name": "Queued", "code": "queued"},
                                {"name": "Cutting", "code": "cutting"},
                                {"name": "Assembly", "code": "assembly"},
                                {"name": "Done", "code": "done", "semantics": "success"},
                                {"name": "Rejected", "code": "rejected", "semantics": "failure"}]})
    assert r.status_code == 201, r.content
    return r.json()


def test_define_a_type_and_drive_an_item_with_robots(api, admin, drive):
    from voronka.customfields.actions import define_field

    t = define_production(api)
    assert t["id"] >= 1030 and t["code"] == "production"
    [pipeline] = api.get("/pipelines", entity_type="production").json()
    stages = {s["code"]: s["id"] for s in pipeline["stages"]}
    # a custom field of the type: the same definitions as for deals
    define_field(admin, entity_type_id=t["id"], code="uf_material", label="Material", kind="string")
    assert [f["code"] for f in api.get("/custom-fields", entity_type="production").json()] == ["uf_material"]
    # robots: on entering «Queued» move on to «Cutting»; on «Cutting» set the material and create a task;
    # on «Assembly» comment
    for stage, action, params in (
            ("queued", "move_stage", {"stage": "cutting"}),
            ("cutting", "set_fields", {"fields": {"custom.uf_material": "oak"}}),
            ("cutting", "create_task", {"title": "Cut {title}", "deadline": {"amount": 1, "unit": "days"}}),
            ("assembly", "comment", {"text": "Assembly of {title} started"})):
        r = api.post(f"/automation/pipelines/{pipeline['id']}/robots",
                     {"stage": stages[stage], "action": action, "params": params})
        assert r.status_code == 201, r.content

    r = api.post("/items/production", {"title": "Kitchen #12", "opportunity": "150000"})
    assert r.status_code == 201, r.content
    item = r.json()
    assert item["entity_type_id"] == t["id"] and item["stage"] == stages["queued"]
    drive()
    item = api.get(f"/items/production/{item['id']}").json()
    assert item["stage"] == stages["cutting"] and item["custom"] == {"uf_material": "oak"}
    assert Task.objects.get(entity_type_id=t["id"], entity_id=item["id"]).title == "Cut Kitchen #12"
    r = api.post(f"/items/{t['id']}/{item['id']}/move", {"stage": "assembly"})
    assert r.status_code == 200, r.content
    drive()
    assert {r.action for r in Run.objects.filter(entity_type_id=t["id"], status="done")} == {
        "move_stage", "set_fields", "create_task", "comment"}
    timeline = api.get(f"/items/production/{item['id']}/timeline").json()["items"]
    assert any(e["kind"] == "comment" and "Assembly of Kitchen #12" in e["text"] for e in timeline)
    assert [e["data"]["to_stage"] for e in timeline if e["kind"] == "stage"] == [stages["assembly"], stages["cutting"]]
    listed = api.get("/items/production", stage="assembly").json()["items"]
    assert [i["id"] for i in listed] == [item["id"]]


def test_api_errors_are_clear(api):
    define_production(api)
    r = api.post("/types", {"name": "Again", "code": "production"})
    assert r.status_code == 422 and "code" in r.json()["fields"]
    r = api.post("/types", {"name": "X", "colour": "red"})
    assert r.status_code == 422
    assert api.get("/items/nothing").status_code == 404
    assert api.get("/items/deal").status_code == 404
    assert api.post("/items/production", {"title": "x", "stage": "nowhere"}).status_code == 422
    assert api.post("/items/production", {"title": "x", "planet": "mars"}).status_code == 422
    assert api.get("/items/production/999999").status_code == 404
    assert api.get("/types/999999").status_code == 404


def test_users_without_rights_see_nothing_and_cannot_write(api, manager_api):
    t = define_production(api)
    item = api.post("/items/production", {"title": "Secret"}).json()
    assert manager_api.get("/types").json() == []
    assert manager_api.get(f"/types/{t['id']}").status_code == 404
    assert manager_api.get("/items/production").json()["items"] == []
    assert manager_api.get(f"/items/production/{item['id']}").status_code == 404
    assert manager_api.patch(f"/items/production/{item['id']}", {"title": "mine"}).status_code == 404
    assert manager_api.delete(f"/items/production/{item['id']}").status_code == 404
    assert manager_api.post(f"/items/production/{item['id']}/move", {"stage": "done"}).status_code == 404
    assert manager_api.post("/items/production", {"title": "x"}).status_code == 403
    assert manager_api.post("/types", {"name": "Mine"}).status_code == 403
    assert manager_api.patch(f"/types/{t['id']}", {"name": "Mine"}).status_code == 404
    assert api.get(f"/items/production/{item['id']}").json()["title"] == "Secret"


def test_list_api(admin_user, manager_user, licences, contact):
    api = bearer(ApiToken.issue(admin_user, name="t")[1])
    other = bearer(ApiToken.issue(manager_user, name="t")[1])
    r = api.post("/types", {"kind": "list", "name": "Certificate", "code": "certificates"})
    assert r.status_code == 201 and r.json()["kind"] == "list"
    r = api.post("/lists/licences/rows", {"title": "Kontur", "contact": contact.pk,
                                          "custom": {"uf_key": "K-1", "uf_seats": 3}})
    assert r.status_code == 201, r.content
    row = r.json()
    assert row["custom"] == {"uf_key": "K-1", "uf_seats": 3} and "stage" not in row
    assert api.get("/lists/licences/rows", **{"custom.uf_key": "K-1"}).json()["items"][0]["id"] == row["id"]
    assert api.patch(f"/lists/licences/rows/{row['id']}", {"custom": {"uf_seats": 4}}).json()["custom"]["uf_seats"] == 4
    assert api.post("/lists/licences/rows", {"title": "x", "stage": "new"}).status_code == 422
    assert api.get("/lists/production/rows").status_code == 404
    assert api.get(f"/lists/certificates/rows/{row['id']}").status_code == 404
    r = api.post("/lists/licences/rows/bulk", {"items": [{"title": "A"}, {"title": "B", "custom": {"uf_seats": "x"}}]})
    assert [i["ok"] for i in r.json()["items"]] == [True, False]
    assert other.get("/lists/licences/rows").json()["items"] == []
    assert other.get(f"/lists/licences/rows/{row['id']}").status_code == 404
    assert other.post("/lists/licences/rows", {"title": "x"}).status_code == 403
    assert api.delete(f"/lists/licences/rows/{row['id']}").status_code == 204
    assert api.get(f"/lists/licences/rows/{row['id']}").status_code == 404
