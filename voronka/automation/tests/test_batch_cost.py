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


def _batch_queries(admin, count: int, start: int = 0) -> int:
    """Queries of one tick that executes ``count`` due runs (planned beforehand by the outbox sweep)."""
    results = create_leads(admin, [{"title": f"L{start + i}"} for i in range(count)])
    assert all(r.ok for r in results)
    sweep()  # the events become pending runs
    assert Run.objects.filter(status="pending").count() == count
    with CaptureQueriesContext(connection) as queries:
        assert scheduler.tick() == count
    assert Run.objects.filter(status="done").count() == start + count
    return len(queries)


# (action, params, the queries a run of it may cost: its own writes and the savepoints around it)
PER_RUN = [
    ("comment", {"text": "Seen {title}"}, 6),  # savepoints (run, action) ×2, timeline entry, event
    ("create_task", {"title": "Call {title}"}, 8),  # + the task, its responsible checked by the task's validation
    ("notify", {"text": "Look at {title}"}, 7),  # + the recipients read by notify
]


@pytest.mark.parametrize(("action", "params", "per_run"), PER_RUN, ids=[a for a, _p, _n in PER_RUN])
def test_a_batch_costs_a_fixed_overhead_plus_the_actions_own_queries(admin, robot, action, params, per_run):
    robot(action, params)
    small = _batch_queries(admin, 5)
    large = _batch_queries(admin, 25, start=5)
    assert (large - small) / 20 <= per_run, (small, large)  # nothing per run beyond the action's own work
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
