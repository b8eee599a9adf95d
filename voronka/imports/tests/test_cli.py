from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from voronka.parties.models import Contact

from .conftest import csv_bytes, xlsx_bytes

pytestmark = pytest.mark.django_db


def test_cli_dry_run_then_import_with_report(admin_user, tmp_path):
    path = tmp_path / "contacts.xlsx"
    path.write_bytes(xlsx_bytes([["ФИО", "E-mail"], ["Петров Иван", "ivan@example.ru"], ["Плохой", "нет@"]]))
    out = io.StringIO()
    call_command("import", str(path), type="contacts", dry_run=True, no_progress=True, stdout=out)
    assert "1 to create, 0 matched, 1 rejected" in out.getvalue()
    assert "row 3" in out.getvalue()
    assert Contact.objects.count() == 0
    report = tmp_path / "report.csv"
    out = io.StringIO()
    call_command("import", str(path), type="contacts", no_progress=True, report=str(report), stdout=out)
    assert "Done: 1 created, 0 matched, 1 rejected." in out.getvalue()
    assert Contact.objects.get().last_name == "Петров"
    assert "нет@" in report.read_text(encoding="utf-8-sig")


def test_cli_mapping_and_clear_errors(admin_user, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(csv_bytes([["Кто", "Куда"], ["Ольга", "x"]], encoding="cp1251"))
    call_command("import", str(path), type="contacts", mapping=json.dumps({"Кто": "contact.first_name"}),
                 no_progress=True, stdout=io.StringIO())
    assert Contact.objects.get().first_name == "Ольга"
    with pytest.raises(CommandError, match="Куда"):
        call_command("import", str(path), type="contacts", mapping='{"Куда": "contact.nope"}', stdout=io.StringIO())
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import", str(path), type="contacts", mapping="{", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No file"):
        call_command("import", str(tmp_path / "none.csv"), type="contacts", stdout=io.StringIO())
    broken = tmp_path / "b.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="Excel"):
        call_command("import", str(broken), type="contacts", stdout=io.StringIO())
