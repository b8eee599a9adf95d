"""Links on record cards: link by number or name, both cards show it, hidden far ends, unlink."""

from __future__ import annotations

import pytest
from django.conf import settings

from voronka.deals.actions import create_deal
from voronka.identity.models import Department, User
from voronka.leads.actions import create_lead
from voronka.links.models import Link

pytestmark = pytest.mark.django_db


def _client(client, user):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def test_link_from_the_card_by_name_and_number(client, admin_user, admin, lead_pipeline, deal_pipelines):
    c = _client(client, admin_user)
    deal = create_deal(admin, title="Кухня на заказ")
    lead = create_lead(admin, title="Заявка с сайта")
    create_deal(admin, title="Шкаф")
    create_deal(admin, title="Шкаф-купе")
    response = c.post(f"/crm/deals/{deal.pk}/links/", {"other_kind": "leads", "other": "заявка"}, follow=True)
    assert response.status_code == 200 and "Linked with" in response.content.decode()
    assert Link.objects.filter(source_id=deal.pk, target_id=lead.pk, target_type_id=1).exists()
    card = c.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert "Кухня на заказ" in card and f"/crm/deals/{deal.pk}/" in card
    # ambiguous names ask for the number; the number works
    page = c.post(f"/crm/deals/{deal.pk}/links/", {"other_kind": "deals", "other": "шкаф"}, follow=True).content.decode()
    assert "Several records match" in page and Link.objects.count() == 1
    page = c.post(f"/crm/deals/{deal.pk}/links/", {"other_kind": "deals", "other": "нет такого"}, follow=True).content.decode()
    assert "Nothing found" in page
    page = c.post(f"/crm/deals/{deal.pk}/links/", {"other_kind": "rockets", "other": "1"}, follow=True)
    assert page.status_code == 200 and "Choose what to link" in page.content.decode()
    link = Link.objects.get()
    assert c.post(f"/crm/deals/{deal.pk}/links/{link.pk}/delete/").status_code == 302
    link.refresh_from_db()
    assert link.deleted_at is not None


def test_a_manager_sees_that_a_link_exists_but_not_where_it_leads(client, admin, manager_user, lead_pipeline,
                                                                  deal_pipelines):
    stranger = User.objects.create_user("stranger", "s@example.ru", "pass", department=Department.objects.create(name="Цех"))
    mine = create_deal(admin, title="Моя сделка", responsible=manager_user.pk)
    secret = create_deal(admin, title="Секретное производство", responsible=stranger.pk)
    link = Link.objects.create(source_type_id=2, source_id=mine.pk, target_type_id=2, target_id=secret.pk)
    c = _client(client, manager_user)
    card = c.get(f"/crm/deals/{mine.pk}/").content.decode()
    assert "Секретное производство" not in card and "1 linked record is hidden from you" in card
    assert c.post(f"/crm/deals/{mine.pk}/links/", {"other_kind": "deals", "other": str(secret.pk)}).status_code == 302
    assert Link.objects.count() == 1
    c.post(f"/crm/deals/{mine.pk}/links/{link.pk}/delete/")
    link.refresh_from_db()
    assert link.deleted_at is None
