"""The automation engine at scale (issue 5, «Benchmark»): throughput, latency and the cost of time limits.

    # SQLite, a throwaway database (the script migrates it and fills it: never point it at real data)
    VORONKA_VAR_DIR=$(mktemp -d) .venv/bin/python bench/automation_bench.py --open 10000 --timers 1000 --runs 500
    # PostgreSQL, a throwaway cluster
    scripts/with-postgres.sh .venv/bin/python bench/automation_bench.py --open 1000000 --timers 100000 --runs 5000

What it measures, each with one in-process worker (``scheduler.tick()``), except the latency (a real worker):

1. **runs/s per worker**: ``--runs`` due runs of a zero-delay «comment» robot (a database effect: a timeline
   entry, the run's completion and its timeline line in one transaction), with ``--open`` open items and
   ``--timers`` pending stage-limit timers in the database; wall time of ticks until none is left;
2. **latency** (p50, p95) from a committed stage change to the robot's effect (the comment exists), with an
   idle real ``voronka worker --interval`` subprocess, ``--latency`` samples (its sweep interval is the floor);
3. **the cost of time-limit checking**: one tick of the timer scheduler when nothing is due, and firing
   ``--due`` due timers, at ``--open`` open items and again after growing to ``--open-large``; «flat» means
   the two sizes cost the same (the check is an indexed range over due timers, never a scan of items).

Prints a table and, with ``--json``, writes the figures. Sizes are parameters: try small on a busy machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voronka.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

CHUNK = 5000


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))] if values else float("nan")


def setup() -> dict:
    from voronka.automation.actions import create_robot, set_stage_limit
    from voronka.core.actor import Actor
    from voronka.identity.models import User
    from voronka.pipelines.actions import create_pipeline

    call_command("migrate", verbosity=0)
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.ru", "x", first_name="Bench", last_name="Admin")
    actor = Actor.for_user(admin, "bench")
    from voronka.pipelines.models import Pipeline

    pipeline = Pipeline.objects.filter(entity_type_id=1, code="bench").first()
    if pipeline is None:
        pipeline = create_pipeline(actor, entity_type_id=1, name="Bench", code="bench", stages=[
            {"name": "Open", "code": "open"}, {"name": "Work", "code": "work"}, {"name": "Done", "code": "done"},
            {"name": "Won", "code": "won", "semantics": "success"}])
        stages = {s.code: s for s in pipeline.stages.all()}
        create_robot(actor, stage=stages["work"].pk, name="Bench comment", action="comment",
                     params={"text": "Seen {title}"})
        set_stage_limit(actor, stages["open"].pk, amount=3, unit="hours", steps=[{"notify": ["responsible"]}])
    stages = {s.code: s for s in pipeline.stages.all()}
    return {"admin": admin, "actor": actor, "pipeline": pipeline, "stages": stages}


def fill_items(ctx: dict, target: int) -> int:
    """Open leads in «Open» until there are ``target`` (bulk inserts: no events, no timers planned)."""
    from voronka.leads.models import Lead

    have = Lead.objects.filter(pipeline=ctx["pipeline"]).count()
    now = timezone.now()
    stage = ctx["stages"]["open"]
    while have < target:
        n = min(CHUNK, target - have)
        Lead.objects.bulk_create([Lead(title=f"Bench {have + i}", pipeline=ctx["pipeline"], stage=stage,
                                       stage_semantics="process", stage_changed_at=now, responsible=ctx["admin"])
                                  for i in range(n)], batch_size=CHUNK)
        have += n
    return have


def fill_timers(ctx: dict, count: int, due: datetime.datetime) -> None:
    """``count`` pending timers of the «Open» limit, due at ``due``, on existing leads without one."""
    from voronka.automation.models import StageLimit, Timer
    from voronka.leads.models import Lead

    limit = StageLimit.objects.get(stage=ctx["stages"]["open"])
    taken = Timer.objects.values_list("entity_id", flat=True)
    ids = list(Lead.objects.filter(pipeline=ctx["pipeline"], stage=ctx["stages"]["open"]).exclude(pk__in=taken)
               .values_list("id", "stage_changed_at")[:count])
    for i in range(0, len(ids), CHUNK):
        Timer.objects.bulk_create([Timer(limit=limit, entity_type_id=1, entity_id=pk, stage_id=limit.stage_id, step=0,
                                         entered_at=entered, due_at=due) for pk, entered in ids[i:i + CHUNK]])


def throughput(ctx: dict, runs: int) -> dict:
    """``runs`` due runs of the zero-delay comment robot on as many leads moved to «Work» (directly)."""
    from voronka.automation import scheduler
    from voronka.automation.models import Robot, Run
    from voronka.leads.models import Lead

    robot = Robot.objects.get(stage=ctx["stages"]["work"])
    now = timezone.now()
    ids = list(Lead.objects.filter(pipeline=ctx["pipeline"], stage=ctx["stages"]["open"])
               .order_by("-id").values_list("id", flat=True)[:runs])
    Lead.objects.filter(pk__in=ids).update(stage=ctx["stages"]["work"], stage_changed_at=now)
    stamp = time.time_ns()
    Run.objects.bulk_create([Run(key=f"bench:{stamp}:{pk}", robot=robot, rule=f"robot:{robot.pk}", action="comment",
                                 entity_type_id=1, entity_id=pk, depth=1, scheduled_at=now,
                                 inputs={"event_at": now.isoformat(), "stage": robot.stage_id}) for pk in ids],
                            batch_size=CHUNK)
    start = time.perf_counter()
    ticks = 0
    while scheduler.tick():
        ticks += 1
    elapsed = time.perf_counter() - start
    done = Run.objects.filter(key__startswith=f"bench:{stamp}:", status="done").count()
    return {"runs": len(ids), "done": done, "seconds": round(elapsed, 3), "runs_per_s": round(done / elapsed, 1),
            "ticks": ticks}


def tick_cost(samples: int = 200) -> float:
    """Milliseconds of the timer part of a tick when nothing is due (the price of «checking the limits»)."""
    from voronka.automation import overdue, scheduler

    times = []
    for _ in range(samples):
        start = time.perf_counter()
        now = timezone.now()
        scheduler.fire_timers(now)
        overdue.fire_due(now)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def fire_cost(ctx: dict, due: int) -> float:
    """Milliseconds per due timer fired (each fires in its own transaction and plans one escalation run)."""
    from voronka.automation import scheduler

    fill_timers(ctx, due, timezone.now() - datetime.timedelta(seconds=1))
    start = time.perf_counter()
    fired = 0
    while True:
        n = scheduler.fire_timers(timezone.now())
        fired += n
        if not n:
            break
    return round((time.perf_counter() - start) * 1000 / max(fired, 1), 3)


def latency(ctx: dict, samples: int, interval: float) -> dict:
    """A real idle worker; each sample moves one lead to «Work» (a committed action) and waits for the comment."""
    from voronka.core.management.commands.worker import drain
    from voronka.core.models import TimelineEntry
    from voronka.leads.actions import move_lead
    from voronka.leads.models import Lead

    drain()  # the events of the earlier steps are delivered here: the worker starts idle
    env = dict(os.environ)
    worker = subprocess.Popen([sys.executable, "-m", "django", "worker", "--no-tasks", "--interval", str(interval)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(max(2.0, interval * 4))  # the worker starts and drains what is left
        ids = list(Lead.objects.filter(pipeline=ctx["pipeline"], stage=ctx["stages"]["open"])
                   .order_by("id").values_list("id", flat=True)[:samples])
        found = []
        for pk in ids:
            start = time.perf_counter()
            with transaction.atomic():
                move_lead(ctx["actor"], pk, stage="work")
            deadline = start + 30
            while time.perf_counter() < deadline:
                if TimelineEntry.objects.filter(entity_type_id=1, entity_id=pk, kind="comment").exists():
                    found.append((time.perf_counter() - start) * 1000)
                    break
                time.sleep(0.005)
            time.sleep(interval * 0.37)  # desynchronise from the worker's sweep
    finally:
        worker.terminate()
        worker.wait(30)
    return {"samples": len(found), "lost": len(ids) - len(found), "p50_ms": round(pct(found, 0.5), 1),
            "p95_ms": round(pct(found, 0.95), 1), "interval_s": interval}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=10000, help="open items (default 10 000)")
    parser.add_argument("--open-large", type=int, default=0, help="grow to this many for the flatness check "
                        "(default 10 × --open)")
    parser.add_argument("--timers", type=int, default=1000, help="pending timers, due in a year (default 1 000)")
    parser.add_argument("--runs", type=int, default=500, help="runs for the throughput (default 500)")
    parser.add_argument("--due", type=int, default=200, help="due timers fired for the firing cost (default 200)")
    parser.add_argument("--latency", type=int, default=20, help="latency samples (default 20; 0 skips)")
    parser.add_argument("--interval", type=float, default=0.5, help="the worker's sweep interval (default 0.5 s)")
    parser.add_argument("--json")
    args = parser.parse_args()
    large = args.open_large or args.open * 10
    os.environ.setdefault("VORONKA_OUTBOX_DISPATCH_ON_COMMIT", "0")
    ctx = setup()
    result: dict = {"database": connection.vendor, "open": args.open, "timers": args.timers}
    t = time.perf_counter()
    fill_items(ctx, args.open + args.runs + args.latency + args.due)
    fill_timers(ctx, args.timers, timezone.now() + datetime.timedelta(days=365))
    result["fill_s"] = round(time.perf_counter() - t, 1)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    result["tick_ms_small"] = tick_cost()
    result["fire_ms_per_timer_small"] = fire_cost(ctx, args.due)
    result["throughput"] = throughput(ctx, args.runs)
    if args.latency:
        result["latency"] = latency(ctx, args.latency, args.interval)
    t = time.perf_counter()
    fill_items(ctx, large + args.runs + args.latency + args.due * 2)
    fill_timers(ctx, args.due, timezone.now() + datetime.timedelta(days=365))
    result["fill_large_s"] = round(time.perf_counter() - t, 1)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    result["open_large"] = large
    result["tick_ms_large"] = tick_cost()
    result["fire_ms_per_timer_large"] = fire_cost(ctx, args.due)
    print(f"database: {result['database']}   open items: {args.open} → {large}   pending timers: {args.timers}")
    th = result["throughput"]
    print(f"throughput: {th['done']}/{th['runs']} runs in {th['seconds']} s = {th['runs_per_s']} runs/s per worker")
    if args.latency:
        lat = result["latency"]
        print(f"latency stage change → robot effect (worker --interval {lat['interval_s']}): p50 {lat['p50_ms']} ms, "
              f"p95 {lat['p95_ms']} ms ({lat['samples']} samples, {lat['lost']} lost)")
    print(f"limit check, nothing due: {result['tick_ms_small']} ms at {args.open} items, "
          f"{result['tick_ms_large']} ms at {large}")
    print(f"firing a due timer: {result['fire_ms_per_timer_small']} ms at {args.open} items, "
          f"{result['fire_ms_per_timer_large']} ms at {large}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
