"""Smart processes through the facade: ``crm.item.*`` with a smart type's entityTypeId, ``crm.type.*``,
``crm.category.*``, ``crm.status.*`` and ``crm.stagehistory.list`` of smart pipelines, and the rights."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(admin):
    from voronka.customfields.actions import define_field
    from voronka.items.actions import create_type

    t = create_type(admin, name="Заказ", name_plural="Производство", code="production", stages=[
        {"name": "В очереди", "code": "queued"},
        {"name": "Сборка", "code": "assembly"},
        {"name": "Готово", "code": "done", "semantics": "success"},
        {"name": "Брак", "code": "rejected", "semantics": "failure"},
    ])
    define_field(admin, entity_type_id=t.id, code="uf_power_kw", label="Мощность", kind="integer")
    return t


@pytest.fixture
def manager_rest(client, admin, manager_user):
    from voronka.compat_b24.actions import create_webhook

    _hook, secret = create_webhook(admin, user_id=manager_user.pk, scopes=["crm"])
    prefix = f"/rest/{manager_user.pk}/{secret}/"

    def call(method, body=None):
        resp = client.post(prefix + method, data=body or {}, content_type="application/json")
        return resp.status_code, resp.json()

    return call


def _pipeline(t):
    from voronka.pipelines.models import Pipeline

    return Pipeline.objects.get(entity_type_id=t.id, is_default=True)


def test_item_crud(rest, production, admin_user):
    tid = production.id
    cat = _pipeline(production).pk
    status, body = rest("crm.item.add", {"entityTypeId": tid, "fields": {
        "title": "Котёл КВ-100", "opportunity": 125000.5, f"ufCrm{tid}_PowerKw": 100, "begindate": "2026-12-01"}})
    assert status == 200, body
    item = body["result"]["item"]
    assert item["title"] == "Котёл КВ-100" and isinstance(item["id"], int)
    assert item["opportunity"] == 125000.5 and item["categoryId"] == cat
    assert item["stageId"] == f"DT{tid}_{cat}:QUEUED" and item["stageSemanticId"] == "P"
    assert item[f"ufCrm{tid}_PowerKw"] == "100" and item["assignedById"] == admin_user.pk
    assert item["begindate"].startswith("2026-12-01T")
    _s, body = rest("crm.item.get", {"entityTypeId": tid, "id": item["id"], "useOriginalUfNames": "Y"})
    assert body["result"]["item"][f"UF_CRM_{tid}_POWER_KW"] == "100"
    status, body = rest("crm.item.update", {"entityTypeId": tid, "id": item["id"],
                                             "fields": {"stageId": f"DT{tid}_{cat}:DONE", "title": "Котёл КВ-101"}})
    assert status == 200, body
    assert body["result"]["item"]["stageSemanticId"] == "S" and body["result"]["item"]["title"] == "Котёл КВ-101"
    # the same item in Voronka: the history says it came through the Bitrix24 API
    from voronka.items.models import SmartItem

    assert SmartItem.objects.get(pk=item["id"]).title == "Котёл КВ-101"
    _s, body = rest("crm.stagehistory.list", {"entityTypeId": tid, "filter": {"OWNER_ID": item["id"]}})
    assert [(i["TYPE_ID"], i["STAGE_ID"]) for i in body["result"]["items"]] == [
        (1, f"DT{tid}_{cat}:QUEUED"), (3, f"DT{tid}_{cat}:DONE")]
    _s, body = rest("crm.item.fields", {"entityTypeId": tid})
    fields = body["result"]["fields"]
    assert fields["stageId"]["upperName"] == "STAGE_ID" and fields[f"ufCrm{tid}_PowerKw"]["isDynamic"] is True
    assert "fm" not in fields
    status, body = rest("crm.item.delete", {"entityTypeId": tid, "id": item["id"]})
    assert status == 200 and body["result"] == []
    status, body = rest("crm.item.get", {"entityTypeId": tid, "id": item["id"]})
    assert status == 400 and body["error"] == "NOT_FOUND"


def test_item_errors(rest, production):
    tid = production.id
    status, body = rest("crm.item.list", {"entityTypeId": 1999})
    assert status == 400 and body == {"error": "NOT_FOUND", "error_description": "Smart process not found"}
    status, body = rest("crm.item.list", {"entityTypeId": "abc"})
    assert status == 400 and body["error"] == "NOT_FOUND"
    status, body = rest("crm.item.list", {"entityTypeId": tid, "filter": {"ufCrm1_Nothing": 1}})
    assert status == 400 and body["error"] == "INVALID_ARG_VALUE"
    status, body = rest("crm.item.list", {"entityTypeId": tid, "order": {"nothing": "ASC"}})
    assert status == 400 and body["error"] == "INVALID_ARG_VALUE"
    status, body = rest("crm.item.add", {"entityTypeId": tid, "fields": {"title": "x", "stageId": "DT1_1:NEW"}})
    assert status == 400 and body["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID"
    status, body = rest("crm.item.add", {"entityTypeId": tid, "fields": {"title": ""}})
    assert status == 400 and body["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID"
    status, body = rest("crm.item.list", {"entityTypeId": tid, "filter": {"0": {"logic": "XOR", "title": "x"}}})
    assert status == 400 and body["error"] == "INVALID_ARG_VALUE"
    deep: dict = {"title": "x"}
    for _n in range(10):
        deep = {"0": deep}
    status, body = rest("crm.item.list", {"entityTypeId": tid, "filter": deep})
    assert status == 400 and body["error"] == "INVALID_ARG_VALUE"


def test_item_list_filters_and_or_groups(rest, production):
    tid = production.id
    cat = _pipeline(production).pk
    for n, stage in enumerate(["QUEUED", "ASSEMBLY", "DONE", "REJECTED", "QUEUED"]):
        rest("crm.item.add", {"entityTypeId": tid, "fields": {
            "title": f"Заказ {n}", "opportunity": 1000 * n, "stageId": f"DT{tid}_{cat}:{stage}"}})
    _s, body = rest("crm.item.list", {"entityTypeId": tid, "select": ["id", "title", "stageId"],
                                      "filter": {"stageId": f"DT{tid}_{cat}:QUEUED"}, "order": {"id": "DESC"}})
    assert [i["title"] for i in body["result"]["items"]] == ["Заказ 4", "Заказ 0"] and body["total"] == 2
    assert set(body["result"]["items"][0]) == {"id", "title", "stageId"}
    _s, body = rest("crm.item.list", {"entityTypeId": tid, "select": ["title"], "filter": {
        "0": {"logic": "OR", "0": {"stageId": f"DT{tid}_{cat}:DONE"}, "1": {">=opportunity": 4000}},
        "!title": "Заказ 4"}})
    assert [i["title"] for i in body["result"]["items"]] == ["Заказ 2"]
    _s, body = rest("crm.item.list", {"entityTypeId": tid, "select": ["title"], "filter": {
        "logic": "OR", "=title": "Заказ 1", "0": {"stageSemanticId": "F"}}})
    assert sorted(i["title"] for i in body["result"]["items"]) == ["Заказ 1", "Заказ 3"]
    _s, body = rest("crm.item.list", {"entityTypeId": tid, "select": ["title"],
                                      "filter": {"@stageId": [f"DT{tid}_{cat}:DONE", f"DT{tid}_{cat}:REJECTED"]}})
    assert sorted(i["title"] for i in body["result"]["items"]) == ["Заказ 2", "Заказ 3"]


def test_types_categories_and_stages(rest, production):
    tid = production.id
    cat = _pipeline(production).pk
    _s, body = rest("crm.type.list")
    types = body["result"]["types"]
    assert [(t["entityTypeId"], t["title"]) for t in types] == [(tid, "Заказ")] and body["total"] == 1
    _s, body = rest("crm.type.get", {"id": tid})
    assert body["result"]["type"]["code"] == "production"
    _s, body = rest("crm.type.getByEntityTypeId", {"entityTypeId": tid})
    assert body["result"]["type"]["id"] == tid
    status, body = rest("crm.type.get", {"id": 4242})
    assert status == 400 and body["error"] == "NOT_FOUND"
    _s, body = rest("crm.category.list", {"entityTypeId": tid})
    [default] = body["result"]["categories"]
    assert default["id"] == cat and default["entityTypeId"] == tid and default["isDefault"] == "Y"
    status, body = rest("crm.category.add", {"entityTypeId": tid, "fields": {"name": "Срочные"}})
    assert status == 200, body
    urgent = body["result"]["category"]["id"]
    assert body["result"]["category"]["isDefault"] == "N" and urgent != cat
    _s, body = rest("crm.category.get", {"entityTypeId": tid, "id": urgent})
    assert body["result"]["category"]["name"] == "Срочные"
    _s, body = rest("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{tid}_STAGE_{cat}"}})
    rows = body["result"]
    assert [r["STATUS_ID"] for r in rows] == [f"DT{tid}_{cat}:{c}" for c in ("QUEUED", "ASSEMBLY", "DONE", "REJECTED")]
    assert rows[2]["SEMANTICS"] == "S" and rows[0]["CATEGORY_ID"] == str(cat)
    _s, body = rest("crm.status.entity.types")
    dyn = next(r for r in body["result"] if r["ID"] == f"DYNAMIC_{tid}_STAGE_{urgent}")
    assert dyn["PREFIX"] == f"DT{tid}_{urgent}" and dyn["ENTITY_TYPE_ID"] == tid
    # an item in the second category: its stages carry that category
    status, body = rest("crm.item.add", {"entityTypeId": tid, "fields": {"title": "Срочно", "categoryId": urgent}})
    assert status == 200, body
    item = body["result"]["item"]
    assert item["categoryId"] == urgent and item["stageId"] == f"DT{tid}_{urgent}:NEW"
    _s, body = rest("crm.item.list", {"entityTypeId": tid, "filter": {"categoryId": urgent}, "select": ["id"]})
    assert [i["id"] for i in body["result"]["items"]] == [item["id"]]
    # stages of a smart pipeline can be added through crm.status.add
    status, body = rest("crm.status.add", {"fields": {"ENTITY_ID": f"DYNAMIC_{tid}_STAGE_{urgent}",
                                                      "STATUS_ID": "CHECK", "NAME": "Проверка"}})
    assert status == 200, body
    status, body = rest("crm.category.delete", {"entityTypeId": tid, "id": urgent})  # it has an item
    assert status == 400 and body["error"] == "REMOVING_DISABLED"
    # an item changes category by update: by categoryId (to the first stage there) or by a stage id of another one
    status, body = rest("crm.item.update", {"entityTypeId": tid, "id": item["id"], "fields": {"categoryId": cat}})
    assert status == 200, body
    assert (body["result"]["item"]["categoryId"], body["result"]["item"]["stageId"]) == (cat, f"DT{tid}_{cat}:QUEUED")
    status, body = rest("crm.item.update", {"entityTypeId": tid, "id": item["id"],
                                             "fields": {"stageId": f"DT{tid}_{urgent}:WON"}})
    assert (body["result"]["item"]["categoryId"], body["result"]["item"]["stageSemanticId"]) == (urgent, "S")
    status, body = rest("crm.item.update", {"entityTypeId": tid, "id": item["id"],
                                             "fields": {"categoryId": cat, "stageId": f"DT{tid}_{urgent}:NEW"}})
    assert status == 400 and body["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID"
    _s, body = rest("crm.stagehistory.list", {"entityTypeId": tid, "filter": {"OWNER_ID": item["id"]}})
    assert [i["TYPE_ID"] for i in body["result"]["items"]] == [1, 5, 5]


def test_rights_on_smart_types(rest, manager_rest, production, manager_user, admin):
    """A user without rights on the type does not see it at all; with «own» rights, only their items."""
    from voronka.identity.models import Role, RolePermission
    from voronka.identity.permissions import rights_changed

    tid = production.id
    _s, body = rest("crm.item.add", {"entityTypeId": tid, "fields": {"title": "Чужой", "opened": "N"}})
    foreign = body["result"]["item"]["id"]
    for method, params in [("crm.item.list", {}), ("crm.item.get", {"id": foreign}),
                           ("crm.item.add", {"fields": {"title": "x"}}), ("crm.item.fields", {}),
                           ("crm.item.delete", {"id": foreign}), ("crm.category.list", {})]:
        status, body = manager_rest(method, {"entityTypeId": tid, **params})
        assert status == 400 and body["error"] == "NOT_FOUND", (method, body)
    assert manager_rest("crm.type.list")[1]["result"]["types"] == []
    assert manager_rest("crm.type.get", {"id": tid})[1]["error"] == "NOT_FOUND"
    statuses = manager_rest("crm.status.list")[1]["result"]
    assert not any(r["ENTITY_ID"].startswith("DYNAMIC_") for r in statuses)
    role = Role.objects.get(code="sales_manager")
    RolePermission.objects.create(role=role, entity_type_id=tid, perm="read", scope=10)
    rights_changed()
    _s, body = manager_rest("crm.item.list", {"entityTypeId": tid})
    assert body["result"]["items"] == [] and body["total"] == 0
    status, body = manager_rest("crm.item.get", {"entityTypeId": tid, "id": foreign})
    assert status == 400 and body["error"] == "NOT_FOUND"
    status, body = manager_rest("crm.item.add", {"entityTypeId": tid, "fields": {"title": "x"}})
    assert status == 400 and body["error"] == "ACCESS_DENIED"
    status, body = manager_rest("crm.item.update", {"entityTypeId": tid, "id": foreign, "fields": {"title": "y"}})
    assert status == 400 and body["error"] == "NOT_FOUND"
    RolePermission.objects.create(role=role, entity_type_id=tid, perm="add", scope=10)
    rights_changed()
    status, body = manager_rest("crm.item.add", {"entityTypeId": tid, "fields": {"title": "Свой"}})
    assert status == 200 and body["result"]["item"]["assignedById"] == manager_user.pk
    _s, body = manager_rest("crm.item.list", {"entityTypeId": tid, "select": ["title"]})
    assert [i["title"] for i in body["result"]["items"]] == ["Свой"]
    own = body["result"]["items"][0]["id"]
    status, body = manager_rest("crm.item.delete", {"entityTypeId": tid, "id": own})  # no «delete» right
    assert status == 400 and body["error"] == "ACCESS_DENIED"


def test_item_list_queries_do_not_grow_with_rows(rest, production):
    """A page of smart-process items costs the same queries however many rows the type has (none per row)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tid = production.id

    def add(n: int, prefix: str) -> None:
        for chunk in range(0, n, 50):
            rest("batch", {"cmd": {f"a{i}": f"crm.item.add?entityTypeId={tid}&fields[title]={prefix}{i}"
                                   for i in range(chunk, min(n, chunk + 50))}})

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            status, body = rest("crm.item.list", {"entityTypeId": tid, "select": ["*"]})
        assert status == 200 and len(body["result"]["items"]) == 50
        return len(ctx.captured_queries)

    add(60, "x")
    few = page_queries()
    add(90, "y")
    many = page_queries()
    print(f"crm.item.list queries: {few} (a page of 50 of 60 rows), {many} (a page of 50 of 150 rows)")
    assert many == few
