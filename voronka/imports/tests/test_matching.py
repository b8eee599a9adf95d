"""Chunk matching: every key of the chunk in a few queries, the same answers as the per-row search, rights."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from voronka.core import entity_types
from voronka.imports import actions, engine, matching, runner
from voronka.intake import duplicates, names
from voronka.parties.actions import add_bank_requisite, create_company, create_contact
from voronka.parties.models import Company, Contact

from .conftest import csv_bytes

pytestmark = pytest.mark.django_db


def make_job(actor, rows, *, type="contacts", mode="match_or_create", options=None):
    return actions.create_job(actor, file=io.BytesIO(csv_bytes(rows)), file_name="f.csv", type=type, mode=mode,
                              options=options)


def run(actor, job):
    actions.start(actor, job)
    return runner.run(job.pk)


@pytest.fixture
def known(admin):
    """Existing records: one to match by each key."""
    by_phone = create_contact(admin, first_name="Фёдор", last_name="Телефонов", phones=["+79160000001"])
    by_email = create_contact(admin, first_name="Эмма", last_name="Почтова", emails=["emma@example.ru"])
    by_both = create_contact(admin, first_name="Борис", last_name="Двойной", phones=["+79160000002"],
                             emails=["boris@example.ru"])
    # shares the phone with by_both but not the e-mail: the row giving both means by_both
    create_contact(admin, first_name="Другой", last_name="Человек", phones=["+79160000002"])
    by_name = create_contact(admin, first_name="Наталья", last_name="Именова")
    names.refresh(entity_types.CONTACT, Contact.objects.values_list("pk", flat=True))
    vector = create_company(admin, name="АО Вектор")
    add_bank_requisite(admin, vector.pk, inn="500100732259")
    names.refresh(entity_types.COMPANY, [vector.pk])
    return {"phone": by_phone, "email": by_email, "both": by_both, "name": by_name, "inn": vector}


def test_chunk_matches_each_key_and_rows_created_earlier_in_the_file(admin, known):
    rows = [["ФИО", "Телефон", "E-mail", "Компания", "ИНН"],
            ["Телефонов Ф.", "8 (916) 000-00-01", "", "", ""],  # 2: by phone
            ["", "", "EMMA@example.ru", "", ""],  # 3: by e-mail
            ["Двойной Борис", "+7 916 000 00 02", "boris@example.ru", "", ""],  # 4: phone and e-mail
            ["Именова Наталья", "", "", "", ""],  # 5: by a similar name
            ["Новиков Пётр", "", "new@example.ru", "Вектор новый", "500100732259"],  # 6: new, company by INN
            ["Новиков Пётр", "+7 999 111-22-33", "new@example.ru", "", ""],  # 7: the contact row 6 creates
            ["Свежая Ольга", "+7 999 444-55-66", "", "ООО Свежесть", "7707083893"],  # 8: new + new company
            ["Свежая О.", "8 999 444 55 66", "", "Свежесть", "7707083893"],  # 9: same batch as 8? no: next batch
            ]
    job = run(admin, make_job(admin, rows, options={"batch_size": 7}))  # rows 2–8, then row 9
    assert job.status == "done", job.error
    assert job.rejected_count == 0
    contacts = {c.pk: c for c in Contact.objects.all()}
    assert len(contacts) == 5 + 2  # two new people: Новиков and Свежая
    assert (job.created_count, job.matched_count) == (2, 6)
    assert job.stats == {"company": {"matched": 2, "created": 1}}
    novikov = Contact.objects.get(last_name="Новиков")
    assert novikov.company_id == known["inn"].pk
    fresh = Contact.objects.get(last_name="Свежая")
    assert Company.objects.get(name="ООО Свежесть").pk == fresh.company_id


def test_rows_of_one_chunk_share_the_record_they_create(admin):
    rows = [["ФИО", "E-mail"], ["Тест Один", "one@example.ru"], ["Тест Один", "ONE@example.ru"],
            ["Тест Два", "two@example.ru"]]
    job = run(admin, make_job(admin, rows))
    assert (job.created_count, job.matched_count) == (2, 1)
    assert Contact.objects.count() == 2


def test_chunk_answers_like_the_per_row_search(admin, known):
    """The batched lookup finds what ``duplicates.find_for`` finds for each row on its own."""
    queries = [
        matching.query(phones=["8 916 000-00-01"]), matching.query(emails=["emma@EXAMPLE.ru"]),
        matching.query(phones=["+79160000002"], emails=["boris@example.ru"]),
        matching.query(name="Именова Наталья"), matching.query(name="Никто Такой"),
        matching.query(phones=["+70000000000"], name="Именова Наталья"),  # strong key given: no name fallback
    ]
    found = matching.match_many(admin, entity_types.CONTACT, queries)
    assert [f and f[0] for f in found] == [known["phone"].pk, known["email"].pk, known["both"].pk,
                                          known["name"].pk, None, None]
    for q, f in zip(queries[:4], found[:4], strict=True):
        one = duplicates.find_for(admin, types=(entity_types.CONTACT,), phones=q.phones, emails=q.emails,
                                  name=q.name, company=q.company)
        assert one[0].id == f[0]
    company = matching.match_many(admin, entity_types.COMPANY, [matching.query(inn="500100732259"),
                                                                matching.query(company="Вектор")])
    assert [c and c[0] for c in company] == [known["inn"].pk, known["inn"].pk]


def _chunk(n: int, start: int = 0) -> list[tuple[int, list[str]]]:
    return [(i + 2, [f"Человек {i}", f"+7 917 {i:07d}", f"p{i}@example.ru", "ООО Крупная", f"{7700000000 + i}"])
            for i in range(start, start + n)]


HEADERS = ["ФИО", "Телефон", "E-mail", "Компания", "ИНН"]


def test_query_count_per_chunk_does_not_grow_with_rows(admin):
    for i in range(0, 300, 3):  # a third of the rows match an existing contact
        create_contact(admin, first_name=f"Человек {i}", phones=[f"+7917{i:07d}"])
    importer = engine.Importer(admin, entity_types.CONTACT, HEADERS,
                               {"ФИО": "contact.full_name", "Телефон": "contact.phones", "E-mail": "contact.emails",
                                "Компания": "company.name", "ИНН": "company.inn"})
    counts = []
    for size in (30, 300):
        with CaptureQueriesContext(connection) as ctx:
            plans = importer.plan_many(_chunk(size))
        counts.append(len(ctx.captured_queries))
        assert sum(1 for p in plans if p.actions.get("contact") == "match") == size // 3
    assert counts[0] == counts[1], counts
    # companies: their INNs (none known here); contacts: phones, e-mails, then the matches loaded with the
    # rights applied — 4 queries for 30 rows as for 300 (the per-row search made ~5 a row)
    assert counts[1] <= 6, counts


def test_records_the_user_may_not_read_are_not_matched(admin, manager, known):
    hidden = create_contact(admin, first_name="Скрытый", emails=["hidden@example.ru"], is_open=False)
    found = matching.match_many(manager, entity_types.CONTACT, [matching.query(emails=["hidden@example.ru"])])
    assert found == [None]
    assert matching.match_many(admin, entity_types.CONTACT,
                               [matching.query(emails=["hidden@example.ru"])])[0][0] == hidden.pk
    job = run(manager, make_job(manager, [["Имя", "E-mail"], ["Скрытый", "hidden@example.ru"]]))
    assert (job.created_count, job.matched_count) == (1, 0)  # a new contact: the hidden one is not revealed


def test_deleted_records_are_not_matched(admin, known):
    from voronka.parties.actions import delete_contact

    delete_contact(admin, known["email"].pk)
    assert matching.match_many(admin, entity_types.CONTACT, [matching.query(emails=["emma@example.ru"])]) == [None]
