"""Voronka benchmarks: `make bench` / scripts/bench.sh runs this.

    python bench/run.py [--quick] [--db sqlite|postgres|both] [--duration S] [--sizes 0,100000,1000000]

For each database it starts from an empty database in a temporary directory (SQLite) or a
throwaway cluster (PostgreSQL, via scripts/with-postgres.sh), migrates, creates a superuser and an
API token, starts gunicorn (2 workers, gthread with 1 thread each, so keep-alive works) on
127.0.0.1 and measures with wrk at every table size:

- the bare baseline (POST /bench/baseline/: one row per request, voronka.benchsupport),
- single lead creation (POST /api/v1/leads),
- bulk creation (POST /api/v1/leads/bulk, 500 leads per request),
- the leads list, page 1 with a stage filter and a sort (GET /api/v1/leads?stage=…&order=-created_at&limit=50):
  200 sequential requests from a Python client (percentiles) plus a wrk run with one connection,

at 1 and 8 connections. Between sizes the table is filled with `voronka generate --leads N`
(fill time is reported, not measured). Afterwards it counts the SQL queries per request and
profiles single creates in-process (cProfile) as diagnostics.

Full runs rewrite docs/benchmarks.md (keeping a one-line-per-run history); quick runs write
bench/results/quick.md. Raw results: bench/results/{quick-,}<db>.json.

The script runs itself once per database with --inner (inside with-postgres.sh for PostgreSQL).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WRK_DIR = BENCH / "wrk"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent
VORONKA = str(BIN / "voronka")
GUNICORN = str(BIN / "gunicorn")

FULL_SIZES = [0, 100_000, 1_000_000]
QUICK_SIZES = [0, 10_000, 100_000]
BULK_BATCH = 500
LIST_SAMPLES = 200
LIST_WARMUP = 20

BASELINE_PATH = "/bench/baseline/"
LEADS_PATH = "/api/v1/leads"
BULK_PATH = "/api/v1/leads/bulk"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%SZ', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# --------------------------------------------------------------------------------------------
# CPU accounting: how much of the machine did something other than this benchmark?

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _children_of(pids: set[int]) -> set[int]:
    """Every live process whose ancestry includes one of `pids` (the pids themselves included)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = set(p for p in pids if p in parent)
    changed = True
    while changed:
        changed = False
        for pid, pp in parent.items():
            if pp in found and pid not in found:
                found.add(pid)
                changed = True
    return found


class CpuMeter:
    """Busy CPU of the whole machine minus that of the benchmark's own processes (this script, wrk,
    gunicorn and its workers, the PostgreSQL cluster of the run): what others took meanwhile."""

    def __init__(self, roots):
        self.roots = roots  # callable -> set of root pids (gunicorn master, postmaster)

    @staticmethod
    def _machine_busy() -> int:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(f[:8]) - f[3] - f[4]  # everything but idle and iowait (guest time is inside user)

    def snapshot(self) -> dict:
        pids = _children_of(set(self.roots()))
        me = os.times()
        return {"t": time.monotonic(), "busy": self._machine_busy(), "procs": {p: _proc_ticks(p) for p in pids},
                "self": (me.user + me.system + me.children_user + me.children_system) * CLK_TCK}

    def others(self, a: dict, b: dict) -> float:
        """Cores used by other processes between two snapshots."""
        secs = b["t"] - a["t"]
        if secs <= 0:
            return 0.0
        ours = sum(b["procs"][p] - a["procs"].get(p, 0) for p in b["procs"]) + (b["self"] - a["self"])
        return max(0.0, (b["busy"] - a["busy"] - ours) / CLK_TCK / secs)


# --------------------------------------------------------------------------------------------
# The server


class Server:
    """gunicorn with the gthread worker: the sync worker closes every connection, gthread keeps them alive.

    A kept-alive connection stays with the worker that accepted it, and which worker accepts is a race: with
    8 connections one worker may get all of them and the other idles (seen: the same figure at 1× or 2×
    from one run to the next). ``--worker-connections`` caps each worker at ceil(conns/workers) + 1
    connections, so that every worker gets some.
    """

    def __init__(self, env: dict, logdir: Path, workers: int = 2, threads: int = 1, max_conns: int = 1):
        self.env, self.logdir, self.workers, self.threads = env, logdir, workers, threads
        self.proc: subprocess.Popen | None = None
        self.port = 0
        per_worker = -(-max_conns // workers) + 1
        self.worker_connections = per_worker if max_conns >= 2 * workers else None

    @property
    def command(self) -> list[str]:
        cmd = [GUNICORN, "voronka.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
               "--workers", str(self.workers), "--worker-class", "gthread", "--threads", str(self.threads),
               "--keep-alive", "75", "--timeout", "120", "--log-level", "warning"]
        if self.worker_connections:
            cmd += ["--worker-connections", str(self.worker_connections)]
        return cmd

    def start(self) -> None:
        self.port = free_port()
        out = open(self.logdir / "gunicorn.log", "ab")
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out, stderr=out,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.logdir / 'gunicorn.log'}")
            try:
                status, _ = http_request(self.port, "GET", BASELINE_PATH)
                if status == 405:  # the baseline view answers GET with 405: the app is loaded
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not answer within 60 s")
        log(f"gunicorn up on 127.0.0.1:{self.port} ({self.workers} workers x {self.threads} thread, keep-alive)")

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None


def http_request(port: int, method: str, path: str, body: bytes | None = None, token: str = "",
                 conn: http.client.HTTPConnection | None = None, timeout: float = 30) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


# --------------------------------------------------------------------------------------------
# wrk


def run_wrk(port: int, path: str, script: str, conns: int, duration: float, args: list[str],
            logdir: Path, label: str) -> dict:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(round(duration)))}s", "--timeout", "30s",
           "-s", str(WRK_DIR / script), f"http://127.0.0.1:{port}{path}", "--", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=WRK_DIR)
    with open(logdir / "wrk.log", "a") as f:
        f.write(f"### {label}\n$ {' '.join(c if 'vk_' not in c else '<token>' for c in cmd)}\n{proc.stdout}{proc.stderr}\n")
    m = re.search(r"^BENCHJSON (\{.*\})$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    data = json.loads(m.group(1))
    if data["requests"] == 0:  # no latency to speak of (wrk prints INT64_MIN as the minimum)
        data["latency_us"] = dict.fromkeys(data["latency_us"], 0)
        data["latency_us"]["max"] = duration * 1e6
    secs = data["duration_us"] / 1e6
    data["rps"] = data["requests"] / secs if secs else 0.0
    data["latency_ms"] = {k: v / 1000 for k, v in data.pop("latency_us").items()}
    return data


# --------------------------------------------------------------------------------------------
# The inner run: one database


class Inner:
    def __init__(self, opts: argparse.Namespace):
        self.opts = opts
        self.db = opts.inner
        self.sizes = opts.sizes
        self.duration = opts.duration
        self.conns = opts.conns
        self.var = Path(tempfile.mkdtemp(prefix=f"voronka-bench-{self.db}-"))
        (self.var / "static").mkdir()  # STATIC_ROOT: WhiteNoise warns on every worker start without it
        self.logdir = RESULTS / "logs" / (("quick-" if opts.quick else "") + self.db)
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        if self.db == "sqlite":
            self.env.pop("VORONKA_DATABASE_URL", None)
        elif not self.env.get("VORONKA_DATABASE_URL"):
            raise SystemExit("--inner postgres needs VORONKA_DATABASE_URL (run through scripts/with-postgres.sh)")
        self.env.update({
            "DJANGO_SETTINGS_MODULE": opts.settings,
            "VORONKA_VAR_DIR": str(self.var),
            "VORONKA_BENCH": "1",
            "VORONKA_DEBUG": "0",
            "VORONKA_LOG_LEVEL": "WARNING",
            "VORONKA_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "VORONKA_SECRET_KEY": secrets.token_urlsafe(40),
            "PYTHONUNBUFFERED": "1",
        })
        os.environ.clear()
        os.environ.update(self.env)
        self.server = Server(self.env, self.logdir, workers=opts.workers, threads=opts.threads,
                             max_conns=max(opts.conns))
        self.pg_pid: int | None = None
        self.meter = CpuMeter(lambda: {p for p in (self.server.proc and self.server.proc.pid, self.pg_pid) if p})
        self.token = ""
        self.seq = 0  # wrk runs so far: gives each run its own range of numbers (unique phones/titles)
        self.out: dict = {
            "db": self.db, "quick": opts.quick, "sizes": self.sizes, "duration_s": self.duration,
            "conns": self.conns, "bulk_batch": BULK_BATCH, "settings": opts.settings, "repeat": opts.repeat,
            "quiet_cores": opts.quiet_cores, "quiet_wait": opts.quiet_wait, "levels": [], "fills": [], "problems": [],
            "server": None, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }

    # ---- helpers

    def voronka(self, *args: str, log_name: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        log_file = self.logdir / (log_name or f"voronka-{args[0]}.log")
        with open(log_file, "ab") as f:
            proc = subprocess.run([VORONKA, *args], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=f)
            f.write(proc.stdout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"voronka {' '.join(args)} failed ({proc.returncode}); see {log_file}")
        return proc

    def has_command(self, name: str) -> bool:
        from django.core.management import get_commands

        return name in get_commands()

    def problem(self, text: str) -> None:
        log("PROBLEM: " + text)
        self.out["problems"].append(text)

    def sql(self, query: str, params=()) -> list:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall() if cur.description else []
        return rows

    def close_db(self) -> None:
        from django.db import connections

        connections.close_all()

    def count(self, model) -> int:
        n = self.sql(f"SELECT COUNT(*) FROM {model._meta.db_table}")[0][0]
        self.close_db()
        return n

    # ---- setup

    def setup(self) -> None:
        t = time.monotonic()
        self.voronka("migrate", "--noinput", "-v", "0")
        log(f"migrated in {time.monotonic() - t:.1f} s ({self.db}, VAR_DIR {self.var})")
        import django

        django.setup()
        from django.db import connection

        from voronka.identity.models import ApiToken, User

        if connection.vendor == "sqlite":
            import sqlite3

            self.out["db_version"] = f"SQLite {sqlite3.sqlite_version}"
        else:
            self.out["db_version"] = self.sql("SHOW server_version")[0][0]
            self.out["db_version"] = f"PostgreSQL {self.out['db_version']}"
            self.out["db_settings"] = {k: self.sql(f"SHOW {k}")[0][0] for k in (
                "shared_buffers", "fsync", "synchronous_commit", "work_mem")}
            with contextlib.suppress(OSError, ValueError, IndexError):
                data_dir = self.sql("SHOW data_directory")[0][0]
                self.pg_pid = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
        from django.conf import settings

        self.out["conn_max_age"] = settings.DATABASES["default"].get("CONN_MAX_AGE", 0)
        user = User.objects.create_superuser("bench", "bench@example.com", secrets.token_urlsafe(16))
        self.ensure_lead_pipeline(user)
        self.close_db()
        if self.has_command("token"):
            proc = self.voronka("token", "create", "--user", "bench", log_name="voronka-token.log", check=False)
            m = re.search(r"\bvk_[0-9A-Za-z]+_[0-9A-Za-z_-]+", proc.stdout.decode())
            if m:
                self.token = m.group(0)
                self.out["token_source"] = "voronka token create --user bench"
            else:
                self.problem(f"`voronka token create` printed no token (exit {proc.returncode}); issuing one in-process")
        if not self.token:
            _, self.token = ApiToken.issue(user, name="bench")
            self.out.setdefault("token_source", "ApiToken.issue (in-process)")
            self.close_db()
        self.has_generate = self.has_command("generate")
        if not self.has_generate:
            self.problem("`voronka generate` does not exist yet: only the sizes reachable without it are measured")

    def ensure_lead_pipeline(self, user) -> None:
        """The lead pipeline comes from the generator or the demo; an empty database may have none."""
        from voronka.core import entity_types
        from voronka.pipelines.models import Pipeline

        if Pipeline.objects.filter(entity_type_id=entity_types.LEAD).exists():
            return
        if self.has_command("generate"):
            # let the generator set up its own pipelines, with no records
            self.voronka("generate", "--leads", "0", log_name="voronka-generate.log", check=False)
            if Pipeline.objects.filter(entity_type_id=entity_types.LEAD).exists():
                self.out["pipeline_source"] = "voronka generate --leads 0"
                return
        from voronka.core.actor import Actor
        from voronka.pipelines.actions import create_pipeline

        create_pipeline(Actor.for_user(user, "cli"), entity_type_id=entity_types.LEAD, name="Bench leads",
                        code="bench", stages=[
                            {"name": "New", "code": "new"}, {"name": "In work", "code": "work"},
                            {"name": "Qualified", "code": "qualified"},
                            {"name": "Converted", "code": "converted", "semantics": "success"},
                            {"name": "Junk", "code": "junk", "semantics": "failure"},
                        ])
        self.out["pipeline_source"] = "bench/run.py (create_pipeline)"

    def fill(self, target: int) -> None:
        from voronka.leads.models import Lead

        have = self.count(Lead)
        if have >= target:
            return
        if not self.has_generate:
            raise LookupError("no generator")
        need = target - have
        log(f"filling: {have:,} -> {target:,} leads (voronka generate --leads {need})")
        t = time.monotonic()
        self.voronka("generate", "--leads", str(need), log_name="voronka-generate.log")
        secs = time.monotonic() - t
        after = self.count(Lead)
        self.out["fills"].append({"from": have, "to": after, "requested": need, "seconds": round(secs, 1),
                                  "leads_per_s": round((after - have) / secs) if secs else None})
        log(f"filled {after - have:,} leads in {secs:.1f} s ({(after - have) / secs:,.0f}/s)")
        if after - have < need:
            self.problem(f"generate --leads {need} added only {after - have}")

    def settle(self) -> None:
        """After a fill: SQLite checkpoints its WAL, PostgreSQL refreshes statistics (as autovacuum would)."""
        t = time.monotonic()
        from django.db import connection

        if connection.vendor == "sqlite":
            self.sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            self.sql("ANALYZE")
        self.close_db()
        log(f"settled ({'checkpoint' if connection.vendor == 'sqlite' else 'ANALYZE'}) in {time.monotonic() - t:.1f} s")

    # ---- measurements

    def preflight(self, kind: str) -> str | None:
        """One request of this kind with a Python client: None if it succeeded, else the problem."""
        n = 990_000_000 + self.seq * 1000
        one = {"title": f"Bench preflight {n}", "phones": [f"+79{n % 10**9:09d}"]}
        if kind == "bulk":
            body = {"items": [{"title": f"Bench preflight {n + i}", "phones": [f"+79{(n + i) % 10**9:09d}"]}
                              for i in range(3)]}
        else:
            body = one
        path = {"baseline": BASELINE_PATH, "single": LEADS_PATH, "bulk": BULK_PATH}[kind]
        try:
            status, data = http_request(self.server.port, "POST", path, json.dumps(body).encode(),
                                        token=self.token if kind != "baseline" else "")
        except OSError as exc:
            return f"{kind}: {exc}"
        sample = re.sub(r"\s+", " ", data[:600].decode(errors="replace")).strip()
        self.out.setdefault("samples", {})[kind] = {"status": status, "body": sample}
        if not 200 <= status < 300:
            return f"POST {path} answered {status}: {sample[:300]}"
        if kind == "bulk" and re.search(r'"(ok|success)"\s*:\s*false|"errors?"\s*:\s*\{', sample):
            return f"POST {path} answered {status} but some items failed: {sample[:300]}"
        return None

    def measure(self, kind: str, conns: int, label: str) -> dict:
        from voronka.benchsupport.models import BenchRow
        from voronka.leads.models import Lead

        model = BenchRow if kind == "baseline" else Lead
        path = {"baseline": BASELINE_PATH, "single": LEADS_PATH, "bulk": BULK_PATH}[kind]
        script = "post_bulk.lua" if kind == "bulk" else "post_one.lua"
        batch = BULK_BATCH if kind == "bulk" else 1
        token = self.token if kind != "baseline" else ""
        self.seq += 1
        base = self.seq * 2_000_000
        before = self.count(model)
        waited = self.wait_quiet()
        load = loadavg()
        snap = self.meter.snapshot()
        t0 = time.monotonic()
        res = run_wrk(self.server.port, path, script, conns, self.duration, [str(base), token, str(batch)],
                      self.logdir, f"{label} {kind} c={conns}")
        # wrk stops at its deadline but the server finishes the requests in flight: wait for them, so that
        # they neither pollute the next figure nor the row count
        others = self.meter.others(snap, self.meter.snapshot())
        t_last = self.wait_idle(model, res["latency_ms"]["max"] / 1000)
        after = self.count(model)
        ok_requests = res["requests"] - res["errors"]["status"]
        rows_per_s = (after - before) / (t_last - t0) if t_last > t0 else 0.0
        res.update({
            "kind": kind, "conns": conns, "batch": batch, "load_before": load, "load_after": loadavg(),
            "other_cpu": round(others, 2), "waited_for_quiet_s": waited,
            "rows_before": before, "rows_added": after - before, "rows_per_s": rows_per_s,
            "wrk_items_per_s": ok_requests * batch / (res["duration_us"] / 1e6), "ok_requests": ok_requests,
        })
        # The figure. wrk counts only requests that finished before its deadline: for requests that take
        # a second or more (bulk) that undercounts by about latency/duration, so bulk uses the rows that
        # reached the table from the start of the run to the last commit of the requests in flight.
        res["items_per_s"] = rows_per_s if kind == "bulk" else res["wrk_items_per_s"]
        if res["requests"] == 0 and not (kind == "bulk" and after > before):
            raise RuntimeError(f"wrk completed no request in {self.duration:.0f} s")
        errs = sum(res["errors"].values())
        if errs:
            self.problem(f"{label} {kind} c={conns}: wrk errors {res['errors']}")
        if ok_requests < 10:
            self.problem(f"{label} {kind} c={conns}: only {ok_requests} successful requests in {self.duration:.0f} s: "
                         "the figure is coarse (use --duration)")
        expected = ok_requests * batch
        # requests cut off by wrk's deadline were finished by the server: up to `conns` more of them
        if not expected <= after - before <= expected + batch * conns:
            self.problem(f"{label} {kind} c={conns}: {after - before} rows added, {expected} expected "
                         f"from {ok_requests} successful requests")
        log(f"  {label:>10} {kind:8} c={conns}: {res['rps']:8.1f} req/s  {res['items_per_s']:9.1f} items/s  "
            f"p50 {res['latency_ms']['p50']:.1f} ms  p95 {res['latency_ms']['p95']:.1f} ms  "
            f"errors {errs}  others {others:.2f} cores")
        return res

    def wait_quiet(self) -> float:
        """Before a figure: wait (up to --quiet-wait s) until other processes use less than
        --quiet-cores over a 2-second sample. Returns the seconds waited."""
        if self.opts.quiet_wait <= 0:
            return 0.0
        t0 = time.monotonic()
        while True:
            a = self.meter.snapshot()
            time.sleep(2)
            others = self.meter.others(a, self.meter.snapshot())
            waited = time.monotonic() - t0
            if others < self.opts.quiet_cores or waited >= self.opts.quiet_wait:
                if others >= self.opts.quiet_cores:
                    log(f"  machine still busy ({others:.2f} cores used by others) after {waited:.0f} s: measuring anyway")
                return round(waited - 2, 1)

    def max_id(self, model) -> int:
        n = self.sql(f"SELECT MAX(id) FROM {model._meta.db_table}")[0][0] or 0
        self.close_db()
        return n

    def wait_idle(self, model, max_latency_s: float) -> float:
        """When the last row arrived: polls MAX(id) (an index lookup, cheap at 1M rows) until it has not
        changed for longer than the slowest request took (at most 120 s)."""
        window = max(1.0, 1.5 * max_latency_s)
        deadline = time.monotonic() + 120
        last = self.max_id(model)
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            n = self.max_id(model)
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= window:
                break
        return since

    def warmup(self, kind: str) -> None:
        path = {"baseline": BASELINE_PATH, "single": LEADS_PATH, "bulk": BULK_PATH}[kind]
        script = "post_bulk.lua" if kind == "bulk" else "post_one.lua"
        self.seq += 1
        from voronka.benchsupport.models import BenchRow
        from voronka.leads.models import Lead

        try:
            res = run_wrk(self.server.port, path, script, 2, 1, [str(self.seq * 2_000_000),
                          self.token if kind != "baseline" else "", str(BULK_BATCH if kind == "bulk" else 1)],
                          self.logdir, f"warm-up {kind}")
            slowest = res["latency_ms"]["max"] / 1000
        except RuntimeError:
            slowest = 5.0
        self.wait_idle(BenchRow if kind == "baseline" else Lead, slowest)

    def list_queries(self) -> list[dict]:
        """The list requests to time: the most and the least populated stage of the default lead pipeline."""
        from voronka.leads.models import Lead
        from voronka.pipelines.models import Stage

        t = Lead._meta.db_table
        rows = self.sql(f"SELECT stage_id, COUNT(*) FROM {t} GROUP BY stage_id ORDER BY 2 DESC")
        self.close_db()
        rows = [(s, n) for s, n in rows if s is not None]
        if not rows:
            return []
        picks = [("largest stage", rows[0])]
        if len(rows) > 1:
            picks.append(("smallest stage", rows[-1]))
        total = sum(n for _, n in rows)
        out = []
        for name, (stage_id, n) in picks:
            stage = Stage.objects.get(pk=stage_id)
            ref = stage.code if self.opts.stage_ref == "code" else str(stage.pk)
            out.append({"name": name, "stage": ref, "stage_rows": n, "table_rows": total,
                        "path": f"{LEADS_PATH}?stage={ref}&order=-created_at&limit=50"})
        self.close_db()
        return out

    def measure_list(self, label: str) -> list[dict]:
        results = []
        for q in self.list_queries():
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            times: list[float] = []
            status_bad = 0
            items = None
            first_body = b""
            for i in range(LIST_WARMUP + LIST_SAMPLES):
                t0 = time.perf_counter()
                status, body = http_request(self.server.port, "GET", q["path"], token=self.token, conn=conn)
                dt = (time.perf_counter() - t0) * 1000
                if i == 0:
                    first_body = body
                if status != 200:
                    status_bad += 1
                if i >= LIST_WARMUP:
                    times.append(dt)
            conn.close()
            with contextlib.suppress(ValueError):
                data = json.loads(first_body)
                for key in ("items", "results", "data"):
                    if isinstance(data, dict) and isinstance(data.get(key), list):
                        items = len(data[key])
                        q["cursor_key"] = next((k for k in ("next_cursor", "next", "cursor") if data.get(k)), None)
                        break
                if isinstance(data, list):
                    items = len(data)
            times.sort()
            res = dict(q)
            res.update({
                "samples": len(times), "non_200": status_bad, "items_on_page": items,
                "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "p99_ms": percentile(times, 99),
                "max_ms": times[-1], "mean_ms": sum(times) / len(times),
                "body_sample": first_body[:300].decode(errors="replace"),
            })
            if status_bad:
                self.problem(f"{label} list {q['name']}: {status_bad} non-200 answers, e.g. {res['body_sample']}")
            with contextlib.suppress(RuntimeError):
                res["wrk_c1"] = run_wrk(self.server.port, q["path"], "get.lua", 1, self.duration,
                                        ["0", self.token, "1"], self.logdir, f"{label} list {q['name']}")
            log(f"  {label:>10} list {q['name']} ({q['stage_rows']:,} of {q['table_rows']:,}): "
                f"p50 {res['p50_ms']:.1f} ms  p95 {res['p95_ms']:.1f} ms  p99 {res['p99_ms']:.1f} ms  "
                f"items {items}")
            results.append(res)
        return results

    def run_level(self, size: int, label: str) -> None:
        from voronka.leads.models import Lead

        level: dict = {"size": size, "label": label}
        try:
            self.fill(size)
        except LookupError:
            level["skipped"] = "no generator"
            self.out["levels"].append(level)
            return
        self.settle()
        level["leads_at_start"] = self.count(Lead)
        log(f"== {self.db}: level {label} ({level['leads_at_start']:,} leads)")
        kinds = []
        for kind in ("baseline", "single", "bulk"):
            err = self.preflight(kind)
            if err:
                self.problem(f"{label}: {err}")
                level[kind] = {"error": err}
                continue
            kinds.append(kind)
            level[kind] = {}
            if not self.out.get(f"warm_{kind}"):
                self.warmup(kind)
                self.out[f"warm_{kind}"] = True
        # Baseline and single creates interleaved and repeated (a burst of other load hits both alike; the
        # best of the repeats is kept, all of them are in the JSON), bulk afterwards: it adds tens of
        # thousands of rows, which would otherwise blur the table size the single creates are measured at.
        for group in ([k for k in kinds if k != "bulk"], [k for k in kinds if k == "bulk"]):
            for c in self.conns:
                runs: dict[str, list[dict]] = {k: [] for k in group}
                for _ in range(self.opts.repeat):
                    for kind in group:
                        try:
                            runs[kind].append(self.measure(kind, c, label))
                        except RuntimeError as exc:
                            self.problem(f"{label} {kind} c={c}: {exc}")
                for kind in group:
                    if not runs[kind]:
                        level[kind][str(c)] = {"error": "no successful run"}
                        continue
                    best = max(runs[kind], key=lambda m: m["items_per_s"])
                    best = dict(best, all_items_per_s=[round(m["items_per_s"], 1) for m in runs[kind]])
                    level[kind][str(c)] = best
        if self.out.get("samples", {}).get("single", {}).get("status", 0) // 100 == 2:
            level["list"] = self.measure_list(label)
        level["leads_at_end"] = self.count(Lead)
        self.out["levels"].append(level)
        if not self.server.alive():
            self.problem("gunicorn died; restarting it")
            self.server.start()

    # ---- diagnostics

    def diagnostics(self) -> None:
        """Queries per request (CaptureQueriesContext) and a cProfile of single creates, in-process."""
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        diag: dict = {}

        def capture(name: str, fn) -> None:
            fn()  # warm (first-call caches, imports)
            with CaptureQueriesContext(connection) as ctx:
                resp = fn()
            sqls = [q["sql"] for q in ctx.captured_queries]
            groups: dict[str, int] = {}
            for s in sqls:
                key = re.sub(r"\s+", " ", s)
                key = re.sub(r"'[^']*'|\b\d+\b", "?", key)[:160]
                groups[key] = groups.get(key, 0) + 1
            diag[name] = {
                "status": resp.status_code, "queries": len(sqls),
                "count_queries": sum(1 for s in sqls if re.search(r"COUNT\(", s, re.I)),
                "statements": sorted(({"sql": k, "n": v} for k, v in groups.items()), key=lambda d: -d["n"]),
            }
            if name.startswith("GET list"):
                main = next((s for s in sqls if re.search(r'FROM "leads_lead"', s)), None)
                if main:
                    diag[name]["lead_query"] = main
                    diag[name]["plan"] = self.explain(main)

        n0 = 980_000_000

        def one(i=[0]):  # noqa: B006 - a counter
            i[0] += 1
            return client.post(LEADS_PATH, json.dumps({"title": f"Diag {i[0]}", "phones": [f"+79{n0 + i[0]:09d}"]}),
                               content_type="application/json")

        def bulk(i=[0]):  # noqa: B006
            i[0] += 1
            items = [{"title": f"Diag bulk {i[0]}-{k}", "phones": [f"+79{n0 + 10_000 * i[0] + k:09d}"]}
                     for k in range(BULK_BATCH)]
            return client.post(BULK_PATH, json.dumps({"items": items}), content_type="application/json")

        capture("baseline POST", lambda: Client().post(BASELINE_PATH, json.dumps({"title": "diag"}),
                                                        content_type="application/json"))
        capture("POST /api/v1/leads", one)
        capture(f"POST /api/v1/leads/bulk ({BULK_BATCH} items)", bulk)
        for q in self.list_queries():
            capture(f"GET list, {q['name']}", lambda q=q: client.get(q["path"]))
        self.out["diagnostics"] = diag

        # Where the time of one request goes, without a profiler: wall time per request in-process (no HTTP
        # server), and the part of it spent inside the database driver (connection.execute_wrapper).
        from voronka.identity.models import ApiToken

        base_client = Client()

        def baseline():
            return base_client.post(BASELINE_PATH, json.dumps({"title": "split"}), content_type="application/json")

        split = {
            "baseline POST": self.split_time(baseline, 300),
            "POST /api/v1/leads": self.split_time(one, 300),
            f"POST /api/v1/leads/bulk ({BULK_BATCH} items)": self.split_time(bulk, 6),
            "ApiToken.authenticate alone": self.split_time(lambda: ApiToken.authenticate(self.token), 300),
        }
        for q in self.list_queries()[:1]:
            split[f"GET list, {q['name']}"] = self.split_time(lambda q=q: client.get(q["path"]), 100)
        self.out["time_split"] = split

        # cProfile of single and bulk creates through the full Django stack (no HTTP server)
        self.out["profile"] = {
            "single": self.profile("single-create", one, 300),
            "bulk": self.profile(f"bulk-create-{BULK_BATCH}", bulk, 4),
        }
        self.close_db()

    def split_time(self, fn, n: int) -> dict:
        from django.db import connection

        for _ in range(max(2, n // 10)):
            fn()
        sql = {"s": 0.0, "n": 0}

        def wrapper(execute, query, params, many, context):
            t = time.perf_counter()
            try:
                return execute(query, params, many, context)
            finally:
                sql["s"] += time.perf_counter() - t
                sql["n"] += 1

        with connection.execute_wrapper(wrapper):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            total = time.perf_counter() - t
        return {"n": n, "ms": round(total / n * 1000, 3), "sql_ms": round(sql["s"] / n * 1000, 3),
                "python_ms": round((total - sql["s"]) / n * 1000, 3), "queries": round(sql["n"] / n, 1)}

    def explain(self, sql: str) -> str:
        """The query plan of a captured statement (its parameters are already inlined by Django)."""
        from django.db import connection

        try:
            if connection.vendor == "sqlite":
                rows = self.sql("EXPLAIN QUERY PLAN " + sql)
                return "\n".join(str(r[-1]) for r in rows)
            rows = self.sql("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            return "\n".join(r[0] for r in rows)
        except Exception as exc:  # the inlined SQL is not always valid to re-run
            return f"(no plan: {exc})"

    def profile(self, name: str, fn, n: int) -> dict:
        for _ in range(max(1, n // 10)):
            fn()
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        for _ in range(n):
            fn()
        prof.disable()
        secs = time.perf_counter() - t
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
        path = self.logdir / f"profile-{name}.txt"
        path.write_text(text.getvalue())
        # a summary for the report: where the time goes, by function (cumulative), ours and Django's SQL layer
        total = sum(v[3] for k, v in stats.stats.items() if k[2] == "generic" and "test/client.py" in k[0]) or secs
        rows = []
        for (file, line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
            short = file.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
            if short.startswith("voronka/") or func in ("full_clean", "_execute", "execute_sql", "commit"):
                rows.append((ct, f"{short}:{line}({func})"))
        rows.sort(reverse=True)
        return {"requests": n, "seconds": round(secs, 2), "per_request_ms": round(secs / n * 1000, 2),
                "file": str(path.relative_to(ROOT)),
                "top": [{"fn": f, "share": round(ct / total, 3), "ms_per_request": round(ct / n * 1000, 2)}
                        for ct, f in rows[:18]]}

    # ---- main

    def run(self) -> dict:
        try:
            self.setup()
            self.out["code"] = code_version()
            self.server.start()
            self.out["server"] = " ".join(self.server.command[1:]).replace(f":{self.server.port}", ":PORT")
            if self.opts.diagnostics_only:
                self.fill(max(self.sizes))
                self.settle()
                self.out["diagnostics_size"] = max(self.sizes)
                for kind in ("single", "bulk"):
                    err = self.preflight(kind)
                    if err:
                        self.problem(err)
                log("diagnostics: queries per request, query plans, cProfile of single and bulk creates")
                self.diagnostics()
                return self.out
            labels = {0: "empty"}
            for size in self.sizes:
                self.run_level(size, labels.get(size, f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"))
            if not self.opts.no_diagnostics and self.out.get("samples", {}).get("single", {}).get("status", 0) // 100 == 2:
                log("diagnostics: queries per request, cProfile of single creates")
                try:
                    self.diagnostics()
                except Exception as exc:  # diagnostics must not lose the figures
                    self.problem(f"diagnostics failed: {exc!r}")
        finally:
            self.server.stop()
            self.out["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
            if not self.opts.keep:
                shutil.rmtree(self.var, ignore_errors=True)
        return self.out


# --------------------------------------------------------------------------------------------
# The outer run


def code_version() -> str:
    """The commit the server runs, and whether Voronka's code differs from it (others may be editing)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "voronka"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
    return commit + (" + uncommitted changes in voronka/" if dirty else "")


def machine_info() -> dict:
    info: dict = {"nproc": os.cpu_count(), "python": platform.python_version(),
                  "date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_at_start": loadavg()}
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        info["cpu"] = m.group(1).strip() if m else platform.processor()
    with contextlib.suppress(OSError):
        kb = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
        info["ram_gb"] = round(kb / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        info["os"] = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M).group(1)
    from importlib.metadata import version

    for pkg in ("django", "gunicorn", "django-ninja", "psycopg"):
        with contextlib.suppress(Exception):
            info[pkg] = version(pkg)
    with contextlib.suppress(Exception):
        info["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
    info["commit"] = code_version()
    return info


def start_own_postgres() -> tuple[str, callable]:
    """Fallback when scripts/with-postgres.sh is missing: a throwaway cluster as user postgres."""
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: float(p.parent.name), reverse=True)
    if not bindirs:
        raise RuntimeError("no PostgreSQL binaries in /usr/lib/postgresql")
    b = bindirs[0]
    tmp = Path(tempfile.mkdtemp(prefix="voronka-bench-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(tmp, "postgres")
    port = free_port()
    subprocess.run([*as_user, str(b / "initdb"), "-D", str(tmp / "data"), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-locale", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(b / "pg_ctl"), "-D", str(tmp / "data"), "-l", str(tmp / "server.log"), "-w",
                    "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off -c synchronous_commit=off "
                          "-c full_page_writes=off", "start"], check=True, capture_output=True)
    subprocess.run([*as_user, str(b / "createdb"), "-h", str(tmp), "-p", str(port), "-U", "postgres", "voronka"],
                   check=True)

    def stop() -> None:
        subprocess.run([*as_user, str(b / "pg_ctl"), "-D", str(tmp / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/voronka", stop


def outer(opts: argparse.Namespace, argv: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    dbs = ["sqlite", "postgres"] if opts.db == "both" else [opts.db]
    prefix = "quick-" if opts.quick else ""
    info = machine_info()
    started = time.monotonic()
    runs = []
    for db in dbs:
        final = RESULTS / f"{prefix}{db}{'-diagnostics' if opts.diagnostics_only else ''}.json"
        out = final.with_suffix(".partial.json")  # the previous results stay until this run succeeds
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--inner", db, "--json", str(out)]
        env = dict(os.environ)
        stop = None
        if db == "sqlite":
            env.pop("VORONKA_DATABASE_URL", None)
        else:
            wp = ROOT / "scripts" / "with-postgres.sh"
            if wp.exists():
                cmd = [str(wp), *cmd]
                env["VORONKA_REQUIRE_POSTGRES"] = "1"
            else:
                url, stop = start_own_postgres()
                env["VORONKA_DATABASE_URL"] = url
        log(f"### {db}: {' '.join(cmd)}")
        t = time.monotonic()
        # its own process group, so that a stop reaches with-postgres.sh and the inner run together
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)

        def stop_child(*_, pid=child.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)

        previous = signal.signal(signal.SIGTERM, stop_child)
        try:
            rc = child.wait()
        except KeyboardInterrupt:
            stop_child()
            child.wait()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            if stop:
                stop()
        if rc in (143, -signal.SIGTERM, 130):
            log(f"{db} run stopped by a signal")
            return rc
        if out.exists():
            out.replace(final)
            out = final
        if out.exists() and opts.diagnostics_only:
            # fold the diagnostics into the latest results of this database
            diag = json.loads(out.read_text())
            main_file = RESULTS / f"{prefix}{db}.json"
            data = json.loads(main_file.read_text()) if main_file.exists() else {"db": db, "levels": [], "problems": []}
            for key in ("diagnostics", "profile", "time_split"):
                if key in diag:
                    data[key] = diag[key]
            data["diagnostics_run"] = {"date": info.get("date"), "commit": info.get("commit"),
                                       "leads": diag.get("diagnostics_size"), "problems": diag.get("problems", [])}
            data["problems"] = [p for p in data.get("problems", []) if not p.startswith("diagnostics failed")]
            main_file.write_text(json.dumps(data, indent=1, default=str))
            runs.append(data)
        elif out.exists():
            data = json.loads(out.read_text())
            data["wall_s"] = round(time.monotonic() - t)
            data["machine"] = info
            data["commit"] = info.get("commit")
            out.write_text(json.dumps(data, indent=1, default=str))
            runs.append(data)
        else:
            runs.append({"db": db, "missing": f"the {db} run produced no results (exit {rc})"})
        if rc != 0:
            log(f"{db} run exited with {rc}")
    info["wall_s"] = round(time.monotonic() - started)
    # a database this run left out keeps its latest full results in the report
    for db in ("sqlite", "postgres"):
        earlier = RESULTS / f"{prefix}{db}.json"
        if db not in dbs and earlier.exists():
            data = json.loads(earlier.read_text())
            data["earlier"] = True
            runs.append(data)
    from report import write_report  # bench/report.py

    target = Path(opts.doc) if opts.doc else (RESULTS / "quick.md" if opts.quick else ROOT / "docs" / "benchmarks.md")
    command = "scripts/bench.sh " + " ".join(sys.argv[1:]) if sys.argv[1:] else "make bench"
    if opts.diagnostics_only:
        # the figures are those of the earlier run: its machine, date and command head the report
        info = next((r["machine"] for r in runs if r.get("machine")), info)
        command = next((r["command"] for r in runs if r.get("command")), command)
        write_report(target, runs, info, command=command, quick=opts.quick, results_dir=RESULTS, add_history=False)
    else:
        for r in runs:
            if not r.get("earlier") and "missing" not in r:
                r["command"] = command
                (RESULTS / f"{prefix}{r['db']}.json").write_text(json.dumps(r, indent=1, default=str))
        write_report(target, runs, info, command=command, quick=opts.quick, results_dir=RESULTS)
    log(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0 if all("missing" not in r for r in runs) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="sizes 0, 10k, 100k and 5 s runs (smoke run)")
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 5)")
    p.add_argument("--sizes", help="comma-separated lead counts (default 0,100000,1000000; quick 0,10000,100000)")
    p.add_argument("--conns", default="1,8", help="concurrent connections (default 1,8)")
    p.add_argument("--repeat", type=int, help="runs of each figure, interleaved; the best counts (default 3, quick 1)")
    p.add_argument("--quiet-cores", type=float, default=0.3,
                   help="before each figure wait until other processes use less than this many cores (default 0.3)")
    p.add_argument("--quiet-wait", type=float, default=60,
                   help="but at most this many seconds per figure (default 60; 0 = never wait)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="gthread threads per worker (default 1)")
    p.add_argument("--stage-ref", choices=["code", "id"], default="code", help="how the list filter names the stage")
    p.add_argument("--doc", help="write the report here instead of docs/benchmarks.md (or bench/results/quick.md)")
    p.add_argument("--settings", default="voronka.settings",
                   help="Django settings module (experiments: a module that imports voronka.settings and changes it; "
                        "put its directory on PYTHONPATH)")
    p.add_argument("--diagnostics-only", action="store_true",
                   help="no figures: fill to the largest size, count queries, explain the list query, profile; "
                        "folds the result into the latest results of that database and rewrites the report")
    p.add_argument("--no-diagnostics", action="store_true", help="skip query counting and profiling")
    p.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    p.add_argument("--inner", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    opts = p.parse_args()
    opts.duration = opts.duration or (5.0 if opts.quick else 10.0)
    opts.repeat = opts.repeat or (1 if opts.quick else 3)
    opts.sizes = [int(s.replace("_", "")) for s in opts.sizes.split(",")] if opts.sizes else (
        QUICK_SIZES if opts.quick else FULL_SIZES)
    opts.conns = [int(c) for c in str(opts.conns).split(",")]
    if opts.inner:
        # SIGTERM/SIGINT unwind through the finally blocks: gunicorn is stopped, the temporary VAR_DIR removed
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        sys.path.insert(0, str(ROOT))
        result = Inner(opts).run()
        Path(opts.json).write_text(json.dumps(result, indent=1, default=str))
        return 0
    argv = [a for a in sys.argv[1:]]
    # --db is decided here; the inner runs get everything else
    cleaned, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--db":
            skip = True
            continue
        if a.startswith("--db="):
            continue
        cleaned.append(a)
    sys.path.insert(0, str(BENCH))
    return outer(opts, cleaned)


if __name__ == "__main__":
    sys.exit(main())
