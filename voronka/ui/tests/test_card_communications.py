"""The card's phones, e-mails, messengers and sites boxes."""

from __future__ import annotations

import pytest

from voronka.parties.communications import values_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_card_shows_and_edits_messengers_and_sites(admin_client, admin, lead_pipeline):
    from voronka.leads.actions import create_lead

    lead = create_lead(admin, title="Мессенджеры", phones=[{"value": "+7 916 000-11-22", "type": "work"}],
                       messengers=[{"value": "@ivanov", "type": "telegram"}], websites=["ivanov.ru"])
    page = admin_client.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert "telegram: @ivanov" in page and "ivanov.ru" in page
    response = admin_client.post(f"/crm/leads/{lead.pk}/", {
        "title": "Мессенджеры", "opportunity": "0", "currency": "RUB", "phones_text": "+7 916 000-11-22\n",
        "emails_text": "",
        "messengers_text": "telegram: @ivanov\nwhatsapp: +7 916 000-11-22\nskype_name",
        "websites_text": "ivanov.ru\nvk.com/ivanov"})
    assert response.status_code == 302, response.context["form"].errors
    comms = values_of(1, [lead.pk])[lead.pk]
    assert [(c.value, c.value_type) for c in comms["im"]] == [
        ("@ivanov", "telegram"), ("+7 916 000-11-22", "whatsapp"), ("skype_name", "other")]
    assert [c.value for c in comms["web"]] == ["ivanov.ru", "vk.com/ivanov"]
    assert [(c.value, c.value_type) for c in comms["phone"]] == [("+7 916 000-11-22", "work")]  # its type kept
    response = admin_client.post(f"/crm/leads/{lead.pk}/", {
        "title": "Мессенджеры", "opportunity": "0", "currency": "RUB", "phones_text": "+7 916 000-11-22",
        "emails_text": "", "messengers_text": "",
        "websites_text": "not a site"})
    assert response.status_code == 200  # the form again, with the error; nothing written
    assert len(values_of(1, [lead.pk])[lead.pk]["web"]) == 2


def test_a_company_card_site_field_and_sites_box(admin_client, admin):
    from voronka.parties.actions import create_company
    from voronka.parties.models import Company

    company = create_company(admin, name="Ромашка", site="romashka.ru")
    page = admin_client.get(f"/crm/companies/{company.pk}/").content.decode()
    assert "romashka.ru" in page
    form = {"name": "Ромашка", "company_type": "client", "currency": "RUB", "site": "new-romashka.ru",
            "phones_text": "", "emails_text": "", "messengers_text": "", "websites_text": "romashka.ru"}
    response = admin_client.post(f"/crm/companies/{company.pk}/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Company.objects.get(pk=company.pk).site == "new-romashka.ru"  # the site field changed alone
    assert [c.value for c in values_of(4, [company.pk])[company.pk]["web"]] == ["new-romashka.ru"]
