"""The desk (next tasks) and the search box in the header: names, companies, e-mails and phones in any format, rights applied."""

from __future__ import annotations

import pytest

from voronka.deals.actions import create_deal
from voronka.leads.actions import create_lead
from voronka.parties.actions import create_company, create_contact

pytestmark = pytest.mark.django_db


def _found(client, q: str) -> str:
    response = client.get("/search/", {"q": q})
    assert response.status_code == 200, q
    return response.content.decode()


def test_search_finds_by_name_company_email_and_phone_in_any_format(client, admin_user, admin, manager_user, manager,
                                                                       lead_pipeline, deal_pipelines):
    company = create_company(admin, name="ООО Ромашка")
    create_contact(admin, first_name="Ирина", last_name="Соколова", company=company.pk,
                   phones=["+7 916 123-45-67"], emails=["Irina.Sokolova@Example.ru"], responsible=admin_user.pk)
    create_lead(admin, title="Заявка с сайта", company_name="Вектор", responsible=admin_user.pk)
    create_deal(admin, title="Поставка краски", responsible=admin_user.pk)
    create_lead(manager, title="Мой лид Соколовой")  # the manager's own
    client.force_login(admin_user)
    assert "Соколова" in _found(client, "8 (916) 123-45-67")
    assert "Соколова" in _found(client, "+79161234567")
    assert "Соколова" in _found(client, "irina.sokolova@example.RU")
    assert "Соколова" in _found(client, "ромашка")  # a contact by its company
    assert "Заявка с сайта" in _found(client, "Вектор")  # a lead by its company name
    assert "Поставка краски" in _found(client, "краски")
    assert "Ничего не найдено" in _found(client, "no-such-thing") or "Nothing found" in _found(client, "no-such-thing")
    assert _found(client, "@@@")  # neither a phone nor an e-mail: no error
    # a sales manager sees only what the rights allow: the department's leads and deals (not the admin's),
    # open contacts (the preset's «all open» for clients)
    client.force_login(manager_user)
    page = _found(client, "Соколов")
    assert "Мой лид Соколовой" in page and "Соколова Ирина" in page
    assert "Заявка с сайта" not in _found(client, "Вектор")
    assert "Поставка краски" not in _found(client, "краски")


def test_desk_lists_my_next_tasks_overdue_first_and_not_others(client, admin_user, admin, manager_user, manager,
                                                                lead_pipeline):
    import datetime

    from django.utils import timezone

    from voronka.activities.actions import create_task

    lead = create_lead(manager, title="Лид для задач")
    now = timezone.now()
    create_task(manager, title="Завтрашний звонок", entity_type_id=1, entity_id=lead.pk,
                deadline=now + datetime.timedelta(days=1), responsible=manager_user.pk)
    create_task(manager, title="Просроченный звонок", entity_type_id=1, entity_id=lead.pk,
                deadline=now - datetime.timedelta(hours=2), responsible=manager_user.pk)
    create_task(admin, title="Задача администратора", entity_type_id=1, entity_id=lead.pk,
                deadline=now, responsible=admin_user.pk)
    client.force_login(manager_user)
    html = client.get("/").content.decode()
    desk = html[html.index('class="card desk-tasks"'):]
    assert desk.index("Просроченный звонок") < desk.index("Завтрашний звонок")
    assert "Задача администратора" not in desk
    assert f"/crm/leads/{lead.pk}/" in desk
