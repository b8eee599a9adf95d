"""A 10k-row XLSX with bad rows: clear per-row errors, nothing half-imported, counts right."""

from __future__ import annotations

import io

import pytest

from voronka.deals.models import Deal
from voronka.imports import actions, runner
from voronka.imports.models import RejectedRow
from voronka.parties.models import Company, Contact

from .conftest import xlsx_bytes

pytestmark = pytest.mark.django_db

ROWS = 10_000
LETTERS = "абвгдежзиклмнопрстуфхцчшэюя"


def word(n: int) -> str:
    """A name made of letters only (the name index ignores digits): 0 → «ааа», 1 → «ааб» …"""
    result = ""
    for _ in range(3):
        n, r = divmod(n, len(LETTERS))
        result = LETTERS[r] + result
    return result.capitalize()


def test_10k_rows_with_bad_rows(admin, deal_pipelines):
    rows = [["Название сделки", "Сумма", "Стадия", "Компания", "ИНН", "ФИО", "Телефон", "E-mail"]]
    bad = {}
    for i in range(ROWS):
        row = [f"Сделка {i}", str(1000 + i), "new", f"ООО {word(i % 500)}", "", f"{word(i)} {word(i + 7)}",
               f"+7916{i:07d}", f"c{i}@example.ru"]
        if i % 1000 == 7:
            row[1] = "много"  # not a number: rejected while parsing
            bad[i + 2] = "Сумма"
        elif i % 1000 == 99:
            row[2] = "invoice"
            row[1] = ""  # the stage requires an amount: rejected by the write path after company and contact
            bad[i + 2] = "deal.opportunity"
        elif i % 1000 == 500:
            row[4] = "123"  # a tax number of 3 digits
            bad[i + 2] = "ИНН"
        rows.append(row)
    job = actions.create_job(admin, file=io.BytesIO(xlsx_bytes(rows)), file_name="big.xlsx", type="deals",
                             options={"batch_size": 500})
    actions.start(admin, job)
    job = runner.run(job.pk)
    assert job.status == "done", job.error
    assert (job.created_count, job.matched_count, job.rejected_count) == (ROWS - len(bad), 0, len(bad))
    assert job.processed_rows == ROWS and job.percent == 100
    rejected = {r.row_number: r.errors for r in RejectedRow.objects.filter(job=job)}
    assert set(rejected) == set(bad)
    for number, errors in rejected.items():
        assert errors and all(e["message"] for e in errors)
        assert bad[number] in {e["column"] for e in errors} | {e["field"] for e in errors}, errors
    # nothing half-imported: no contact without its deal, one deal per good row
    assert Deal.objects.count() == ROWS - len(bad)
    assert Contact.objects.count() == ROWS - len(bad)
    assert not Contact.objects.exclude(pk__in=Deal.objects.values("contact_id")).exists()
    assert not Company.objects.exclude(pk__in=Deal.objects.values("company_id")).exists()
    assert Company.objects.count() == 500
    assert job.stats["company"] == {"created": 500, "matched": ROWS - len(bad) - 500}
