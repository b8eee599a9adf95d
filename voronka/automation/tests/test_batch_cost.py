"""What a batch of runs costs in queries, and that reading a batch's records once stays correct.

The worker reads the runs (with robots, limits, triggers) and their records once per batch and writes the
completions together; what is left per run is the action's own work. These tests fix the number of queries a
batch makes as ``overhead + per_run × runs`` for two batch sizes: a query added per run (a robot, a record,
a completion read or written one by one) breaks them.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from voronka.automation import scheduler
from voronka.automation.models import Run
from voronka.core.management.commands.worker import sweep
from voronka.core.models import TimelineEntry
from voronka.leads.actions import create_leads
from voronka.leads.models import Lead

pytestmark = pytest.mark.django_db


def _batch_queries(admin, count: int, start: int = 0) -> list[dict]:
    """Queries of one tick that executes ``count`` due runs (planned beforehand by the outbox sweep)."""
    results = create_leads(admin, [{"title": f"L{start + i}"} for i in range(count)])
    assert all(r.ok for r in results)
    sweep()  # the events become pending runs
    assert Run.objects.filter(status="pending").count() == count
    with CaptureQueriesContext(connection) as queries:
        assert scheduler.tick() == count
    assert Run.objects.filter(status="done").count() == start + count
    return queries.captured_queries


def _savepoints(queries: list[dict]) -> int:
    return sum(q["sql"].upper().startswith("SAVEPOINT") for q in queries)


# (action, params, the queries a run of it may cost: its own writes; the batch runs without savepoints)
PER_RUN = [
    ("comment", {"text": "Seen {title}"}, 2),  # the timeline entry, the event
    # + the task (its responsible is the record's, read with the batch's records: not read again)
    ("create_task", {"title": "Call {title}"}, 3),
    ("notify", {"text": "Look at {title}"}, 2),  # the notification, the event (the recipients are in hand)
    ("set_fields", {"fields": {"inquiry": "Checked {title}"}}, 4),  # the record locked, updated, timeline, event
]


@pytest.mark.parametrize(("action", "params", "per_run"), PER_RUN, ids=[a for a, _p, _n in PER_RUN])
def test_a_batch_costs_a_fixed_overhead_plus_the_actions_own_queries(admin, robot, action, params, per_run):
    robot(action, params)
    small_batch, large_batch = _batch_queries(admin, 5), _batch_queries(admin, 25, start=5)
    small, large = len(small_batch), len(large_batch)
    assert (large - small) / 20 <= per_run, (small, large)  # nothing per run beyond the action's own work
    # no savepoint per run (those here are the claim's and the batch's transactions inside the test's own)
    assert _savepoints(small_batch) == _savepoints(large_batch) <= 4
    assert small - 5 * per_run <= 16, small  # the batch's own reads and writes: timers, claim, lock, records, completion


def test_several_robots_of_one_record_in_a_batch_see_each_others_changes(admin, robot):
    """Records are read once per batch, but a run that changed its record makes the next run of that record
    read it again: a later robot's conditions see what an earlier robot of the same batch wrote."""
    robot("set_fields", {"fields": {"inquiry": "checked"}}, order=10)
    robot("comment", {"text": "after the check"}, order=20,
          conditions={"all": [{"field": "inquiry", "op": "equals", "value": "checked"}]})
    robot("set_fields", {"fields": {"inquiry": "{inquiry} twice"}}, order=30)
    results = create_leads(admin, [{"title": "A"}, {"title": "B"}])
    sweep()
    assert scheduler.tick() == 6  # one batch
    assert set(Run.objects.values_list("status", flat=True)) == {"done"}
    for r in results:
        assert TimelineEntry.objects.filter(entity_id=r.obj.pk, kind="comment").count() == 1
        assert Lead.objects.get(pk=r.obj.pk).inquiry == "checked twice"


def test_a_record_deleted_before_the_batch_is_skipped(admin, robot):
    from voronka.leads.actions import delete_lead

    robot("comment", {"text": "x"})
    results = create_leads(admin, [{"title": "A"}, {"title": "B"}])
    sweep()
    delete_lead(admin, results[0].obj.pk)
    assert scheduler.tick() == 2
    runs = {r.entity_id: r for r in Run.objects.all()}
    assert runs[results[0].obj.pk].status == "skipped" and runs[results[0].obj.pk].error == "The record was deleted."
    assert runs[results[1].obj.pk].status == "done"
    # each completion is on its record's timeline, written with the batch
    lines = TimelineEntry.objects.filter(kind="automation").values_list("entity_id", "data")
    assert sorted((e, d["status"]) for e, d in lines) == sorted(
        [(results[0].obj.pk, "skipped"), (results[1].obj.pk, "done")])


def _comments(entity_id: int) -> int:
    return TimelineEntry.objects.filter(entity_id=entity_id, kind="comment").count()


def test_a_refused_run_in_a_batch_fails_alone_and_the_others_apply_once(admin, robot):
    """The batch without savepoints is rolled back when a run is refused and run again with a savepoint per
    run: the refused run fails with its message, every other run is done and applied exactly once."""
    from voronka.core.models import OutboxEvent

    robot("comment", {"text": "{inquiry}"})  # an empty inquiry renders an empty comment: the action refuses it
    results = create_leads(admin, [{"title": f"L{i}", "inquiry": "" if i == 3 else f"asked {i}"} for i in range(6)])
    sweep()
    events_before = OutboxEvent.objects.filter(name="lead.commented").count()
    assert scheduler.tick() == 6  # one batch
    runs = {r.entity_id: r for r in Run.objects.all()}
    bad = results[3].obj.pk
    assert runs[bad].status == "failed" and "cannot be empty" in runs[bad].error
    for r in results:
        if r.obj.pk != bad:
            assert runs[r.obj.pk].status == "done", runs[r.obj.pk].error
            assert _comments(r.obj.pk) == 1
    assert _comments(bad) == 0
    assert OutboxEvent.objects.filter(name="lead.commented").count() == events_before + 5  # none twice, none lost
    assert TimelineEntry.objects.filter(kind="automation").count() == 6  # one completion line per run
    assert scheduler.tick() == 0  # nothing left claimed or pending


def test_an_unexpected_error_in_a_batch_is_retried_alone_and_the_others_apply_once(admin, robot, monkeypatch):
    """A run that crashes (not a refusal) rolls the batch without savepoints back; with savepoints the others
    complete once and the crashed run goes back to pending with its error, to be retried with backoff."""
    from voronka.automation import effects

    robot("set_fields", {"fields": {"inquiry": "checked {title}"}})
    results = create_leads(admin, [{"title": f"L{i}"} for i in range(5)])
    sweep()
    bad = results[2].obj.pk
    real = effects.DB["set_fields"]

    def flaky(actor, obj, params, run):
        if obj.pk == bad:
            raise RuntimeError("the disk is on fire")
        return real[1](actor, obj, params, run)

    monkeypatch.setitem(effects.DB, "set_fields", (real[0], flaky))
    assert scheduler.tick() == 5
    runs = {r.entity_id: r for r in Run.objects.all()}
    assert runs[bad].status == "pending" and "the disk is on fire" in runs[bad].error
    assert Lead.objects.get(pk=bad).inquiry == ""
    for r in results:
        if r.obj.pk != bad:
            assert runs[r.obj.pk].status == "done"
            assert Lead.objects.get(pk=r.obj.pk).inquiry == f"checked {r.obj.title}"
            assert TimelineEntry.objects.filter(entity_id=r.obj.pk, kind="automation").count() == 1
    monkeypatch.setitem(effects.DB, "set_fields", real)
    Run.objects.filter(pk=runs[bad].pk).update(scheduled_at=runs[bad].created_at)  # due again now
    assert scheduler.tick() == 1
    assert Run.objects.get(pk=runs[bad].pk).status == "done"
    assert Lead.objects.get(pk=bad).inquiry == f"checked {results[2].obj.title}"
    assert set(Run.objects.values_list("status", flat=True)) == {"done"}


def test_the_batch_size_is_a_setting(admin, robot, settings):
    settings.VORONKA_AUTOMATION_BATCH_SIZE = 3
    robot("comment", {"text": "Seen {title}"})
    create_leads(admin, [{"title": f"L{i}"} for i in range(5)])
    sweep()
    assert [scheduler.tick(), scheduler.tick(), scheduler.tick()] == [3, 2, 0]
    assert set(Run.objects.values_list("status", flat=True)) == {"done"}
