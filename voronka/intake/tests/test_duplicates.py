"""Duplicate search (phone, e-mail, similar name + company through indexes), policies per source, merge."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voronka.activities.actions import create_task
from voronka.core import entity_types
from voronka.core.models import AuditEvent, TimelineEntry
from voronka.core.selectors import timeline_for
from voronka.deals.actions import create_deal
from voronka.intake import actions, duplicates, names
from voronka.intake.models import DuplicateMark, IntakeSource
from voronka.leads.actions import create_lead, move_lead
from voronka.leads.models import Lead
from voronka.parties.actions import create_company, create_contact
from voronka.parties.models import Communication, Contact

pytestmark = pytest.mark.django_db


def _index(*objs):
    for obj in objs:
        names.refresh(obj.ENTITY_TYPE_ID, [obj.pk])


def test_phone_in_any_format_and_email_in_any_case_match(admin, lead_pipeline):
    contact = create_contact(admin, first_name="Иван", phones=["+7 916 123-45-67"], emails=["Ivan@Example.ru"])
    for criteria in ({"phones": ["8 (916) 123-45-67"]}, {"phones": ["9161234567"]}, {"emails": ["IVAN@example.RU "]}):
        [match] = duplicates.find(**criteria)
        assert (match.entity_type_id, match.id) == (entity_types.CONTACT, contact.pk)


def test_similar_name_with_the_same_company(admin, lead_pipeline):
    company = create_company(admin, name="ООО «Ромашка»")
    contact = create_contact(admin, first_name="Пётр", last_name="Сидоров", company=company.pk)
    other = create_contact(admin, first_name="Пётр", last_name="Сидоров")  # a namesake elsewhere
    _index(company, contact, other)
    found = duplicates.find(name="Сидоров Петр", company="Ромашка ООО")
    keys = [(m.entity_type_id, m.id) for m in found]
    assert (entity_types.CONTACT, contact.pk) in keys and (entity_types.COMPANY, company.pk) in keys
    assert (entity_types.CONTACT, other.pk) in keys  # same name, no company on file: still similar
    assert (entity_types.CONTACT, contact.pk) in [(m.entity_type_id, m.id) for m in
                                                   duplicates.find(name="Сидоров Пётр Иванович", company="Ромашка")]
    assert not duplicates.find(name="Сидоренко Павел", company="Лютик")


def test_name_index_follows_changes_made_elsewhere(admin, lead_pipeline):
    from voronka.core.outbox import dispatch_pending

    lead = create_lead(admin, first_name="Мария", last_name="Кузнецова")
    dispatch_pending()  # what runs after the commit (or in the worker's sweep)
    assert [m.id for m in duplicates.find(name="Кузнецова Мария")] == [lead.pk]
    from voronka.leads.actions import update_lead

    update_lead(admin, lead.pk, last_name="Смирнова")
    dispatch_pending()
    assert not duplicates.find(name="Кузнецова Мария")
    assert [m.id for m in duplicates.find(name="Смирнова Мария")] == [lead.pk]


def test_lookups_use_indexes_and_a_bounded_number_of_queries(admin, lead_pipeline):
    for i in range(30):
        create_contact(admin, first_name="Иван", last_name=f"Иванов{i}", phones=[f"+7916000{i:04d}"])
    names.rebuild()
    with CaptureQueriesContext(connection) as ctx:
        duplicates.find(phones=["+79160000007"], emails=["x@example.ru"], name="Иванов Иван", company="Ромашка")
    # phones/e-mails, one bounded index walk per key (the company, each name word), the candidates' index rows
    # and the matches (one query per kind of record for the last two): never one query per candidate
    assert len(ctx.captured_queries) <= 6
    sql = " ".join(q["sql"] for q in ctx.captured_queries).lower()
    assert "like" not in sql  # exact keys only: an index lookup, never a scan over names


def _spell(digits: str, style: int) -> str:
    """Ten digits of a Russian mobile number written the ways people write them."""
    a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
    return [f"+7 {a} {b}-{c}-{d}", f"8 ({a}) {b}-{c}-{d}", f"8{digits}", f"+7{digits}", f"{a} {b} {c} {d}",
            f"7-{a}-{b}-{c}{d}"][style]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.from_regex(r"9[0-9]{9}", fullmatch=True), st.integers(0, 5), st.integers(0, 5))
def test_property_every_spelling_of_a_number_finds_the_same_record(admin, lead_pipeline, digits, stored, asked):
    lead = create_lead(admin, title="prop", phones=[_spell(digits, stored)])
    assert lead.pk in [m.id for m in duplicates.find(phones=[_spell(digits, asked)])]


def test_policy_attach_comments_on_the_existing_lead(admin, lead_pipeline):
    lead = create_lead(admin, first_name="Анна", phones=["+79161112233"])
    entry = actions.submit("api", {"first_name": "Анна", "phones": ["8 916 111-22-33"], "comment": "Перезвоните"})
    assert entry.status == "attached" and entry.entity_id == lead.pk
    assert Lead.objects.count() == 1
    assert "Перезвоните" in TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk, kind="comment").text


def test_attach_to_a_contact_shows_on_its_open_deal(admin, lead_pipeline, deal_pipelines):
    contact = create_contact(admin, first_name="Олег", emails=["oleg@example.ru"])
    deal = create_deal(admin, title="Баня", contact=contact.pk)
    entry = actions.submit("api", {"first_name": "Олег", "emails": ["oleg@example.ru"], "inquiry": "Когда доставка?"})
    assert (entry.status, entry.entity_type_id, entry.entity_id) == ("attached", entity_types.CONTACT, contact.pk)
    assert any("Когда доставка?" in e.text for e in timeline_for(admin, entity_types.DEAL, deal.pk))


def test_policy_merge_fills_empty_fields_and_adds_phones(admin, lead_pipeline):
    IntakeSource.objects.create(code="landing", duplicate_policy="merge")
    lead = create_lead(admin, first_name="Анна", emails=["anna@example.ru"])
    entry = actions.submit("api", {"last_name": "Белова", "emails": ["anna@example.ru"], "phones": ["+79160001122"],
                                   "source": "landing"}, source="landing")
    assert entry.status == "merged"
    lead.refresh_from_db()
    assert lead.last_name == "Белова" and lead.first_name == "Анна"
    assert set(Communication.objects.filter(entity_type_id=1, entity_id=lead.pk).values_list("normalized", flat=True)) \
        == {"anna@example.ru", "+79160001122"}


def test_policy_flag_creates_a_lead_in_the_duplicate_check_stage(admin, lead_pipeline):
    from voronka.pipelines.actions import create_stage

    check = create_stage(admin, lead_pipeline.pk, name="Проверка на дубли", code="duplicate_check")
    IntakeSource.objects.create(code="expo", duplicate_policy="flag")
    first = create_lead(admin, first_name="Глеб", phones=["+79160002233"])
    entry = actions.submit("api", {"first_name": "Глеб", "phones": ["+79160002233"], "source": "expo"}, source="expo")
    assert entry.status == "created" and entry.entity_id != first.pk and str(first.pk) in entry.reason
    new = Lead.objects.get(pk=entry.entity_id)
    assert new.stage_id == check.pk
    mark = DuplicateMark.objects.get(entity_id=new.pk)
    assert mark.matches[0]["id"] == first.pk


def test_merge_keeps_history_links_tasks_phones_and_stage_history(admin, lead_pipeline, deal_pipelines):
    keep = create_contact(admin, first_name="Иван", last_name="Орлов", phones=["+79160003344"])
    dup = create_contact(admin, first_name="Иван", last_name="Орлов", middle_name="Ильич",
                         phones=["+79160003344", "+79160005566"], emails=["orlov@example.ru"])
    deal = create_deal(admin, title="Сделка дубля", contact=dup.pk)
    task = create_task(admin, title="Позвонить", entity_type_id=3, entity_id=dup.pk)
    from voronka.activities.actions import add_comment

    note = add_comment(admin, entity_type_id=3, entity_id=dup.pk, text="Важный клиент")
    kept = duplicates.merge_records(admin, entity_types.CONTACT, keep.pk, [dup.pk], values={"middle_name": dup.pk})
    assert kept.middle_name == "Ильич"
    deal.refresh_from_db()
    task.refresh_from_db()
    assert deal.contact_id == keep.pk and task.entity_id == keep.pk
    assert set(Communication.objects.filter(entity_type_id=3, entity_id=keep.pk).values_list("normalized", flat=True)) \
        == {"+79160003344", "+79160005566", "orlov@example.ru"}
    shown = [e.pk for e in timeline_for(admin, entity_types.CONTACT, keep.pk, limit=100)]
    assert note.pk in shown
    assert Contact.objects.get(pk=dup.pk).deleted_at is not None  # in the recycle bin, restorable
    assert AuditEvent.objects.filter(action="record.merged", entity_id=keep.pk).exists()
    merged = TimelineEntry.objects.get(entity_type_id=3, entity_id=keep.pk, changes__has_key="merged")
    assert merged.data["merged"] == [dup.pk]


def test_merge_of_leads_keeps_their_stage_history(admin, lead_pipeline):
    from voronka.pipelines.models import StageHistory

    a = create_lead(admin, title="A", phones=["+79160007788"])
    b = create_lead(admin, title="B", phones=["+79160007788"])
    move_lead(admin, b.pk, stage="assigned")
    before = StageHistory.objects.filter(entity_type_id=1, entity_id=b.pk).count()
    duplicates.merge_records(admin, entity_types.LEAD, a.pk, [b.pk], values={"title": b.pk})
    assert StageHistory.objects.filter(entity_type_id=1, entity_id=b.pk).count() == before == 2
    assert Lead.objects.get(pk=a.pk).title == "B"
    stage_moves = [e for e in timeline_for(admin, 1, a.pk, limit=100) if e.kind == "stage"]
    assert stage_moves  # the merged lead's stage moves are on the kept lead's timeline


def test_merge_refuses_bad_input_and_writes_nothing(admin, manager, lead_pipeline):
    from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed

    a = create_lead(admin, title="A")
    b = create_lead(admin, title="B")
    with pytest.raises(ValidationFailed):
        duplicates.merge_records(admin, 1, a.pk, [b.pk], values={"title": 999999})
    with pytest.raises(ValidationFailed):
        duplicates.merge_records(admin, 1, a.pk, [])
    with pytest.raises(NotFound):
        duplicates.merge_records(admin, 1, a.pk, [999999])
    with pytest.raises((NotFound, PermissionDenied)):
        duplicates.merge_records(manager, 1, a.pk, [b.pk])
    assert Lead.objects.filter(deleted_at__isnull=True).count() == 2


def test_merging_companies_keeps_the_site_equal_to_the_first_web_address(admin):
    """A company's ``site`` mirrors its first web address; a merge that brings web addresses over keeps them
    in step (the kept company had none: it takes the merged one's; it had one: it keeps it unless picked)."""
    from voronka.parties.models import Company

    def webs(pk):
        return list(Communication.objects.filter(entity_type_id=4, entity_id=pk, kind="web")
                    .values_list("value", flat=True))

    bare = create_company(admin, name="Ромашка")
    dup = create_company(admin, name="Ромашка ООО", site="romashka.ru")
    kept = duplicates.merge_records(admin, entity_types.COMPANY, bare.pk, [dup.pk])
    assert Company.objects.get(pk=bare.pk).site == "romashka.ru" == kept.site
    assert webs(bare.pk) == ["romashka.ru"]
    other = create_company(admin, name="Ромашка-Юг", site="south.romashka.ru")
    duplicates.merge_records(admin, entity_types.COMPANY, bare.pk, [other.pk])
    assert Company.objects.get(pk=bare.pk).site == "romashka.ru"
    assert set(webs(bare.pk)) == {"romashka.ru", "south.romashka.ru"}
    third = create_company(admin, name="Ромашка-Север", site="north.romashka.ru")
    duplicates.merge_records(admin, entity_types.COMPANY, bare.pk, [third.pk], values={"site": third.pk})
    assert Company.objects.get(pk=bare.pk).site == "north.romashka.ru" == webs(bare.pk)[0]


def test_matches_read_without_their_records_say_what_the_records_say(admin, lead_pipeline):
    """``find(load=False)`` (the intake path) reads only which matches are live and which are open leads: the same
    matches, order and targets as reading the records, a deleted record left out the same way, the record itself
    read on first use."""
    from voronka.leads.actions import delete_lead

    company = create_company(admin, name="ООО Ромашка")
    contact = create_contact(admin, first_name="Ольга", last_name="Смирнова", company=company.pk)
    open_lead = create_lead(admin, first_name="Ольга", last_name="Смирнова")
    junk = create_lead(admin, first_name="Ольга", last_name="Смирнова", company_name="Ромашка")
    move_lead(admin, junk.pk, stage="junk")
    gone = create_lead(admin, first_name="Ольга", last_name="Смирнова")
    _index(company, contact, open_lead, junk, gone)
    delete_lead(admin, gone.pk)  # its index rows stay until the outbox consumer runs
    wanted = {"name": "Смирнова Ольга", "company": "Ромашка"}

    def shape(matches):
        return [(m.entity_type_id, m.id, m.reasons, m.score, m.open_lead) for m in matches]

    full = duplicates.find(**wanted)
    with CaptureQueriesContext(connection) as ctx:
        light = duplicates.find(**wanted, load=False)
    assert len(ctx.captured_queries) == 2  # the walks, then one statement for the three kinds
    assert shape(light) == shape(full)
    assert gone.pk not in [m.id for m in light if m.entity_type_id == entity_types.LEAD]
    assert [m.open_lead for m in light if m.entity_type_id == entity_types.LEAD] == \
        [m.id == open_lead.pk for m in light if m.entity_type_id == entity_types.LEAD]
    assert {m.id for m in light if m.open_lead} == {open_lead.pk}
    assert (duplicates.best_target(light).entity_type_id, duplicates.best_target(light).id) == \
        (entity_types.LEAD, open_lead.pk)
    target = duplicates.best_target(light)
    with CaptureQueriesContext(connection) as ctx:
        assert target.obj.pk == open_lead.pk and target.obj.first_name == "Ольга"
        assert target.obj is target.obj  # read once
    assert len(ctx.captured_queries) == 1
    duplicates.load(light)
    assert [m.as_dict() for m in light] == [m.as_dict() for m in full]
    # read again under the lock: a lead moved out of progress meanwhile is no longer an open lead
    move_lead(admin, open_lead.pk, stage="junk")
    assert duplicates.recheck(target) and not target.open_lead
    delete_lead(admin, open_lead.pk)
    assert not duplicates.recheck(target)


def test_the_remembered_normalisation_gives_what_the_core_gives_and_refuses_each_time(settings):
    from django.core.exceptions import ValidationError

    from voronka.core import normalize

    for raw in ("8 (916) 123-45-67", "+7 916 1234567", "9161234567"):
        assert duplicates.normalize_phone(raw) == duplicates.normalize_phone(raw) == normalize.normalize_phone(raw)
    for _ in range(2):  # a refusal is not remembered as a value
        with pytest.raises(ValidationError):
            duplicates.normalize_phone("12")
        with pytest.raises(ValidationError):
            duplicates.normalize_email("not an address")
    assert duplicates.normalize_email(" Anna@Example.RU ") == "anna@example.ru"
    settings.VORONKA_DEFAULT_REGION = "US"  # the region is part of what is remembered
    assert duplicates.normalize_phone("(202) 555-0143") == normalize.normalize_phone("(202) 555-0143") == "+12025550143"
