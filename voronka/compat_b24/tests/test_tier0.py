"""Tier 0 of the spec, item by item, where no client test pins it: URL forms, HTTPS rule, parameter intake,
envelope headers, paging arithmetic and batch references/halt (Django test client)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_url_forms_and_method_case(client, hook, lead_pipeline):
    _w, prefix = hook
    for suffix in ("crm.lead.list", "crm.lead.list.json", "crm.lead.list.xml", "crm.lead.list/", "CRM.Lead.List.JSON"):
        resp = client.post(prefix + suffix, content_type="application/json", data={})
        assert resp.status_code == 200, (suffix, resp.content)
        assert resp["Content-Type"] == "application/json; charset=utf-8"
        assert resp["Access-Control-Allow-Origin"] == "*" and resp["X-Content-Type-Options"] == "nosniff"
    resp = client.get(prefix + "crm.lead.list.json?start=0")
    assert resp.status_code == 200 and resp.json()["total"] == 0


def test_plain_http_only_from_loopback(client, hook, settings):
    _w, prefix = hook
    resp = client.post(prefix + "profile", REMOTE_ADDR="203.0.113.7")
    assert resp.status_code == 401 and resp.json() == {"error": "INVALID_REQUEST", "error_description": "Https required."}
    assert client.post(prefix + "profile", REMOTE_ADDR="203.0.113.7", secure=True).status_code == 200
    settings.VORONKA_B24_ALLOW_HTTP = True
    assert client.post(prefix + "profile", REMOTE_ADDR="203.0.113.7").status_code == 200


def test_scope_and_global_methods(client, admin, admin_user):
    from voronka.compat_b24.actions import create_webhook

    _h, secret = create_webhook(admin, user_id=admin_user.pk, scopes=["user"])
    prefix = f"/rest/{admin_user.pk}/{secret}/"
    resp = client.post(prefix + "crm.lead.list")
    assert resp.status_code == 401 and resp.json()["error"] == "insufficient_scope"
    for name in ("batch", "profile", "scope", "methods", "server.time"):
        assert client.post(prefix + name).status_code == 200, name
    assert client.post(prefix + "scope").json()["result"] == ["user"]
    assert client.post(prefix + "method.get", {"name": "crm.lead.add"}, content_type="application/json").json()[
        "result"] == {"isExisting": True, "isAvailable": False}


def test_parameter_intake(client, hook, lead_pipeline, settings):
    settings.LANGUAGE_CODE = "en"  # messages are asserted in English
    _w, prefix = hook
    # multipart/form-data with PHP brackets
    resp = client.post(prefix + "crm.lead.add", {"fields[TITLE]": "Multipart", "fields[PHONE][0][VALUE]": "+79001112233"})
    lead = resp.json()["result"]
    # FIELDS / arFields / Fields and ID / id are all read; JSON body keys replace query keys
    for key in ("FIELDS", "arFields", "Fields"):
        resp = client.post(prefix + f"crm.lead.update?id={lead}&{key}[TITLE]=query", {"ID": lead, key: {"TITLE": key}},
                           content_type="application/json")
        assert resp.json()["result"] is True
        assert client.post(prefix + "crm.lead.get", {"ID": lead}, content_type="application/json").json()[
            "result"]["TITLE"] == key
    got = client.post(prefix + "crm.lead.get", {"id": lead}, content_type="application/json").json()["result"]
    assert got["PHONE"][0]["VALUE"] == "+79001112233"
    # start is peeled off every call, unknown parameters are ignored; non-arrays are refused
    resp = client.post(prefix + "crm.lead.add", {"start": 0, "__order": "x", "fields": {"TITLE": "x"}},
                       content_type="application/json")
    assert isinstance(resp.json()["result"], int)
    resp = client.post(prefix + "crm.lead.add", {"fields": "TITLE"}, content_type="application/json")
    assert resp.status_code == 400 and resp.json() == {"error": "", "error_description": "Parameter 'fields' must be array."}
    resp = client.post(prefix + "crm.lead.get", {"id": 0}, content_type="application/json")
    assert resp.json()["error_description"] == "ID is not defined or invalid."


def test_start_is_rounded_down_and_minus_one_does_not_count(rest, lead_pipeline):
    rest("batch", {"cmd": {f"a{n}": f"crm.lead.add?fields[TITLE]=R{n}" for n in range(50)}})
    rest("batch", {"cmd": {f"a{n}": f"crm.lead.add?fields[TITLE]=S{n}" for n in range(20)}})
    _s, first = rest("crm.lead.list", {"select": ["ID"]})
    _s, body = rest("crm.lead.list", {"select": ["ID"], "start": 63})
    assert body["total"] == 70 and "next" not in body and len(body["result"]) == 20  # 63 → 50
    assert int(body["result"][0]["ID"]) > int(first["result"][-1]["ID"])
    assert first["next"] == 50 and first["total"] == 70
    _s, body = rest("crm.lead.list", {"select": ["ID"], "start": -1, "filter": {">ID": first["result"][-1]["ID"]}})
    assert len(body["result"]) == 20 and "total" not in body and "next" not in body


def test_batch_references_and_halt_truthiness(rest, lead_pipeline):
    rest("batch", {"cmd": {f"a{n}": f"crm.lead.add?fields[TITLE]=B{n}" for n in range(50)}})
    rest("batch", {"cmd": {f"a{n}": f"crm.lead.add?fields[TITLE]=C{n}" for n in range(5)}})
    _s, body = rest("batch", {"halt": 0, "cmd": {
        "p": "crm.lead.list?select[]=ID",
        "next": "crm.lead.list?select[]=ID&start=$next[p]",
        "total": "crm.lead.add?fields[TITLE]=total $total[p]",
        "missing": "crm.lead.get?id=$result[p][70][ID]",  # past the page: the walk stops, the call fails cleanly
        "err": "crm.lead.add?fields[TITLE]=$error[missing][error_description]",
        "time": "crm.lead.add?fields[TITLE]=$time[p][duration]"}})
    res = body["result"]
    assert len(res["result"]["next"]) == 5 and res["result_total"]["next"] == 55
    titles = {k: rest("crm.lead.get", {"id": res["result"][k]})[1]["result"]["TITLE"] for k in ("total", "err", "time")}
    assert titles["total"] == "total 55" and titles["err"] in ("Not found", "ID is not defined or invalid.")
    float(titles["time"])
    assert "missing" in res["result_error"]
    # halt follows PHP truthiness: the string "false" is on, "0" and "" are off
    for halt, stops in (("false", True), ("0", False), ("", False), (True, True)):
        _s, body = rest("batch", {"halt": halt, "cmd": {"bad": "crm.lead.get?id=999999", "ok": "crm.lead.list?select[]=ID"}})
        assert ("ok" not in body["result"]["result"]) == stops, halt
