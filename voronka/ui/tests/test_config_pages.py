"""Settings screens for pipelines, fields, users and tokens: every page renders and writes through actions."""

from __future__ import annotations

import json

import pytest

from voronka.customfields.models import FieldDefinition
from voronka.identity.models import ApiToken, Department, User
from voronka.pipelines.models import Pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_pages_render(admin_client, lead_pipeline, deal_pipelines):
    for url in ["/settings/pipelines/", f"/settings/pipelines/{lead_pipeline.pk}/", "/settings/fields/",
                "/settings/users/", "/settings/tokens/"]:
        assert admin_client.get(url).status_code == 200, url


def test_pipeline_and_stage_editing(admin_client, deal_pipelines):
    response = admin_client.post("/settings/pipelines/", {"entity_type_id": "2", "name": "Рекламации"})
    pipeline = Pipeline.objects.get(name="Рекламации")
    assert response.status_code == 302 and pipeline.stages.count() == 3
    admin_client.post(f"/settings/pipelines/{pipeline.pk}/", {"op": "add", "name": "Диагностика", "semantics": "process"})
    stage = pipeline.stages.get(name="Диагностика")
    admin_client.post(f"/settings/pipelines/{pipeline.pk}/", {"op": "update", "stage": stage.pk, "name": "Диагностика брака",
                                                              "semantics": "process", "color": "#ff0000",
                                                              "required": ["opportunity"]})
    stage.refresh_from_db()
    assert stage.name == "Диагностика брака" and stage.required_fields == ["opportunity"]
    ids = list(pipeline.stages.order_by("-sort").values_list("id", flat=True))
    response = admin_client.post(f"/settings/pipelines/{pipeline.pk}/", {"op": "reorder", "order": json.dumps(ids)})
    assert response.json() == {"ok": True}
    assert list(pipeline.stages.order_by("sort").values_list("id", flat=True)) == ids
    bad = admin_client.post(f"/settings/pipelines/{pipeline.pk}/", {"op": "reorder", "order": json.dumps(ids[:1])})
    assert bad.status_code == 422


def test_fields_users_tokens(admin_client, admin_user):
    admin_client.post("/settings/fields/", {"entity_type_id": "1", "label": "Марка", "code": "brand", "kind": "enum",
                                            "choices": "КАМАЗ\nМАЗ"})
    assert FieldDefinition.objects.get(code="uf_brand").choice_ids() == ["1", "2"]
    admin_client.post("/settings/users/", {"op": "department", "name": "Склад"})
    dept = Department.objects.get(name="Склад")
    admin_client.post("/settings/users/", {"op": "user", "username": "kladov", "password": "Sklad-2026-pass",
                                           "first_name": "Иван", "department": dept.pk})
    user = User.objects.get(username="kladov")
    assert user.department == dept and user.check_password("Sklad-2026-pass")
    weak = admin_client.post("/settings/users/", {"op": "user", "username": "weak", "password": "1"}, follow=True)
    assert weak.status_code == 200 and not User.objects.filter(username="weak").exists()
    page = admin_client.post("/settings/tokens/", {"op": "issue", "name": "сайт", "scopes": ["read"]}).content.decode()
    token = ApiToken.objects.get(name="сайт")
    assert f"vk_{token.prefix}_" in page and token.scopes == ["read"]
    admin_client.post("/settings/tokens/", {"op": "revoke", "token": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_staff_cannot_open_settings(client, manager_user):
    client.force_login(manager_user)
    for url in ["/settings/pipelines/", "/settings/fields/", "/settings/users/"]:
        assert client.get(url).status_code == 403
    assert client.get("/settings/tokens/").status_code == 200  # own tokens


def test_account_time_zone_language_password(client, manager_user):
    client.force_login(manager_user)
    assert client.get("/account/").status_code == 200
    response = client.post("/account/", {"op": "profile", "first_name": "Пётр", "last_name": "Иванов",
                                         "time_zone": "Asia/Vladivostok", "language": "en"})
    assert response.status_code == 302
    manager_user.refresh_from_db()
    assert manager_user.time_zone == "Asia/Vladivostok" and response.cookies["django_language"].value == "en"
    bad = client.post("/account/", {"op": "password", "old_password": "wrong", "new_password1": "Xq-2026-pass",
                                    "new_password2": "Xq-2026-pass"})
    assert bad.status_code == 200
    good = client.post("/account/", {"op": "password", "old_password": "manager-pass", "new_password1": "Xq-2026-pass",
                                     "new_password2": "Xq-2026-pass"})
    assert good.status_code == 302
    manager_user.refresh_from_db()
    assert manager_user.check_password("Xq-2026-pass")
    assert client.get("/").status_code == 200  # still signed in


def test_menu_trimmed_per_role(client, admin, manager_user):
    from voronka.identity.actions import set_role_rights
    from voronka.identity.models import Role, RolePermission

    role = Role.objects.get(code="sales_manager")
    rights = [{"entity_type_id": p.entity_type_id, "pipeline": p.pipeline_id, "perm": p.perm, "scope": p.scope}
              for p in RolePermission.objects.filter(role=role)]
    set_role_rights(admin, role.pk, rights=rights, menu_hidden=["companies"])
    client.force_login(manager_user)
    sidebar = client.get("/").content.decode().split("</nav>")[0]
    assert "/crm/contacts/" in sidebar and "/crm/companies/" not in sidebar
