"""Action-level tests for leads: the core behaviour every entry point relies on."""

from __future__ import annotations

import pytest

from voronka.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.core.selectors import timeline_for
from voronka.leads import actions
from voronka.leads.models import Lead
from voronka.parties.models import Communication, Contact
from voronka.pipelines.models import StageHistory

pytestmark = pytest.mark.django_db


def _state():
    return (Lead.objects.count(), Communication.objects.count(), StageHistory.objects.count(),
            TimelineEntry.objects.count(), OutboxEvent.objects.count(), Contact.objects.count())


def test_create_lead_normalises_phones_and_writes_history(admin, lead_pipeline):
    lead = actions.create_lead(admin, first_name="Иван", last_name="Петров", phones=["8 (916) 123-45-67"],
                               emails=["IVAN@Example.RU"], source="site")
    assert lead.title == "Петров Иван"  # never «Client123»
    assert lead.stage.code == "new" and lead.pipeline == lead_pipeline
    assert lead.responsible_id == admin.user_id
    phone = Communication.objects.get(entity_id=lead.pk, kind="phone")
    assert phone.normalized == "+79161234567" and phone.value == "8 (916) 123-45-67"
    assert Communication.objects.get(entity_id=lead.pk, kind="email").normalized == "ivan@example.ru"
    assert StageHistory.objects.filter(entity_type_id=1, entity_id=lead.pk, from_stage=None).count() == 1
    assert TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="created").count() == 1
    event = OutboxEvent.objects.get(name="lead.created", entity_id=lead.pk)
    assert event.actor_user_id == admin.user_id


@pytest.mark.parametrize("raw", ["8 (916) 123-45-67", "+7 916 1234567", "89161234567", "9161234567", "+7(916)123 45 67"])
def test_phone_formats_are_the_same_number(admin, lead_pipeline, raw):
    lead = actions.create_lead(admin, title="x", phones=[raw])
    assert Communication.objects.get(entity_id=lead.pk).normalized == "+79161234567"


@pytest.mark.parametrize("data, field", [
    ({"phones": ["не телефон"]}, "phones"),
    ({"emails": ["nobody@"]}, "emails"),
    ({"stage": "nope"}, "stage"),
    ({"stage": "qualified"}, "phones"),  # required to enter
    ({"title": "x" * 300}, "title"),
    ({"opportunity": "много"}, "opportunity"),
    ({"responsible": 999999}, "responsible"),
    ({"unknown_field": 1}, "unknown_field"),
    ({"custom": {"uf_nope": 1}}, "custom.uf_nope"),
    ({"first_name": ["list"]}, "first_name"),
])
def test_bad_input_names_the_field_and_writes_nothing(admin, lead_pipeline, data, field):
    before = _state()
    with pytest.raises(ValidationFailed) as err:
        actions.create_lead(admin, **{"title": "Заявка", **data})
    assert field in err.value.fields, err.value.as_dict()
    assert _state() == before


def test_stage_of_another_pipeline_is_refused(admin, lead_pipeline):
    from voronka.pipelines.actions import create_pipeline

    other = create_pipeline(admin, entity_type_id=1, name="Другая", stages=[{"name": "Чужая", "code": "alien"}])
    lead = actions.create_lead(admin, title="x")
    alien = other.stages.get()
    with pytest.raises(ValidationFailed) as err:
        actions.move_lead(admin, lead.pk, stage=alien.pk)
    assert "stage" in err.value.fields
    # the same stage with its pipeline is a move between pipelines, which is allowed
    moved = actions.move_lead(admin, lead.pk, stage=alien.pk, pipeline=other.pk)
    assert moved.pipeline_id == other.pk and moved.stage_id == alien.pk


def test_move_records_history_and_allows_moving_back(admin, lead_pipeline):
    lead = actions.create_lead(admin, title="Запрос на запчасти", phones=["+79161234567"])
    actions.move_lead(admin, lead.pk, stage="qualified")
    actions.move_lead(admin, lead.pk, stage="assigned")  # a failed meeting loops back
    rows = list(StageHistory.objects.filter(entity_type_id=1, entity_id=lead.pk).order_by("id"))
    assert [r.to_stage.code for r in rows] == ["new", "qualified", "assigned"]
    assert rows[1].from_stage.code == "new" and rows[1].seconds_in_previous is not None
    assert [e.name for e in OutboxEvent.objects.filter(entity_type_id=1, entity_id=lead.pk).order_by("id")] == [
        "lead.created", "lead.stage_changed", "lead.stage_changed"]
    lead.refresh_from_db()
    assert lead.stage.code == "assigned" and lead.closed_at is None


def test_required_fields_can_be_given_with_the_move(admin, lead_pipeline):
    lead = actions.create_lead(admin, title="x")
    with pytest.raises(ValidationFailed):
        actions.move_lead(admin, lead.pk, stage="qualified")
    lead.refresh_from_db()
    assert lead.stage.code == "new"
    actions.move_lead(admin, lead.pk, stage="qualified", fields={"phones": ["+7 495 123-45-67"]})
    lead.refresh_from_db()
    assert lead.stage.code == "qualified"


def test_failure_stage_closes_the_lead(admin, lead_pipeline):
    lead = actions.create_lead(admin, title="x")
    lead = actions.move_lead(admin, lead.pk, stage="junk")
    assert lead.stage_semantics == "failure" and lead.closed_at is not None


def test_update_writes_a_diff(admin, lead_pipeline):
    lead = actions.create_lead(admin, title="x", comment="")
    actions.update_lead(admin, lead.pk, comment="перезвонить", opportunity="15000.50")
    entry = TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="updated").get()
    assert entry.changes["comment"] == ["", "перезвонить"]
    assert entry.changes["opportunity"] == ["0.00", "15000.50"]
    assert entry.entry_point == "test"


def test_update_without_change_writes_nothing(admin, lead_pipeline):
    lead = actions.create_lead(admin, title="x")
    before = _state()
    actions.update_lead(admin, lead.pk, title="x")
    assert _state() == before


def test_bulk_create_reports_per_item(admin, lead_pipeline):
    results = actions.create_leads(admin, [{"title": "a", "phones": ["+79160000001"]}, {"phones": ["bad"]}, "junk",
                                           {"first_name": "Оля"}])
    assert [r.ok for r in results] == [True, False, False, True]
    assert "phones" in results[1].error.fields
    assert Lead.objects.count() == 2
    assert StageHistory.objects.count() == 2 and OutboxEvent.objects.filter(name="lead.created").count() == 2


def test_convert_lead_creates_linked_records_and_carries_timeline(admin, lead_pipeline, deal_pipelines):
    from voronka.activities.actions import add_comment

    lead = actions.create_lead(admin, first_name="Мария", last_name="Иванова", company_name="ООО Ромашка",
                               phones=["+79161234567"], opportunity=50000)
    add_comment(admin, entity_type_id=1, entity_id=lead.pk, text="Хочет скидку")
    result = actions.convert_lead(admin, lead.pk)
    deal, contact, company = result["deal"], result["contact"], result["company"]
    assert deal.lead_id == lead.pk and deal.contact_id == contact.pk and deal.company_id == company.pk
    assert deal.opportunity == 50000 and deal.pipeline.code == "sales"
    assert contact.company_id == company.pk
    assert Communication.objects.get(entity_type_id=3, entity_id=contact.pk).normalized == "+79161234567"
    texts = [e.text for e in timeline_for(admin, 2, deal.pk)]
    assert "Хочет скидку" in texts
    lead.refresh_from_db()
    assert lead.converted_at and lead.contact_id == contact.pk and lead.stage.semantics == "success"
    with pytest.raises(Conflict):
        actions.convert_lead(admin, lead.pk)


def test_convert_rolls_back_completely_on_error(admin, lead_pipeline, deal_pipelines):
    lead = actions.create_lead(admin, title="x", first_name="Анна")
    before = _state()
    with pytest.raises(ValidationFailed):
        actions.convert_lead(admin, lead.pk, deal_stage="no-such-stage")
    assert _state() == before
    lead.refresh_from_db()
    assert lead.converted_at is None


def test_soft_delete_and_restore(admin, manager, lead_pipeline):
    lead = actions.create_lead(manager, title="x")
    with pytest.raises(PermissionDenied):
        actions.delete_lead(manager, lead.pk)  # staff cannot delete by default
    actions.delete_lead(admin, lead.pk)
    with pytest.raises(NotFound):
        actions.update_lead(admin, lead.pk, title="y")
    actions.restore_lead(admin, lead.pk)
    assert actions.update_lead(admin, lead.pk, title="y").title == "y"
    kinds = list(TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk).values_list("kind", flat=True).order_by("id"))
    assert kinds == ["created", "deleted", "restored", "updated"]


def test_system_actor_carries_its_cause(system, lead_pipeline):
    lead = actions.create_lead(system, title="из формы")
    entry = TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk)
    assert entry.actor_kind == "system" and entry.cause == "test"


def test_search_folds_case_of_russian_letters(admin, lead_pipeline):
    from voronka.core.selectors import records_visible_to

    actions.create_lead(admin, title="Запрос от Менеджерова", last_name="Менеджеров")
    found = records_visible_to(admin, 1).filter(last_name__icontains="менедж")
    assert [lead.last_name for lead in found] == ["Менеджеров"]
    assert records_visible_to(admin, 1).filter(title__icontains="ЗАПРОС ОТ").count() == 1
    assert records_visible_to(admin, 1).filter(title__icontains="50%").count() == 0  # % is literal


def test_a_large_batch_pauses_the_garbage_collector_and_gives_it_back(admin, lead_pipeline, monkeypatch):
    """``recordkit.collector_paused``: a batch of ``COLLECTOR_PAUSE_FROM`` items or more is validated and written
    with the cyclic collector off (it walked the batch's objects again and again), a small one is not; the switch
    is back as it was afterwards, also when the batch fails, and a caller's own «off» is left alone."""
    import gc

    from voronka.core import recordkit

    seen = []
    prepare = recordkit._prepare

    def watched(ctx):
        seen.append(gc.isenabled())
        return prepare(ctx)

    monkeypatch.setattr(recordkit, "_prepare", watched)
    assert gc.isenabled()
    n = recordkit.COLLECTOR_PAUSE_FROM
    results = actions.create_leads(admin, [{"title": f"b{i}"} for i in range(n)])
    assert all(r.ok for r in results) and seen == [False] * n and gc.isenabled()
    seen.clear()
    actions.create_leads(admin, [{"title": "small"}])
    assert seen == [True]
    seen.clear()
    with pytest.raises(ZeroDivisionError), recordkit.collector_paused():
        assert not gc.isenabled()
        1 / 0  # noqa: B018 - the block fails
    assert gc.isenabled()
    gc.disable()
    try:
        actions.create_leads(admin, [{"title": f"c{i}"} for i in range(n)])
        assert not gc.isenabled()  # the caller turned it off: still off
    finally:
        gc.enable()
    assert Lead.objects.filter(title__startswith="b").count() == n
