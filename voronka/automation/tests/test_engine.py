"""The engine: events become runs once, runs execute once, chains stop at the depth limit, and failures show."""

import datetime

import pytest
from django.utils import timezone

from voronka.activities.models import Task
from voronka.automation import engine, scheduler
from voronka.automation.actions import update_robot
from voronka.automation.models import Run
from voronka.core import clock, outbox
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.leads.actions import create_lead, delete_lead, move_lead

pytestmark = pytest.mark.django_db


def test_the_same_event_delivered_twice_makes_one_run(admin, robot, drive):
    robot("create_task", {"title": "t"})
    create_lead(admin, title="A")
    event = OutboxEvent.objects.get(name="lead.created")
    engine.on_event(event)
    engine.on_event(event)  # at-least-once delivery: again
    OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=None, claimed_until=None)
    drive()  # and once more by the worker's sweep
    assert Run.objects.count() == 1
    assert Task.objects.count() == 1


def test_on_enter_covers_creation_and_moves_on_create_only_creation(admin, robot, drive, stages):
    robot("comment", {"text": "enter"}, stage="assigned")
    robot("comment", {"text": "create"}, stage="assigned", trigger="on_create")
    a = create_lead(admin, title="A", stage="assigned")
    b = create_lead(admin, title="B")
    move_lead(admin, b.pk, stage="assigned")
    drive()
    texts = {lead.pk: sorted(TimelineEntry.objects.filter(entity_id=lead.pk, kind="comment").values_list("text", flat=True))
             for lead in (a, b)}
    assert texts == {a.pk: ["create", "enter"], b.pk: ["enter"]}


def test_runs_follow_the_robots_order(admin, robot, drive):
    robot("comment", {"text": "second"}, order=20)
    robot("comment", {"text": "first"}, order=10)
    lead = create_lead(admin, title="A")
    drive()
    texts = list(TimelineEntry.objects.filter(entity_id=lead.pk, kind="comment").order_by("id").values_list("text", flat=True))
    assert texts == ["first", "second"]


def test_a_delayed_run_waits_for_the_clock(admin, robot, drive):
    robot("comment", {"text": "later"}, delay={"kind": "after", "amount": 3, "unit": "hours"})
    lead = create_lead(admin, title="A")
    drive()
    run = Run.objects.get()
    entered = OutboxEvent.objects.get(name="lead.created", entity_id=lead.pk).created_at  # the moment it entered
    assert run.status == "pending" and run.scheduled_at == entered + datetime.timedelta(hours=3)
    clock.freeze(run.scheduled_at - datetime.timedelta(seconds=1))
    drive()
    assert Run.objects.get().status == "pending"
    clock.freeze(run.scheduled_at)
    drive()
    assert Run.objects.get().status == "done"


def test_a_delayed_run_is_skipped_when_the_item_left_the_stage(admin, robot, drive):
    robot("comment", {"text": "later"}, delay={"kind": "after", "amount": 1, "unit": "hours"})
    lead = create_lead(admin, title="A")
    drive()
    move_lead(admin, lead.pk, stage="assigned")
    move_lead(admin, lead.pk, stage="new")  # back again: a new stay, a new run; the old one is stale
    clock.freeze(timezone.now() + datetime.timedelta(hours=2))
    drive()
    runs = list(Run.objects.order_by("id"))
    assert [(r.status, r.error) for r in runs] == [("skipped", "The record has left the stage."), ("done", "")]
    assert TimelineEntry.objects.filter(entity_id=lead.pk, kind="comment").count() == 1


def test_conditions_are_checked_when_the_run_executes(admin, robot, drive):
    robot("comment", {"text": "big"}, conditions={"field": "opportunity", "op": "greater", "value": 1000})
    small = create_lead(admin, title="S", opportunity="10")
    big = create_lead(admin, title="B", opportunity="5000")
    drive()
    by_lead = {r.entity_id: (r.status, r.error) for r in Run.objects.all()}
    assert by_lead == {small.pk: ("skipped", "The conditions do not hold."), big.pk: ("done", "")}


def test_disabled_and_deleted_things_are_skipped_with_a_reason(admin, robot, drive):
    r = robot("comment", {"text": "x"}, delay={"kind": "after", "amount": 1, "unit": "minutes"})
    a = create_lead(admin, title="A")
    b = create_lead(admin, title="B")
    drive()
    update_robot(admin, r.pk, enabled=False)
    delete_lead(admin, b.pk)
    clock.freeze(timezone.now() + datetime.timedelta(minutes=5))
    drive()
    by_lead = {run.entity_id: (run.status, run.error) for run in Run.objects.all()}
    assert by_lead == {a.pk: ("skipped", "The robot is disabled."), b.pk: ("skipped", "The record was deleted.")}


def test_every_run_is_on_the_items_timeline(admin, robot, drive):
    rb = robot("create_task", {"title": "Позвонить"}, name="Задача на звонок")
    lead = create_lead(admin, title="A")
    drive()
    run = Run.objects.get()
    line = TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk, kind="automation")
    assert line.text == "Задача на звонок"
    assert line.data["run"] == run.pk and line.data["status"] == "done" and line.data["outputs"]["task"]
    assert (line.actor_kind, line.cause, line.entry_point) == ("system", f"robot:{rb.pk}", "automation")


def test_a_chain_stops_at_the_depth_limit_and_says_so(admin, robot, drive, settings):
    settings.VORONKA_AUTOMATION_MAX_DEPTH = 3
    robot("move_stage", {"stage": "assigned"}, stage="new")
    robot("move_stage", {"stage": "new"}, stage="assigned")  # a loop an administrator built by mistake
    lead = create_lead(admin, title="A")
    drive()
    runs = list(Run.objects.order_by("id"))
    assert [(r.depth, r.status) for r in runs] == [(1, "done"), (2, "done"), (3, "done"), (4, "skipped")]
    assert "depth limit (3)" in runs[-1].error
    line = TimelineEntry.objects.filter(entity_id=lead.pk, kind="automation").order_by("-id").first()
    assert line.data["status"] == "skipped" and "depth limit" in line.data["error"]


def test_a_run_whose_worker_died_is_taken_again_after_its_lease_and_applied_once(admin, robot, settings):
    settings.VORONKA_AUTOMATION_LEASE_SECONDS = 60
    robot("create_task", {"title": "t"})
    create_lead(admin, title="A")
    outbox.dispatch_pending()
    now = timezone.now() + datetime.timedelta(seconds=1)
    dead_token, ids = scheduler.claim_runs(now)  # a worker claims and dies before executing
    assert len(ids) == 1
    assert scheduler.claim_runs(now)[1] == []  # the lease holds: nobody else takes it
    later = now + datetime.timedelta(seconds=61)
    token, again = scheduler.claim_runs(later)
    assert again == ids
    scheduler.execute(ids[0], dead_token)  # the old owner wakes up: it no longer owns the run
    assert Task.objects.count() == 0
    scheduler.execute(ids[0], token)
    scheduler.execute(ids[0], token)  # a second call does nothing either
    run = Run.objects.get()
    assert (run.status, run.attempts) == ("done", 2)
    assert Task.objects.count() == 1


def test_a_crash_in_the_middle_of_an_action_applies_nothing(admin, robot, monkeypatch):
    """The database effect and the run's completion commit together: an exception rolls both back."""
    from voronka.automation import effects

    robot("create_task", {"title": "t"})
    create_lead(admin, title="A")
    outbox.dispatch_pending()

    def crash(*args, **kwargs):
        effects.create_task(*args, **kwargs)  # the task is written …
        raise RuntimeError("power cut")  # … and the process fails before the commit

    monkeypatch.setitem(effects.DB, "create_task", (effects.check_create_task, crash))
    token, ids = scheduler.claim_runs(timezone.now() + datetime.timedelta(seconds=1))
    scheduler.execute(ids[0], token)
    run = Run.objects.get()
    assert (run.status, run.attempts) == ("pending", 1) and "power cut" in run.error
    assert Task.objects.count() == 0
    monkeypatch.undo()
    token, ids = scheduler.claim_runs(run.scheduled_at)
    scheduler.execute(ids[0], token)
    assert Run.objects.get().status == "done" and Task.objects.count() == 1


def test_events_of_unstaged_records_and_other_events_are_ignored(admin, robot, drive):
    from voronka.parties.actions import create_contact

    robot("comment", {"text": "x"})
    create_contact(admin, first_name="Иван")
    drive()
    assert Run.objects.count() == 0


def test_writes_where_nothing_is_configured_cost_one_query_and_new_robots_are_seen(
        admin, robot, drive, django_assert_max_num_queries):
    create_lead(admin, title="A")
    event = OutboxEvent.objects.get(name="lead.created")
    engine.configured_stages()  # warm the per-process cache
    with django_assert_max_num_queries(1):  # the settings version
        engine.on_event(event)
    outbox.dispatch_pending()  # delivered (and done with) before the robot exists
    assert not Run.objects.exists()
    robot("comment", {"text": "x"})  # a settings change: the cache is reloaded
    b = create_lead(admin, title="B")
    drive()
    assert list(Run.objects.values_list("entity_id", flat=True)) == [b.pk]


def test_a_batch_keeps_each_runs_outcome_apart(admin, robot, drive, monkeypatch):
    """Database runs of one tick share a transaction, each in a savepoint: a refused action fails alone (its
    partial writes rolled back), an unexpected error is retried alone, the others are done."""
    from voronka.automation import effects

    robot("comment", {"text": "first"}, order=10)
    robot("move_stage", {"stage": "qualified"}, order=20)  # refused: «qualified» requires phones
    robot("comment", {"text": "boom"}, order=30)
    robot("comment", {"text": "last"}, order=40)
    real = effects.DB["comment"]

    def flaky(actor, obj, params, run):
        result = real[1](actor, obj, params, run)  # writes, then fails: the savepoint must undo the write
        if params["text"] == "boom":
            raise RuntimeError("network hiccup")
        return result

    monkeypatch.setitem(effects.DB, "comment", (real[0], flaky))
    lead = create_lead(admin, title="A")
    from voronka.core.management.commands.worker import sweep

    sweep()
    assert scheduler.tick() == 4
    by_order = {r.robot.order: r for r in Run.objects.select_related("robot")}
    assert by_order[10].status == "done" and by_order[40].status == "done"
    assert by_order[20].status == "failed" and "phones" in by_order[20].error
    assert by_order[30].status == "pending" and "network hiccup" in by_order[30].error  # retried later
    texts = sorted(TimelineEntry.objects.filter(entity_id=lead.pk, kind="comment").values_list("text", flat=True))
    assert texts == ["first", "last"]
    from voronka.leads.models import Lead

    assert Lead.objects.get(pk=lead.pk).stage.code == "new"
