"""The transport of the facade: URL forms, parameters, envelope, errors, batch, paging (Django test client)."""

from __future__ import annotations

import pytest

from voronka.compat_b24 import php

pytestmark = pytest.mark.django_db


def test_php_brackets():
    assert php.parse_str("fields%5BTITLE%5D=A%20B&select[]=ID&select[]=TITLE&filter[>ID]=5&fields[PHONE][0][VALUE]=%2B7") == {
        "fields": {"TITLE": "A B", "PHONE": [{"VALUE": "+7"}]}, "select": ["ID", "TITLE"], "filter": {">ID": "5"}}
    assert php.json_shape({"a": {}, "b": {"0": 1, "1": 2}}) == {"a": [], "b": [1, 2]}


def test_envelope_and_crud(rest, lead_pipeline):
    status, body = rest("crm.lead.add.json", {"fields": {"TITLE": "Окна", "NAME": "Иван", "STATUS_ID": "ASSIGNED",
                                                        "PHONE": [{"VALUE": "+79001234567", "VALUE_TYPE": "WORK"}]}})
    assert status == 200, body
    lead_id = body["result"]
    assert isinstance(lead_id, int)
    assert set(body["time"]) >= {"start", "finish", "duration", "processing", "date_start", "date_finish"}
    status, body = rest("crm.lead.Get", {"id": lead_id})
    lead = body["result"]
    assert lead["TITLE"] == "Окна" and lead["STATUS_ID"] == "ASSIGNED" and lead["ID"] == str(lead_id)
    assert lead["PHONE"][0]["VALUE"] == "+79001234567" and lead["PHONE"][0]["VALUE_TYPE"] == "WORK"
    assert lead["OPPORTUNITY"] == "0.00" and lead["HAS_PHONE"] == "Y"
    status, body = rest("crm.lead.update", {"ID": lead_id, "fields": {"TITLE": "Двери"}})
    assert body["result"] is True
    from voronka.core.models import TimelineEntry

    assert set(TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead_id).values_list("entry_point", flat=True)) == {"b24"}
    status, body = rest("crm.lead.delete", {"id": lead_id})
    assert body["result"] is True
    status, body = rest("crm.lead.get", {"id": lead_id})
    assert status == 400 and body == {"error": "", "error_description": "Not found"}


def test_auth_failures(client, hook, admin_user):
    _w, prefix = hook
    resp = client.post(f"/rest/{admin_user.pk}/wrongsecret/profile")
    assert resp.status_code == 401 and resp.json()["error"] == "INVALID_CREDENTIALS"
    resp = client.post("/rest/profile")
    assert resp.status_code == 401 and resp.json()["error"] == "NO_AUTH_FOUND"
    resp = client.post(prefix + "no.such.method")
    assert resp.status_code == 404 and resp.json()["error"] == "ERROR_METHOD_NOT_FOUND"
    # the login works in place of the id
    resp = client.get(prefix.replace(f"/{admin_user.pk}/", "/admin/") + "profile.json")
    assert resp.status_code == 200 and resp.json()["result"]["ID"] == str(admin_user.pk)


def test_form_encoded_and_batch(client, hook, lead_pipeline):
    _w, prefix = hook
    resp = client.post(prefix + "crm.lead.add", "fields[TITLE]=Form&fields[EMAIL][0][VALUE]=a@b.ru",
                       content_type="application/x-www-form-urlencoded")
    first = resp.json()["result"]
    resp = client.post(prefix + "batch", {"halt": 0, "cmd": {
        "a": "crm.lead.add?fields[TITLE]=From%20batch",
        "b": "crm.lead.get?id=$result[a]",
        "c": "crm.lead.get?id=999999",
        "d": f"crm.lead.list?filter[>=ID]={first}&select[]=ID&select[]=TITLE&order[ID]=DESC"}},
        content_type="application/json")
    body = resp.json()["result"]
    assert body["result"]["b"]["TITLE"] == "From batch"
    assert body["result_error"]["c"]["error_description"] == "Not found"
    assert [r["TITLE"] for r in body["result"]["d"]] == ["From batch", "Form"]
    assert body["result_total"]["d"] == 2 and body["result_next"] == []
    assert set(body["result_time"]) == {"a", "b", "c", "d"}


@pytest.mark.parametrize("halt", [0, 1])
def test_batch_of_adds_reports_each_command(rest, lead_pipeline, halt):
    from voronka.leads.models import Lead

    cmd = {"a": "crm.lead.add?fields[TITLE]=One", "b": "crm.lead.add?fields[ASSIGNED_BY_ID]=999999",
           "c": "crm.lead.add?fields[TITLE]=Three&fields[PHONE][0][VALUE]=%2B79001112233", "d": "crm.lead.get?id=$result[c]"}
    _s, body = rest("batch", {"halt": halt, "cmd": cmd})
    res = body["result"]
    assert isinstance(res["result"]["a"], int)
    assert res["result_error"]["b"]["error"] == "" and "999999" in res["result_error"]["b"]["error_description"]
    if halt:
        assert set(res["result"]) == {"a"} and Lead.objects.count() == 1
    else:
        assert res["result"]["d"]["TITLE"] == "Three" and res["result"]["d"]["PHONE"][0]["VALUE"] == "+79001112233"
        assert set(res["result_time"]) == {"a", "b", "c", "d"}
        from voronka.core.models import TimelineEntry

        assert set(TimelineEntry.objects.filter(entity_type_id=1).values_list("entry_point", flat=True)) == {"b24"}


def test_batch_limit_and_list_cmd(rest, lead_pipeline):
    _s, body = rest("batch", {"cmd": [f"crm.lead.list?select[]=ID&start={n}" for n in range(52)]})
    res = body["result"]
    assert len(res["result"]) == 50 and isinstance(res["result"], list)
    assert {e["error"] for e in res["result_error"].values()} == {"ERROR_BATCH_LENGTH_EXCEEDED"}
    assert set(res["result_error"]) == {"50", "51"}
