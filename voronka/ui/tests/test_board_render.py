"""The board's columns, cards and menu are rendered in Python and cached per process: pin what they show."""

from __future__ import annotations

import datetime
import re

from django.utils import timezone

from voronka.activities.actions import create_task
from voronka.activities.models import Task
from voronka.leads.actions import create_leads
from voronka.leads.models import Lead


def _card(board: str, title: str) -> str:
    match = re.search(r'<article class="kcard[^"]*"[^>]*>(?:(?!</article>).)*' + re.escape(title) + r".*?</article>",
                      board, re.S)
    assert match, title
    return match.group(0)


def test_overdue_badge_only_on_cards_with_an_open_overdue_task(admin_client, admin, lead_pipeline):
    create_leads(admin, [{"title": t} for t in ("Просрочен", "Срок впереди", "Сделано", "Без задач")])
    ids = dict(Lead.objects.values_list("title", "pk"))
    past = timezone.now() - datetime.timedelta(hours=2)
    for title, done in (("Просрочен", False), ("Срок впереди", False), ("Сделано", True)):
        task = create_task(admin, title="Позвонить", entity_type_id=1, entity_id=ids[title],
                           deadline=timezone.now() + datetime.timedelta(days=1))
        if title != "Срок впереди":
            Task.objects.filter(pk=task.pk).update(deadline=past, status=Task.Status.DONE if done else Task.Status.OPEN)
    board = admin_client.get("/crm/leads/board/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="kcard overdue"' in _card(board, "Просрочен")
    for title in ("Срок впереди", "Сделано", "Без задач"):
        card = _card(board, title)
        assert "overdue" not in card and f'data-id="{ids[title]}"' in card


def test_columns_show_count_sum_quick_add_and_more(admin_client, admin, manager_user, lead_pipeline):
    create_leads(admin, [{"title": f"Лид {i}", "opportunity": "1000.50"} for i in range(23)]
                 + [{"title": "<b>Жирный</b>"}])
    board = admin_client.get("/crm/leads/board/").content.decode()
    first = lead_pipeline.stages.order_by("sort").first()
    column = board.split(f'<section class="column" data-stage="{first.pk}"')[1].split("</section>")[0]
    assert "data-count>24<" in column and "23 011,50 ₽" in column.replace("\xa0", " ")
    assert f"stage={first.pk}&amp;back=board" in column  # quick add, for who may add
    assert column.count('<article class="kcard') == 20
    assert f'hx-get="/crm/leads/board/{first.pk}/more/?cursor=' in column
    assert "&lt;b&gt;Жирный&lt;/b&gt;" in board and "<b>Жирный</b>" not in board
    more = re.search(r'hx-get="([^"]+)"', column).group(1).replace("&amp;", "&")
    rest = admin_client.get(more).content.decode()
    assert rest.count('<article class="kcard') == 4 and "more" not in rest.split("</article>")[-1]
    admin_client.force_login(manager_user)  # a manager sees only own and department's cards: none here
    board = admin_client.get("/crm/leads/board/").content.decode()
    assert "Лид 1" not in board


def test_menu_follows_a_rights_change_in_the_same_process(client, admin, manager_user):
    from voronka.identity.actions import set_role_rights
    from voronka.identity.models import Role, RolePermission

    role = Role.objects.get(code="sales_manager")
    rights = [{"entity_type_id": p.entity_type_id, "pipeline": p.pipeline_id, "perm": p.perm, "scope": p.scope}
              for p in RolePermission.objects.filter(role=role)]
    client.force_login(manager_user)

    def sidebar() -> str:
        return client.get("/").content.decode().split("</nav>")[0]

    assert "/crm/companies/" in sidebar()
    set_role_rights(admin, role.pk, rights=rights, menu_hidden=["companies"])
    assert "/crm/companies/" not in sidebar() and "/crm/contacts/" in sidebar()
    set_role_rights(admin, role.pk, rights=rights, menu_hidden=[])
    assert "/crm/companies/" in sidebar()
    en = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert en.status_code == 200


def test_board_query_walks_each_column_by_its_stage_index(admin_client, admin, lead_pipeline):
    """PostgreSQL: each part says «stage in (n, 0)» and orders by (stage, id), so that the planner cannot walk
    the primary key backwards filtering by stage (14k rows for one column at 1M)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    create_leads(admin, [{"title": f"Лид {i}"} for i in range(3)])
    with CaptureQueriesContext(connection) as ctx:
        board = admin_client.get("/crm/leads/board/").content.decode()
    assert board.count('<article class="kcard') == 3
    union = [q["sql"] for q in ctx.captured_queries if "UNION ALL" in q["sql"]]
    assert len(union) == 1
    if connection.vendor == "postgresql":
        assert union[0].count('"leads_lead"."stage_id" IN (') == lead_pipeline.stages.count()
        assert 'ORDER BY "leads_lead"."stage_id" DESC, "leads_lead"."id" DESC' in union[0]


def test_more_cards_walk_the_column_to_its_end_without_repeats(admin_client, admin, lead_pipeline):
    create_leads(admin, [{"title": f"Карточка {i}"} for i in range(45)])
    first = lead_pipeline.stages.order_by("sort").first()
    board = admin_client.get("/crm/leads/board/").content.decode()
    column = board.split(f'<section class="column" data-stage="{first.pk}"')[1].split("</section>")[0]
    seen = re.findall(r'data-id="(\d+)"', column)
    url = re.search(r'hx-get="([^"]+)"', column).group(1).replace("&amp;", "&")
    while url:
        chunk = admin_client.get(url).content.decode()
        seen += re.findall(r'data-id="(\d+)"', chunk)
        found = re.search(r'hx-get="([^"]+)"', chunk)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == 45 and len(set(seen)) == 45
    assert [int(i) for i in seen] == sorted((int(i) for i in seen), reverse=True)
    for cursor in ("bm90LWpzb24", "WyJ4IiwgLTVd"):  # not JSON; a negative id
        assert admin_client.get(f"/crm/leads/board/{first.pk}/more/?cursor={cursor}").status_code == 400


def test_a_list_of_one_stage_leads_its_order_with_the_stage_and_pages_through_it(admin_client, admin, lead_pipeline):
    """PostgreSQL: «stage in (n, 0)» and ORDER BY stage first (see ``stage_pinned``); the pages are the same."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first, second = lead_pipeline.stages.order_by("sort")[:2]
    create_leads(admin, [{"title": f"Стадия {i}"} for i in range(60)])
    moved = list(Lead.objects.order_by("id").values_list("pk", flat=True)[:5])
    from voronka.leads.actions import update_lead

    for pk in moved:
        update_lead(admin, pk, stage=second.pk)
    seen, url = [], f"/crm/leads/?stage={first.pk}&order=-created_at"
    with CaptureQueriesContext(connection) as ctx:
        page = admin_client.get(url).content.decode()
    rows = [q["sql"] for q in ctx.captured_queries if 'FROM "leads_lead"' in q["sql"] and "LIMIT" in q["sql"]]
    if connection.vendor == "postgresql":
        assert any(f'"leads_lead"."stage_id" IN ({first.pk}, 0)' in q and 'ORDER BY "leads_lead"."stage_id" DESC,' in q
                   for q in rows)
    for _ in range(4):  # 55 rows: two pages
        seen += [int(i) for i in re.findall(r'name="ids" value="(\d+)"', page)]
        more = re.search(r'id="more-row".*?cursor=([\w-]+)', page, re.S)
        if not more:
            break
        page = admin_client.get(f"{url}&cursor={more.group(1)}").content.decode()
    assert len(seen) == 55, (len(seen), len(set(seen)))
    assert not set(seen) & set(moved) and len(set(seen)) == 55
