"""Directories, pipelines, stage history, user fields, links, duplicates, comments, activities, users, rights."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_rest(client, admin, manager_user):
    from voronka.compat_b24.actions import create_webhook

    _hook, secret = create_webhook(admin, user_id=manager_user.pk, scopes=["crm", "user"])
    prefix = f"/rest/{manager_user.pk}/{secret}/"

    def call(method, body=None):
        resp = client.post(prefix + method, data=body or {}, content_type="application/json")
        return resp.status_code, resp.json()

    return call


def test_status_and_categories(rest, lead_pipeline, deal_pipelines):
    _s, body = rest("crm.status.list", {"filter": {"ENTITY_ID": "STATUS"}})
    assert [r["STATUS_ID"] for r in body["result"]] == ["NEW", "ASSIGNED", "QUALIFIED", "CONVERTED", "JUNK", "REFUSED"]
    assert body["result"][3]["SEMANTICS"] == "S" and body["total"] == 6
    _s, body = rest("crm.category.list", {"entityTypeId": 2})
    cats = body["result"]["categories"]
    assert cats[0]["id"] == 0 and cats[0]["isDefault"] == "Y" and cats[1]["name"] == "Повторные продажи"
    repeat = cats[1]["id"]
    _s, body = rest("crm.dealcategory.status", {"id": repeat})
    assert body["result"] == f"DEAL_STAGE_{repeat}"
    _s, body = rest("crm.dealcategory.stage.list", {"id": repeat})
    assert [r["STATUS_ID"] for r in body["result"]] == [f"C{repeat}:OFFER", f"C{repeat}:WON", f"C{repeat}:LOST"]
    _s, body = rest("crm.deal.add", {"fields": {"TITLE": "В воронке", "CATEGORY_ID": repeat}})
    deal_id = body["result"]
    _s, body = rest("crm.deal.get", {"id": deal_id})
    assert body["result"]["CATEGORY_ID"] == str(repeat) and body["result"]["STAGE_ID"] == f"C{repeat}:OFFER"
    _s, body = rest("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": f"C{repeat}:WON", "CATEGORY_ID": 0}})
    _s, body = rest("crm.deal.get", {"id": deal_id})
    assert body["result"]["STAGE_SEMANTIC_ID"] == "S" and body["result"]["CLOSED"] == "Y"
    assert body["result"]["CATEGORY_ID"] == str(repeat)  # immutable on update
    _s, body = rest("crm.stagehistory.list", {"entityTypeId": 2, "filter": {"OWNER_ID": deal_id}})
    assert [i["TYPE_ID"] for i in body["result"]["items"]] == [1, 3]
    assert body["result"]["items"][1]["STAGE_ID"] == f"C{repeat}:WON"
    status, body = rest("crm.status.add", {"fields": {"ENTITY_ID": "STATUS", "STATUS_ID": "CALLBACK", "NAME": "Перезвонить"}})
    assert status == 200 and isinstance(body["result"], int)
    status, body = rest("crm.status.add", {"fields": {"ENTITY_ID": "STATUS", "STATUS_ID": "CALLBACK", "NAME": "Ещё"}})
    assert status == 400 and body["error"] == "ERROR_CORE"
    _s, body = rest("crm.category.add", {"entityTypeId": 2, "fields": {"name": "Опт"}})
    assert body["result"]["category"]["name"] == "Опт"
    opt = body["result"]["category"]["id"]
    _s, body = rest("crm.category.update", {"entityTypeId": 2, "id": opt, "fields": {"name": "Оптовые", "sort": 50}})
    assert body["result"]["category"]["name"] == "Оптовые"
    assert rest("crm.dealcategory.get", {"id": opt})[1]["result"]["NAME"] == "Оптовые"
    status, body = rest("crm.category.delete", {"entityTypeId": 2, "id": repeat})  # it has a deal
    assert status == 400 and body["error"] == "REMOVING_DISABLED"
    status, body = rest("crm.category.delete", {"entityTypeId": 2, "id": 0})  # the default one
    assert status == 400 and body["error"] == "REMOVING_DISABLED"
    assert rest("crm.dealcategory.delete", {"id": opt})[1]["result"] is True
    assert rest("crm.category.get", {"entityTypeId": 2, "id": opt})[1]["error"] == "NOT_FOUND"


def test_user_fields(rest, lead_pipeline):
    status, body = rest("crm.lead.userfield.add", {"fields": {"FIELD_NAME": "INN", "USER_TYPE_ID": "string",
                                                              "EDIT_FORM_LABEL": {"ru": "ИНН"}}})
    assert status == 200, body
    uf_id = body["result"]
    _s, body = rest("crm.lead.userfield.get", {"id": uf_id})
    assert body["result"]["FIELD_NAME"] == "UF_CRM_INN" and body["result"]["EDIT_FORM_LABEL"] == "ИНН"
    _s, body = rest("crm.lead.add", {"fields": {"TITLE": "С полем", "UF_CRM_INN": "7701234567"}})
    lead_id = body["result"]
    _s, body = rest("crm.lead.get", {"id": lead_id})
    assert body["result"]["UF_CRM_INN"] == "7701234567"
    _s, body = rest("crm.lead.list", {"filter": {"UF_CRM_INN": "7701234567"}, "select": ["ID", "UF_*"]})
    assert [r["ID"] for r in body["result"]] == [str(lead_id)] and body["result"][0]["UF_CRM_INN"] == "7701234567"
    _s, body = rest("crm.lead.fields")
    assert body["result"]["UF_CRM_INN"]["isDynamic"] is True
    _s, body = rest("crm.lead.userfield.list")
    assert [r["FIELD_NAME"] for r in body["result"]] == ["UF_CRM_INN"]
    assert rest("crm.lead.userfield.delete", {"id": uf_id})[1]["result"] is True


def test_links_duplicates_comments_activities(rest, admin, lead_pipeline, deal_pipelines):
    _s, body = rest("crm.company.add", {"fields": {"TITLE": "Ромашка", "EMAIL": [{"VALUE": "info@romashka.ru"}]}})
    company = body["result"]
    _s, body = rest("crm.contact.add", {"fields": {"NAME": "Ольга", "PHONE": [{"VALUE": "+7 900 111-22-33"}]}})
    contact = body["result"]
    _s, body = rest("crm.deal.add", {"fields": {"TITLE": "Поставка"}})
    deal = body["result"]
    assert rest("crm.deal.contact.items.set", {"id": deal, "items": [{"CONTACT_ID": contact}]})[1]["result"] is True
    assert rest("crm.deal.contact.items.get", {"id": deal})[1]["result"][0]["CONTACT_ID"] == contact
    assert rest("crm.contact.company.add", {"id": contact, "fields": {"COMPANY_ID": company}})[1]["result"] is True
    assert rest("crm.company.contact.items.get", {"id": company})[1]["result"][0]["CONTACT_ID"] == contact
    _s, body = rest("crm.duplicate.findbycomm", {"type": "PHONE", "values": ["89001112233"]})
    assert body["result"] == {"CONTACT": [contact]}
    _s, body = rest("crm.duplicate.findbycomm", {"type": "EMAIL", "values": ["nobody@example.ru"]})
    assert body["result"] == []
    assert rest("crm.duplicate.findbycomm", {"type": "FAX", "values": ["1"]})[0] == 400
    _s, body = rest("crm.timeline.comment.add", {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "Звонил"}})
    comment = body["result"]
    _s, body = rest("crm.timeline.comment.list", {"filter": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal"}})
    assert [c["COMMENT"] for c in body["result"]] == ["Звонил"]
    assert rest("crm.timeline.comment.get", {"id": comment})[1]["result"]["ENTITY_TYPE"] == "deal"
    from voronka.activities.actions import create_task

    task = create_task(admin, title="Перезвонить", responsible=admin.user_id, entity_type_id=2, entity_id=deal)
    _s, body = rest("crm.activity.list", {"filter": {"OWNER_TYPE_ID": 2, "OWNER_ID": deal}})
    assert [a["SUBJECT"] for a in body["result"]] == ["Перезвонить"] and body["result"][0]["COMPLETED"] == "N"
    assert rest("crm.activity.get", {"id": task.pk})[1]["result"]["OWNER_ID"] == str(deal)


def test_users_and_profile(rest, admin_user, manager_user):
    _s, body = rest("user.current")
    assert body["result"]["ID"] == str(admin_user.pk)
    _s, body = rest("user.get", {"FILTER": {"ID": manager_user.pk}})
    assert [u["LAST_NAME"] for u in body["result"]] == ["Менеджеров"] and body["total"] == 1
    _s, body = rest("profile")
    assert body["result"]["ADMIN"] is True


def test_rights_a_manager_sees_nothing_of_others(rest, manager_rest, lead_pipeline, admin_user):
    from voronka.leads.models import Lead

    _s, body = rest("crm.lead.add", {"fields": {"TITLE": "Чужой", "ASSIGNED_BY_ID": admin_user.pk, "OPENED": "N"}})
    lead_id = body["result"]
    status, body = manager_rest("crm.lead.get", {"id": lead_id})
    assert status == 400 and body["error_description"] == "Not found"
    status, body = manager_rest("crm.lead.update", {"id": lead_id, "fields": {"TITLE": "Моё"}})
    assert status == 400 and body["error_description"] == "Lead is not found"
    assert manager_rest("crm.lead.delete", {"id": lead_id})[1]["error_description"] == "Lead is not found"
    _s, body = manager_rest("crm.lead.list", {"filter": {"ID": lead_id}})
    assert body["result"] == [] and body["total"] == 0
    _s, body = manager_rest("batch", {"cmd": {"g": f"crm.lead.get?id={lead_id}"}})
    assert body["result"]["result_error"]["g"]["error_description"] == "Not found"
    assert Lead.objects.get(pk=lead_id).title == "Чужой"
    status, body = manager_rest("crm.status.add", {"fields": {"ENTITY_ID": "STATUS", "NAME": "Моя стадия"}})
    assert status == 400 and body["error_description"] == "Access denied."


def test_bad_input_never_500(rest, lead_pipeline):
    for method, payload in [("crm.lead.add", {"fields": "x"}), ("crm.lead.get", {"id": "abc"}),
                            ("crm.lead.list", {"filter": {">DATE_CREATE": "not a date"}}),
                            ("crm.lead.list", {"order": "ID"}), ("crm.lead.add", {"fields": {"STATUS_ID": "NOPE"}}),
                            ("crm.lead.add", {"fields": {"OPPORTUNITY": "много"}}),
                            ("crm.lead.add", {"fields": {"ASSIGNED_BY_ID": 999999}}),
                            ("crm.lead.update", {"id": 0}), ("batch", {"cmd": {"x": "batch?cmd[y]=profile"}}),
                            ("crm.status.entity.items", {}), ("crm.category.list", {"entityTypeId": 99}),
                            ("crm.lead.list", {"filter": {">ID": ["1", "2"]}}), ("event.bind", {"event": "ONNOTHING"})]:
        status, body = rest(method, payload)
        if method == "batch":
            assert status == 200 and body["result"]["result_error"]["x"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
        else:
            assert status == 400 and body["error_description"], (method, status, body)


def test_reading_past_the_export_threshold_needs_the_export_right(rest, manager_rest, manager_user, lead_pipeline,
                                                                  settings):
    settings.LANGUAGE_CODE = "en"  # messages are asserted in English
    from voronka.core.models import AuditEvent

    settings.VORONKA_EXPORT_THRESHOLD = 60
    cmd = {f"a{n}": f"crm.lead.add?fields[TITLE]=L{n}&fields[ASSIGNED_BY_ID]={manager_user.pk}" for n in range(50)}
    rest("batch", {"cmd": cmd})
    rest("batch", {"cmd": {f"b{n}": f"crm.lead.add?fields[TITLE]=M{n}&fields[ASSIGNED_BY_ID]={manager_user.pk}"
                           for n in range(30)}})
    status, body = manager_rest("crm.lead.list", {"start": 0})
    assert status == 200 and body["total"] == 80 and body["next"] == 50
    status, body = manager_rest("crm.lead.list", {"start": 50})  # a sales manager has no export right
    assert status == 400 and "export" in body["error_description"]
    status, body = manager_rest("crm.lead.list", {"start": -1, "filter": {">ID": 0}})
    assert status == 200 and len(body["result"]) == 50
    last = body["result"][-1]["ID"]
    status, body = manager_rest("crm.lead.list", {"start": -1, "filter": {">ID": last}})
    assert status == 400  # the no-count mode is held to the same line
    _s, body = rest("crm.lead.list", {"start": 50})  # the administrator may export; the crossing is audited
    assert len(body["result"]) == 30
    assert AuditEvent.objects.filter(action="records.listed_past_threshold").count() == 1


def test_company_web_is_a_multifield_mirrored_by_the_site(rest):
    """A company's WEB values are its web addresses; its ``site`` field is the first of them."""
    from voronka.parties.models import Company

    status, body = rest("crm.company.add", {"fields": {"TITLE": "Сайт", "WEB": [
        {"VALUE": "https://romashka.ru", "VALUE_TYPE": "WORK"}, {"VALUE": "vk.com/romashka", "VALUE_TYPE": "VK"}]}})
    assert status == 200, body
    company = body["result"]
    assert Company.objects.get(pk=company).site == "https://romashka.ru"
    web = rest("crm.company.get", {"id": company})[1]["result"]["WEB"]
    assert [(w["VALUE"], w["VALUE_TYPE"], w["TYPE_ID"]) for w in web] == [
        ("https://romashka.ru", "WORK", "WEB"), ("vk.com/romashka", "VK", "WEB")]
    _s, body = rest("crm.company.list", {"filter": {"ID": company}})
    assert "WEB" not in body["result"][0]  # multi-fields only when named in select, as in Bitrix24
    _s, body = rest("crm.company.list", {"filter": {"ID": company}, "select": ["ID", "WEB"]})
    assert body["result"][0]["WEB"][0]["VALUE"] == "https://romashka.ru"
    rest("crm.company.update", {"id": company, "fields": {"WEB": []}})  # nothing to apply: the values stay
    assert len(rest("crm.company.get", {"id": company})[1]["result"]["WEB"]) == 2
    rest("crm.company.update", {"id": company, "fields": {"WEB": [{"ID": web[0]["ID"], "DELETE": "Y"}]}})
    assert [w["VALUE"] for w in rest("crm.company.get", {"id": company})[1]["result"]["WEB"]] == ["vk.com/romashka"]
    assert Company.objects.get(pk=company).site == "vk.com/romashka"  # the first value moved up
    _s, body = rest("crm.company.list", {"filter": {"WEB": "https://www.VK.com/romashka/"}, "select": ["ID"]})
    assert [r["ID"] for r in body["result"]] == [str(company)]  # scheme, www, case and slash do not matter
    _s, body = rest("crm.item.update", {"entityTypeId": 4, "id": company, "fields": {
        "fm": {"n0": {"typeId": "WEB", "valueType": "WORK", "value": "https://new.ru"}}}})
    assert body["result"]["item"]["web"] == "vk.com/romashka"
    assert [f["value"] for f in body["result"]["item"]["fm"] if f["typeId"] == "WEB"] == [
        "vk.com/romashka", "https://new.ru"]


def test_im_and_web_multifields_of_leads_and_contacts(rest, lead_pipeline):
    """IM and WEB keep several typed values with ids and follow the merge rules, like PHONE and EMAIL."""
    for entity in ("lead", "contact"):
        status, body = rest(f"crm.{entity}.add", {"fields": {"NAME": "Иван", "IM": [
            {"VALUE": "@ivanov", "VALUE_TYPE": "TELEGRAM"}, {"VALUE": "ivan.skype", "VALUE_TYPE": "SKYPE"},
            {"VALUE": "", "VALUE_TYPE": "VIBER"}], "WEB": [{"VALUE": "ivanov.ru", "VALUE_TYPE": "HOME"}]}})
        assert status == 200, body
        pk = body["result"]
        got = rest(f"crm.{entity}.get", {"id": pk})[1]["result"]
        assert [(v["VALUE"], v["VALUE_TYPE"], v["TYPE_ID"]) for v in got["IM"]] == [
            ("@ivanov", "TELEGRAM", "IM"), ("ivan.skype", "SKYPE", "IM")]  # the empty value is skipped
        assert [(v["VALUE"], v["VALUE_TYPE"]) for v in got["WEB"]] == [("ivanov.ru", "HOME")]
        assert got["HAS_IMOL"] == "N"
        telegram, skype = got["IM"]
        rest(f"crm.{entity}.update", {"id": pk, "fields": {"IM": [
            {"ID": telegram["ID"], "VALUE": "@ivanov_new"},  # changed, type kept
            {"ID": skype["ID"], "DELETE": "Y"},  # removed
            {"VALUE": "+7 916 123-45-67", "VALUE_TYPE": "WHATSAPP"},  # appended
            {"VALUE": "someone", "VALUE_TYPE": "NO_SUCH_TYPE"}]}})  # an unknown type is «other»
        got = rest(f"crm.{entity}.get", {"id": pk})[1]["result"]
        assert [(v["VALUE"], v["VALUE_TYPE"]) for v in got["IM"]] == [
            ("@ivanov_new", "TELEGRAM"), ("+7 916 123-45-67", "WHATSAPP"), ("someone", "OTHER")]
        assert [v["VALUE"] for v in got["WEB"]] == ["ivanov.ru"]  # not mentioned: kept
        other = [v for v in got["IM"] if v["VALUE"] == "someone"][0]
        rest(f"crm.{entity}.update", {"id": pk, "fields": {"IM": [{"ID": other["ID"], "VALUE": ""}]}})
        got = rest(f"crm.{entity}.get", {"id": pk})[1]["result"]
        assert len(got["IM"]) == 2  # an empty VALUE with an ID removes it
        for key, value in (("IM", "t.me/ivanov_new"), ("IM", "ivanov_new"), ("IM", "89161234567"),
                           ("WEB", "http://ivanov.ru/")):
            _s, body = rest(f"crm.{entity}.list", {"filter": {key: value}, "select": ["ID", "IM"]})
            assert [r["ID"] for r in body["result"]] == [str(pk)], (entity, key, value)
        _s, body = rest(f"crm.{entity}.list", {"filter": {"%IM": "ivanov"}, "select": ["ID"]})
        assert [r["ID"] for r in body["result"]] == [str(pk)]
        _s, body = rest(f"crm.{entity}.list", {"filter": {"IM": "petrov"}, "select": ["ID"]})
        assert body["result"] == []
        _s, body = rest(f"crm.{entity}.list", {"filter": {"ID": pk}, "select": ["*"]})
        assert "IM" not in body["result"][0] and "WEB" not in body["result"][0]  # * leaves multi-fields out
        _s, body = rest(f"crm.{entity}.list", {"filter": {"ID": pk}, "select": ["IM", "WEB"]})
        assert set(body["result"][0]) == {"ID", "IM", "WEB"}
        fields = rest(f"crm.{entity}.fields", {})[1]["result"]
        assert fields["IM"]["type"] == "crm_multifield" and fields["IM"]["isMultiple"] is True
        item = rest("crm.item.get", {"entityTypeId": 1 if entity == "lead" else 3, "id": pk})[1]["result"]["item"]
        assert ("IM", "TELEGRAM", "@ivanov_new") in [(f["typeId"], f["valueType"], f["value"]) for f in item["fm"]]
