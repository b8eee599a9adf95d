"""Access-control settings screens: reachable only with the «roles» right; they change rights through actions."""

from __future__ import annotations

import pytest

from voronka.identity.models import Role, RoleAssignment, RolePermission

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_login_page_and_login(client, admin_user):
    page = client.get("/login/")
    assert page.status_code == 200 and "Voronka" in page.content.decode()
    response = client.post("/login/", {"username": "admin", "password": "admin-pass", "next": "/settings/roles/"})
    assert response.status_code == 302 and response["Location"] == "/settings/roles/"
    client.post("/logout/")
    bad = client.post("/login/", {"username": "admin", "password": "x"})
    assert bad.status_code == 200 and "_auth_user_id" not in client.session
    evil = client.post("/login/", {"username": "admin", "password": "admin-pass", "next": "https://evil.example/"})
    assert evil["Location"] == "/"  # no open redirect


def test_pages_render_for_admin(admin_client, lead_pipeline, deal_pipelines):
    role = Role.objects.get(code="sales_manager")
    for url in ["/", "/settings/roles/", "/settings/roles/new/", f"/settings/roles/{role.pk}/", "/settings/view-as/",
                f"/settings/view-as/?user={role.pk}", "/settings/audit/"]:
        assert admin_client.get(url).status_code == 200, url


def test_staff_without_the_right_is_refused(client, manager_user):
    client.force_login(manager_user)
    assert client.get("/").status_code == 200
    assert client.get("/settings/roles/").status_code == 403
    assert client.post(f"/settings/roles/{Role.objects.first().pk}/", {}).status_code == 403


def test_edit_rights_and_assign(admin_client, manager_user, lead_pipeline):
    role = Role.objects.get(code="call_centre_operator")
    row = f"1-{lead_pipeline.pk}"
    response = admin_client.post(f"/settings/roles/{role.pk}/", {"scope-1-all-read": "10", f"scope-{row}-read": "50",
                                                                 "area-forms": "on"})
    assert response.status_code == 302
    rights = set(RolePermission.objects.filter(role=role).values_list("entity_type_id", "pipeline_id", "perm", "scope"))
    assert rights == {(1, None, "read", 10), (1, lead_pipeline.pk, "read", 50)}
    role.refresh_from_db()
    assert role.settings_rights == ["forms"]
    admin_client.post(f"/settings/roles/{role.pk}/assign/", {"target": f"user:{manager_user.pk}"})
    assignment = RoleAssignment.objects.get(role=role, user=manager_user)
    admin_client.post(f"/settings/roles/{role.pk}/unassign/{assignment.pk}/")
    assert not RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_bad_rights_show_a_message_not_a_500(admin_client):
    response = admin_client.post("/settings/roles/new/", {"name": "", "code": "bad code!"}, follow=True)
    assert response.status_code == 200
    assert not Role.objects.filter(code="bad code!").exists()


def test_recycle_bin_restore_and_purge(admin_client, admin, lead_pipeline, manager_user, client):
    from voronka.core.models import AuditEvent
    from voronka.leads.actions import create_lead, delete_lead
    from voronka.leads.models import Lead

    keep = create_lead(admin, title="Вернуть")
    drop = create_lead(admin, title="Удалить навсегда")
    delete_lead(admin, keep.pk)
    delete_lead(admin, drop.pk)
    page = admin_client.get("/settings/recycle-bin/?type=1").content.decode()
    assert "Вернуть" in page and "Удалить навсегда" in page
    admin_client.post(f"/settings/recycle-bin/1/{keep.pk}/restore/")
    admin_client.post(f"/settings/recycle-bin/1/{drop.pk}/purge/")
    keep.refresh_from_db()
    assert keep.deleted_at is None and not Lead.objects.filter(pk=drop.pk).exists()
    assert AuditEvent.objects.filter(action="record.purged", entity_id=drop.pk).exists()
    client.force_login(manager_user)
    assert client.get("/settings/recycle-bin/").status_code == 403
    assert client.post(f"/settings/recycle-bin/1/{keep.pk}/purge/").status_code in (302, 403)
    assert Lead.objects.filter(pk=keep.pk).exists()


def test_staff_who_are_not_admins_sign_in(client, manager_user):
    """Every active employee signs in to the CRM; only the Django admin needs staff status."""
    assert not manager_user.is_staff
    response = client.post("/login/", {"username": "manager", "password": "manager-pass"})
    assert response.status_code == 302 and response["Location"] == "/"
    client.post("/logout/")
    admin_page = client.post("/admin/login/", {"username": "manager", "password": "manager-pass", "next": "/admin/"})
    assert admin_page.status_code == 200 and "_auth_user_id" not in client.session


def test_settings_menu_is_grouped_and_opens_the_current_group(admin_client, client, manager_user, lead_pipeline):
    from django.conf import settings

    settings.LANGUAGE_CODE = "en"
    html = admin_client.get("/settings/roles/").content.decode()
    nav = html[html.index('<nav class="nav">'):html.index("</nav>")]
    for group in ("CRM", "Automation", "Intake", "People and access", "Integrations"):
        assert f">{group}</summary>" in nav, group
    # only the group of the current page is open, and its entry is marked as the current page
    assert nav.count("<details class=\"navgroup\" open>") == 1
    people = nav[nav.index("People and access"):]
    people = people[:people.index("</details>")]
    assert 'aria-current="page">Roles and rights</a>' in people
    # a manager without settings rights gets no settings group that would lead to a refusal
    client.force_login(manager_user)
    nav = client.get("/").content.decode()
    nav = nav[nav.index('<nav class="nav">'):nav.index("</nav>")]
    assert "Roles and rights" not in nav and ">CRM</summary>" not in nav and "Pipelines" not in nav
