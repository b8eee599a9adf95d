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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=0, help="fill up to this many contacts first")
    parser.add_argument("--var", default="", help="var directory (kept; default: a temporary one)")
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--kind", choices=("new", "phone", "name"), default="new")
    parser.add_argument("--profile", type=int, default=0, help="print this many cProfile lines (cumulative)")
    parser.add_argument("--queries", action="store_true", help="print the statements of the last submission")
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

    bodies = [body(n) for n in range(opts.submissions)]
    client.post("/f/bench/", bodies[0], HTTP_ACCEPT="application/json")  # warm up (imports, caches)
    counts, times, statuses = [], [], collections.Counter()
    last = None
    profiler = cProfile.Profile() if opts.profile else None
    for data in bodies:
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            response = client.post("/f/bench/", data, HTTP_ACCEPT="application/json")
            if profiler:
                profiler.disable()
            times.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
        counts.append(len(ctx.captured_queries))
        last = ctx.captured_queries
    times.sort()
    from voronka.intake.models import IntakeLog

    outcomes = collections.Counter(IntakeLog.objects.order_by("-id").values_list("status", flat=True)[:opts.submissions])
    print(f"\n{database}, {Contact.objects.count():,} contacts, {opts.submissions} submissions ({opts.kind}), "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"queries per submission: min {min(counts)}, median {statistics.median(counts)}, max {max(counts)}")
    print(f"time per submission: p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {times[int(0.95 * (len(times) - 1))] * 1000:.1f} ms")
    print(f"HTTP statuses: {dict(statuses)}; outcomes: {dict(outcomes)}")
    if opts.queries and last:
        print("\nstatements of the last submission:")
        for q in last:
            sql = re.sub(r"\s+", " ", q["sql"])[:220]
            print(f"  {q['time']}  {sql}")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(opts.profile)
        print(out.getvalue())


if __name__ == "__main__":
    main()
