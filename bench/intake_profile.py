"""Queries and time of one web-form submission, in-process (no HTTP server): the numbers a busy machine does
not change (queries per submission) next to the time, and a cProfile of the submissions.

    .venv/bin/python bench/intake_profile.py --contacts 50000 --var /tmp/vk-intake-50k        # fill once, keep
    .venv/bin/python bench/intake_profile.py --var /tmp/vk-intake-50k --submissions 100 --profile 25
    scripts/with-postgres.sh .venv/bin/python bench/intake_profile.py --contacts 50000

It uses the database and the form of ``bench/intake_bench.py`` (``voronka generate``, ``voronka intake
reindex``, a form «bench» with a queue of five sellers) and posts submissions like its clients do: a new
phone and e-mail each time and a name from a small pool. ``--kind`` chooses what the submissions repeat:
``new`` (nothing known: the name search runs), ``phone`` (an existing contact's phone: the name search is
skipped), ``name`` (an existing contact's name and company, a new phone).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import random
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
    parser.add_argument("--contacts", type=int, default=0, help="fill up to this many contacts first")
    parser.add_argument("--var", default="", help="var directory (kept; default: a temporary one)")
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--kind", choices=("new", "phone", "name"), default="new")
    parser.add_argument("--encoding", choices=("urlencoded", "multipart", "json"), default="urlencoded",
                        help="how the submissions are posted (urlencoded: a plain HTML form, the embed script and "
                             "intake_bench.py; multipart: what the test client posts by default)")
    parser.add_argument("--addresses", type=int, default=1,
                        help="client addresses the submissions come from, at random (1: all from 127.0.0.1, as the "
                             "HTTP bench's clients; the rate limit then counts every submission of the last minute)")
    parser.add_argument("--profile", type=int, default=0, help="print this many cProfile lines (cumulative)")
    parser.add_argument("--profile-out", default="", help="also write the cProfile statistics to this file (pstats)")
    parser.add_argument("--sample", type=int, default=0,
                        help="a sampled CPU profile (ITIMER_PROF) of --sample-n more submissions: print this many lines")
    parser.add_argument("--sample-n", type=int, default=1000, help="submissions run under the sampler")
    parser.add_argument("--sample-callers", default="",
                        help="also print who calls the functions whose name contains this (their callers' callers)")
    parser.add_argument("--layers", action="store_true",
                        help="CPU per layer of a submission (wrappers with a CPU clock around each layer's entry)")
    parser.add_argument("--ab", default="",
                        help="A/B in one process: rounds of the baseline, then the submissions with this session's "
                             "change switched off (A) and on (B), interleaved; comma-separated, of: " + ", ".join(sorted(TOGGLES)))
    parser.add_argument("--queries", action="store_true", help="print the statements of the last submission of each outcome")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of interleaved baseline / submission blocks for the CPU-time ratio (0: none)")
    opts = parser.parse_args()
    var = Path(opts.var) if opts.var else Path(tempfile.mkdtemp(prefix="vk-intake-prof-"))
    os.environ.update({"VORONKA_VAR_DIR": str(var), "VORONKA_BENCH": "1", "VORONKA_FORM_RATE_LIMIT": "1000000000",
                       "DJANGO_SETTINGS_MODULE": "voronka.settings"})
    import intake_bench

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    intake_bench.voronka(env, "migrate", "--noinput", "-v", "0")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from voronka.parties.models import Communication, Contact

    have = Contact.objects.count()
    if opts.contacts > have:
        intake_bench.voronka(env, "generate", "--contacts", str(opts.contacts - have),
                             "--companies", str(max(1, (opts.contacts - have) // 10)), "--no-progress")
        intake_bench.voronka(env, "intake", "reindex")
    intake_bench.setup_form()
    settings.ALLOWED_HOSTS = ["*"]
    database = connection.vendor
    rnd = random.Random(time.time_ns())  # new phones every run: earlier runs must not match them
    top = Contact.objects.order_by("-id").values_list("id", flat=True).first() or 1
    client = Client()

    def body(n: int) -> dict:
        data = {"name": f"{rnd.choice(intake_bench.LAST)} {rnd.choice(intake_bench.FIRST)}",
                "phone": f"+7998{rnd.randrange(10**7):07d}", "email": f"prof{n}.{rnd.randrange(10**9)}@example.ru",
                "question": "Нужна консультация"}
        if opts.kind != "new":
            contact = Contact.objects.select_related("company").filter(pk__gte=rnd.randint(1, top)).order_by("pk").first()
            if opts.kind == "phone":
                data["phone"] = Communication.objects.filter(entity_type_id=3, entity_id=contact.pk, kind="phone") \
                    .values_list("value", flat=True).first() or data["phone"]
            else:
                data["name"] = contact.full_name
        return data

    import json
    import urllib.parse

    def post(data: dict):
        extra = {"REMOTE_ADDR": f"10.0.{rnd.randrange(opts.addresses) // 250}.{rnd.randrange(opts.addresses) % 250 + 1}"} \
            if opts.addresses > 1 else {}
        if opts.encoding == "multipart":
            return client.post("/f/bench/", data, HTTP_ACCEPT="application/json", **extra)
        if opts.encoding == "json":
            return client.post("/f/bench/", json.dumps(data), content_type="application/json",
                               HTTP_ACCEPT="application/json", **extra)
        return client.post("/f/bench/", urllib.parse.urlencode(data), content_type="application/x-www-form-urlencoded",
                           HTTP_ACCEPT="application/json", **extra)

    bodies = [body(n) for n in range(opts.submissions)]
    post(bodies[0])  # warm up (imports, caches)
    base_client = Client()
    base_client.post("/bench/baseline/", '{"title": "x"}', content_type="application/json")
    from voronka.intake.models import IntakeLog

    counts, times, statuses = [], [], collections.Counter()
    by_outcome: dict[str, list[int]] = collections.defaultdict(list)
    last: dict[str, list] = {}
    profiler = cProfile.Profile(time.process_time) if opts.profile else None
    for data in bodies:
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            response = post(data)
            if profiler:
                profiler.disable()
            times.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
        counts.append(len(ctx.captured_queries))
        outcome = IntakeLog.objects.order_by("-id").values_list("status", flat=True).first()
        by_outcome[outcome].append(len(ctx.captured_queries))
        last[outcome] = ctx.captured_queries
    times.sort()

    print(f"\n{database}, {Contact.objects.count():,} contacts, {opts.submissions} submissions ({opts.kind}), "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"queries per submission: min {min(counts)}, median {statistics.median(counts)}, max {max(counts)}; "
          "by outcome: " + ", ".join(f"{k} {statistics.median(v)} (×{len(v)})" for k, v in sorted(by_outcome.items())))
    print(f"time per submission: p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {times[int(0.95 * (len(times) - 1))] * 1000:.1f} ms")
    print(f"HTTP statuses: {dict(statuses)}")
    if opts.rounds:
        # CPU time (time.process_time: other processes' load changes it little), baseline and submissions interleaved
        per = max(10, opts.submissions // 2)
        cpu = {"baseline": [], "form": []}
        more = [body(opts.submissions + n) for n in range(per * opts.rounds)]
        for r in range(opts.rounds):
            c0 = time.process_time()
            for _ in range(per):
                base_client.post("/bench/baseline/", '{"title": "x"}', content_type="application/json")
            cpu["baseline"].append((time.process_time() - c0) / per)
            c0 = time.process_time()
            for data in more[r * per:(r + 1) * per]:
                post(data)
            cpu["form"].append((time.process_time() - c0) / per)
        ratios = [b / f for b, f in zip(cpu["baseline"], cpu["form"], strict=True)]
        print(f"CPU ms per request ({opts.rounds} rounds × {per}): baseline median "
              f"{statistics.median(cpu['baseline']) * 1000:.2f} (best {min(cpu['baseline']) * 1000:.2f}), form median "
              f"{statistics.median(cpu['form']) * 1000:.2f} (best {min(cpu['form']) * 1000:.2f}); ratio median "
              f"{statistics.median(ratios):.2f}, best {min(cpu['baseline']) / min(cpu['form']):.2f} "
              f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    for toggle in filter(None, opts.ab.split(",")):
        per = max(10, opts.submissions // 2)
        more = [body(3 * 10**6 + n) for n in range(2 * per * opts.rounds)]
        off, on = TOGGLES[toggle](client)
        cpu = {"baseline": [], "A": [], "B": []}
        for r in range(opts.rounds):
            c0 = time.process_time()
            for _ in range(per):
                base_client.post("/bench/baseline/", '{"title": "x"}', content_type="application/json")
            cpu["baseline"].append((time.process_time() - c0) / per)
            for side, switch in (("A", off), ("B", on)) if r % 2 == 0 else (("B", on), ("A", off)):
                switch()
                chunk = more[(2 * r + (side == "B")) * per:(2 * r + (side == "B") + 1) * per]
                c0 = time.process_time()
                for data in chunk:
                    post(data)
                cpu[side].append((time.process_time() - c0) / per)
        on()
        med = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
        paired = statistics.median(b - a for a, b in zip(cpu["A"], cpu["B"], strict=True)) * 1000
        print(f"A/B «{toggle}» ({opts.rounds} rounds × {per}, CPU ms median): baseline {med['baseline']:.3f}, "
              f"A (off) {med['A']:.3f}, B (on) {med['B']:.3f}, B − A {med['B'] - med['A']:+.3f}, "
              f"median of the paired rounds' B − A {paired:+.3f}; "
              f"ratio A {med['baseline'] / med['A']:.3f}, B {med['baseline'] / med['B']:.3f}")
    if opts.sample:
        extra = [body(10**6 + n) for n in range(opts.sample_n)]
        print_samples(lambda data: post(data), extra, opts.sample, callers=opts.sample_callers)
    if opts.layers:
        extra = [body(2 * 10**6 + n) for n in range(max(opts.submissions, 200))]
        print_layers(lambda data: post(data), extra,
                     lambda: base_client.post("/bench/baseline/", '{"title": "x"}', content_type="application/json"))
    if opts.queries:
        for outcome, queries in sorted(last.items()):
            print(f"\nstatements of the last «{outcome}» submission ({len(queries)}):")
            for q in queries:
                sql = re.sub(r"\s+", " ", q["sql"])[:200]
                print(f"  {sql}")
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        if opts.profile_out:
            stats.dump_stats(opts.profile_out)
        stats.sort_stats("cumulative").print_stats(opts.profile)
        stats.sort_stats("tottime").print_stats(opts.profile // 2)
        print(out.getvalue())


def _door_toggle(client):
    from voronka.intake.middleware import FormDoorStack

    if client.handler._middleware_chain is None:
        client.handler.load_middleware()
    step, door = client.handler._middleware_chain, None
    while step is not None and door is None:
        layer = getattr(step, "__wrapped__", None)
        door = layer if isinstance(layer, FormDoorStack) else None
        step = getattr(layer, "get_response", None)
    short = door.short

    def off():
        door.short = None

    def on():
        door.short = short
    return off, on


def _attr_toggle(module: str, attr: str, replacement):
    def make(client):
        import importlib

        owner = importlib.import_module(module)
        original = getattr(owner, attr)
        return (lambda: setattr(owner, attr, replacement(original))), (lambda: setattr(owner, attr, original))
    return make


TOGGLES = {
    "door": _door_toggle,  # the form door's short middleware stack
    "logrow": _attr_toggle("voronka.intake.actions", "_reserve_id", lambda original: lambda entry: False),
}


def print_samples(submit, bodies: list, top: int, interval: float = 0.0002, callers: str = "") -> None:
    """Sample the stack every ``interval`` seconds of this process's CPU time (``ITIMER_PROF``) while the
    submissions run, and print where the time goes per function, inclusive (on the stack) and own (on top), in µs
    per submission. Unlike cProfile it adds nothing per call (cheap functions called often are not inflated); time
    in C (SQLite, rapidfuzz, JSON) counts for the Python function that called it."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    chains: collections.Counter = collections.Counter()  # (function, caller, its caller) of ``callers``
    total = [0]

    def on_tick(signum, frame):
        total[0] += 1
        if frame is None:
            return
        own[code_name(frame.f_code)] += 1
        if callers:
            step, chain = frame, []
            while step is not None and not chain:
                if callers in step.f_code.co_name or callers in step.f_code.co_filename:
                    chain = [code_name(step.f_code)]
                    up = step.f_back
                    while up is not None and len(chain) < 4:
                        if not (callers in up.f_code.co_name or callers in up.f_code.co_filename):
                            chain.append(code_name(up.f_code))
                        up = up.f_back
                step = step.f_back
            if chain:
                chains[" < ".join(chain)] += 1
        on_stack(frame, code_name, inclusive)

    def work():
        for data in bodies:
            submit(data)

    spent = run_sampled(work, on_tick, interval)
    n = len(bodies)
    per_sample = spent / max(1, total[0]) / n * 1e6  # µs of one submission that one sample stands for
    print(f"\nsampled profile: {n} submissions, {total[0]} samples, {spent / n * 1000:.3f} ms CPU per submission")
    counters = [("inclusive time", inclusive), ("own time", own)]
    if callers:
        counters.append((f"«{callers}»'s callers", chains))
    print_counters(counters, per_sample, "submission", top)


def print_layers(submit, bodies: list, baseline, rounds: int = 3) -> None:
    """Wrap the entry of each layer of a submission with a CPU clock and print where its time goes, next to the
    baseline request's CPU (the wrappers cost about a microsecond each; their own time is in the outer layer)."""
    from django.core.handlers.base import BaseHandler
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.http import request as http_request

    from voronka.core import history, outbox
    from voronka.intake import actions, duplicates, views

    spent: dict[str, float] = collections.defaultdict(float)
    clock = time.process_time
    originals = []

    def patch(owner, attr, name):
        fn = owner[attr] if isinstance(owner, dict) else owner.__dict__[attr]
        originals.append((owner, attr, fn))

        def wrapper(*args, **kwargs):
            started = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += clock() - started
        if isinstance(owner, dict):
            owner[attr] = wrapper
        else:
            setattr(owner, attr, wrapper)

    patch(BaseHandler, "get_response", "handler")  # middleware + URL resolution + view
    patch(views, "form_page", "view")
    patch(views, "_form", "form")
    patch(views, "_rate_limited", "rate")
    patch(http_request.HttpRequest, "_load_post_and_files", "post")
    patch(actions, "submit", "submit")
    patch(actions.CHECKS, "form", "check")
    patch(actions, "_run", "run")
    patch(actions, "find_duplicates", "find")
    patch(actions, "_comment_on", "comment")
    patch(history, "bind", "bind")
    patch(duplicates, "open_deal_ids", "deals")
    patch(outbox, "emit_rows", "events")
    patch(actions, "_save_outcome", "outcome")
    patch(BaseDatabaseWrapper, "commit", "commit")
    patch(BaseDatabaseWrapper, "set_autocommit", "begin")
    # the view's URL callback was bound at URL resolution: re-resolve through the module attribute
    from django.urls import get_resolver

    resolver = get_resolver()
    resolved = resolver.resolve("/f/bench/")
    pattern_callback = resolved.func
    try:
        def walk(patterns):
            for p in patterns:
                if hasattr(p, "url_patterns"):
                    walk(p.url_patterns)
                elif p.callback is pattern_callback:
                    p.callback = views.form_page
                    originals.append((p, "callback", pattern_callback))
        walk(resolver.url_patterns)
        totals: dict[str, float] = collections.defaultdict(float)
        whole = base = 0.0
        per_round = len(bodies) // rounds
        for r in range(rounds):
            started = clock()
            for _ in range(per_round):
                baseline()
            base += clock() - started
            spent.clear()
            started = clock()
            for data in bodies[r * per_round:(r + 1) * per_round]:
                submit(data)
            whole += clock() - started
            for k, v in spent.items():
                totals[k] += v
    finally:
        for owner, attr, fn in reversed(originals):
            if isinstance(owner, dict):
                owner[attr] = fn
            else:
                setattr(owner, attr, fn)
    n = per_round * rounds
    per = {k: v / n * 1000 for k, v in totals.items()}
    total = whole / n * 1000
    rows = [
        ("test client + WSGI request (outside the handler)", total - per["handler"]),
        ("middleware + URL resolution", per["handler"] - per["view"]),
        ("view: the form (cached row)", per["form"]),
        ("view: rate limit", per["rate"]),
        ("view: POST parsing", per["post"]),
        ("view: the rest (meta, answer, language, CORS)", per["view"] - per["form"] - per["rate"] - per["post"]
         - per["submit"]),
        ("submit: the form's checks", per["check"]),
        ("submit: BEGIN + COMMIT", per.get("begin", 0) + per.get("commit", 0)),
        ("submit: the rest (log row id + INSERT, atomic)", per["submit"] - per["check"] - per["run"]
         - per.get("begin", 0) - per.get("commit", 0)),
        ("run: duplicate search", per["find"]),
        ("run: comment (timeline entry)", per.get("comment", 0)),
        ("run: open deals", per.get("deals", 0)),
        ("run: events INSERT", per["events"]),
        ("run: log outcome UPDATE (replays, queue)", per.get("outcome", 0)),
        ("run: the rest (actor, routing, outcome)", per["run"] - per["find"] - per.get("comment", 0)
         - per.get("deals", 0) - per["events"] - per.get("outcome", 0)),
    ]
    print(f"\nCPU per submission by layer ({rounds} rounds × {per_round}, ms): whole {total:.3f}, "
          f"baseline request {base / n * 1000:.3f}")
    for label, ms in rows:
        print(f"  {ms:7.3f}  {label}")


if __name__ == "__main__":
    main()
