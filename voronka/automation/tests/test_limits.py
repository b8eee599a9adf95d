"""Stage time limits: timers planned on entry, re-planned on moves and limit changes, fired once."""

import datetime

import pytest

from voronka.activities.models import Notification
from voronka.automation.actions import delete_stage_limit, set_stage_limit
from voronka.automation.models import Run, Timer
from voronka.core import clock
from voronka.core.errors import ValidationFailed
from voronka.identity.models import Department, User
from voronka.leads.actions import create_lead, delete_lead, move_lead, restore_lead

pytestmark = pytest.mark.django_db

TEXT = "Lead «{title}» has been in stage «{stage}» for more than {limit}, responsible {responsible}"


@pytest.fixture
def team(admin_user):
    owner = User.objects.create_user("owner", "owner@example.ru", "x", first_name="Олег", last_name="Владельцев",
                                     language="en")
    dept = Department.objects.create(name="Колл-центр", head=owner)
    operator = User.objects.create_user("op", "op@example.ru", "x", first_name="Ира", last_name="Звонкова",
                                        department=dept, language="en")
    from voronka.identity.models import Role, RoleAssignment
    from voronka.identity.permissions import rights_changed

    RoleAssignment.objects.create(role=Role.objects.get(code="call_centre_operator"), user=operator)
    RoleAssignment.objects.create(role=Role.objects.get(code="head_of_sales"), user=owner)
    rights_changed()
    return {"owner": owner, "operator": operator}


CHAIN = [{"after": {"amount": 0, "unit": "minutes"}, "notify": ["responsible"]},
         {"after": {"amount": 30, "unit": "minutes"}, "notify": ["head"], "reassign": "head"}]


def test_timers_are_planned_when_an_item_enters_and_dropped_when_it_leaves(admin, stages, team, drive):
    set_stage_limit(admin, stages["new"].pk, amount=3, unit="hours", steps=CHAIN)
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    drive()
    timers = list(Timer.objects.order_by("step"))
    assert [(t.step, t.due_at - lead.stage_changed_at, t.status) for t in timers] == [
        (0, datetime.timedelta(hours=3), "pending"), (1, datetime.timedelta(hours=3, minutes=30), "pending")]
    move_lead(admin, lead.pk, stage="assigned")
    drive()
    assert Timer.objects.count() == 0


def test_the_limit_passes_and_the_escalation_chain_runs_once(admin, stages, team, drive):
    set_stage_limit(admin, stages["new"].pk, amount=3, unit="hours", steps=CHAIN)
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    drive()
    clock.freeze(lead.stage_changed_at + datetime.timedelta(hours=2, minutes=59))
    drive()
    assert not Notification.objects.exists()
    clock.freeze(lead.stage_changed_at + datetime.timedelta(hours=3))
    drive()
    drive()
    [note] = Notification.objects.all()
    assert note.user == team["operator"]
    assert note.text == "Lead «Окна» has been in stage «Не обработан» for more than 3 hours, responsible Ира Звонкова"
    clock.freeze(lead.stage_changed_at + datetime.timedelta(hours=4))
    drive()
    notes = list(Notification.objects.order_by("id"))
    assert [n.user for n in notes] == [team["operator"], team["owner"]]
    assert notes[1].text == "Lead «Окна» has been in stage «Не обработан» for more than 3 hours, responsible Ира Звонкова"
    lead.refresh_from_db()
    assert lead.responsible == team["owner"]  # the second step reassigns to the head
    assert [(r.action, r.status) for r in Run.objects.order_by("id")] == [("escalate", "done"), ("escalate", "done")]
    assert set(Timer.objects.values_list("status", flat=True)) == {"fired"}


def test_a_custom_message_and_a_named_user(admin, stages, team, drive):
    set_stage_limit(admin, stages["new"].pk, amount=15, unit="minutes", steps=[
        {"notify": ["user:owner"], "message": "{title}: {limit} в «{stage}» ({responsible}) {nope}"}])
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    drive()
    clock.freeze(lead.stage_changed_at + datetime.timedelta(minutes=15))
    drive()
    assert Notification.objects.get().text == "Окна: 15 minutes в «Не обработан» (Ира Звонкова) {nope}"


def test_moving_back_into_the_stage_starts_the_limit_again(admin, stages, team, drive):
    set_stage_limit(admin, stages["new"].pk, amount=1, unit="hours", steps=CHAIN[:1])
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    move_lead(admin, lead.pk, stage="assigned")
    move_lead(admin, lead.pk, stage="new")
    drive()
    lead.refresh_from_db()
    timer = Timer.objects.get()
    assert timer.entered_at == lead.stage_changed_at and timer.due_at == lead.stage_changed_at + datetime.timedelta(hours=1)


def test_changing_the_limit_replans_items_in_the_stage(admin, stages, team, drive):
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    drive()
    assert not Timer.objects.exists()
    set_stage_limit(admin, stages["new"].pk, amount=2, unit="days", steps=CHAIN[:1])
    assert Timer.objects.get().due_at == lead.stage_changed_at + datetime.timedelta(days=2)
    set_stage_limit(admin, stages["new"].pk, amount=5, unit="hours", steps=CHAIN)
    assert sorted(Timer.objects.values_list("due_at", flat=True)) == [
        lead.stage_changed_at + datetime.timedelta(hours=5), lead.stage_changed_at + datetime.timedelta(hours=5, minutes=30)]
    set_stage_limit(admin, stages["new"].pk, amount=5, unit="hours", steps=CHAIN, enabled=False)
    assert not Timer.objects.exists()
    set_stage_limit(admin, stages["new"].pk, amount=5, unit="hours", steps=CHAIN)
    delete_stage_limit(admin, stages["new"].pk)
    assert not Timer.objects.exists()


def test_deleted_items_have_no_timers_and_restored_ones_get_them_back(admin, stages, team, drive):
    set_stage_limit(admin, stages["new"].pk, amount=1, unit="hours", steps=CHAIN[:1])
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    drive()
    delete_lead(admin, lead.pk)
    drive()
    assert not Timer.objects.exists()
    restore_lead(admin, lead.pk)
    drive()
    assert Timer.objects.count() == 1


def test_a_timer_of_a_stay_that_ended_is_cancelled_not_fired(admin, stages, team, drive):
    """If the move's event has not been delivered yet when the timer comes due, the timer sees the move itself."""
    set_stage_limit(admin, stages["new"].pk, amount=1, unit="hours", steps=CHAIN[:1])
    lead = create_lead(admin, title="Окна", responsible=team["operator"].pk)
    drive()
    from voronka.core.models import OutboxEvent

    move_lead(admin, lead.pk, stage="assigned")
    OutboxEvent.objects.filter(name="lead.stage_changed").update(claimed_until=clock.now() + datetime.timedelta(days=1))
    from voronka.automation.scheduler import fire_timers

    assert fire_timers(lead.stage_changed_at + datetime.timedelta(hours=2)) == 0
    assert Timer.objects.get().status == "cancelled" and not Run.objects.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"amount": 0}, "greater than zero"),
    ({"amount": 3, "unit": "weeks"}, "minutes, hours or days"),
    ({"amount": 3, "steps": []}, "non-empty list"),
    ({"amount": 3, "steps": [{"notify": ["boss"]}]}, "is not one of"),
    ({"amount": 3, "steps": [{"notify": ["user:nobody"]}]}, "no active user «nobody»"),
    ({"amount": 3, "steps": [{"after": {"amount": -1, "unit": "hours"}}]}, "zero or more"),
    ({"amount": 3, "steps": [{"reassign": "role:x"}]}, "head or user"),
    ({"amount": 3, "steps": [{"when": 1}]}, "unknown keys when"),
])
def test_bad_limits_get_clear_errors(admin, stages, kwargs, message):
    with pytest.raises(ValidationFailed) as exc:
        set_stage_limit(admin, stages["new"].pk, **kwargs)
    assert message in str(exc.value.fields)


@pytest.mark.parametrize(("amount", "unit", "phrase"), [(3, "hours", "более 3 часов"), (1, "hours", "более 1 часа"),
                                                        (21, "days", "более 21 дня"), (45, "minutes", "более 45 минут")])
def test_the_default_lead_message_in_russian(admin, stages, team, drive, amount, unit, phrase):
    """The customer's text: «Лид «{название}» уже более {лимит} находится в стадии «{стадия}», ответственный …»."""
    team["operator"].language = "ru"
    team["operator"].save(update_fields=["language"])
    set_stage_limit(admin, stages["new"].pk, amount=amount, unit=unit, steps=CHAIN[:1])
    lead = create_lead(admin, title="Окна на дачу", responsible=team["operator"].pk)
    drive()
    clock.freeze(lead.stage_changed_at + datetime.timedelta(**{unit: amount}))
    drive()
    [note] = Notification.objects.all()
    assert note.text == f"Лид «Окна на дачу» уже {phrase} находится в стадии «Не обработан», ответственный Ира Звонкова"


def _fire_queries(admin, stages, count: int, start: int) -> tuple[int, datetime.datetime]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.automation.scheduler import fire_timers
    from voronka.core.management.commands.worker import sweep

    leads = [create_lead(admin, title=f"Лид {start + i}") for i in range(count)]
    sweep()  # the events plan the timers
    due = max(lead.stage_changed_at for lead in leads) + datetime.timedelta(hours=2)
    with CaptureQueriesContext(connection) as queries:
        assert fire_timers(due, limit=100) == count
    return len(queries), due


def test_due_timers_fire_in_one_batch_at_a_constant_cost_and_once(admin, stages):
    """Firing is one transaction per batch of timers with a fixed number of statements (a query added per timer
    fails this), and a timer fired again (say, by a second worker) still makes exactly one escalation run."""
    set_stage_limit(admin, stages["new"].pk, amount=1, unit="hours", steps=CHAIN[:1])
    small, _due = _fire_queries(admin, stages, 3, 0)
    large, due = _fire_queries(admin, stages, 12, 3)
    assert large == small, (small, large)
    assert Run.objects.filter(action="escalate").count() == 15
    assert set(Timer.objects.values_list("status", flat=True)) == {"fired"}
    from voronka.automation.scheduler import fire_timers

    Timer.objects.update(status="pending")  # as if another worker fired them and our claim raced it
    assert fire_timers(due, limit=100) == 15
    assert Run.objects.filter(action="escalate").count() == 15  # the runs' keys keep them single
