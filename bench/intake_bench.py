"""Intake benchmark: web-form submissions per second with N contacts stored, at 1 and 8 clients, next to
the bare-insert baseline of the same server; and the time of a duplicate lookup at N contacts.

    .venv/bin/python bench/intake_bench.py --contacts 1000000 --seconds 20           # SQLite, a fresh var dir
    scripts/with-postgres.sh .venv/bin/python bench/intake_bench.py --contacts 1000000   # PostgreSQL
    .venv/bin/python bench/intake_bench.py --contacts 20000 --seconds 5 --clients 1,8     # a quick try
    .venv/bin/python bench/intake_bench.py --contacts 50000 --mode both --workers 2       # at once and queued

What one form submission does (the full path of a real one): the per-address rate limit check, the intake
log row, validation, duplicate control (phone/e-mail index, name index with rapidfuzz), the new lead with
its phones/e-mails, the distribution queue's pick under its row lock, the timeline entries and the outbox
events (the robots' work is enqueued there, run later by the worker). Every submission has a new phone
and e-mail and a name from a small pool, so name candidates are found and scored like in real life. The
clients are a site's visitors behind its proxy (``VORONKA_TRUSTED_PROXIES=1``, an ``X-Forwarded-For`` address
per three submissions) under the default rate limit; until session 10 they all posted from 127.0.0.1 under a
limit raised to 10⁹, and each check counted the whole last minute of that one address (~0.1–0.2 ms a
submission in a 1M run).

The database is filled with ``voronka generate --contacts N`` (bulk rows) and ``voronka intake reindex``
(the name index of duplicate search). The server is gunicorn (2 workers × 4 threads) on 127.0.0.1; the
clients are separate processes (no GIL between them). Figures: requests per second over ``--seconds``,
p50/p95 latency, and the form/baseline ratio (target ≥ 0.5).

``--mode background`` posts to a form «in the background» (the door checks the fields and queues the payload) with
``--workers`` real ``voronka worker --no-tasks`` processes running: the clients post for ``--seconds``, then the
run waits until the queue is empty. Figures: accepted/s (the HTTP side), processed/s (the posted count over the
time from the first post until the queue is empty: the honest figure, and the one the ratio uses), and the queue
delay (processed_at − received_at) p50/p95. The workers also sweep the outbox (the robots' events), as in
production. ``--mode both`` measures at once, then in the background.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
FIRST = ["Иван", "Мария", "Пётр", "Анна", "Олег", "Елена", "Сергей", "Ольга", "Дмитрий", "Татьяна"]
LAST = ["Иванов", "Смирнова", "Кузнецов", "Попова", "Васильев", "Петрова", "Соколов", "Михайлова"]


def log(text: str) -> None:
    print(f"[intake-bench {time.strftime('%H:%M:%S', time.gmtime())}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def voronka(env: dict, *args: str) -> None:
    started = time.perf_counter()
    subprocess.run([str(BIN / "voronka"), *args], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    log(f"voronka {' '.join(args)}: {time.perf_counter() - started:.1f} s")


# --- the clients -----------------------------------------------------------------------------------

def _client(args) -> tuple[int, int, list[float]]:
    port, path, kind, seconds, seed = args
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ok = failed = 0
    times: list[float] = []
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        n += 1
        if kind == "baseline":
            body, ctype = json.dumps({"title": f"row {seed}-{n}"}).encode(), "application/json"
        else:
            phone = f"+7999{seed % 1000:03d}{n % 10000:04d}"
            body = urllib.parse.urlencode({
                "name": f"{rnd.choice(LAST)} {rnd.choice(FIRST)}", "phone": phone,
                "email": f"bench{seed}.{n}@example.ru", "question": "Нужна консультация"}).encode()
            ctype = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            headers = {"Content-Type": ctype, "Accept": "application/json"}
            if kind != "baseline":  # a visitor's address as the proxy appends it; each posts three times
                v = seed * 1_000_003 + n // 3
                headers["X-Forwarded-For"] = f"10.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            status = 0
        times.append(time.perf_counter() - started)
        if status in (200, 201, 202):
            ok += 1
        else:
            failed += 1
    conn.close()
    return ok, failed, times


def load(port: int, path: str, kind: str, clients: int, seconds: float) -> dict:
    with multiprocessing.Pool(clients) as pool:
        seeds = [random.randrange(1, 10**6) for _ in range(clients)]
        results = pool.map(_client, [(port, path, kind, seconds, s) for s in seeds])
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    times = sorted(t for r in results for t in r[2])
    p = (lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000) if times else (lambda q: 0.0)
    return {"rps": ok / seconds, "ok": ok, "failed": failed, "p50_ms": p(0.5), "p95_ms": p(0.95)}


# --- the server ------------------------------------------------------------------------------------

class Server:
    def __init__(self, env: dict, logfile: Path):
        self.env, self.logfile, self.port, self.proc = env, logfile, free_port(), None

    def __enter__(self):
        out = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "voronka.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
             "--worker-class", "gthread", "--threads", "4", "--keep-alive", "75", "--timeout", "120",
             "--log-level", "warning"], cwd=ROOT, env=self.env, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.logfile}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/bench/baseline/")
                if conn.getresponse().status == 405:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


# --- setup and the in-process lookup measurement ----------------------------------------------------

def setup_form() -> None:
    """A queue of five present sellers, a form «bench» processed at once and «bench-bg» processed in the
    background (in this process, through the actions)."""
    from voronka.core.actor import Actor
    from voronka.distribution.actions import create_queue
    from voronka.identity.models import User
    from voronka.intake.forms import create_form
    from voronka.intake.models import WebForm

    if WebForm.objects.filter(slug="bench").exists():
        if not WebForm.objects.filter(slug="bench-bg").exists():  # a var dir of an earlier version of the bench
            from voronka.core.actor import Actor as _Actor

            form = WebForm.objects.get(slug="bench")
            admin = User.objects.filter(is_superuser=True).first()
            create_form(_Actor.for_user(admin, "bench"), slug="bench-bg", name="Bench (background)", source="bench",
                        queue=form.queue_id, fields=form.fields, mode="background")
        return
    admin = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser("bench-admin", "", "x")
    actor = Actor.for_user(admin, "bench")
    sellers = [User.objects.create_user(f"bench-seller{i}", f"bs{i}@example.ru", "x", first_name=f"S{i}")
               for i in range(5)]
    from voronka.pipelines.actions import create_pipeline
    from voronka.pipelines.models import Pipeline

    if not Pipeline.objects.filter(entity_type_id=1).exists():
        create_pipeline(actor, entity_type_id=1, name="Лиды", code="leads", stages=[
            {"name": "Не обработан", "code": "new"}, {"name": "В работе", "code": "work"},
            {"name": "Сконвертирован", "code": "converted", "semantics": "success"},
            {"name": "Некачественный", "code": "junk", "semantics": "failure"}])
    queue = create_queue(actor, code="bench", name="Bench", members=[{"user": u.pk} for u in sellers])
    fields = [
        {"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
        {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
        {"name": "email", "label": "E-mail", "type": "email", "maps_to": "emails"},
        {"name": "question", "label": "Вопрос", "type": "textarea", "maps_to": "inquiry"}]
    create_form(actor, slug="bench", name="Bench", source="bench", queue=queue.pk, fields=fields, mode="now")
    create_form(actor, slug="bench-bg", name="Bench (background)", source="bench", queue=queue.pk, fields=fields,
                mode="background")


class Workers:
    """``count`` real ``voronka worker --no-tasks`` processes (the outbox sweep and the engine jobs: the intake queue)."""

    def __init__(self, env: dict, count: int, logfile: Path, interval: float):
        self.env, self.count, self.logfile, self.interval, self.procs = env, count, logfile, interval, []

    def __enter__(self):
        out = open(self.logfile, "ab")
        for _i in range(self.count):
            self.procs.append(subprocess.Popen(
                [str(BIN / "voronka"), "worker", "--no-tasks", "--interval", str(self.interval)], cwd=ROOT,
                env=self.env, stdout=out, stderr=out, start_new_session=True))
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def background(port: int, clients: int, seconds: float, env: dict, workers: int, logfile: Path,
               interval: float) -> dict:
    """Post to the background form for ``seconds`` with ``workers`` workers running, then wait for the queue to
    drain. processed/s = accepted submissions / (first post → queue empty)."""
    from django.db import connection

    from voronka.core.management.commands.worker import sweep
    from voronka.intake.models import IntakeLog

    # the outbox events earlier runs left (the at-once form's: that run does not deliver them) are delivered first,
    # untimed: the workers then deliver only the events of this run's submissions
    started = time.monotonic()
    log(f"outbox backlog: {sweep()} event(s) delivered in {time.monotonic() - started:.1f} s (not counted)")
    last = IntakeLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    connection.close()
    with Workers(env, workers, logfile, interval):
        time.sleep(2)  # the workers' start (Django setup), not counted
        started = time.monotonic()
        http = load(port, "/f/bench-bg/", "form", clients, seconds)
        posted = time.monotonic()
        while IntakeLog.objects.filter(pk__gt=last, status="queued").exists():
            time.sleep(0.1)
            if time.monotonic() - posted > 1800:
                raise RuntimeError("the queue did not drain within 30 minutes")
        drained = time.monotonic()
        connection.close()
    rows = IntakeLog.objects.filter(pk__gt=last, channel="form").values_list("received_at", "processed_at",
                                                                            "status")
    delays = sorted((p - r).total_seconds() for r, p, _s in rows if p is not None)
    statuses: dict[str, int] = {}
    for _r, _p, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
    connection.close()
    p = (lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000) if delays else (lambda q: 0.0)
    return {"accepted_rps": http["rps"], "ok": http["ok"], "failed": http["failed"], "http_p50_ms": http["p50_ms"],
            "http_p95_ms": http["p95_ms"], "processed_rps": http["ok"] / (drained - started),
            "drain_s": drained - posted, "delay_p50_ms": p(0.5), "delay_p95_ms": p(0.95), "statuses": statuses}


def lookups(samples: int) -> dict:
    """Duplicate lookups of existing contacts' phones, e-mails and names, in-process: the database work and
    the scoring, without HTTP."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.core import entity_types
    from voronka.intake import duplicates
    from voronka.parties.models import Communication, Contact

    top = Contact.objects.order_by("-id").values_list("id", flat=True).first() or 0
    rnd = random.Random(7)
    ids = [rnd.randint(1, top) for _ in range(samples)] if top else []
    comms = {}
    for c in Communication.objects.filter(entity_type_id=entity_types.CONTACT, entity_id__in=ids):
        comms.setdefault((c.kind, c.entity_id), c.normalized)
    people = {c.pk: c for c in Contact.objects.filter(pk__in=ids).select_related("company")}
    result = {}
    for label, make in (
            ("phone", lambda i: {"phones": [comms[("phone", i)]]} if ("phone", i) in comms else None),
            ("email", lambda i: {"emails": [comms[("email", i)]]} if ("email", i) in comms else None),
            ("name + company", lambda i: {"name": people[i].full_name,
                                          "company": people[i].company.name if people[i].company else ""}
             if i in people else None)):
        times, cpu, found, queries = [], [], 0, 0
        for i in ids:
            criteria = make(i)
            if criteria is None:
                continue
            with CaptureQueriesContext(connection) as ctx:
                started, started_cpu = time.perf_counter(), time.thread_time()
                matches = duplicates.find(**criteria)
                times.append(time.perf_counter() - started)
                cpu.append(time.thread_time() - started_cpu)
            queries = max(queries, len(ctx.captured_queries))
            found += any(m.id == i and m.entity_type_id == entity_types.CONTACT for m in matches)
        times.sort()
        result[label] = {"n": len(times), "found": found,
                         "p50_ms": statistics.median(times) * 1000 if times else 0,
                         "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000 if times else 0,
                         "cpu_p50_ms": statistics.median(cpu) * 1000 if cpu else 0, "max_queries": queries}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts stored (default 1,000,000)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds per measurement (default 20)")
    parser.add_argument("--clients", default="1,8", help="client counts, comma separated (default 1,8)")
    parser.add_argument("--lookups", type=int, default=300, help="duplicate lookups per kind (default 300)")
    parser.add_argument("--var", default="", help="var directory to use (kept; default: a temporary one)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument("--lookups-only", action="store_true",
                        help="only the duplicate lookups (no server, no HTTP load): to iterate on the search")
    parser.add_argument("--mode", choices=["now", "background", "both"], default="now",
                        help="the form processed at once (default), in the background (queued, workers), or both")
    parser.add_argument("--workers", type=int, default=2, help="voronka worker processes in background mode (2)")
    parser.add_argument("--worker-interval", type=float, default=0.5,
                        help="the workers' --interval, seconds between polls of an empty queue (default 0.5)")
    parser.add_argument("--no-lookups", action="store_true", help="skip the in-process duplicate lookups")
    opts = parser.parse_args()
    var = Path(opts.var) if opts.var else Path(tempfile.mkdtemp(prefix="vk-intake-bench-"))
    # the clients are many visitors behind a proxy (each address posts three times), as a site's are: the rate limit
    # counts each visitor's few rows under the default limit, not one address's flood under a raised one
    env = {**os.environ, "VORONKA_VAR_DIR": str(var), "VORONKA_BENCH": "1", "VORONKA_TRUSTED_PROXIES": "1",
           "DJANGO_SETTINGS_MODULE": "voronka.settings", "PYTHONPATH": str(ROOT)}
    env.pop("VORONKA_FORM_RATE_LIMIT", None)
    os.environ.update({k: env[k] for k in ("VORONKA_VAR_DIR", "VORONKA_BENCH", "VORONKA_TRUSTED_PROXIES",
                                           "DJANGO_SETTINGS_MODULE")})
    database = "PostgreSQL" if os.environ.get("VORONKA_DATABASE_URL", "").startswith("postgres") else "SQLite"
    log(f"{database}, var {var}, {opts.contacts:,} contacts")
    try:
        voronka(env, "migrate", "--noinput", "-v", "0")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from voronka.parties.models import Contact

        have = Contact.objects.count()
        if have < opts.contacts:
            voronka(env, "generate", "--contacts", str(opts.contacts - have),
                    "--companies", str(max(1, (opts.contacts - have) // 10)), "--no-progress")
            voronka(env, "intake", "reindex")
        from django.db import connection

        figures = {"database": database, "contacts": Contact.objects.count(), "runs": []}
        if not opts.lookups_only:
            setup_form()
            connection.close()
        with Server(env, var / "intake-bench-gunicorn.log") if not opts.lookups_only else nullcontext() as server:
            for clients in [int(c) for c in opts.clients.split(",") if c.strip() and not opts.lookups_only]:
                base = load(server.port, "/bench/baseline/", "baseline", clients, opts.seconds)
                run = {"clients": clients, "baseline": base}
                if opts.mode in ("now", "both"):
                    form = load(server.port, "/f/bench/", "form", clients, opts.seconds)
                    ratio = form["rps"] / base["rps"] if base["rps"] else 0
                    run.update(form=form, ratio=ratio)
                    log(f"{clients} client(s): baseline {base['rps']:.1f}/s, form {form['rps']:.1f}/s "
                        f"(p50 {form['p50_ms']:.0f} ms, p95 {form['p95_ms']:.0f} ms, failed {form['failed']}), "
                        f"ratio {ratio:.2f}")
                if opts.mode in ("background", "both"):
                    bg = background(server.port, clients, opts.seconds, env, opts.workers,
                                    var / "intake-bench-workers.log", opts.worker_interval)
                    bg["ratio"] = bg["processed_rps"] / base["rps"] if base["rps"] else 0
                    run["background"] = bg
                    log(f"{clients} client(s), background with {opts.workers} worker(s): accepted "
                        f"{bg['accepted_rps']:.1f}/s, processed {bg['processed_rps']:.1f}/s (drain "
                        f"{bg['drain_s']:.1f} s), delay p50 {bg['delay_p50_ms']:.0f} ms p95 {bg['delay_p95_ms']:.0f}"
                        f" ms, {bg['statuses']}, ratio {bg['ratio']:.2f}")
                figures["runs"].append(run)
        figures["lookups"] = {} if opts.no_lookups else lookups(opts.lookups)
    finally:
        if not opts.var:
            shutil.rmtree(var, ignore_errors=True)
    print(f"\n### Intake at {figures['contacts']:,} contacts ({database}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f})\n")
    if any("form" in run for run in figures["runs"]):
        print("| clients | baseline /s | form /s | form p50 ms | form p95 ms | failed | form / baseline |")
        print("|---|---|---|---|---|---|---|")
        for run in figures["runs"]:
            b, f = run["baseline"], run.get("form")
            if f:
                print(f"| {run['clients']} | {b['rps']:.1f} | {f['rps']:.1f} | {f['p50_ms']:.0f} | "
                      f"{f['p95_ms']:.0f} | {f['failed']} | {run['ratio']:.2f} |")
    if any("background" in run for run in figures["runs"]):
        print(f"\nIn the background, {opts.workers} worker(s):\n")
        print("| clients | baseline /s | accepted /s | HTTP p50 ms | HTTP p95 ms | processed /s | drain s | "
              "queue delay p50 ms | p95 ms | processed / baseline |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for run in figures["runs"]:
            b, g = run["baseline"], run.get("background")
            if g:
                print(f"| {run['clients']} | {b['rps']:.1f} | {g['accepted_rps']:.1f} | {g['http_p50_ms']:.0f} | "
                      f"{g['http_p95_ms']:.0f} | {g['processed_rps']:.1f} | {g['drain_s']:.1f} | "
                      f"{g['delay_p50_ms']:.0f} | {g['delay_p95_ms']:.0f} | {g['ratio']:.2f} |")
    # CPU: this process's own time (SQLite's work included, PostgreSQL's not): on a busy machine the wall time
    # is mostly waiting for a core
    print("\n| duplicate lookup | lookups | found | p50 ms | p95 ms | CPU p50 ms | queries |")
    print("|---|---|---|---|---|---|---|")
    for label, row in figures["lookups"].items():
        print(f"| {label} | {row['n']} | {row['found']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
              f"{row['cpu_p50_ms']:.2f} | {row['max_queries']} |")
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
