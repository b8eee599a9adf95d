"""One ``POST /api/v1/leads`` in process (no HTTP server): statements, CPU time against the bare baseline
view, and a cProfile of the creates (issue 2: where a single create's time goes).

    .venv/bin/python bench/write_profile.py                        # SQLite in a temporary var directory
    .venv/bin/python bench/write_profile.py --queries --profile 40
    scripts/with-postgres.sh .venv/bin/python bench/write_profile.py --queries
    .venv/bin/python bench/write_profile.py --as manager           # a sales manager's token, not a superuser's

Times are CPU time of this process (``time.process_time``), baseline and create interleaved in rounds, so
other load on the machine changes them little; the database server's own time on PostgreSQL is not in them
(the SQL column shows the wall time spent in the driver). Statement counts do not depend on load at all.
Point it only at a throwaway database: it migrates and fills it.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import io
import json
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sampling import code_name, on_stack, print_counters, run_sampled  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", default="", help="var directory (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of baseline + create blocks")
    parser.add_argument("--n", type=int, default=300, help="requests per block")
    parser.add_argument("--leads", type=int, default=10, help="leads generated before measuring")
    parser.add_argument("--as", dest="who", choices=("admin", "manager"), default="admin",
                        help="whose token: a superuser's (as bench/run.py) or a sales manager's")
    parser.add_argument("--body", default="phone", choices=("phone", "title", "full"),
                        help="what a create sends: title + phone (as bench/run.py), title only, or more fields")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up")
    parser.add_argument("--queries", action="store_true", help="print the statements of one create")
    parser.add_argument("--profile", type=int, default=0, help="print this many cProfile lines (cumulative)")
    parser.add_argument("--tottime", type=int, default=0, help="print this many cProfile lines (own time)")
    parser.add_argument("--layers", action="store_true",
                        help="CPU time per layer of a create: middleware, Ninja, token check, validation, writes, answer")
    parser.add_argument("--calls", action="store_true",
                        help="Python function calls per request (cProfile's count: does not depend on load)")
    parser.add_argument("--dump", default="", help="write the cProfile data to this file (pstats format)")
    parser.add_argument("--sample", type=int, default=0,
                        help="a statistical profile (CPU-time timer, no per-call overhead): print this many functions "
                             "by inclusive and by own time, in µs per create")
    parser.add_argument("--lock", action="store_true",
                        help="SQLite: how long a create holds the write lock (BEGIN IMMEDIATE to COMMIT), CPU and wall "
                             "µs per create; with --sample, also the sampled profile of what runs inside it")
    parser.add_argument("--concurrent", type=int, default=0,
                        help="instead of the rounds: this many forked processes create leads at once for --seconds "
                             "(SQLite: what the write lock's hand-over costs; creates/s, lock held and waited per create)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each --concurrent run")
    parser.add_argument("--bulk", type=int, default=0,
                        help="post POST /api/v1/leads/bulk with this many items instead of single creates (figures "
                             "per request; divide by the items for per lead)")
    opts = parser.parse_args()
    var = opts.var or tempfile.mkdtemp(prefix="vk-write-prof-")
    os.environ.update({"VORONKA_VAR_DIR": var, "VORONKA_BENCH": "1", "DJANGO_SETTINGS_MODULE": "voronka.settings"})

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from voronka.identity.models import ApiToken, Role, User

    call_command("migrate", verbosity=0)
    admin = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "b@example.com", "x")
    user = admin
    if opts.who == "manager":
        from voronka.identity.models import RoleAssignment

        user = User.objects.filter(username="bench-manager").first() or User.objects.create_user(
            "bench-manager", "m@example.com", "x", first_name="Bench", last_name="Manager")
        role = Role.objects.get(code="sales_manager")
        RoleAssignment.objects.get_or_create(role=role, user=user)
    if opts.leads:
        call_command("generate", "--leads", str(opts.leads), "--no-progress")
    _, token = ApiToken.issue(user, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    base_client = Client()
    counter = [int(time.time()) % 100000 * 1000]

    def body() -> str:
        counter[0] += 1
        n = counter[0]
        data = {"title": f"Bench {n}"}
        if opts.body in ("phone", "full"):
            data["phones"] = [f"+79{900000000 + n % 99999999:09d}"]
        if opts.body == "full":
            data.update({"first_name": "Иван", "last_name": "Петров", "emails": [f"b{n}@example.ru"],
                         "opportunity": "1500.00", "source": "web", "comment": "Нужен звонок"})
        return json.dumps(data)

    def create():
        response = client.post("/api/v1/leads", body(), content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"create answered {response.status_code}: {response.content[:500]!r}")

    if opts.bulk:
        def create():  # noqa: F811 - the bulk variant
            items = ",".join(body() for _ in range(opts.bulk))
            response = client.post("/api/v1/leads/bulk", '{"items": [' + items + "]}", content_type="application/json")
            if response.status_code != 200 or b'"ok": false' in response.content or b'"ok":false' in response.content:
                raise SystemExit(f"bulk answered {response.status_code}: {response.content[:500]!r}")

    def baseline():
        response = base_client.post("/bench/baseline/", '{"title": "x"}', content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"baseline answered {response.status_code}")

    sql_time = [0.0]
    by_statement: dict[str, float] = collections.defaultdict(float)

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - started
            sql_time[0] += spent
            by_statement[" ".join(sql.split()[:3])[:60]] += spent

    gc_time = [0.0, 0.0]

    def gc_clock(phase, info):
        if phase == "start":
            gc_time[1] = time.process_time()
        else:
            gc_time[0] += time.process_time() - gc_time[1]

    gc.callbacks.append(gc_clock)

    backend = [None]

    def server_cpu() -> float:
        """The PostgreSQL backend's CPU seconds so far (its /proc stat: same machine), 0 elsewhere."""
        if connection.vendor != "postgresql":
            return 0.0
        if backend[0] is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend[0] = cursor.fetchone()[0]
        try:
            fields = Path(f"/proc/{backend[0]}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def block(fn, n: int) -> tuple[float, float, float, float]:
        """CPU ms, wall ms, garbage collector's CPU ms and the database server's CPU ms per request."""
        gc_time[0] = 0.0
        s0 = server_cpu()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            fn()
        c1, w1 = time.process_time(), time.perf_counter()
        return (c1 - c0) / n * 1000, (w1 - w0) / n * 1000, gc_time[0] / n * 1000, (server_cpu() - s0) / n * 1000

    def sql_ms(fn, n: int) -> float:
        """Wall ms per request spent in the database driver (a separate pass: the wrapper costs CPU itself)."""
        sql_time[0] = 0.0
        with connection.execute_wrapper(timed):
            for _ in range(n):
                fn()
        return sql_time[0] / n * 1000

    for _ in range(30):  # warm up: imports, compiled statements, caches
        create()
        baseline()
    if opts.gc_freeze:
        gc.collect()
        gc.freeze()  # what a server may do after start-up: the long-lived objects leave the collector's scans

    if opts.concurrent:
        run_concurrent(create, baseline, opts.concurrent, opts.seconds, opts.rounds)
        return

    statements = {}
    for name, fn in (("baseline", baseline), ("create", create)):
        with CaptureQueriesContext(connection) as ctx:
            for _ in range(10):
                fn()
        statements[name] = (len(ctx.captured_queries) / 10, ctx.captured_queries[-len(ctx.captured_queries) // 10:])

    results = collections.defaultdict(list)
    for _ in range(opts.rounds):
        results["baseline"].append(block(baseline, opts.n))
        results["create"].append(block(create, opts.n))
    sql = {"baseline": sql_ms(baseline, opts.n), "create": sql_ms(create, opts.n)}

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    def best(name: str) -> float:
        return min(r[0] for r in results[name])

    print(f"\n{connection.vendor}, as {opts.who}, body {opts.body}, {opts.rounds} rounds × {opts.n} requests, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'request':<10} {'statements':>10} {'CPU ms':>8} {'min CPU':>8} {'wall ms':>8} {'SQL ms':>8} {'GC ms':>8}"
          f" {'server ms':>9}")
    for name in ("baseline", "create"):
        print(f"{name:<10} {statements[name][0]:>10.1f} {med(name, 0):>8.3f} {best(name):>8.3f} {med(name, 1):>8.3f} "
              f"{sql[name]:>8.3f} {med(name, 2):>8.3f} {med(name, 3):>9.3f}")
    print(f"CPU ratio baseline/create: median {med('baseline', 0) / med('create', 0):.2f}, "
          f"best {best('baseline') / best('create'):.2f} (per round: "
          + ", ".join(f"{b[0] / c[0]:.2f}" for b, c in zip(results["baseline"], results["create"], strict=True)) + ")")

    if opts.queries:
        print("\nwall ms per create in the driver, by statement (the SQL pass above):")
        for name, spent in sorted(by_statement.items(), key=lambda kv: -kv[1]):
            if spent / opts.n * 1000 >= 0.001:
                print(f"  {spent / opts.n * 1000:7.3f}  {name}")
        print("\nstatements of one create:")
        for q in statements["create"][1]:
            sql = re.sub(r"\s+", " ", q["sql"])[:200]
            print(f"  {q['time']}  {sql}")

    if opts.layers:
        print_layers(create, baseline, opts.n, opts.rounds)

    if opts.calls:
        for name, fn in (("baseline", baseline), ("create", create)):
            times = 3 if opts.bulk and name == "create" else 100
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(times):
                fn()
            profiler.disable()
            stats = pstats.Stats(profiler)
            print(f"function calls per {name}: {stats.total_calls / times:,.0f} ({stats.prim_calls / times:,.0f} primitive)")

    held = install_lock_clock() if opts.lock and connection.vendor == "sqlite" else None
    if held is not None:
        print_lock(create, held, opts.n, opts.rounds)

    if opts.bulk and opts.queries:
        print_bulk_writes(create, opts.n)

    if opts.sample:
        print_samples(create, opts.n * opts.rounds, opts.sample, held=held)

    if opts.profile or opts.tottime or opts.dump:
        profiler = cProfile.Profile(time.process_time)  # CPU time: other load changes it little
        profiler.enable()
        for _ in range(opts.n):
            create()
        profiler.disable()
        if opts.dump:
            profiler.dump_stats(opts.dump)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        if opts.tottime:
            stats.sort_stats("tottime").print_stats(opts.tottime)
        if opts.profile:
            stats.sort_stats("cumulative").print_stats(opts.profile)
        print(out.getvalue())


def print_bulk_writes(create, n: int) -> None:
    """Wall ms per bulk request in each write of the action (COPY and statements by table, the ids' reservation,
    COMMIT): on PostgreSQL most of it is the server's, which one client waits for."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    from voronka.core import fastinsert

    spent: dict[str, float] = collections.defaultdict(float)
    originals = []

    def clock(owner, attr, label):
        fn = getattr(owner, attr)
        originals.append((owner, attr, fn))

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                name = label(args) if callable(label) else label
                spent[name] += time.perf_counter() - started
        setattr(owner, attr, wrapper)

    clock(fastinsert, "_write", lambda a: f"write {a[1]} ({len(a[4])} rows)")
    clock(fastinsert, "write_rows", lambda a: f"upsert {a[1].split()[2]} ({len(a[4])} rows)")
    clock(fastinsert, "_reserve_ids", "reserve ids")
    clock(BaseDatabaseWrapper, "commit", "COMMIT")
    try:
        for _ in range(n):
            create()
    finally:
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)
    print(f"\nwall ms per bulk request in the writes ({n} requests):")
    for name, value in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {value / n * 1000:8.2f}  {name}")


def run_concurrent(create, baseline, workers: int, seconds: float, rounds: int) -> None:
    """``workers`` forked processes (each with its own connection) post creates, then baselines, for ``seconds``
    each, ``rounds`` times; prints requests/s and, on SQLite, the write lock's CPU/wall µs held and wall µs waited
    per create (its hand-over: a waiter polls, so it may start after the lock is free)."""
    import signal as _signal

    from django.db import connection

    held = None
    if connection.vendor == "sqlite":
        from voronka.core.db_sqlite import base as sqlite_base

        held = install_lock_clock()
        acquire = sqlite_base.DatabaseWrapper._acquire

        def waited_acquire(self):
            started = time.perf_counter()
            try:
                acquire(self)
            finally:
                held["waited"] = held.get("waited", 0.0) + time.perf_counter() - started
        sqlite_base.DatabaseWrapper._acquire = waited_acquire

    def one(fn, name: str) -> None:
        connection.close()
        pipes, pids = [], []
        start = time.time() + 0.5
        for _ in range(workers):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: its own connection, then requests until the deadline
                os.close(r)
                code = 0
                try:
                    if held is not None:
                        held.update(cpu=0.0, wall=0.0, times=0, waited=0.0)
                    while time.time() < start:
                        time.sleep(0.001)
                    n, c0 = 0, time.process_time()
                    end = start + seconds
                    while time.time() < end:
                        fn()
                        n += 1
                    report = {"n": n, "cpu": time.process_time() - c0}
                    if held is not None:
                        report.update(held_cpu=held["cpu"], held_wall=held["wall"], waited=held.get("waited", 0.0))
                    os.write(w, json.dumps(report).encode())
                except BaseException as exc:  # noqa: BLE001 - the parent prints it
                    os.write(w, json.dumps({"error": repr(exc)}).encode())
                    code = 1
                finally:
                    os._exit(code)
            os.close(w)
            pipes.append(r)
            pids.append(pid)
        reports = []
        for r, pid in zip(pipes, pids, strict=True):
            with os.fdopen(r) as f:
                reports.append(json.loads(f.read() or "{}"))
            os.waitpid(pid, 0)
        errors = [x["error"] for x in reports if "error" in x]
        if errors:
            raise SystemExit(f"a worker failed: {errors[0]}")
        n = sum(x["n"] for x in reports)
        line = (f"  {name:<9} {n / seconds:8.1f}/s  CPU {sum(x['cpu'] for x in reports) / n * 1000:.3f} ms per request")
        if held is not None and name == "create":
            line += (f"; lock held CPU {sum(x['held_cpu'] for x in reports) / n * 1e6:.0f} µs, wall "
                     f"{sum(x['held_wall'] for x in reports) / n * 1e6:.0f} µs, waited "
                     f"{sum(x['waited'] for x in reports) / n * 1e6:.0f} µs per create")
        print(line, flush=True)
        _signal.getsignal(_signal.SIGINT)

    print(f"\n{connection.vendor}: {workers} processes × {seconds:.0f} s, {rounds} rounds, load {os.getloadavg()[0]:.1f}")
    for _ in range(rounds):
        one(create, "create")
        one(baseline, "baseline")


def install_lock_clock() -> dict:
    """Clock the SQLite write lock of ``voronka.core.db_sqlite`` (taken before ``BEGIN IMMEDIATE``, given back after
    ``COMMIT``): ``held["on"]`` says whether it is held now, ``cpu``/``wall`` sum the seconds it was held."""
    from voronka.core.db_sqlite import base as sqlite_base

    held = {"on": False, "cpu": 0.0, "wall": 0.0, "times": 0, "started": (0.0, 0.0)}
    acquire, release = sqlite_base.DatabaseWrapper._acquire, sqlite_base.DatabaseWrapper._release

    def clocked_acquire(self):
        acquire(self)
        if self._locked and not held["on"]:
            held["on"] = True
            held["started"] = (time.process_time(), time.perf_counter())

    def clocked_release(self):
        was = self._locked
        release(self)
        if was and held["on"]:
            c0, w0 = held["started"]
            held["cpu"] += time.process_time() - c0
            held["wall"] += time.perf_counter() - w0
            held["times"] += 1
            held["on"] = False

    sqlite_base.DatabaseWrapper._acquire = clocked_acquire
    sqlite_base.DatabaseWrapper._release = clocked_release
    return held


def print_lock(create, held: dict, n: int, rounds: int) -> None:
    """CPU and wall µs per create between taking and giving back the write lock (medians of ``rounds``), and in a
    separate pass how much of it the driver's calls take (the statements, BEGIN and COMMIT: SQLite's own work)."""
    from voronka.core.db_sqlite import base as sqlite_base

    cpu, wall, whole = [], [], []
    for _ in range(rounds):
        held.update(cpu=0.0, wall=0.0, times=0)
        started = time.process_time()
        for _ in range(n):
            create()
        whole.append((time.process_time() - started) / n * 1e6)
        cpu.append(held["cpu"] / n * 1e6)
        wall.append(held["wall"] / n * 1e6)
        if held["times"] != n:
            print(f"  (the lock was taken {held['times']} times for {n} creates)")
    driver = [0.0]
    patched = []

    def clock(owner, attr):
        fn = getattr(owner, attr)
        patched.append((owner, attr, fn))

        def wrapper(*args, **kwargs):
            inside, started = held["on"], time.process_time()  # (COMMIT gives the lock back before it returns)
            try:
                return fn(*args, **kwargs)
            finally:
                if inside:
                    driver[0] += time.process_time() - started
        setattr(owner, attr, wrapper)

    clock(sqlite_base.CursorWrapper, "execute")  # every statement reaches the driver through it (once)
    clock(sqlite_base.CursorWrapper, "executemany")
    clock(sqlite_base.DatabaseWrapper, "_commit")
    try:
        for _ in range(n):
            create()
    finally:
        for owner, attr, fn in patched:
            setattr(owner, attr, fn)
    print(f"\nstatements, BEGIN and COMMIT in the driver while the lock is held: {driver[0] / n * 1e6:.1f} µs CPU per "
          "create (a separate pass)")
    print(f"\nwrite lock held per create ({rounds} × {n}): CPU {statistics.median(cpu):.1f} µs, wall "
          f"{statistics.median(wall):.1f} µs (rounds: " + ", ".join(f"{c:.0f}" for c in cpu)
          + f"); whole create CPU {statistics.median(whole):.1f} µs, share held {statistics.median(cpu) / statistics.median(whole) * 100:.0f} %")


def print_samples(create, n: int, top: int, interval: float = 0.0002, held: dict | None = None) -> None:
    """Sample the stack every ``interval`` seconds of this process's CPU time while ``n`` creates run
    (``bench/sampling.py``), and print where the time goes: per function, inclusive (on the stack) and own (on top),
    in µs per create; with ``held``, also the samples taken while SQLite's write lock was held."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    locked_incl: collections.Counter = collections.Counter()
    locked_own: collections.Counter = collections.Counter()
    total = [0]

    def on_tick(signum, frame):
        total[0] += 1
        if frame is None:
            return
        inside = held is not None and held["on"]
        own[code_name(frame.f_code)] += 1
        if inside:
            locked_own[code_name(frame.f_code)] += 1
        on_stack(frame, code_name, *((inclusive, locked_incl) if inside else (inclusive,)))

    def work():
        for _ in range(n):
            create()

    spent = run_sampled(work, on_tick, interval)
    per_sample = spent / max(1, total[0]) / n * 1e6  # µs of one create that one sample stands for
    print(f"\nsampled profile: {n} creates, {total[0]} samples, {spent / n * 1000:.3f} ms CPU per create")
    counters = [("inclusive time", inclusive), ("own time", own)]
    if held is not None:
        print(f"  samples while the write lock was held: {sum(locked_own.values())} "
              f"({sum(locked_own.values()) * per_sample:.1f} µs per create)")
        counters += [("inclusive time under the write lock", locked_incl), ("own time under the write lock", locked_own)]
    print_counters(counters, per_sample, "create", top)


def print_layers(create, baseline, n: int, rounds: int) -> None:
    """Wrap the entry of each layer with a CPU clock and print where a create's time goes (the wrappers cost
    about a microsecond each; their own time is in the outer layer)."""
    from django.core.handlers.base import BaseHandler
    from ninja.operation import Operation

    from voronka.api import records as api_records
    from voronka.core import recordkit
    from voronka.identity.models import ApiToken

    spent: dict[str, float] = collections.defaultdict(float)
    clock = time.process_time

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            started = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += clock() - started
        return wrapper

    originals = []

    def patch(owner, attr, name, *, static=False):
        fn = owner.__dict__[attr]
        originals.append((owner, attr, fn))
        inner = fn.__func__ if isinstance(fn, classmethod | staticmethod) else fn
        wrapped = timed(name, inner)
        setattr(owner, attr, classmethod(wrapped) if isinstance(fn, classmethod) else wrapped)

    patch(BaseHandler, "get_response", "handler")  # middleware + URL resolution + view
    patch(Operation, "run", "ninja")  # authentication, body parsing and validation, the view, the answer
    patch(ApiToken, "authenticate", "token")  # the token check (with the versions read of the request)
    patch(recordkit, "create_many", "action")  # the write path: checks, rights, insert, side rows, commit
    patch(recordkit, "_prepare", "checks")  # field checks, phones, stage, custom fields, model validation
    patch(recordkit.fastinsert, "insert", "insert")  # the record's INSERT … RETURNING and the phones
    from django.db.backends.base.base import BaseDatabaseWrapper

    from voronka.pipelines import totals

    patch(recordkit.fastinsert, "insert_rows", "rows")  # stage history, timeline, outbox rows
    patch(totals, "upsert_deltas", "upserts")  # board, daily and stay totals
    patch(BaseDatabaseWrapper, "commit", "commit")
    patch(BaseDatabaseWrapper, "set_autocommit", "begin")  # BEGIN (and the switch back after COMMIT)
    patch(api_records, "created_response", "render")  # the 201 body as JSON
    patch(api_records.serialize, "record", "serialize")  # the 201 body as a dict
    try:
        for _ in range(20):
            create()
        totals = collections.defaultdict(float)
        whole = 0.0
        for _ in range(rounds):
            spent.clear()
            started = clock()
            for _ in range(n):
                create()
            whole += clock() - started
            for k, v in spent.items():
                totals[k] += v
        started = clock()
        for _ in range(n * rounds):
            baseline()
        base = (clock() - started) / (n * rounds) * 1000
    finally:
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)
    per = {k: v / (n * rounds) * 1000 for k, v in totals.items()}
    total = whole / (n * rounds) * 1000
    rows = [
        ("test client + WSGI request (outside the handler)", total - per["handler"]),
        ("middleware + URL resolution", per["handler"] - per["ninja"]),
        ("Ninja: token check", per["token"]),
        ("Ninja: body parsing, pydantic, dispatch", per["ninja"] - per["token"] - per["action"] - per["serialize"]
         - per["render"]),
        ("action: field checks (_prepare)", per["checks"]),
        ("action: record + phone INSERT", per["insert"]),
        ("action: stage history, timeline, outbox INSERTs", per["rows"]),
        ("action: totals upserts (board, daily)", per["upserts"]),
        ("action: BEGIN / autocommit switches", per["begin"]),
        ("action: COMMIT", per["commit"]),
        ("action: the rest (hooks' Python, rights, atomic)", per["action"] - per["checks"] - per["insert"]
         - per["rows"] - per["upserts"] - per["begin"] - per["commit"]),
        ("answer: serialize + render", per["serialize"] + per["render"]),
    ]
    print(f"\nlayers of one create (CPU ms, {rounds} × {n}; baseline request {base:.3f} ms):")
    for label, value in rows:
        print(f"  {label:<50} {value:7.3f}  {value / total * 100:5.1f} %")
    print(f"  {'whole request':<50} {total:7.3f}")


if __name__ == "__main__":
    main()
