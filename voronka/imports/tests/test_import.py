"""The importer end to end: mapping suggestions, matching by each key, dry runs, runs, rights, the report."""

from __future__ import annotations

import io

import pytest

from voronka.core.errors import PermissionDenied, ValidationFailed
from voronka.deals.models import Deal
from voronka.imports import actions, mapping, runner
from voronka.imports.models import ImportJob, RejectedRow
from voronka.parties.actions import add_bank_requisite, create_company, create_contact
from voronka.parties.models import BankRequisite, Company, Contact

from .conftest import csv_bytes, xlsx_bytes

pytestmark = pytest.mark.django_db


def make_job(actor, rows, *, type="contacts", name="f.csv", mapping=None, mode="match_or_create", options=None):
    content = xlsx_bytes(rows) if name.endswith(".xlsx") else csv_bytes(rows)
    return actions.create_job(actor, file=io.BytesIO(content), file_name=name, type=type, mapping=mapping,
                              mode=mode, options=options)


def run(actor, job):
    actions.start(actor, job)
    return runner.run(job.pk)


def test_suggestions_from_russian_and_english_headers(db):
    headers = ["ФИО", "Телефон", "E-mail", "Компания", "ИНН", "Ответственный", "Сумма", "Стадия", "Название сделки",
               "Something else"]
    assert mapping.suggest(headers, 2) == {
        "ФИО": "contact.full_name", "Телефон": "contact.phones", "E-mail": "contact.emails",
        "Компания": "company.name", "ИНН": "company.inn", "Ответственный": "deal.responsible", "Сумма": "deal.opportunity",
        "Стадия": "deal.stage", "Название сделки": "deal.title"}
    english = ["First name", "Last name", "Phone", "Email", "Company", "Tax ID", "Amount", "Stage", "Title", "Owner"]
    assert mapping.suggest(english, 1) == {
        "First name": "contact.first_name", "Last name": "contact.last_name", "Phone": "contact.phones",
        "Email": "contact.emails", "Company": "company.name", "Tax ID": "company.inn", "Amount": "lead.opportunity",
        "Stage": "lead.stage", "Title": "lead.title", "Owner": "lead.responsible"}
    assert mapping.suggest(["Телефон", "Телефон (2)", "Компания"], 4) == {
        "Телефон": "company.phones", "Телефон (2)": "company.phones", "Компания": "company.name"}


def test_custom_field_suggested_and_imported(admin):
    from voronka.customfields.actions import define_field

    define_field(admin, entity_type_id=3, code="uf_club_card", label="Клубная карта", kind="string")
    assert mapping.suggest(["Клубная карта"], 3) == {"Клубная карта": "contact.custom.uf_club_card"}
    job = make_job(admin, [["Имя", "Клубная карта"], ["Ольга", "A-17"]])
    run(admin, job)
    assert Contact.objects.get(first_name="Ольга").custom == {"uf_club_card": "A-17"}


def test_bad_mapping_is_a_clear_error(admin):
    with pytest.raises(ValidationFailed) as exc:
        make_job(admin, [["Имя"], ["Ольга"]], mapping={"Нет такой": "contact.first_name"})
    assert "Нет такой" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        make_job(admin, [["Имя"], ["Ольга"]], mapping={"Имя": "contact.shoe_size"})
    assert "Имя" in exc.value.fields


def test_contacts_csv_round_trip_with_company_and_inn(admin):
    rows = [["ФИО", "Телефон", "E-mail", "Компания", "ИНН", "Дата рождения"],
            ["Петров Иван Сергеевич", "8 (916) 123-45-67", "ivan@example.ru", "ООО Ромашка", "7701234567", "31.12.1980"],
            ["Сидорова Анна", "+7 916 000-00-01; +7 916 000-00-02", "", "ООО Ромашка", "7701234567", ""]]
    job = run(admin, make_job(admin, rows))
    assert job.status == "done", job.error
    assert (job.created_count, job.matched_count, job.rejected_count) == (2, 0, 0)
    assert job.stats == {"company": {"created": 1, "matched": 1}}
    company = Company.objects.get()
    assert BankRequisite.objects.get().inn == "7701234567"
    ivan = Contact.objects.get(last_name="Петров")
    assert (ivan.first_name, ivan.middle_name, str(ivan.birthday), ivan.company_id) == ("Иван", "Сергеевич",
                                                                                        "1980-12-31", company.pk)
    assert Contact.objects.get(last_name="Сидорова").company_id == company.pk
    assert job.percent == 100


@pytest.mark.parametrize("key", ["email", "phone", "name"])
def test_contact_matched_by_each_key(admin, key):
    existing = create_contact(admin, first_name="Иван", last_name="Петров", phones=["+79161234567"],
                              emails=["ivan@example.ru"])
    from voronka.intake import names

    names.refresh(3, [existing.pk])
    row = {"email": ["", "", "IVAN@example.ru"], "phone": ["", "8 916 123 45 67", ""],
           "name": ["Петров Иван", "", ""]}[key]
    job = run(admin, make_job(admin, [["ФИО", "Телефон", "E-mail"], row]))
    assert (job.created_count, job.matched_count) == (0, 1)
    assert Contact.objects.count() == 1


def test_company_matched_by_inn_and_deal_linked(admin, deal_pipelines):
    company = create_company(admin, name="АО Вектор")
    add_bank_requisite(admin, company.pk, inn="500100732259")
    contact = create_contact(admin, first_name="Олег", emails=["oleg@vector.ru"])
    rows = [["Название сделки", "Сумма", "Стадия", "ИНН", "Компания", "E-mail"],
            ["Поставка", "1 500 000,50", "Счёт выставлен", "500100732259", "Вектор новый", "oleg@vector.ru"]]
    job = run(admin, make_job(admin, rows, type="deals"))
    assert job.created_count == 1, list(RejectedRow.objects.values_list("errors", flat=True))
    deal = Deal.objects.get()
    assert (deal.company_id, deal.contact_id, str(deal.opportunity)) == (company.pk, contact.pk, "1500000.50")
    assert deal.stage.code == "invoice"
    assert job.stats == {"company": {"matched": 1, "created": 0}, "contact": {"matched": 1, "created": 0}}


def test_company_import_by_name_match_only(admin):
    create_company(admin, name="ООО «Ромашка»")
    from voronka.intake import names

    names.refresh(4, Company.objects.values_list("pk", flat=True))
    job = run(admin, make_job(admin, [["Компания"], ["Ромашка"], ["Лютик"]], type="companies", mode="match_only"))
    assert (job.created_count, job.matched_count, job.rejected_count) == (0, 1, 1)
    assert Company.objects.count() == 1


def test_always_create_ignores_matches(admin):
    create_contact(admin, first_name="Иван", emails=["ivan@example.ru"])
    job = run(admin, make_job(admin, [["Имя", "E-mail"], ["Иван", "ivan@example.ru"]], mode="always_create"))
    assert job.created_count == 1
    assert Contact.objects.count() == 2


def test_dry_run_writes_nothing(admin, deal_pipelines):
    from django.apps import apps

    rows = [["Название сделки", "Сумма", "Стадия", "Компания", "ФИО", "Телефон", "Ответственный"],
            ["Поставка", "100", "new", "ООО Ромашка", "Петров Иван", "+79161234567", "admin"],
            ["Вторая", "abc", "new", "ООО Ромашка", "Петров Иван", "+79161234567", "admin"],
            ["Третья", "5", "нет такой", "ООО Ромашка", "Сидоров", "+79161234568", "nobody"],
            ["Четвёртая", "5", "Оплачена", "ООО Ромашка", "Петров Иван", "+79161234567", "Анна Админова"]]
    job = make_job(admin, rows, type="deals")

    def snapshot():
        return {m._meta.label: m.objects.count() for m in apps.get_models()
                if m._meta.app_label not in ("sessions", "contenttypes", "auth")}

    before = snapshot()
    preview = actions.preview(admin, job, limit=10)
    assert snapshot() == before
    assert preview["totals"] == {"create": 2, "match": 0, "reject": 2}
    first, second, third, fourth = preview["rows"]
    assert first["action"] == "create" and first["linked"]["company"]["action"] == "create"
    assert fourth["linked"]["contact"]["action"] == "match"  # the contact the first row creates
    assert second["errors"][0]["column"] == "Сумма"
    assert {e["column"] for e in third["errors"]} == {"Стадия", "Ответственный"}
    whole = runner.dry_run(admin, job)
    assert whole["totals"] == {"create": 2, "match": 0, "reject": 2}
    assert snapshot() == before


def test_bad_row_never_half_imports(admin, deal_pipelines):
    """The company and contact of a row whose deal fails validation are not written either."""
    rows = [["Название сделки", "Стадия", "Компания", "ФИО"],
            ["Хорошая", "new", "ООО Хорошая", "Хороший Клиент"],
            ["Плохая", "invoice", "ООО Плохая", "Плохой Клиент"]]  # «invoice» requires an amount
    job = run(admin, make_job(admin, rows, type="deals"))
    assert (job.created_count, job.rejected_count) == (1, 1)
    assert list(Company.objects.values_list("name", flat=True)) == ["ООО Хорошая"]
    assert list(Contact.objects.values_list("last_name", flat=True)) == ["Хороший"]
    rejected = RejectedRow.objects.get()
    assert rejected.row_number == 3
    assert rejected.errors[0]["field"] == "deal.opportunity"
    report = "".join(runner.report_lines(job))
    assert "Плохая" in report and "3;" in report


def test_rights_add_needed(manager_user, admin, deal_pipelines):
    from voronka.core.actor import Actor
    from voronka.identity.models import Role, RolePermission
    from voronka.identity.permissions import rights_changed

    manager = Actor.for_user(manager_user, "test")
    RolePermission.objects.filter(role=Role.objects.get(code="sales_manager"), entity_type_id=4,
                                  perm="add").delete()
    rights_changed()
    with pytest.raises(PermissionDenied) as exc:
        make_job(manager, [["Компания"], ["Ромашка"]], type="companies")
    assert "companies" in exc.value.message
    job = make_job(manager, [["Название сделки", "Компания"], ["Сделка", "Ромашка"]], type="deals")
    with pytest.raises(PermissionDenied):
        actions.start(manager, job)  # it would create companies
    actions.configure(manager, job, mode="match_only")
    assert run(manager, job).created_count == 1


def test_job_of_another_user_is_not_found(admin, manager):
    job = make_job(admin, [["Имя"], ["Ольга"]])
    from voronka.core.errors import NotFound

    with pytest.raises(NotFound):
        actions.get_job(manager, job.pk)


def test_resume_after_simulated_crash(admin):
    rows = [["Имя", "E-mail"]] + [[f"Клиент {i}", f"c{i}@example.ru"] for i in range(50)] + [["Плохой", "not-an-email"]]
    job = make_job(admin, rows, options={"batch_size": 10})
    actions.start(admin, job)
    with pytest.raises(runner.SimulatedCrash):
        runner.run(job.pk, crash_after=2)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count) == ("running", 20, 20)
    assert Contact.objects.count() == 20
    job = runner.run(job.pk)  # the stalled job is taken over (as resume_stalled would queue it)
    assert (job.status, job.created_count, job.rejected_count) == ("done", 50, 1)
    assert Contact.objects.count() == 50
    assert sorted(Contact.objects.values_list("first_name", flat=True)) == sorted(f"Клиент {i}" for i in range(50))


def test_stalled_job_is_requeued(admin):
    import datetime

    from django.utils import timezone

    job = make_job(admin, [["Имя"], ["Ольга"]])
    actions.start(admin, job)
    ImportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now() - datetime.timedelta(hours=1))
    assert runner.resume_stalled() == 1
    job.refresh_from_db()
    assert job.status == "queued"
    assert runner.run(job.pk).status == "done"


def test_failed_job_can_be_resumed(admin, monkeypatch):
    job = make_job(admin, [["Имя"], ["Ольга"]])
    actions.start(admin, job)
    from voronka.imports import engine

    monkeypatch.setattr(engine.Importer, "write", lambda self, plans: 1 / 0)
    job = runner.run(job.pk)
    assert job.status == "failed" and "internal error" in job.error
    monkeypatch.undo()
    actions.resume(admin, job)
    assert runner.run(job.pk).status == "done"


def test_start_enqueues_a_background_task(admin, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    job = make_job(admin, [["Имя"], ["Ольга"]])
    with django_capture_on_commit_callbacks(execute=True):
        actions.start(admin, job)
    assert DBTaskResult.objects.filter(task_path__endswith="run_import").exists()
