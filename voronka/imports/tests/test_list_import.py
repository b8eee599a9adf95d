"""The importer loads custom list rows (F6, F52): licences with contact matching, a dry run, bad rows."""

from __future__ import annotations

import io

import pytest

from voronka.customfields.actions import define_field
from voronka.imports import actions as imports
from voronka.imports import mapping, runner
from voronka.items import actions
from voronka.items.models import ListRow
from voronka.parties.actions import create_contact
from voronka.parties.models import Contact

from .conftest import csv_bytes, xlsx_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def licences(admin):
    t = actions.create_type(admin, kind="list", name="Licence", name_plural="Licences", code="licences")
    for code, label, kind in (("uf_key", "Ключ", "string"), ("uf_product", "Продукт", "string"),
                              ("uf_seats", "Мест", "integer"), ("uf_expires", "Действует до", "date")):
        define_field(admin, entity_type_id=t.id, code=code, label=label, kind=kind)
    return t


ROWS = [["Название", "Ключ", "Продукт", "Мест", "Действует до", "ФИО", "E-mail"],
        ["Сканер — Иванов", "DX-1", "Сканер Pro", "3", "2027-01-31", "Иванов Иван", "ivanov@example.ru"],
        ["Каталог — Петров", "CT-2", "Каталог", "1", "2026-12-31", "Петров Пётр", "petrov@example.ru"],
        ["Плохая строка", "X-3", "Каталог", "много", "2026-12-31", "Сидоров", ""]]


def test_list_is_an_import_type_with_suggestions(admin, licences):
    assert mapping.TYPES["licences"] == licences.id
    assert mapping.suggest(ROWS[0], licences.id) == {
        "Название": "licences.title", "Ключ": "licences.custom.uf_key", "Продукт": "licences.custom.uf_product",
        "Мест": "licences.custom.uf_seats", "Действует до": "licences.custom.uf_expires",
        "ФИО": "contact.full_name", "E-mail": "contact.emails"}


@pytest.mark.parametrize("name", ["licences.csv", "licences.xlsx"])
def test_rows_imported_matched_to_contacts_and_bad_rows_rejected_whole(admin, licences, name):
    known = create_contact(admin, last_name="Иванов", first_name="Иван", emails=["ivanov@example.ru"])
    content = xlsx_bytes(ROWS) if name.endswith(".xlsx") else csv_bytes(ROWS)
    job = imports.create_job(admin, file=io.BytesIO(content), file_name=name, type="licences")
    dry = runner.dry_run(admin, job)
    assert not ListRow.objects.exists() and dry
    imports.start(admin, job)
    runner.run(job.pk)
    job.refresh_from_db()
    rows = {r.custom["uf_key"]: r for r in ListRow.objects.filter(entity_type_id=licences.id)}
    assert set(rows) == {"DX-1", "CT-2"}
    assert rows["DX-1"].contact_id == known.pk and rows["DX-1"].custom["uf_seats"] == 3
    petrov = Contact.objects.get(last_name="Петров")
    assert rows["CT-2"].contact_id == petrov.pk
    assert not Contact.objects.filter(last_name="Сидоров").exists()  # the bad row wrote nothing, not even its contact
    [bad] = job.rejected.all()
    assert bad.row_number == 4 and bad.errors[0]["column"] == "Мест"


def test_importing_a_list_needs_the_right(manager, licences):
    from voronka.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        imports.create_job(manager, file=io.BytesIO(csv_bytes(ROWS)), file_name="f.csv", type="licences")


def test_cli_imports_list_rows(admin_user, licences, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "licences.csv"
    path.write_bytes(csv_bytes(ROWS[:3]))
    out = io.StringIO()
    call_command("import", str(path), type="licences", user=admin_user.username, stdout=out, stderr=io.StringIO())
    assert ListRow.objects.filter(entity_type_id=licences.id).count() == 2
