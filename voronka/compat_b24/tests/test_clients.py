"""The real client libraries from PyPI (b24pysdk, fast-bitrix24, bitrix24-rest) against a live Voronka server.

For each of lead, deal, contact and company: add, get, update, list (more than 120 rows, so that paging
happens, and b24pysdk's fast listing), a batch with references and one failing command, delete, and get
after delete. b24pysdk insists on https: it talks to a TLS proxy with a certificate made in the test.
"""

from __future__ import annotations

import asyncio
import warnings

import pytest

ROWS = 125

ENTITIES = {
    "lead": ({"TITLE": "Лид {n}", "NAME": "Иван", "STATUS_ID": "NEW"}, "TITLE"),
    "deal": ({"TITLE": "Сделка {n}", "OPPORTUNITY": "1500.50", "STAGE_ID": "NEW"}, "TITLE"),
    "contact": ({"NAME": "Пётр {n}", "LAST_NAME": "Петров"}, "NAME"),
    "company": ({"TITLE": "ООО Ромашка {n}", "COMPANY_TYPE": "CUSTOMER"}, "TITLE"),
}


def _fields(entity: str, n: int) -> dict:
    template, _title = ENTITIES[entity]
    return {k: v.format(n=n) for k, v in template.items()}


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_b24pysdk_crud_list_batch(b24sdk, entity):
    from b24pysdk.errors import BitrixAPIBadRequest

    api = getattr(b24sdk.crm, entity)
    _template, title_key = ENTITIES[entity]
    new_id = api.add(fields=_fields(entity, 0)).result
    assert isinstance(new_id, int)
    got = api.get(bitrix_id=new_id).result
    assert got["ID"] == str(new_id) and got[title_key] == _fields(entity, 0)[title_key]
    assert api.update(bitrix_id=new_id, fields={title_key: "Changed"}).result is True
    assert api.get(bitrix_id=new_id).result[title_key] == "Changed"
    # more rows through a batch of adds, so that lists have several pages
    adds = {f"a{n}": api.add(fields=_fields(entity, n)) for n in range(1, ROWS)}
    batch = b24sdk.call_batches(adds)
    assert len(batch.result.result) == ROWS - 1
    page = api.list(select=["ID", title_key], filter={">ID": 0}, order={"ID": "ASC"})
    assert len(page.result) == 50 and page.response.total == ROWS and page.response.next == 50
    everything = api.list(select=["ID", title_key]).as_list().result
    assert len(everything) == ROWS and len({r["ID"] for r in everything}) == ROWS
    fast = list(api.list(select=["ID", title_key]).as_list_fast().result)
    assert sorted(int(r["ID"]) for r in fast) == sorted(int(r["ID"]) for r in everything)
    # a batch with a reference to an earlier command and one failing command
    result = b24sdk.call_batch({"first": api.list(select=["ID"], order={"ID": "DESC"}),
                                "missing": api.get(bitrix_id=10**9),
                                "again": api.get(bitrix_id=new_id)}, halt=False).result
    assert result.result["again"]["ID"] == str(new_id)
    assert result.result_error["missing"]["error_description"] == "Not found"
    assert result.result_total["first"] == ROWS
    assert api.delete(bitrix_id=new_id).result is True
    with pytest.raises(BitrixAPIBadRequest):
        api.get(bitrix_id=new_id).result  # noqa: B018


def test_b24pysdk_auth_failures_and_unknown_method(b24sdk, server):
    from b24pysdk import BitrixWebhook, Client
    from b24pysdk.errors import BitrixAPIInsufficientScope, BitrixAPIInvalidCredentials, BitrixAPINotFound

    domain = b24sdk.crm.lead.add(fields={"TITLE": "x"}) and b24sdk._bitrix_token.domain
    bad = Client(BitrixWebhook(domain=domain, webhook_token=f"{server['uid']}/wrongsecret"))
    with pytest.raises(BitrixAPIInvalidCredentials):
        bad.crm.lead.list().result  # noqa: B018
    with pytest.raises(BitrixAPINotFound):
        b24sdk._bitrix_token.call_method("crm.nothing.here", {})
    # a webhook without the «user» scope may not read users
    from voronka.compat_b24.actions import create_webhook
    from voronka.core.actor import Actor
    from voronka.identity.models import User

    admin = User.objects.get(pk=server["uid"])
    _hook, secret = create_webhook(Actor.for_user(admin, "test"), user_id=admin.pk, scopes=["crm"])
    narrow = Client(BitrixWebhook(domain=domain, webhook_token=f"{admin.pk}/{secret}"))
    with pytest.raises(BitrixAPIInsufficientScope):
        narrow.user.current().result  # noqa: B018
    assert narrow.profile().result["ID"] == str(admin.pk)


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_fast_bitrix24(server, entity):
    from fast_bitrix24 import BitrixAsync
    from fast_bitrix24.server_response import ErrorInServerResponseException

    _template, title_key = ENTITIES[entity]

    async def scenario():
        b = BitrixAsync(server["url"], verbose=False)
        ids = await b.call(f"crm.{entity}.add", [{"fields": _fields(entity, n)} for n in range(ROWS)])
        assert len(ids) == ROWS and all(int(i) > 0 for i in ids)
        first = int(ids[0])
        assert await b.call(f"crm.{entity}.update", {"ID": first, "fields": {title_key: "Обновлено"}}) is True
        got = await b.call(f"crm.{entity}.get", {"ID": first}, raw=True)
        assert got["result"][title_key] == "Обновлено"
        rows = await b.get_all(f"crm.{entity}.list", {"select": ["ID", title_key]})
        assert len(rows) == ROWS and len({r["ID"] for r in rows}) == ROWS
        type_id = {"lead": 1, "deal": 2, "contact": 3, "company": 4}[entity]
        items = await b.get_all("crm.item.list", {"entityTypeId": type_id, "select": ["id"]})
        assert sorted(i["id"] for i in items) == sorted(int(r["ID"]) for r in rows)
        by_id = await b.get_by_ID(f"crm.{entity}.get", [first, int(ids[1])])
        assert set(map(str, by_id)) == {str(first), str(ids[1])}
        res = await b.call_batch({"halt": 0, "cmd": {
            "one": f"crm.{entity}.get?ID={first}",
            "two": f"crm.{entity}.list?filter[ID]=$result[one][ID]&select[]=ID"}})
        assert res["two"][0]["ID"] == str(first)
        with pytest.raises(ErrorInServerResponseException):
            await b.call_batch({"halt": 0, "cmd": {"ok": f"crm.{entity}.get?ID={first}",
                                                   "bad": f"crm.{entity}.get?ID=999999999"}})
        assert await b.call(f"crm.{entity}.delete", {"ID": first}) is True
        with pytest.raises(ErrorInServerResponseException):
            await b.call(f"crm.{entity}.get", {"ID": first})

    asyncio.run(scenario())


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_bitrix24_rest(server, entity):
    from bitrix24 import Bitrix24, BitrixError

    _template, title_key = ENTITIES[entity]
    bx = Bitrix24(server["url"], timeout=30)

    def call(method, params=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return bx.callMethod(method, params or {})

    new_id = int(call(f"crm.{entity}.add", {"fields": _fields(entity, 0)}))
    for n in range(1, ROWS):
        call(f"crm.{entity}.add", {"fields": _fields(entity, n)})
    assert call(f"crm.{entity}.get", {"ID": new_id})["ID"] == str(new_id)
    assert call(f"crm.{entity}.update", {"ID": new_id, "fields": {title_key: "Renamed"}}) is True
    rows = call(f"crm.{entity}.list", {"select": ["ID", title_key], "filter": {">ID": 0}})
    assert len(rows) == ROWS and len({r["ID"] for r in rows}) == ROWS
    assert next(r for r in rows if r["ID"] == str(new_id))[title_key] == "Renamed"
    res = call("batch", {"halt": 0, "cmd": {"g": f"crm.{entity}.get?ID={new_id}",
                                            "bad": f"crm.{entity}.get?ID=999999999"}})
    assert res["result"]["g"]["ID"] == str(new_id) and res["result_error"]["bad"]["error_description"] == "Not found"
    assert call(f"crm.{entity}.delete", {"ID": new_id}) is True
    with pytest.raises(BitrixError):
        call(f"crm.{entity}.get", {"ID": new_id})


@pytest.mark.parametrize("type_id", [1, 3])
def test_b24pysdk_crm_item(b24sdk, type_id):
    from b24pysdk.errors import BitrixAPIError, BitrixAPINotFound

    item_api = b24sdk.crm.item
    title = "title" if type_id == 1 else "name"
    fields = {title: "Универсальный", "fm": [{"typeId": "PHONE", "valueType": "WORK", "value": "+79005550001"}]}
    item = item_api.add(entity_type_id=type_id, fields=fields).result["item"]
    assert item[title] == "Универсальный" and isinstance(item["id"], int) and item["fm"][0]["value"] == "+79005550001"
    legacy = getattr(b24sdk.crm, {1: "lead", 3: "contact"}[type_id]).get(bitrix_id=item["id"]).result
    assert legacy["ID"] == str(item["id"])  # the same record through the legacy method
    got = item_api.get(bitrix_id=item["id"], entity_type_id=type_id).result["item"]
    assert got["assignedById"] == item["assignedById"] and got["createdTime"]
    updated = item_api.update(bitrix_id=item["id"], entity_type_id=type_id, fields={title: "Другое"}).result["item"]
    assert updated[title] == "Другое"
    adds = {f"a{n}": item_api.add(entity_type_id=type_id, fields={title: f"Пакет {n}"}) for n in range(ROWS)}
    outcome = b24sdk.call_batches(adds).result
    assert not outcome.result_error and len(outcome.result) == ROWS
    everything = item_api.list(entity_type_id=type_id, select=["id", title]).as_list().result
    assert len(everything) == ROWS + 1
    fast = list(item_api.list(entity_type_id=type_id, select=["id", title]).as_list_fast().result)
    assert sorted(r["id"] for r in fast) == sorted(r["id"] for r in everything)
    assert item_api.delete(bitrix_id=item["id"], entity_type_id=type_id).result in ([], None, {})
    with pytest.raises(BitrixAPINotFound):
        item_api.get(bitrix_id=item["id"], entity_type_id=type_id).result  # noqa: B018
    with pytest.raises(BitrixAPIError, match="noSuchField"):
        item_api.list(entity_type_id=type_id, filter={"noSuchField": 1}).result  # noqa: B018
