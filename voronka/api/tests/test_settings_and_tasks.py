"""Tasks, pipelines with stages, custom field definitions and users through the API."""

from __future__ import annotations

import pytest

from voronka.activities.models import Task
from voronka.pipelines.models import Pipeline, Stage

pytestmark = pytest.mark.django_db


def test_task_lifecycle(api, manager_user, lead_pipeline):
    lead = api.post("/leads", {"title": "Позвонить"}).json()
    response = api.post("/tasks", {"title": "Перезвонить клиенту", "deadline": "2026-02-01T10:00:00+03:00",
                                   "responsible": manager_user.pk, "observers": [manager_user.pk],
                                   "entity_type_id": 1, "entity_id": lead["id"]})
    assert response.status_code == 201, response.content
    task = response.json()
    assert task["status"] == "open" and task["observers"] == [manager_user.pk] and task["entity_id"] == lead["id"]
    assert api.get(f"/tasks/{task['id']}").json() == task
    assert [t["id"] for t in api.get("/tasks", entity_type_id=1, entity_id=lead["id"]).json()["items"]] == [task["id"]]
    assert api.get("/tasks", status="done").json()["items"] == []

    response = api.patch(f"/tasks/{task['id']}", {"title": "Перезвонить завтра"})
    assert response.status_code == 200 and response.json()["title"] == "Перезвонить завтра"
    response = api.post(f"/tasks/{task['id']}/complete", {"result": "Договорились"})
    assert response.status_code == 200 and response.json()["status"] == "done"
    response = api.post(f"/tasks/{task['id']}/complete", {})
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert api.patch(f"/tasks/{task['id']}", {"title": "Поздно"}).status_code == 409
    kinds = [e["kind"] for e in api.get(f"/leads/{lead['id']}/timeline").json()["items"]]
    assert kinds.count("task") == 3


@pytest.mark.parametrize("data, field", [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"title": "t", "deadline": "завтра"}, "deadline"),
    ({"title": "t", "observers": [999999]}, "observers"),
    ({"title": "t", "observers": "все"}, "observers"),
    ({"title": "t", "responsible": 999999}, "responsible"),
    ({"title": "t", "entity_type_id": 1, "entity_id": 999999}, "entity_id"),
    ({"title": "t", "entity_type_id": 77, "entity_id": 1}, "entity_type_id"),
    ({"title": "t", "priority": "high"}, "priority"),
    ({"title": "a\x00"}, "title"),
])
def test_bad_tasks_are_refused(api, data, field):
    response = api.post("/tasks", data)
    assert response.status_code == 422, response.content
    assert field in response.json()["fields"], response.json()
    assert Task.objects.count() == 0


def test_tasks_of_others_are_hidden(api, manager_api, admin, manager_user):
    from voronka.activities.actions import create_task

    mine = create_task(admin, title="Личная задача админа")
    theirs = create_task(admin, title="Для менеджера", responsible=manager_user.pk)
    assert manager_api.get(f"/tasks/{mine.pk}").status_code == 404
    assert [t["id"] for t in manager_api.get("/tasks").json()["items"]] == [theirs.pk]
    assert sorted(t["id"] for t in api.get("/tasks").json()["items"]) == [mine.pk, theirs.pk]


def test_pipelines_and_stages(api, manager_api, lead_pipeline, deal_pipelines):
    listed = api.get("/pipelines", entity_type="deal").json()
    assert [p["code"] for p in listed] == ["sales", "repeat"]
    assert [s["code"] for s in listed[0]["stages"]] == ["new", "invoice", "won", "lost"]
    assert listed[0]["stages"][1]["required_fields"] == ["opportunity"]
    assert api.get("/pipelines", entity_type="2").json() == listed
    assert api.get("/pipelines", entity_type="spaceships").status_code == 400
    assert api.get(f"/pipelines/{lead_pipeline.pk}").json()["code"] == "leads"

    response = api.post("/pipelines", {"entity_type_id": 2, "name": "Рекламации", "code": "complaints",
                                       "stages": [{"name": "Новая"}, {"name": "Решена", "semantics": "success"}]})
    assert response.status_code == 201, response.content
    pipeline = response.json()
    assert [s["semantics"] for s in pipeline["stages"]] == ["process", "success"]
    response = api.post(f"/pipelines/{pipeline['id']}/stages", {"name": "Отклонена", "semantics": "failure"})
    assert response.status_code == 201, response.content
    stage = response.json()
    response = api.patch(f"/stages/{stage['id']}", {"color": "#ff0000", "required_fields": ["comment"]})
    assert response.status_code == 200 and response.json()["color"] == "#ff0000"
    assert api.patch(f"/stages/{stage['id']}", {"required_fields": ["no_such_field"]}).status_code == 422
    order = [stage["id"]] + [s["id"] for s in pipeline["stages"]]
    response = api.put(f"/pipelines/{pipeline['id']}/stage-order", {"stage_ids": order})
    assert [s["id"] for s in response.json()["stages"]] == order
    assert api.put(f"/pipelines/{pipeline['id']}/stage-order", {"stage_ids": order[:1]}).status_code == 422
    assert api.delete(f"/stages/{stage['id']}").status_code == 204
    assert not Stage.objects.filter(pk=stage["id"]).exists()
    used = deal_pipelines["sales"].stages.get(code="new")
    api.post("/deals", {"title": "Занимает этап"})
    assert api.delete(f"/stages/{used.pk}").status_code == 409

    count = Pipeline.objects.count()
    response = manager_api.post("/pipelines", {"entity_type_id": 2, "name": "Своя"})
    assert response.status_code == 403 and Pipeline.objects.count() == count
    assert api.post("/pipelines", {"entity_type_id": 2, "name": "Дубль", "code": "sales"}).status_code == 409
    assert api.post("/pipelines", {"entity_type_id": 3, "name": "У контактов нет стадий"}).status_code == 422


def test_custom_field_definitions(api, admin):
    from voronka.customfields.actions import define_field

    define_field(admin, entity_type_id=1, code="uf_car", label="Марка", kind="enum",
                 options={"choices": [{"id": "kia", "label": "Kia"}]})
    define_field(admin, entity_type_id=2, code="uf_po", label="Номер заказа", kind="string")
    fields = api.get("/custom-fields", entity_type="lead").json()
    assert [(f["code"], f["kind"]) for f in fields] == [("uf_car", "enum")]
    assert fields[0]["options"]["choices"][0]["id"] == "kia"
    assert len(api.get("/custom-fields").json()) == 2


def test_users_show_only_public_fields(api, admin_user, manager_user):
    me = api.get("/users/me").json()
    assert me["id"] == admin_user.pk and me["full_name"] == "Анна Админова"
    assert "email" not in me and "password" not in me
    listed = api.get("/users", search="Менедж").json()["items"]  # SQLite: LIKE folds ASCII case only
    assert [u["username"] for u in listed] == ["manager"]
    page = api.get("/users", limit=1).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert api.get("/users", limit=1, cursor=page["next_cursor"]).json()["items"][0]["id"] != page["items"][0]["id"]
    assert api.get(f"/users/{manager_user.pk}").json()["department"] == manager_user.department_id
    assert api.get("/users/999999").status_code == 404
