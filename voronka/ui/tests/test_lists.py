"""Lists and boards: filters, saved views (the operator's three stages), bulk actions, query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from voronka.identity.models import Role
from voronka.leads.actions import create_leads
from voronka.leads.models import Lead
from voronka.ui.actions import save_view

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", ["/crm/leads/", "/crm/leads/board/", "/crm/deals/", "/crm/deals/board/",
                                 "/crm/contacts/", "/crm/companies/"])
def test_query_count_does_not_grow_with_records(admin_client, admin, lead_pipeline, deal_pipelines, url):
    from voronka.deals.actions import create_deals
    from voronka.parties.actions import create_companies, create_contacts

    def add(n):
        create_leads(admin, [{"title": f"L{i}", "phones": [f"+7916000{i:04d}"], "source": "site"} for i in range(n)])
        create_deals(admin, [{"title": f"D{i}", "opportunity": i} for i in range(n)])
        create_contacts(admin, [{"first_name": f"C{i}"} for i in range(n)])
        create_companies(admin, [{"name": f"Co{i}"} for i in range(n)])

    add(3)
    _queries(admin_client, url)  # warm: the first page after a settings change reloads the smart types once
    few = _queries(admin_client, url)
    add(40)
    many = _queries(admin_client, url)
    assert many == few, (url, few, many)


def test_filters_phone_in_any_format(admin_client, admin, lead_pipeline):
    create_leads(admin, [{"title": "Нужный", "phones": ["+79161234567"]}, {"title": "Другой", "phones": ["+79160000000"]}])
    page = admin_client.get("/crm/leads/", {"q": "8 (916) 123-45-67"}).content.decode()
    assert "Нужный" in page and "Другой" not in page
    page = admin_client.get("/search/", {"q": "+7 916 123 45 67"}).content.decode()
    assert "Нужный" in page and "Другой" not in page


def test_operator_view_shows_exactly_its_stages(client, admin, lead_pipeline):
    from voronka.core.actor import Actor
    from voronka.identity.actions import assign_role
    from voronka.identity.models import User

    operator = User.objects.create_user("op", password="x")
    role = Role.objects.get(code="call_centre_operator")
    assign_role(admin, role.pk, user_id=operator.pk)
    stages = {s.code: s.pk for s in lead_pipeline.stages.all()}
    three = [stages["new"], stages["assigned"], stages["qualified"]]
    save_view(admin, entity_type_id=1, name="Мои стадии", role_id=role.pk, is_default=True,
              params={"stage": [str(s) for s in three]})
    create_leads(Actor.for_user(operator, "test"), [{"title": f"Лид {code}", "stage": code, "phones": ["+79160000001"]}
                                                    for code in stages])
    client.force_login(operator)
    board = client.get("/crm/leads/board/").content.decode()
    shown = {code for code in stages if f'data-stage="{stages[code]}"' in board}
    assert shown == {"new", "assigned", "qualified"}
    listing = client.get("/crm/leads/").content.decode()
    assert "Лид new" in listing and "Лид junk" not in listing


def test_bulk_assign_and_move_within_rights(admin_client, admin, manager_user, lead_pipeline):
    results = create_leads(admin, [{"title": f"B{i}"} for i in range(3)])
    ids = [r.obj.pk for r in results]
    response = admin_client.post("/crm/leads/bulk/", {"ids": ids, "op": "assign", "responsible": manager_user.pk})
    assert response.status_code == 302
    assert set(Lead.objects.filter(pk__in=ids).values_list("responsible_id", flat=True)) == {manager_user.pk}
    junk = lead_pipeline.stages.get(code="junk").pk
    admin_client.post("/crm/leads/bulk/", {"ids": ids, "op": "move", "stage": junk})
    assert set(Lead.objects.filter(pk__in=ids).values_list("stage__code", flat=True)) == {"junk"}
    # a refused move is reported, the others go through
    qualified = lead_pipeline.stages.get(code="qualified").pk
    page = admin_client.post("/crm/leads/bulk/", {"ids": ids, "op": "move", "stage": qualified}, follow=True)
    assert "Not done for 3" in page.content.decode() or "Не выполнено" in page.content.decode()


def test_saved_view_for_oneself(admin_client, admin, lead_pipeline):
    create_leads(admin, [{"title": "Сайт", "source": "site"}, {"title": "Звонок", "source": "call"}])
    response = admin_client.post("/crm/leads/views/", {"name": "С сайта", "query": "source=site&columns=title"})
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "Сайт" in page and "Звонок" not in page


def test_department_and_custom_field_filters(admin_client, admin, manager_user, lead_pipeline):
    from voronka.customfields.actions import define_field

    define_field(admin, entity_type_id=1, code="uf_brand", label="Марка", kind="enum",
                 options={"choices": [{"id": "kamaz", "label": "КАМАЗ"}, {"id": "maz", "label": "МАЗ"}]})
    define_field(admin, entity_type_id=1, code="uf_vip", label="VIP", kind="boolean")
    create_leads(admin, [
        {"title": "Камаз отдела", "custom": {"uf_brand": "kamaz", "uf_vip": True}, "responsible": manager_user.pk},
        {"title": "Маз админа", "custom": {"uf_brand": "maz"}},
    ])
    page = admin_client.get("/crm/leads/", {"cf_uf_brand": "kamaz", "all": 1}).content.decode()
    assert "Камаз отдела" in page and "Маз админа" not in page
    page = admin_client.get("/crm/leads/", {"cf_uf_vip": "1", "all": 1}).content.decode()
    assert "Камаз отдела" in page and "Маз админа" not in page
    page = admin_client.get("/crm/leads/", {"department": manager_user.department_id, "all": 1}).content.decode()
    assert "Камаз отдела" in page and "Маз админа" not in page


def test_board_filters_narrow_cards_and_counts(admin_client, admin, manager_user, lead_pipeline):
    create_leads(admin, [{"title": "Мой лид", "responsible": manager_user.pk}, {"title": "Чужой лид"}])
    board = admin_client.get("/crm/leads/board/", {"responsible": manager_user.pk}).content.decode()
    assert "Мой лид" in board and "Чужой лид" not in board
    assert "data-count>1<" in board
    board = admin_client.get("/crm/leads/board/", {"q": "чужой"}).content.decode()
    assert "Чужой лид" in board and "Мой лид" not in board


def test_list_cells_name_related_records_choices_and_dates(admin_client, admin, deal_pipelines):
    """List rows are read as plain rows (not model instances): related names, choice labels and dates must
    still show as before, in both languages."""
    from voronka.deals.actions import create_deals
    from voronka.parties.actions import create_companies, create_contacts

    company = create_companies(admin, [{"name": "ООО «Ромашка»", "company_type": "partner"}])[0].obj
    contact = create_contacts(admin, [{"first_name": "Ирина", "last_name": "Котова", "company": company.pk}])[0].obj
    create_deals(admin, [{"title": "Поставка", "opportunity": "1500.50", "contact": contact.pk, "company": company.pk}])
    admin_client.cookies["django_language"] = "en"
    page = admin_client.get("/crm/deals/", {"all": "1"}).content.decode()
    assert "Котова" in page and "ООО «Ромашка»" in page.replace("&laquo;", "«").replace("&raquo;", "»")
    from django.utils import timezone
    from django.utils.formats import date_format
    from django.utils.translation import override

    with override("en"):
        today = date_format(timezone.localtime(), "SHORT_DATE_FORMAT")
    assert today in page
    page = admin_client.get("/crm/companies/", {"all": "1"}).content.decode()
    assert "<td>Partner</td>" in page
    admin_client.cookies["django_language"] = "ru"
    with override("ru"):
        today = date_format(timezone.localtime(), "SHORT_DATE_FORMAT")
    assert today in admin_client.get("/crm/deals/", {"all": "1"}).content.decode()


def test_list_filters_see_a_new_stage_at_once(admin_client, admin, lead_pipeline):
    """The list's pickers are kept per process behind the settings version: a new stage shows on the next page."""
    from voronka.pipelines.actions import create_stage

    admin_client.get("/crm/leads/", {"all": "1"})
    create_stage(admin, lead_pipeline.pk, name="Совсем новая стадия", code="brand_new")
    assert "Совсем новая стадия" in admin_client.get("/crm/leads/", {"all": "1"}).content.decode()


@pytest.mark.parametrize("order", ["-id", "created_at"])
def test_several_stages_page_through_in_order(admin_client, admin, lead_pipeline, order):
    """A list filtered to several stages (on PostgreSQL read as one index-ordered part per stage, merged) shows
    exactly the rows of those stages, in order, across pages, and nothing twice."""
    import datetime
    import re

    from django.utils import timezone

    from voronka.leads.actions import move_lead

    stages = {s.code: s.pk for s in lead_pipeline.stages.all()}
    created = create_leads(admin, [{"title": f"Row{i:03d}"} for i in range(130)])
    ids = [r.obj.pk for r in created]
    base = timezone.now() - datetime.timedelta(days=10)
    for i, pk in enumerate(ids):  # created_at out of id order, so the two orders differ
        Lead.objects.filter(pk=pk).update(created_at=base + datetime.timedelta(minutes=(i * 37) % 130))
        if i % 3 == 1:
            move_lead(admin, pk, stage=stages["assigned"])
        elif i % 3 == 2:
            move_lead(admin, pk, stage=stages["junk"])
    wanted = Lead.objects.filter(stage_id__in=[stages["new"], stages["junk"]])
    key = ("-id",) if order == "-id" else ("created_at", "id")
    expected = [f"Row{n:03d}" for n in
                (int(t[3:]) for t in wanted.order_by(*key).values_list("title", flat=True))]
    seen, url = [], f"/crm/leads/?stage={stages['new']}&stage={stages['junk']}&order={order}&all=1"
    page = url
    for _ in range(5):
        html = admin_client.get(page).content.decode()
        seen += re.findall(r">(Row\d{3})</a>", html)
        cursor = re.search(r"[?&]cursor=([A-Za-z0-9_-]+)", html)
        if not cursor:
            break
        page = f"{url}&cursor={cursor.group(1)}"
    assert seen == expected
