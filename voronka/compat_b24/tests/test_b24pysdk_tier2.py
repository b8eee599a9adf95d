"""The tier-2 methods of the issue through b24pysdk (over TLS) against the live server."""

from __future__ import annotations


def test_directories_history_duplicates_comments_users_events(b24sdk, settings):
    settings.VORONKA_B24_EVENT_PRIVATE_HANDLERS = True
    crm = b24sdk.crm
    stages = crm.status.list(filter={"ENTITY_ID": "DEAL_STAGE"}).result
    assert [s["STATUS_ID"] for s in stages] == ["NEW", "INVOICE", "WON", "LOST"]
    categories = crm.category.list(entity_type_id=2).result["categories"]
    assert [c["id"] for c in categories][0] == 0 and len(categories) == 2
    deal_id = crm.deal.add(fields={"TITLE": "История", "OPPORTUNITY": 10}).result
    crm.deal.update(bitrix_id=deal_id, fields={"STAGE_ID": "WON"}).result  # noqa: B018
    history = crm.stagehistory.list(entity_type_id=2, filter={"OWNER_ID": deal_id}).result
    items = history["items"] if isinstance(history, dict) else history
    assert [i["STAGE_ID"] for i in items] == ["NEW", "WON"]
    contact_id = crm.contact.add(fields={"NAME": "Дубль", "PHONE": [{"VALUE": "+79005551122"}]}).result
    found = crm.duplicate.findbycomm(type="PHONE", values=["+7 900 555-11-22"]).result
    assert found == {"CONTACT": [contact_id]}
    comment_id = crm.timeline.comment.add(fields={"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal",
                                                  "COMMENT": "Через SDK"}).result
    assert isinstance(comment_id, int)
    field_id = crm.deal.userfield.add(fields={"FIELD_NAME": "CONTRACT", "USER_TYPE_ID": "string",
                                              "EDIT_FORM_LABEL": "Договор"}).result
    assert crm.deal.userfield.get(bitrix_id=field_id).result["FIELD_NAME"] == "UF_CRM_CONTRACT"
    me = b24sdk.user.current().result
    assert b24sdk.profile().result["ID"] == me["ID"]
    assert b24sdk.event.bind(event="ONCRMDEALADD", handler="http://127.0.0.1:9/hook").result is True
    assert [e["event"] for e in b24sdk.event.get().result] == ["ONCRMDEALADD"]
    assert b24sdk.event.unbind(event="ONCRMDEALADD", handler="http://127.0.0.1:9/hook").result == {"count": 1}
