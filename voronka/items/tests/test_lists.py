"""Custom lists (F6): a licence registry with its own fields, rights, screens and API."""

from __future__ import annotations

import pytest

from voronka.core import entity_types
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed
from voronka.customfields.actions import define_field
from voronka.items import actions
from voronka.items.models import ListRow
from voronka.pipelines.models import Pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def licences(admin):
    t = actions.create_type(admin, kind="list", name="Licence", name_plural="Licences", code="licences")
    for code, label, kind in (("uf_key", "Key", "string"), ("uf_product", "Product", "string"),
                              ("uf_seats", "Seats", "integer"), ("uf_issued", "Issued", "date"),
                              ("uf_expires", "Expires", "date")):
        define_field(admin, entity_type_id=t.id, code=code, label=label, kind=kind)
    return t


@pytest.fixture
def contact(admin):
    from voronka.parties.actions import create_contact

    return create_contact(admin, last_name="Иванов", first_name="Иван")


def test_a_list_has_no_pipeline_and_its_rows_validate_their_fields(admin, licences, contact):
    assert not Pipeline.objects.filter(entity_type_id=licences.id).exists()
    info = entity_types.get(licences.id)
    assert not info.staged and info.model is ListRow
    row = actions.create_row(admin, "licences", title="1C:Enterprise", contact=contact.pk,
                             custom={"uf_key": "AAAA-BBBB", "uf_seats": "5", "uf_expires": "2027-01-31"})
    assert row.custom == {"uf_key": "AAAA-BBBB", "uf_seats": 5, "uf_expires": "2027-01-31"}
    with pytest.raises(ValidationFailed) as err:
        actions.create_row(admin, "licences", title="x", custom={"uf_seats": "many"})
    assert "custom.uf_seats" in err.value.fields
    with pytest.raises(ValidationFailed):
        actions.create_type(admin, kind="list", name="With stages", stages=[{"name": "a"}])
    actions.update_row(admin, licences.id, row.pk, custom={"uf_seats": 10})
    row.refresh_from_db()
    assert row.custom["uf_seats"] == 10
    with pytest.raises(NotFound):
        actions.create_item(admin, "licences", title="a list is not a process")


def test_list_rights(manager, manager_user, admin, licences):
    from voronka.identity.actions import set_role_rights
    from voronka.identity.models import Role

    row = actions.create_row(admin, "licences", title="Secret", is_open=False)
    with pytest.raises(PermissionDenied):
        actions.create_row(manager, "licences", title="x")
    with pytest.raises(PermissionDenied):  # the edges read first and answer «not found» (test_list_api)
        actions.update_row(manager, "licences", row.pk, title="x")
    set_role_rights(admin, Role.objects.get(code="sales_manager").pk, rights=[
        {"entity_type_id": licences.id, "pipeline": None, "perm": "read", "scope": "all"}])
    with pytest.raises(PermissionDenied):
        actions.update_row(manager, "licences", row.pk, title="x")


def test_list_screens(client, admin_user, admin, licences, contact):
    client.cookies["django_language"] = "en"
    client.force_login(admin_user)
    assert "/crm/licences/" in client.get("/").content.decode()
    r = client.post("/crm/licences/new/", {"title": "Bitrix", "cf_uf_key": "B-77", "cf_uf_seats": "12",
                                            "cf_uf_expires": "2027-03-01"})
    assert r.status_code == 302, r.content.decode()[:2000]
    row = ListRow.objects.get(title="Bitrix")
    assert row.custom == {"uf_key": "B-77", "uf_seats": 12, "uf_expires": "2027-03-01"}
    page = client.get("/crm/licences/").content.decode()
    assert "Key" in page and "B-77" in page and "Expires" in page
    card = client.get(f"/crm/licences/{row.pk}/").content.decode()
    assert 'name="cf_uf_key"' in card and "B-77" in card
    r = client.post(f"/crm/licences/{row.pk}/", {"title": "Bitrix", "cf_uf_key": "B-77", "cf_uf_seats": "many",
                                                 "cf_uf_expires": "2027-03-01"})
    assert r.status_code == 200 and "whole number" in r.content.decode()
    client.post(f"/crm/licences/{row.pk}/", {"title": "Bitrix24", "cf_uf_key": "B-77", "cf_uf_seats": "15",
                                             "cf_uf_expires": "2027-03-01"})
    row.refresh_from_db()
    assert row.title == "Bitrix24" and row.custom["uf_seats"] == 15
