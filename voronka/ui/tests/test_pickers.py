"""Record pickers: suggestions within the user's rights, link fields and multi-value custom fields on cards."""

from __future__ import annotations

import pytest
from django.conf import settings

from voronka.customfields.actions import define_field
from voronka.deals.actions import create_deal
from voronka.deals.models import Deal
from voronka.identity.models import User
from voronka.parties.actions import create_company, create_contact

pytestmark = pytest.mark.django_db


def _client(client, user):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def test_pick_suggests_readable_records_by_name_number_and_phone(client, admin_user, admin, manager_user):
    c = _client(client, admin_user)
    ivan = create_contact(admin, last_name="Петров", first_name="Иван", phones=["+79161234567"])
    create_contact(admin, last_name="Петрова", first_name="Мария")
    hidden = create_contact(admin, last_name="Петров", first_name="Скрытый", is_open=False)
    found = c.get("/pick/3/", {"q": "петров ив"}).json()["results"]
    assert [r["id"] for r in found] == [ivan.pk]
    assert c.get("/pick/3/", {"q": "8 916 123-45-67"}).json()["results"][0]["id"] == ivan.pk
    assert c.get("/pick/3/", {"q": f"#{ivan.pk}"}).json()["results"][0]["id"] == ivan.pk
    assert len(c.get("/pick/3/", {"q": "петров"}).json()["results"]) == 3
    # the manager does not see the closed contact of another person, not even by its number
    m = _client(client, manager_user)
    titles = [r["title"] for r in m.get("/pick/3/", {"q": "петров"}).json()["results"]]
    assert "Петров Скрытый" not in titles and len(titles) == 2
    assert m.get("/pick/3/", {"q": str(hidden.pk)}).json()["results"] == []


def test_pick_is_not_found_without_the_right_or_for_an_unknown_kind(client, admin_user):
    nobody = User.objects.create_user("nobody", "n@example.ru", "pass")
    c = _client(client, nobody)
    assert c.get("/pick/3/", {"q": "a"}).status_code == 404
    assert _client(client, admin_user).get("/pick/999/", {"q": "a"}).status_code == 404


def test_deal_card_links_contact_and_company_by_picker(client, admin_user, admin, deal_pipelines):
    c = _client(client, admin_user)
    contact = create_contact(admin, last_name="Сидоров", first_name="Олег")
    company = create_company(admin, name="ООО Ромашка")
    deal = create_deal(admin, title="Поставка")
    html = c.get(f"/crm/deals/{deal.pk}/").content.decode()
    assert 'data-picker' in html and 'role="combobox"' in html and "(ID)" not in html
    response = c.post(f"/crm/deals/{deal.pk}/", {"title": "Поставка", "currency": "RUB", "opportunity": "0", "contact": str(contact.pk),
                                                 "company": str(company.pk)})
    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.contact_id, deal.company_id) == (contact.pk, company.pk)
    html = c.get(f"/crm/deals/{deal.pk}/").content.decode()
    assert 'value="Сидоров Олег"' in html and 'value="ООО Ромашка"' in html


def test_hidden_linked_record_shows_as_a_number(client, admin, manager_user, deal_pipelines):
    hidden = create_contact(admin, last_name="Тайный", first_name="Клиент", is_open=False)
    deal = create_deal(admin, title="Моя сделка", responsible=manager_user.pk, contact=hidden.pk)
    html = _client(client, manager_user).get(f"/crm/deals/{deal.pk}/").content.decode()
    assert "Тайный" not in html and f'value="#{hidden.pk}"' in html


def test_custom_link_and_multi_value_fields_are_edited_on_the_card(client, admin_user, admin, deal_pipelines):
    c = _client(client, admin_user)
    define_field(admin, entity_type_id=2, code="uf_referrer", label="Рекомендатель", kind="link",
                 options={"entity_type_id": 3})
    define_field(admin, entity_type_id=2, code="uf_partners", label="Партнёры", kind="link", multiple=True,
                 options={"entity_type_id": 4})
    define_field(admin, entity_type_id=2, code="uf_colors", label="Цвета", kind="enum", multiple=True,
                 options={"choices": [{"id": "red", "label": "Красный"}, {"id": "blue", "label": "Синий"}]})
    define_field(admin, entity_type_id=2, code="uf_serials", label="Серийные номера", kind="string", multiple=True)
    ref = create_contact(admin, last_name="Рекомендатель", first_name="Пётр")
    a, b = create_company(admin, name="Партнёр А"), create_company(admin, name="Партнёр Б")
    deal = create_deal(admin, title="Кухня")
    html = c.get(f"/crm/deals/{deal.pk}/").content.decode()
    assert 'name="cf_uf_referrer"' in html and 'data-multiple data-name="cf_uf_partners"' in html
    assert 'name="cf_uf_colors"' in html and 'name="cf_uf_serials"' in html
    response = c.post(f"/crm/deals/{deal.pk}/", {
        "title": "Кухня", "currency": "RUB", "opportunity": "0", "cf_uf_referrer": str(ref.pk), "cf_uf_partners": [str(a.pk), str(b.pk)],
        "cf_uf_colors": ["red", "blue"], "cf_uf_serials": "SN-1\nSN-2\n\n"})
    assert response.status_code == 302, response.content.decode()[:2000]
    deal.refresh_from_db()
    assert deal.custom == {"uf_referrer": ref.pk, "uf_partners": [a.pk, b.pk], "uf_colors": ["red", "blue"],
                           "uf_serials": ["SN-1", "SN-2"]}
    html = c.get(f"/crm/deals/{deal.pk}/").content.decode()
    assert "Партнёр А" in html and "Партнёр Б" in html and 'value="Рекомендатель Пётр"' in html
    # removing one partner and every colour keeps the rest
    response = c.post(f"/crm/deals/{deal.pk}/", {
        "title": "Кухня", "currency": "RUB", "opportunity": "0", "cf_uf_referrer": str(ref.pk), "cf_uf_partners": [str(b.pk)],
        "cf_uf_serials": "SN-1\nSN-2"})
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.custom == {"uf_referrer": ref.pk, "uf_partners": [b.pk], "uf_serials": ["SN-1", "SN-2"]}
    # a bad id is a form error, not a 500
    response = c.post(f"/crm/deals/{deal.pk}/", {"title": "Кухня", "currency": "RUB", "opportunity": "0", "cf_uf_referrer": "999999"})
    assert response.status_code == 200 and "no record with id 999999" in response.content.decode()
    assert Deal.objects.get(pk=deal.pk).custom["uf_referrer"] == ref.pk


def test_smart_item_links_an_item_of_another_smart_process_by_a_field(client, admin_user, admin, manager_user):
    """A smart process linked to another one by a custom field «link to a record», chosen on the card."""
    from voronka.items import actions as items
    from voronka.items.models import SmartItem

    machines = items.create_type(admin, name="Станок", name_plural="Станки", code="machines")
    repairs = items.create_type(admin, name="Ремонт", name_plural="Ремонты", code="repairs")
    define_field(admin, entity_type_id=repairs.id, code="uf_machine", label="Станок", kind="link",
                 options={"entity_type_id": machines.id})
    lathe = items.create_item(admin, "machines", title="Токарный 16К20")
    items.create_item(admin, "machines", title="Фрезерный 6Р82", is_open=False)
    repair = items.create_item(admin, "repairs", title="Замена шпинделя")
    c = _client(client, admin_user)
    found = c.get(f"/pick/{machines.id}/", {"q": "токарный"}).json()["results"]
    assert [r["id"] for r in found] == [lathe.pk]
    response = c.post(f"/crm/repairs/{repair.pk}/", {"title": "Замена шпинделя", "currency": "RUB", "opportunity": "0",
                                                    "cf_uf_machine": str(lathe.pk)})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert SmartItem.objects.get(pk=repair.pk).custom == {"uf_machine": lathe.pk}
    assert 'value="Токарный 16К20"' in c.get(f"/crm/repairs/{repair.pk}/").content.decode()
    # a manager without any right on the machines gets no suggestions
    assert _client(client, manager_user).get(f"/pick/{machines.id}/", {"q": "токарный"}).status_code == 404


def test_pick_names_a_contacts_company_only_to_those_who_may_read_it(client, admin_user, admin, manager_user):
    from voronka.identity.models import Role, RoleAssignment
    from voronka.identity.permissions import rights_changed

    # an operator reads own contacts and companies only: a contact of theirs at a company they cannot read
    RoleAssignment.objects.filter(user=manager_user).delete()
    RoleAssignment.objects.create(role=Role.objects.get(code="call_centre_operator"), user=manager_user)
    rights_changed()
    secret = create_company(admin, name="ООО Секретная", is_open=False)
    mine = create_contact(admin, last_name="Клиентов", first_name="Олег", company=secret.pk, responsible=manager_user.pk)
    seen = _client(client, admin_user).get("/pick/3/", {"q": "Клиентов"}).json()["results"]
    assert seen[0]["hint"] == "ООО Секретная"
    found = _client(client, manager_user).get("/pick/3/", {"q": "Клиентов"}).json()["results"]
    assert [r["id"] for r in found] == [mine.pk]
    assert "Секретная" not in found[0]["hint"]
