"""The screens of a smart process: menu, board, list, create, card, move; and the settings screen of types."""

from __future__ import annotations

import pytest

from voronka.items import actions
from voronka.items.models import SmartItem, SmartType

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def production(admin):
    return actions.create_type(admin, name="Production order", name_plural="Production", code="production", stages=[
        {"name": "Queued", "code": "queued"},
        {"name": "Cutting", "code": "cutting"},
        {"name": "Assembly", "code": "assembly", "required_fields": ["close_date"]},
        {"name": "Done", "code": "done", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"},
    ])


@pytest.fixture
def admin_client(client, admin_user):
    client.cookies["django_language"] = "en"
    client.force_login(admin_user)
    return client


def test_board_list_create_card_and_move(admin_client, production):
    home = admin_client.get("/").content.decode()
    assert "/crm/production/board/" in home and ">Production<" in home
    assert admin_client.get("/crm/production/board/").status_code == 200
    r = admin_client.post("/crm/production/new/", {"title": "Kitchen #7", "opportunity": "1000", "currency": "RUB"})
    assert r.status_code == 302, r.content.decode()[:3000]
    item = SmartItem.objects.get(title="Kitchen #7")
    assert item.entity_type_id == production.id
    listing = admin_client.get("/crm/production/").content.decode()
    assert "Kitchen #7" in listing
    card = admin_client.get(f"/crm/production/{item.pk}/")
    assert card.status_code == 200 and "Kitchen #7" in card.content.decode()
    cutting = item.pipeline.stages.get(code="cutting")
    r = admin_client.post(f"/crm/production/{item.pk}/move/", {"stage": cutting.pk})
    assert r.status_code in (200, 302)
    item.refresh_from_db()
    assert item.stage_id == cutting.pk
    admin_client.post(f"/crm/production/{item.pk}/comment/", {"text": "Started"})
    assert "Started" in admin_client.get(f"/crm/production/{item.pk}/").content.decode()


def test_item_of_another_type_is_not_found_under_this_one(admin_client, admin, production):
    actions.create_type(admin, name="Complaint", code="complaints")
    complaint = actions.create_item(admin, "complaints", title="Scratch")
    assert admin_client.get(f"/crm/production/{complaint.pk}/").status_code == 404
    assert admin_client.get(f"/crm/complaints/{complaint.pk}/").status_code == 200
    assert admin_client.get("/crm/nothing/").status_code == 404


def test_a_user_without_rights_sees_no_menu_entry_and_no_item(client, manager_user, admin, production):
    item = actions.create_item(admin, "production", title="Secret order")
    client.force_login(manager_user)
    assert "/crm/production/" not in client.get("/").content.decode()
    assert client.get(f"/crm/production/{item.pk}/").status_code == 404
    assert "Secret order" not in client.get("/crm/production/").content.decode()
    r = client.post("/crm/production/new/", {"title": "Mine"})
    assert not SmartItem.objects.filter(title="Mine").exists()
    assert r.status_code in (200, 403, 404)


def test_types_settings_screen(admin_client):
    assert admin_client.get("/settings/types/").status_code == 200
    r = admin_client.post("/settings/types/", {"name": "Licence", "name_plural": "Licences", "code": "licences",
                                               "links": ["contact", "company"]})
    assert r.status_code == 302
    t = SmartType.objects.get(code="licences")
    assert t.links == ["contact", "company"]
    r = admin_client.post(f"/settings/types/{t.pk}/", {"name": "Licence", "name_plural": "Software licences",
                                                       "links": ["company"]})
    assert r.status_code == 302
    t.refresh_from_db()
    assert t.name_plural == "Software licences" and t.links == ["company"]
    page = admin_client.get("/settings/types/").content.decode()
    assert "Software licences" in page
    bad = admin_client.post("/settings/types/", {"name": "", "code": "Bad code"})
    assert bad.status_code == 200 and "cannot be empty" in bad.content.decode()
    admin_client.post(f"/settings/types/{t.pk}/delete/")
    assert not SmartType.objects.filter(pk=t.pk).exists()


def test_types_settings_need_the_right(client, manager_user):
    client.force_login(manager_user)
    assert client.get("/settings/types/").status_code in (403, 404)
    client.post("/settings/types/", {"name": "Mine", "code": "mine"})
    assert not SmartType.objects.exists()


def test_new_type_appears_in_the_role_matrix_and_a_granted_user_gets_it(admin_client, client, manager_user, admin,
                                                                         production):
    from voronka.identity.models import Role

    role = Role.objects.get(code="sales_manager")
    page = admin_client.get(f"/settings/roles/{role.pk}/").content.decode()
    assert f'{production.id}-all' in page and "Production" in page
    from voronka.identity.actions import set_role_rights

    set_role_rights(admin, role.pk, rights=[
        {"entity_type_id": production.id, "pipeline": None, "perm": "read", "scope": "all"},
        {"entity_type_id": production.id, "pipeline": None, "perm": "add", "scope": "own"}])
    item = actions.create_item(admin, "production", title="Visible order", is_open=False)
    client.force_login(manager_user)
    assert "/crm/production/board/" in client.get("/").content.decode()
    assert client.get(f"/crm/production/{item.pk}/").status_code == 200
    client.post("/crm/production/new/", {"title": "Mine", "currency": "RUB", "opportunity": "0"})
    assert SmartItem.objects.get(title="Mine").responsible_id == manager_user.pk


def test_robot_screens_of_a_smart_process(admin_client, admin, production, drive_worker=None):
    from voronka.automation.actions import create_robot
    from voronka.core.management.commands.worker import drain
    from voronka.pipelines.models import Pipeline

    pipeline = Pipeline.objects.get(entity_type_id=production.id)
    queued = pipeline.stages.get(code="queued")
    create_robot(admin, stage=queued.pk, action="comment", params={"text": "Queued {title}"})
    actions.create_item(admin, "production", title="Desk")
    drain()
    for url in ("/settings/robots/", f"/settings/robots/{pipeline.pk}/", f"/settings/robots/{pipeline.pk}/new/",
                f"/settings/robots/{pipeline.pk}/export/", "/settings/automation-log/", "/settings/roles/",
                f"/settings/pipelines/{pipeline.pk}/", "/settings/fields/", "/settings/recycle-bin/",
                f"/settings/recycle-bin/?type={production.id}"):
        r = admin_client.get(url)
        assert r.status_code == (302 if url == "/settings/robots/" else 200), url
    assert "Production" in admin_client.get("/settings/automation-log/").content.decode()
    export = admin_client.get(f"/settings/robots/{pipeline.pk}/export/").content.decode()
    assert "production" in export


@pytest.mark.parametrize("url", ["/crm/production/", "/crm/production/board/", "/crm/licences/"])
def test_query_count_does_not_grow_with_items(admin_client, admin, production, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    actions.create_type(admin, kind="list", name="Licence", name_plural="Licences", code="licences")

    def add(n):
        actions.create_items(admin, "production", [{"title": f"P{i}", "opportunity": i} for i in range(n)])
        actions.create_rows(admin, "licences", [{"title": f"L{i}"} for i in range(n)])

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    add(3)
    queries()  # warm: the first page after a settings change reloads the types once
    few = queries()
    add(40)
    assert queries() == few, url
