"""Queries and time per automation run, per action kind (issue 5: where a run's time goes).

    VORONKA_VAR_DIR=$(mktemp -d) .venv/bin/python bench/automation_profile.py --runs 50
    scripts/with-postgres.sh .venv/bin/python bench/automation_profile.py --runs 50 --profile comment

For each robot action of the benchmark's kind (a comment, a task, set fields, a notification) it plans
``--runs`` due runs on as many leads (directly, as the benchmark does), executes them with ticks of one
in-process worker and prints the queries of the whole batch (claim, execution, completion) and per run, grouped
by statement kind and table. Query counts do not depend on the machine's load, unlike timings.
``--profile ACTION`` also prints a cProfile of the ticks for that action (top functions by cumulative time).
Point it only at a throwaway database: it migrates and fills it.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voronka.settings")
os.environ.setdefault("VORONKA_OUTBOX_DISPATCH_ON_COMMIT", "0")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

ACTIONS = {
    "comment": {"text": "Seen {title}"},
    "create_task": {"title": "Call {title}", "deadline": {"amount": 1, "unit": "hours"}},
    "set_fields": {"fields": {"inquiry": "Checked {title}"}},
    "notify": {"text": "Look at {title}"},
}


def setup():
    from voronka.automation.actions import create_robot
    from voronka.core.actor import Actor
    from voronka.identity.models import User
    from voronka.pipelines.actions import create_pipeline
    from voronka.pipelines.models import Pipeline

    call_command("migrate", verbosity=0)
    admin = User.objects.filter(username="prof-admin").first() or User.objects.create_superuser(
        "prof-admin", "prof@example.ru", "x", first_name="Prof", last_name="Admin")
    actor = Actor.for_user(admin, "bench")
    pipeline = Pipeline.objects.filter(entity_type_id=1, code="prof").first()
    if pipeline is None:
        pipeline = create_pipeline(actor, entity_type_id=1, name="Prof", code="prof", stages=[
            {"name": "Open", "code": "open"}] + [{"name": a, "code": a} for a in ACTIONS] + [
            {"name": "Won", "code": "won", "semantics": "success"}])
        stages = {s.code: s for s in pipeline.stages.all()}
        for action, params in ACTIONS.items():
            create_robot(actor, stage=stages[action].pk, name=f"Prof {action}", action=action, params=params)
    return admin, pipeline, {s.code: s for s in pipeline.stages.all()}


def plan(admin, pipeline, stage, runs: int) -> str:
    from voronka.automation.models import Robot, Run
    from voronka.leads.models import Lead

    robot = Robot.objects.get(stage=stage)
    now = timezone.now()
    leads = Lead.objects.bulk_create([Lead(title=f"Prof {i}", pipeline=pipeline, stage=stage, stage_semantics="process",
                                           stage_changed_at=now, responsible=admin) for i in range(runs)])
    stamp = f"prof:{time.time_ns()}"
    Run.objects.bulk_create([Run(key=f"{stamp}:{lead.pk}", robot=robot, rule=f"robot:{robot.pk}", action=robot.action,
                                 entity_type_id=1, entity_id=lead.pk, depth=1, scheduled_at=now,
                                 inputs={"event_at": now.isoformat(), "stage": robot.stage_id}) for lead in leads])
    return stamp


def kind(sql: str) -> str:
    sql = sql.strip()
    verb = sql.split(None, 1)[0].upper() if sql else "?"
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"):
        return verb
    match = re.search(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_0-9]+)"?', sql, re.I)
    return f"{verb} {match.group(1) if match else '?'}"


def measure(action: str, runs: int, profile: bool, ctx) -> dict:
    from voronka.automation import scheduler
    from voronka.automation.models import Run

    admin, pipeline, stages = ctx
    stamp = plan(admin, pipeline, stages[action], runs)
    profiler = cProfile.Profile() if profile else None
    start, cpu = time.perf_counter(), time.process_time()
    with CaptureQueriesContext(connection) as queries:
        if profiler:
            profiler.enable()
        while scheduler.tick():
            pass
        if profiler:
            profiler.disable()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    statuses = collections.Counter(Run.objects.filter(key__startswith=stamp).values_list("status", flat=True))
    by_kind = collections.Counter(kind(q["sql"]) for q in queries.captured_queries)
    result = {"action": action, "runs": runs, "statuses": dict(statuses), "queries": len(queries),
              "per_run": round(len(queries) / runs, 2), "seconds": round(elapsed, 3),
              "runs_per_s": round(runs / elapsed, 1), "cpu_ms_per_run": round(cpu * 1000 / runs, 2),
              "by_kind": by_kind}
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        result["profile"] = out.getvalue()
    return result


def loop_cost(samples: int = 50) -> dict:
    """What a tick costs when nothing is due: the worker pays it once per batch (it does not sleep while a tick
    finds work), so it bounds the throughput only through the batch size."""
    import statistics

    from voronka.automation import scheduler

    times = []
    with CaptureQueriesContext(connection) as queries:
        for _ in range(samples):
            start = time.perf_counter()
            assert scheduler.tick() == 0
            times.append((time.perf_counter() - start) * 1000)
    return {"ms": round(statistics.median(times), 2), "queries": round(len(queries) / samples, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="runs per action (default 50: one tick's batch)")
    parser.add_argument("--actions", default=",".join(ACTIONS), help="comma-separated actions")
    parser.add_argument("--profile", default="", help="an action to cProfile")
    parser.add_argument("--detail", action="store_true", help="print the queries by kind")
    args = parser.parse_args()
    ctx = setup()
    measure("comment", 10, False, ctx)  # warm the caches (compiled statements, settings)
    print(f"database: {connection.vendor}")
    idle = loop_cost()
    print(f"the worker's loop between batches (a tick with nothing due: timers, overdue tasks, claim): "
          f"{idle['ms']} ms, {idle['queries']} queries")
    for action in args.actions.split(","):
        r = measure(action, args.runs, action == args.profile, ctx)
        print(f"{action:12} runs {r['runs']:4}  {r['statuses']}  queries {r['queries']:5}  per run {r['per_run']:6}"
              f"  {r['seconds']} s = {r['runs_per_s']} runs/s  cpu {r['cpu_ms_per_run']} ms/run")
        if args.detail:
            for k, n in sorted(r["by_kind"].items(), key=lambda x: -x[1]):
                print(f"    {n:5}  {k}")
        if r.get("profile"):
            print(r["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
