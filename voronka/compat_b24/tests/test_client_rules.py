"""Multi-field merge rules, filter operators and date formats, driven through real clients on a live server."""

from __future__ import annotations

import asyncio
import warnings

import pytest


def _raw(url: str, method: str, params: dict) -> dict:
    from fast_bitrix24 import BitrixAsync

    async def go():
        return await BitrixAsync(url, verbose=False).call(method, params, raw=True)

    return asyncio.run(go())


def test_multifield_merge_rules(server):
    url = server["url"]
    new_id = _raw(url, "crm.contact.add", {"fields": {"NAME": "Мульти", "PHONE": [
        {"VALUE": "+7 900 000-00-01", "VALUE_TYPE": "WORK"}, {"VALUE": "+7 900 000-00-02", "VALUE_TYPE": "MOBILE"},
        {"VALUE": "", "VALUE_TYPE": "HOME"}]}})["result"]
    phones = _raw(url, "crm.contact.get", {"id": new_id})["result"]["PHONE"]
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in phones] == [("+7 900 000-00-01", "WORK"), ("+7 900 000-00-02", "MOBILE")]
    first, second = phones
    # no ID: appended; ID: changed; ID + DELETE=Y: removed; values not mentioned are kept
    _raw(url, "crm.contact.update", {"id": new_id, "fields": {"PHONE": [
        {"ID": first["ID"], "VALUE": "+7 900 000-00-11", "VALUE_TYPE": "HOME"},
        {"VALUE": "+7 900 000-00-03", "VALUE_TYPE": "FAX"}]}})
    phones = _raw(url, "crm.contact.get", {"id": new_id})["result"]["PHONE"]
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in phones] == [
        ("+7 900 000-00-11", "HOME"), ("+7 900 000-00-02", "MOBILE"), ("+7 900 000-00-03", "FAX")]
    by_value = {p["VALUE"]: p["ID"] for p in phones}
    _raw(url, "crm.contact.update", {"id": new_id, "fields": {"PHONE": [
        {"ID": by_value["+7 900 000-00-02"], "DELETE": "Y"}, {"ID": by_value["+7 900 000-00-03"], "VALUE": ""}],
        "EMAIL": [{"VALUE": "m@example.ru"}]}})
    got = _raw(url, "crm.contact.get", {"id": new_id})["result"]
    assert [p["VALUE"] for p in got["PHONE"]] == ["+7 900 000-00-11"]
    assert [(e["VALUE"], e["VALUE_TYPE"]) for e in got["EMAIL"]] == [("m@example.ru", "WORK")]
    # in lists, multi-fields only when named in select
    rows = _raw(url, "crm.contact.list", {"filter": {"ID": new_id}, "select": ["*"]})["result"]
    assert "PHONE" not in rows[0] and rows[0]["HAS_PHONE"] == "Y"
    rows = _raw(url, "crm.contact.list", {"filter": {"PHONE": "+79000000011"}, "select": ["ID", "PHONE"]})["result"]
    assert [r["ID"] for r in rows] == [str(new_id)] and rows[0]["PHONE"][0]["VALUE"] == "+7 900 000-00-11"


def test_filter_operators_and_dates(server):
    from bitrix24 import Bitrix24

    url = server["url"]
    ids = {}
    for title, amount, close in (("Альфа", "100", "2026-01-10"), ("Бета", "250.50", "15.02.2026"),
                                 ("Гамма", "1000", "2026-03-01T00:00:00+03:00"), ("Дельта", "0", "")):
        ids[title] = _raw(url, "crm.deal.add", {"fields": {"TITLE": title, "OPPORTUNITY": amount, "CLOSEDATE": close,
                                                           "BEGINDATE": "2026-01-01"}})["result"]
    got = _raw(url, "crm.deal.get", {"id": ids["Бета"]})["result"]
    assert got["CLOSEDATE"].startswith("2026-02-15T00:00:00") and got["OPPORTUNITY"] == "250.50"
    assert got["DATE_CREATE"][10] == "T" and got["DATE_CREATE"][-6] in "+-"  # ISO 8601 with the offset
    assert _raw(url, "crm.deal.get", {"id": ids["Дельта"]})["result"]["CLOSEDATE"] == ""

    def titles(flt):
        rows = _raw(url, "crm.deal.list", {"filter": flt, "select": ["TITLE"], "order": {"ID": "ASC"}})["result"]
        return [r["TITLE"] for r in rows]

    assert titles({">OPPORTUNITY": 100}) == ["Бета", "Гамма"]
    assert titles({">=OPPORTUNITY": 100, "<OPPORTUNITY": 1000}) == ["Альфа", "Бета"]
    assert titles({"!TITLE": "Альфа"}) == ["Бета", "Гамма", "Дельта"]
    assert titles({"@ID": [ids["Альфа"], ids["Гамма"]]}) == ["Альфа", "Гамма"]
    assert titles({"!@ID": [ids["Альфа"], ids["Гамма"]]}) == ["Бета", "Дельта"]
    assert titles({"%TITLE": "ет"}) == ["Бета"]
    assert titles({"=%TITLE": "Г%"}) == ["Гамма"]
    assert titles({"!%TITLE": "а"}) == []
    assert titles({"<=CLOSEDATE": "2026-02-15", ">CLOSEDATE": "01.01.2026"}) == ["Альфа", "Бета"]
    assert titles({"UNKNOWN_FIELD": "x", "TITLE": "Дельта"}) == ["Дельта"]  # unknown keys are dropped
    assert titles({">DATE_CREATE": "2000-01-01T00:00:00", "<DATE_CREATE": "2100-01-01"}) == ["Альфа", "Бета", "Гамма", "Дельта"]
    # the same over GET with PHP brackets (bitrix24-rest); it does not URL-encode values, so no "+" or "&" here
    bx = Bitrix24(url, timeout=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rows = bx.callMethod("crm.deal.list", {"filter": {">OPPORTUNITY": "200", "<CLOSEDATE": "2026-12-31T00:00:00"},
                                               "select": ["TITLE"], "order": {"OPPORTUNITY": "DESC"}})
    assert [r["TITLE"] for r in rows] == ["Гамма", "Бета"]


@pytest.mark.parametrize("bad", ["not-a-date", "31.02.2026"])
def test_bad_dates_are_400(server, bad):
    from fast_bitrix24 import BitrixAsync

    async def go():
        return await BitrixAsync(server["url"], verbose=False).call("crm.deal.add", {"fields": {"TITLE": "x", "CLOSEDATE": bad}},
                                                                  raw=True)

    import aiohttp

    with pytest.raises(aiohttp.ClientResponseError) as exc:
        asyncio.run(go())
    assert exc.value.status == 400
