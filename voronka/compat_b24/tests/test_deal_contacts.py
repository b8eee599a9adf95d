"""Several contacts per deal: the primary one is the deal's contact, the others «contact» links (voronka.links)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def _contacts(rest, n):
    return [rest("crm.contact.add", {"fields": {"NAME": f"Контакт {i}"}})[1]["result"] for i in range(n)]


def test_items_set_get_add_delete(rest, deal_pipelines):
    from voronka.deals.models import Deal
    from voronka.links.models import Link

    a, b, c = _contacts(rest, 3)
    deal = rest("crm.deal.add", {"fields": {"TITLE": "Поставка"}})[1]["result"]
    status, body = rest("crm.deal.contact.items.set", {"id": deal, "items": [
        {"CONTACT_ID": a, "SORT": 20}, {"CONTACT_ID": b, "SORT": 10, "IS_PRIMARY": "Y"}, {"CONTACT_ID": c, "SORT": 30}]})
    assert status == 200 and body["result"] is True
    rows = rest("crm.deal.contact.items.get", {"id": deal})[1]["result"]
    assert [(r["CONTACT_ID"], r["IS_PRIMARY"]) for r in rows] == [(b, "Y"), (a, "N"), (c, "N")]
    assert Deal.objects.get(pk=deal).contact_id == b
    assert rest("crm.deal.get", {"id": deal})[1]["result"]["CONTACT_ID"] == str(b)
    assert set(Link.objects.filter(source_type_id=2, source_id=deal, role="contact", deleted_at__isnull=True)
               .values_list("target_id", flat=True)) == {a, c}
    # removing the primary contact promotes the next one
    assert rest("crm.deal.contact.delete", {"id": deal, "fields": {"CONTACT_ID": b}})[1]["result"] is True
    rows = rest("crm.deal.contact.items.get", {"id": deal})[1]["result"]
    assert [(r["CONTACT_ID"], r["IS_PRIMARY"]) for r in rows] == [(a, "Y"), (c, "N")]
    # adding as primary demotes the current primary (further contacts keep the order they were added in)
    assert rest("crm.deal.contact.add", {"id": deal, "fields": {"CONTACT_ID": b, "IS_PRIMARY": "Y"}})[1]["result"]
    rows = rest("crm.deal.contact.items.get", {"id": deal})[1]["result"]
    assert [(r["CONTACT_ID"], r["IS_PRIMARY"]) for r in rows] == [(b, "Y"), (c, "N"), (a, "N")]
    status, body = rest("crm.deal.contact.items.set", {"id": deal, "items": [{"CONTACT_ID": 10**9}]})
    assert status == 400 and "not found" in body["error_description"]
    assert rest("crm.deal.contact.items.delete", {"id": deal})[1]["result"] is True
    assert rest("crm.deal.contact.items.get", {"id": deal})[1]["result"] == []
    assert not Link.objects.filter(source_type_id=2, source_id=deal, deleted_at__isnull=True).exists()


def test_contact_ids_on_add_and_update(rest, deal_pipelines):
    a, b, c = _contacts(rest, 3)
    status, body = rest("crm.deal.add", {"fields": {"TITLE": "С контактами", "CONTACT_IDS": [a, b]}})
    assert status == 200, body
    deal = body["result"]
    rows = rest("crm.deal.contact.items.get", {"id": deal})[1]["result"]
    assert [(r["CONTACT_ID"], r["IS_PRIMARY"]) for r in rows] == [(a, "Y"), (b, "N")]
    assert rest("crm.deal.update", {"id": deal, "fields": {"CONTACT_IDS": [c, a]}})[1]["result"] is True
    rows = rest("crm.deal.contact.items.get", {"id": deal})[1]["result"]
    assert [(r["CONTACT_ID"], r["IS_PRIMARY"]) for r in rows] == [(c, "Y"), (a, "N")]
    # in a batch, adds with CONTACT_IDS are written one by one (the grouped bulk add writes no links)
    _s, body = rest("batch", {"halt": 0, "cmd": {
        "x": f"crm.deal.add?fields[TITLE]=A&fields[CONTACT_IDS][]={a}&fields[CONTACT_IDS][]={b}",
        "y": "crm.deal.add?fields[TITLE]=B"}})
    assert not body["result"]["result_error"], body
    rows = rest("crm.deal.contact.items.get", {"id": body["result"]["result"]["x"]})[1]["result"]
    assert [r["CONTACT_ID"] for r in rows] == [a, b]
    status, body = rest("crm.deal.add", {"fields": {"TITLE": "Плохой", "CONTACT_IDS": [10**9]}})
    assert status == 400


def test_hidden_contacts_are_not_named(rest, client, admin, admin_user, manager_user, deal_pipelines):
    """A user who may see the deal but not one of its contacts does not get that contact's id."""
    from voronka.compat_b24.actions import create_webhook
    from voronka.identity.models import Role, RolePermission
    from voronka.identity.permissions import rights_changed

    mine = rest("crm.contact.add", {"fields": {"NAME": "Открытый", "ASSIGNED_BY_ID": manager_user.pk}})[1]["result"]
    hidden = rest("crm.contact.add", {"fields": {"NAME": "Закрытый", "OPENED": "N"}})[1]["result"]
    deal = rest("crm.deal.add", {"fields": {"TITLE": "Общая", "ASSIGNED_BY_ID": manager_user.pk,
                                            "CONTACT_IDS": [hidden, mine]}})[1]["result"]
    role = Role.objects.get(code="sales_manager")
    RolePermission.objects.update_or_create(role=role, entity_type_id=3, pipeline=None, perm="read",
                                            defaults={"scope": 10})
    rights_changed()
    _hook, secret = create_webhook(admin, user_id=manager_user.pk, scopes=["crm"])
    resp = client.post(f"/rest/{manager_user.pk}/{secret}/crm.deal.contact.items.get", {"id": deal},
                       content_type="application/json")
    assert [r["CONTACT_ID"] for r in resp.json()["result"]] == [mine]
