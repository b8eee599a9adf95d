"""The acceptance cycle for ``crm.item`` with one smart-process entityTypeId, through b24pysdk (TLS) and
fast-bitrix24 against the live server: add → get → update → list (more than 120 rows, so paging happens;
b24pysdk's fast listing) → batch with a failing command → delete → get after delete; and a user without
rights on the type."""

from __future__ import annotations

import asyncio

import pytest

ROWS = 125


@pytest.fixture
def production(admin):
    from voronka.customfields.actions import define_field
    from voronka.items.actions import create_type

    t = create_type(admin, name="Заказ", name_plural="Производство", code="production")
    define_field(admin, entity_type_id=t.id, code="uf_serial", label="Серийный номер", kind="string")
    return t


def test_b24pysdk_smart_item_cycle(b24sdk, production):
    from b24pysdk.errors import BitrixAPIError, BitrixAPINotFound

    tid = production.id
    uf = f"ufCrm{tid}_Serial"
    types = b24sdk.crm.type.list().result["types"]
    assert [t["entityTypeId"] for t in types] == [tid]
    assert b24sdk.crm.type.get(bitrix_id=tid).result["type"]["title"] == "Заказ"
    assert b24sdk.crm.type.get_by_entity_type_id(entity_type_id=tid).result["type"]["code"] == "production"
    categories = b24sdk.crm.category.list(entity_type_id=tid).result["categories"]
    cat = categories[0]["id"]
    api = b24sdk.crm.item
    item = api.add(entity_type_id=tid, fields={"title": "Котёл", "opportunity": 99000, uf: "SN-1"}).result["item"]
    assert isinstance(item["id"], int) and item["stageId"] == f"DT{tid}_{cat}:NEW" and item[uf] == "SN-1"
    got = api.get(bitrix_id=item["id"], entity_type_id=tid).result["item"]
    assert got["title"] == "Котёл" and got["opportunity"] == 99000.0 and got["categoryId"] == cat
    updated = api.update(bitrix_id=item["id"], entity_type_id=tid,
                         fields={"title": "Котёл КВ", "stageId": f"DT{tid}_{cat}:WORK"}).result["item"]
    assert updated["title"] == "Котёл КВ" and updated["stageId"] == f"DT{tid}_{cat}:WORK"
    adds = {f"a{n}": api.add(entity_type_id=tid, fields={"title": f"Заказ {n}", uf: f"SN-{n + 2}"})
            for n in range(ROWS - 1)}
    outcome = b24sdk.call_batches(adds).result
    assert not outcome.result_error and len(outcome.result) == ROWS - 1
    page = api.list(entity_type_id=tid, select=["id", "title"], order={"id": "ASC"})
    assert len(page.result["items"]) == 50 and page.response.total == ROWS and page.response.next == 50
    everything = api.list(entity_type_id=tid, select=["id", "title", uf]).as_list().result
    assert len(everything) == ROWS and len({r["id"] for r in everything}) == ROWS
    assert {r[uf] for r in everything} == {f"SN-{n}" for n in range(1, ROWS + 1)}
    fast = list(api.list(entity_type_id=tid, select=["id", "title"]).as_list_fast().result)
    assert sorted(r["id"] for r in fast) == sorted(r["id"] for r in everything)
    batch = b24sdk.call_batch({
        "page": api.list(entity_type_id=tid, select=["id"], filter={"title": "Котёл КВ"}),
        "missing": api.get(bitrix_id=10**9, entity_type_id=tid),
        "again": api.get(bitrix_id=item["id"], entity_type_id=tid),
        "lead": b24sdk.crm.lead.list(select=["ID"]),
    }, halt=False).result
    assert batch.result["page"]["items"] == [{"id": item["id"]}] and batch.result_total["page"] == 1
    assert batch.result["again"]["item"]["title"] == "Котёл КВ"
    assert batch.result_error["missing"]["error"] == "NOT_FOUND"
    assert batch.result_total["lead"] == 0
    assert api.delete(bitrix_id=item["id"], entity_type_id=tid).result in ([], None, {})
    with pytest.raises(BitrixAPINotFound):
        api.get(bitrix_id=item["id"], entity_type_id=tid).result  # noqa: B018
    with pytest.raises(BitrixAPIError, match="Smart process not found"):
        api.list(entity_type_id=tid + 100).result  # noqa: B018


def test_fast_bitrix24_smart_items(server, production):
    from fast_bitrix24 import BitrixAsync
    from fast_bitrix24.server_response import ErrorInServerResponseException

    tid = production.id

    async def scenario():
        b = BitrixAsync(server["url"], verbose=False)
        added = await b.call("crm.item.add", [{"entityTypeId": tid, "fields": {"title": f"Заказ {n}"}}
                                              for n in range(ROWS)])
        assert len(added) == ROWS
        by_title = {i["title"]: i["id"] for i in (a.get("item", a) for a in added)}
        assert len(by_title) == ROWS
        ids = sorted(by_title.values())
        first = by_title["Заказ 0"]
        got = await b.call("crm.item.get", {"entityTypeId": tid, "id": first}, raw=True)
        assert got["result"]["item"]["title"] == "Заказ 0" and got["result"]["item"]["begindate"] is None
        await b.call("crm.item.update", {"entityTypeId": tid, "id": first, "fields": {"title": "Первый"}})
        rows = await b.get_all("crm.item.list", {"entityTypeId": tid})
        assert len(rows) == ROWS and sorted(r["id"] for r in rows) == sorted(ids)
        assert next(r for r in rows if r["id"] == first)["title"] == "Первый"
        some = await b.get_all("crm.item.list", {"entityTypeId": tid, "select": ["id"],
                                                 "filter": {"logic": "OR", "id": first, "title": "Заказ 7"}})
        assert sorted(r["id"] for r in some) == sorted([first, by_title["Заказ 7"]])
        res = await b.call_batch({"halt": 0, "cmd": {
            "one": f"crm.item.get?entityTypeId={tid}&id={first}",
            "two": f"crm.item.list?entityTypeId={tid}&filter[id]=$result[one][item][id]&select[]=title"}})
        assert res["two"] == {"items": [{"id": first, "title": "Первый"}]}
        with pytest.raises(ErrorInServerResponseException):
            await b.call_batch({"halt": 0, "cmd": {"ok": f"crm.item.get?entityTypeId={tid}&id={first}",
                                                   "bad": f"crm.item.get?entityTypeId={tid}&id=999999999"}})
        await b.call("crm.item.delete", {"entityTypeId": tid, "id": first})
        with pytest.raises(ErrorInServerResponseException):
            await b.call("crm.item.get", {"entityTypeId": tid, "id": first})

    asyncio.run(scenario())


def test_fast_bitrix24_user_without_rights(server, production, admin, manager_user, live_server):
    """The webhook of a user without rights on the type: the type does not exist for them; with «own» read
    rights they list only their own items."""
    import aiohttp
    from fast_bitrix24 import BitrixAsync
    from fast_bitrix24.server_response import ErrorInServerResponseException

    from voronka.compat_b24.actions import create_webhook
    from voronka.identity.models import Role, RolePermission
    from voronka.identity.permissions import rights_changed
    from voronka.items.actions import create_item

    tid = production.id
    create_item(admin, tid, title="Чужой", is_open=False)
    create_item(admin, tid, title="Свой", responsible=manager_user.pk, is_open=False)
    _hook, secret = create_webhook(admin, user_id=manager_user.pk, scopes=["crm"])
    url = f"{live_server.url}/rest/{manager_user.pk}/{secret}/"

    async def scenario():
        b = BitrixAsync(url, verbose=False)
        with pytest.raises(aiohttp.ClientResponseError) as failure:  # a plain call: the client only sees the status
            await b.get_all("crm.item.list", {"entityTypeId": tid})
        assert failure.value.status == 400
        with pytest.raises(ErrorInServerResponseException, match="Smart process not found"):
            await b.call("crm.item.add", {"entityTypeId": tid, "fields": {"title": "x"}})
        types = await b.call("crm.type.list", {}, raw=True)
        assert types["result"]["types"] == []

    asyncio.run(scenario())
    RolePermission.objects.create(role=Role.objects.get(code="sales_manager"), entity_type_id=tid, perm="read",
                                  scope=10)
    rights_changed()

    async def with_read():
        b = BitrixAsync(url, verbose=False)
        rows = await b.get_all("crm.item.list", {"entityTypeId": tid, "select": ["title"]})
        assert [r["title"] for r in rows] == ["Свой"]
        with pytest.raises(ErrorInServerResponseException, match="ACCESS_DENIED"):
            await b.call("crm.item.add", {"entityTypeId": tid, "fields": {"title": "x"}})

    asyncio.run(with_read())
