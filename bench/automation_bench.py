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
from django.db.models import Exists, OuterRef  # noqa: E402
from django.utils import timezone  # noqa: E402

CHUNK = 5000
FILL_CHUNK = 50000  # rows per INSERT … SELECT of the fill (one transaction each)

# The robots of the run mix: one stage of the bench pipeline per action kind, its robot's parameters.
KINDS = {
    "comment": {"text": "Seen {title}"},
    "task": {"title": "Call {title}", "deadline": {"amount": 1, "unit": "hours"}},
    "notify": {"text": "Look at {title}"},
    "set_fields": {"fields": {"inquiry": "Checked {title}"}},
}
ACTION = {"comment": "comment", "task": "create_task", "notify": "notify", "set_fields": "set_fields"}
STAGE = {"comment": "work", "task": "task", "notify": "notify", "set_fields": "set_fields"}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))] if values else float("nan")


def parse_mix(spec: str) -> dict[str, float]:
    """``comment=40,task=20,notify=20,set_fields=20`` (shares, any scale; a kind without ``=`` counts 1)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, share = part.partition("=")
        if name not in KINDS:
            raise SystemExit(f"--mix: unknown kind {name!r} (known: {', '.join(KINDS)})")
        try:
            mix[name] = float(share) if share else 1.0
        except ValueError:
            raise SystemExit(f"--mix: the share of {name!r} is not a number: {share!r}") from None
        if mix[name] <= 0:
            raise SystemExit(f"--mix: the share of {name!r} must be positive")
    return mix


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
            {"name": "Open", "code": "open"}, {"name": "Work", "code": "work"},
            {"name": "Task", "code": "task"}, {"name": "Notify", "code": "notify"},
            {"name": "Set fields", "code": "set_fields"}, {"name": "Done", "code": "done"},
            {"name": "Won", "code": "won", "semantics": "success"}])
        stages = {s.code: s for s in pipeline.stages.all()}
        for kind, params in KINDS.items():
            create_robot(actor, stage=stages[STAGE[kind]].pk, name=f"Bench {kind}", action=ACTION[kind],
                         params=params)
        set_stage_limit(actor, stages["open"].pk, amount=3, unit="hours", steps=[{"notify": ["responsible"]}])
    stages = {s.code: s for s in pipeline.stages.all()}
    return {"admin": admin, "actor": actor, "pipeline": pipeline, "stages": stages}


def open_count(ctx: dict) -> int:
    from voronka.leads.models import Lead

    return Lead.objects.filter(stage=ctx["stages"]["open"]).count()


def fill_items(ctx: dict, target: int, progress: bool = False) -> int:
    """Open leads in «Open» until there are ``target`` (no events, no timers planned). One lead is made by the
    ORM as a template; the rest are copied from it by ``INSERT … SELECT`` over a number series, ``FILL_CHUNK``
    rows per statement and transaction: a million rows take minutes, not an hour."""
    from voronka.leads.models import Lead

    have = open_count(ctx)
    if have >= target:
        return have
    now = timezone.now()
    template = Lead.objects.bulk_create([Lead(title="Bench template", pipeline=ctx["pipeline"],
                                              stage=ctx["stages"]["open"], stage_semantics="process",
                                              stage_changed_at=now, responsible=ctx["admin"])])[0]
    have += 1
    table = connection.ops.quote_name(Lead._meta.db_table)
    columns = [f.column for f in Lead._meta.concrete_fields if not f.primary_key]
    select = ", ".join("'Bench ' || g.n" if c == "title" else f"t.{connection.ops.quote_name(c)}" for c in columns)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    while have < target:
        n = min(FILL_CHUNK, target - have)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"INSERT INTO {table} ({names}) SELECT {select} FROM {table} t, "
                               f"generate_series(%s, %s) AS g(n) WHERE t.id = %s", [have, have + n - 1, template.pk])
            else:
                cursor.execute(f"WITH RECURSIVE g(n) AS (SELECT %s UNION ALL SELECT n + 1 FROM g WHERE n < %s) "
                               f"INSERT INTO {table} ({names}) SELECT {select} FROM {table} t, g WHERE t.id = %s",
                               [have, have + n - 1, template.pk])
        have += n
        if progress:
            print(f"  open items: {have}", file=sys.stderr, flush=True)
    return have


def pending_timers(ctx: dict) -> int:
    from voronka.automation.models import Timer

    return Timer.objects.filter(status=Timer.Status.PENDING, due_at__gt=timezone.now()).count()


def fill_timers(ctx: dict, count: int, due: datetime.datetime) -> int:
    """``count`` pending timers of the «Open» limit, due at ``due``, on leads in «Open» without one (the lowest
    ids first: the throughput takes the highest). One ``INSERT … SELECT`` per ``FILL_CHUNK``."""
    from voronka.automation.models import StageLimit, Timer
    from voronka.leads.models import Lead

    limit = StageLimit.objects.get(stage=ctx["stages"]["open"])
    timers = connection.ops.quote_name(Timer._meta.db_table)
    leads = connection.ops.quote_name(Lead._meta.db_table)
    made = 0
    while made < count:
        n = min(FILL_CHUNK, count - made)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {timers} (limit_id, entity_type_id, entity_id, stage_id, step, entered_at, due_at, "
                f"status) SELECT %s, 1, l.id, l.stage_id, 0, l.stage_changed_at, %s, 'pending' FROM {leads} l "
                f"WHERE l.stage_id = %s AND NOT EXISTS (SELECT 1 FROM {timers} x WHERE x.entity_type_id = 1 "
                f"AND x.entity_id = l.id AND x.stage_id = l.stage_id AND x.step = 0) ORDER BY l.id LIMIT %s",
                [limit.pk, due, limit.stage_id, n])
            got = cursor.rowcount
        made += got
        if got < n:
            break  # no lead left without a timer
    return made


def untimed_open_ids(ctx: dict, count: int) -> list[int]:
    """The newest leads in «Open» without a pending timer (those the throughput and the latency move)."""
    from voronka.automation.models import Timer
    from voronka.leads.models import Lead

    timed = Timer.objects.filter(entity_type_id=1, entity_id=OuterRef("pk"), stage_id=OuterRef("stage_id"))
    return list(Lead.objects.filter(stage=ctx["stages"]["open"]).exclude(Exists(timed))
                .order_by("-id").values_list("id", flat=True)[:count])


def drain() -> int:
    """Run whatever is due (e.g. the escalations of fired timers) so the throughput times only its own runs."""
    from voronka.automation import scheduler

    n = 0
    while True:
        done = scheduler.tick()
        if not done:
            return n
        n += done


def plan_runs(ctx: dict, kinds: list[str], stamp: str) -> int:
    """One due run per entry of ``kinds`` (in that order: a mix is interleaved), each on a lead moved from
    «Open» to that kind's stage directly (no events)."""
    from voronka.automation.models import Robot, Run
    from voronka.leads.models import Lead

    robots = {k: Robot.objects.get(stage=ctx["stages"][STAGE[k]]) for k in set(kinds)}
    now = timezone.now()
    ids = untimed_open_ids(ctx, len(kinds))
    if len(ids) < len(kinds):
        raise SystemExit(f"only {len(ids)} open items without a timer are left for {len(kinds)} runs: "
                         "raise --open or lower --timers")
    by_kind: dict[str, list[int]] = {}
    for pk, k in zip(ids, kinds, strict=True):
        by_kind.setdefault(k, []).append(pk)
    for k, pks in by_kind.items():
        for i in range(0, len(pks), CHUNK):
            Lead.objects.filter(pk__in=pks[i:i + CHUNK]).update(stage=ctx["stages"][STAGE[k]], stage_changed_at=now)
    runs = []
    for pk, k in zip(ids, kinds, strict=True):
        robot = robots[k]
        runs.append(Run(key=f"{stamp}:{pk}", robot=robot, rule=f"robot:{robot.pk}", action=robot.action,
                        entity_type_id=1, entity_id=pk, depth=1, scheduled_at=now,
                        inputs={"event_at": now.isoformat(), "stage": robot.stage_id}))
    Run.objects.bulk_create(runs, batch_size=CHUNK)
    return len(runs)


def throughput(ctx: dict, kinds: list[str], label: str) -> dict:
    """Due runs of ``kinds`` (zero-delay robots) executed by ticks of one in-process worker until none is left:
    wall time, and the CPU of this process (the worker's part; the database's is not in it)."""
    import collections

    from voronka.automation import scheduler
    from voronka.automation.models import Run

    drain()
    stamp = f"bench:{label}:{time.time_ns()}"
    planned = plan_runs(ctx, kinds, stamp)
    start, cpu = time.perf_counter(), time.process_time()
    ticks = 0
    while scheduler.tick():
        ticks += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    statuses = collections.Counter(Run.objects.filter(key__startswith=f"{stamp}:").values_list("status", flat=True))
    done = statuses.get("done", 0)
    return {"kind": label, "runs": planned, "done": done, "statuses": dict(statuses), "seconds": round(elapsed, 3),
            "runs_per_s": round(done / elapsed, 1), "cpu_ms_per_run": round(cpu * 1000 / max(planned, 1), 2),
            "ticks": ticks}


def mixed(mix: dict[str, float], runs: int) -> list[str]:
    """``runs`` kinds in the shares of ``mix``, interleaved (largest remainder, then round robin by deficit)."""
    total = sum(mix.values())
    counts = {k: int(runs * s / total) for k, s in mix.items()}
    for k in sorted(mix, key=lambda k: -(runs * mix[k] / total - counts[k]))[:runs - sum(counts.values())]:
        counts[k] += 1
    out, given = [], dict.fromkeys(mix, 0)
    for i in range(runs):
        k = max(counts, key=lambda k: counts[k] * (i + 1) / runs - given[k])
        given[k] += 1
        out.append(k)
    return out


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


def check_plan() -> dict:
    """How the idle limit check reads the database, which load does not change: on PostgreSQL the pages the
    «any timer due?» query touches and its execution time inside the server (``EXPLAIN (ANALYZE, BUFFERS)``);
    on SQLite the plan's index. Flat means the same few pages at 10k and at 1M items."""
    from voronka.automation.models import Timer

    qs = Timer.objects.filter(status=Timer.Status.PENDING, due_at__lte=timezone.now()).values("id")[:1]
    if connection.vendor == "postgresql":
        plan = json.loads(qs.explain(format="json", analyze=True, buffers=True))[0]
        top = plan["Plan"]
        pages = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)

        def nodes(node):
            yield node
            for child in node.get("Plans", []):
                yield from nodes(child)
        index = next((n.get("Index Name") for n in nodes(top) if n.get("Index Name")), None)
        return {"pages": pages, "server_ms": plan.get("Execution Time"), "index": index}
    return {"plan": qs.explain()}


def fire_cost(ctx: dict, due: int) -> float:
    """Milliseconds per due timer fired (in batches of 50, each timer plans one escalation run)."""
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


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def fill(ctx: dict, args, items: int, timers: int) -> dict:
    """Top up the open items to ``items`` and the pending timers (due in a year) to ``timers``."""
    t = time.perf_counter()
    before = (open_count(ctx), pending_timers(ctx))
    fill_items(ctx, items, progress=args.progress)
    made = fill_timers(ctx, max(0, timers - before[1]), timezone.now() + datetime.timedelta(days=365))
    after = (open_count(ctx), pending_timers(ctx))
    if after != before:
        analyze()  # the planner (PostgreSQL) and SQLite's statistics see the new sizes
    return {"seconds": round(time.perf_counter() - t, 1), "items_before": before[0], "items": after[0],
            "timers_before": before[1], "timers": after[1], "timers_made": made}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=10000, help="open items (default 10 000)")
    parser.add_argument("--open-large", type=int, default=None, help="grow to this many for the flatness check "
                        "(default 10 × --open; with --reuse none: compare with --baseline instead)")
    parser.add_argument("--timers", type=int, default=1000, help="pending timers, due in a year (default 1 000)")
    parser.add_argument("--runs", type=int, default=500, help="runs for each throughput (default 500)")
    parser.add_argument("--mix", default="", help="also a run mix, e.g. comment=40,task=20,notify=20,set_fields=20: "
                        "each kind alone (--runs each), then --runs interleaved in these shares")
    parser.add_argument("--due", type=int, default=200, help="due timers fired for the firing cost (default 200)")
    parser.add_argument("--latency", type=int, default=20, help="latency samples (default 20; 0 skips)")
    parser.add_argument("--interval", type=float, default=0.5, help="the worker's sweep interval (default 0.5 s)")
    parser.add_argument("--reuse", action="store_true", help="keep the database between runs: only top up what "
                        "the earlier runs used (open items, pending timers); without it the same happens, but the "
                        "default is a 10× growth for the flatness check, which a kept database cannot undo")
    parser.add_argument("--fill-only", action="store_true", help="fill (or top up) and stop")
    parser.add_argument("--progress", action="store_true", help="print the fill's progress on stderr")
    parser.add_argument("--baseline", help="the --json of a run at a small size: print its limit check and "
                        "timer firing next to this run's")
    parser.add_argument("--json")
    args = parser.parse_args()
    mix = parse_mix(args.mix) if args.mix else {}
    large = args.open_large if args.open_large is not None else (0 if args.reuse else args.open * 10)
    os.environ.setdefault("VORONKA_OUTBOX_DISPATCH_ON_COMMIT", "0")
    ctx = setup()
    consumed = args.runs * (1 + len(mix) + (1 if mix else 0)) + args.latency + args.due * 2
    result: dict = {"database": connection.vendor, "open": args.open, "timers": args.timers}
    result["fill"] = fill(ctx, args, args.open + consumed, args.timers)
    print(f"fill: {result['fill']}", flush=True)
    if args.fill_only:
        return 0
    result["items_measured"] = open_count(ctx)
    result["tick_ms_small"] = tick_cost()
    result["check_plan_small"] = check_plan()
    result["fire_ms_per_timer_small"] = fire_cost(ctx, args.due)
    result["throughput"] = throughput(ctx, ["comment"] * args.runs, "comment")
    result["kinds"] = {}
    for kind in mix:
        result["kinds"][kind] = throughput(ctx, [kind] * args.runs, kind) if kind != "comment" \
            else result["throughput"]
    if mix:
        result["mix"] = throughput(ctx, mixed(mix, args.runs), "mix")
        result["mix"]["shares"] = mix
    if args.latency:
        result["latency"] = latency(ctx, args.latency, args.interval)
    if large > args.open:
        result["fill_large"] = fill(ctx, args, large + args.due * 2, args.timers)
        result["open_large"] = open_count(ctx)
        result["tick_ms_large"] = tick_cost()
        result["check_plan_large"] = check_plan()
        result["fire_ms_per_timer_large"] = fire_cost(ctx, args.due)
    report(result, args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def report(result: dict, args) -> None:
    items = result["items_measured"]
    print(f"database: {result['database']}   open items: {items}   pending timers: {result['fill']['timers']}")
    rows = [result["throughput"]] + [r for k, r in result["kinds"].items() if k != "comment"]
    if "mix" in result:
        rows.append(result["mix"])
    for th in rows:
        print(f"throughput {th['kind']:10}: {th['done']}/{th['runs']} runs in {th['seconds']} s = "
              f"{th['runs_per_s']} runs/s per worker (CPU {th['cpu_ms_per_run']} ms/run)"
              + ("" if th["done"] == th["runs"] else f"  statuses {th['statuses']}"))
    if "mix" in result:
        print("mix shares: " + ", ".join(f"{k} {v:g}" for k, v in result["mix"]["shares"].items()))
    if args.latency:
        lat = result["latency"]
        print(f"latency stage change → robot effect (worker --interval {lat['interval_s']}): p50 {lat['p50_ms']} ms, "
              f"p95 {lat['p95_ms']} ms ({lat['samples']} samples, {lat['lost']} lost)")
    sizes = [(items, result["tick_ms_small"], result["fire_ms_per_timer_small"], result["check_plan_small"])]
    if "tick_ms_large" in result:
        sizes.append((result["open_large"], result["tick_ms_large"], result["fire_ms_per_timer_large"],
                      result["check_plan_large"]))
    if args.baseline:
        base = json.loads(Path(args.baseline).read_text())
        sizes.insert(0, (base.get("items_measured", base.get("open")), base["tick_ms_small"],
                         base["fire_ms_per_timer_small"], base.get("check_plan_small", {})))
    print("limit check, nothing due: " + ", ".join(f"{ms} ms at {n} items" for n, ms, _f, _p in sizes))
    for n, _ms, _f, plan in sizes:
        if "pages" in plan:
            print(f"  «a timer due?» at {n} items: {plan['pages']} pages, {plan['server_ms']} ms in the server, "
                  f"index {plan['index']}")
        elif plan.get("plan"):
            print(f"  «a timer due?» at {n} items: {plan['plan'].strip()}")
    print("firing a due timer: " + ", ".join(f"{ms} ms at {n} items" for n, _t, ms, _p in sizes)
          + f" ({result['fill']['timers']} pending)")


if __name__ == "__main__":
    sys.exit(main())
