"""Analytics benchmark (issue 8): every report and the head's dashboard over a generated database.

    .venv/bin/python bench/analytics_bench.py --leads 10000 --deals 3000                  # SQLite, a smoke run
    scripts/with-postgres.sh .venv/bin/python bench/analytics_bench.py --leads 1000000 --deals 300000
    .venv/bin/python bench/analytics_bench.py --leads 1000000 --deals 300000 --repeat 5   # SQLite, the target

It starts from an empty database (a temporary SQLite file, or the PostgreSQL named by VORONKA_DATABASE_URL,
which with-postgres.sh sets to a throwaway cluster), migrates, fills it with ``voronka generate`` (leads and
deals with stage history spread over the last year; the fill is timed but not part of the figures), and then
runs each report ``--repeat`` times as a superuser and as a sales manager (rights narrow every query), over the
last 30 days (grouped by day) and the last 365 days (grouped by month), plus the head's dashboard page
(GET /reports/dashboard/ through Django's test client, the whole page with its eleven reports).

With ``--existing`` nothing is created: the reports run against the database the environment names as it is
(VORONKA_DATABASE_URL, else the SQLite file under VORONKA_VAR_DIR), with no migration, no fill and no writes at
all (the connection is made read-only: ``default_transaction_read_only`` on PostgreSQL, ``PRAGMA query_only`` on
SQLite; the dashboard page is rendered by calling the view, without a session). It picks the superuser and the
sales manager (role ``sales_manager``) with the most leads and deals among the users already there, and prints
what it found (leads, deals, stage-history rows)::

    eval $(/work/benchdata/pg1m.sh env) && .venv/bin/python bench/analytics_bench.py --existing --compare
    VORONKA_VAR_DIR=/work/benchdata/sq1m .venv/bin/python bench/analytics_bench.py --existing --only funnel,deals

With ``--compare`` every report (and the dashboard) runs alternately through the daily read model and through
the exact path (``voronka.analytics.readmodel.ENABLED`` off), with the number of queries of each: the A/B of
docs/benchmarks-analytics.md. The fill ends with a rebuild of the read models (the manager's share of records is
handed over with plain UPDATEs, which bypass the actions).

With ``--observe N`` the fill also makes the manager an observer of N deals and N leads that his roles do not let
him read (spread over the year), as in the kept 1M databases and in seed 002 (a seller observes his client's
production deal): the reports then merge those records' own contributions into the read models' figures. The
database named by VORONKA_DATABASE_URL (a kept SQLite file or PostgreSQL database) is filled instead of a
temporary one, so it can be kept for later ``--existing`` runs (A/B of two versions of the code).

Prints one line per report with p50 and max in milliseconds and writes the raw figures as JSON
(``--out``, default bench/results/analytics-<db>.json). Targets (docs/benchmarks.md): p50 ≤ 1 s on
PostgreSQL and ≤ 2 s on SQLite at 1M leads, 300k deals, 5M stage-history rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup_django(sqlite_dir: str | None) -> str:
    if sqlite_dir and not os.environ.get("VORONKA_DATABASE_URL"):
        os.environ["VORONKA_DATABASE_URL"] = f"sqlite:///{sqlite_dir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voronka.settings")
    os.environ.setdefault("VORONKA_SECRET_KEY", "bench-only-secret-key-not-for-production-use-000000")
    import django

    django.setup()
    from django.db import connection

    return connection.vendor


def read_only() -> None:
    """Make every statement of this process's connections read-only (``--existing``: the shared databases)."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    def lock(sender, connection, **kwargs):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET default_transaction_read_only = on")
            elif connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = ON")

    connection_created.connect(lock, weak=False)
    connection.close()  # the next statement connects again, through the signal
    connection.ensure_connection()


def pick_users():
    """The superuser and the sales manager with the most leads and deals among the users already there."""
    from django.db.models import Count

    from voronka.deals.models import Deal
    from voronka.identity.models import RoleAssignment, User
    from voronka.leads.models import Lead

    owned: dict[int, int] = {}
    for model in (Lead, Deal):
        for uid, n in (model.objects.filter(deleted_at__isnull=True, responsible_id__isnull=False)
                       .values("responsible_id").annotate(n=Count("id")).order_by()
                       .values_list("responsible_id", "n")):
            owned[uid] = owned.get(uid, 0) + n
    supers = list(User.objects.filter(is_superuser=True, is_active=True).values_list("id", flat=True))
    managers = list(RoleAssignment.objects.filter(role__code="sales_manager", user__is_active=True,
                                                  user__is_superuser=False).values_list("user_id", flat=True))
    # the role given to a department (as the demo does): its people, and those of its subdepartments if it says so
    from voronka.identity.models import Department

    for dept_id, subs in RoleAssignment.objects.filter(role__code="sales_manager", department__isnull=False) \
            .values_list("department_id", "with_subdepartments"):
        dept = Department.objects.get(pk=dept_id)
        depts = sorted(dept.descendant_ids()) if subs else [dept_id]
        managers += User.objects.filter(department_id__in=depts, is_active=True, is_superuser=False) \
            .values_list("id", flat=True)
    if not supers or not managers:
        raise SystemExit("[analytics-bench] --existing needs an active superuser and an active user with the "
                         "role sales_manager in the database")
    admin_id = max(supers, key=lambda u: (owned.get(u, 0), -u))
    manager_id = max(managers, key=lambda u: (owned.get(u, 0), -u))
    return User.objects.get(pk=admin_id), User.objects.get(pk=manager_id), owned


def observe_beyond_rights(manager, n: int) -> None:
    """Make ``manager`` observe ``n`` deals and ``n`` leads his roles do not let him read, evenly spread over the
    records' ids (so over the year); plain inserts (observers touch no read model)."""
    from voronka.core import policies
    from voronka.core.actor import Actor
    from voronka.core.models import Observer
    from voronka.deals.models import Deal
    from voronka.leads.models import Lead

    actor = Actor.for_user(manager, "bench")
    for type_id, model in ((1, Lead), (2, Deal)):
        live = model.objects.filter(deleted_at__isnull=True)
        beyond = live.exclude(pk__in=policies.visible(actor, type_id, live, observers=False).values("pk"))
        ids = list(beyond.order_by("pk").values_list("pk", flat=True))
        picked = ids[:: max(1, len(ids) // n)][:n] if ids else []
        Observer.objects.bulk_create([Observer(entity_type_id=type_id, entity_id=pk, user=manager) for pk in picked])
        print(f"[analytics-bench] {manager.username} observes {len(picked)} records of type {type_id} beyond his "
              f"rights: {picked}", flush=True)


def timed(fn, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1), "runs": repeat}


def path_of(fn) -> dict:
    """One more run of a report: its statements and which path answered (``read model``, ``records`` or ``-`` for
    reports without a read model), so a slow figure says whether the read model refused (another zone, an observer
    of records outside the viewer's rights, stages changed …)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        report = fn()
    flag = report.details.get("read_model")
    return {"queries": len(ctx.captured_queries),
            "path": "-" if flag is None else ("read model" if flag else "records")}


def ab(fn, repeat: int) -> dict:
    """Run ``fn`` with the daily read model and without it (the exact path), alternately, ``repeat`` times each:
    load on a shared machine hits both alike. Also the number of queries of one run of each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.analytics import readmodel

    times: dict = {"read model": [], "exact": []}
    queries: dict = {}
    try:
        for _ in range(repeat):
            for mode in times:
                readmodel.ENABLED = mode == "read model"
                with CaptureQueriesContext(connection) as ctx:
                    t0 = time.perf_counter()
                    fn()
                    times[mode].append((time.perf_counter() - t0) * 1000)
                queries[mode] = len(ctx.captured_queries)
    finally:
        readmodel.ENABLED = True
    return {mode: {"p50_ms": round(statistics.median(t), 1), "max_ms": round(max(t), 1), "runs": repeat,
                   "queries": queries[mode]} for mode, t in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--leads", type=int, default=10000)
    p.add_argument("--deals", type=int, default=3000)
    p.add_argument("--contacts", type=int, default=0, help="default: deals / 2")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--out", help="JSON results file")
    p.add_argument("--compare", action="store_true",
                   help="run every report with the daily read model and with the exact path, interleaved")
    p.add_argument("--only", help="comma-separated report slugs (default: all) and/or «dashboard»")
    p.add_argument("--observe", type=int, default=0,
                   help="the fill makes the manager observe N deals and N leads beyond his rights")
    p.add_argument("--existing", action="store_true",
                   help="run against the database named by the environment as it is: no migration, no fill, "
                        "no writes")
    opts = p.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="voronka-analytics-bench-")
    vendor = setup_django(None if opts.existing else tmp.name)
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from voronka.analytics import reports
    from voronka.analytics.plans import REPORTS as PLAN_REPORTS
    from voronka.core.actor import Actor
    from voronka.identity.models import Role, RoleAssignment, User
    from voronka.identity.permissions import rights_changed
    from voronka.leads.generate import generate
    from voronka.pipelines.models import StageHistory

    if opts.existing:
        read_only()
        admin, manager, owned = pick_users()
        from voronka.deals.models import Deal
        from voronka.leads.models import Lead

        counts = {"leads": Lead.objects.filter(deleted_at__isnull=True).count(),
                  "deals": Deal.objects.filter(deleted_at__isnull=True).count()}
        history = StageHistory.objects.count()
        fill = 0.0
        print(f"[analytics-bench] {vendor}, existing database (read-only): {counts['leads']} live leads, "
              f"{counts['deals']} live deals, {history} stage-history rows; superuser {admin.username} "
              f"(#{admin.pk}, {owned.get(admin.pk, 0)} records), sales manager {manager.username} "
              f"(#{manager.pk}, {owned.get(manager.pk, 0)} records)", flush=True)
        opts.leads, opts.deals = counts["leads"], counts["deals"]
        from voronka.pipelines import daily, stays

        print("[analytics-bench] read models built: " + ", ".join(
            f"{name} {'yes' if ok else 'NO (the reports count the records)'}" for name, ok in (
                ("daily totals of leads", daily.complete(1) and daily.stages_unchanged(1)),
                ("daily totals of deals", daily.complete(2) and daily.stages_unchanged(2)),
                ("lead conversion rows", daily.conversion_complete()),
                ("end-to-end rows", getattr(daily, "chain_complete", lambda: False)()),
                ("durations of leads", stays.complete(1)), ("durations of deals", stays.complete(2)))), flush=True)
        from voronka.analytics import readmodel

        m_actor = Actor.for_user(manager, "bench")
        print(f"[analytics-bench] {manager.username} observes beyond his rights: leads "
              f"{readmodel.observed_beyond_rights(m_actor, 1)}, deals {readmodel.observed_beyond_rights(m_actor, 2)}",
              flush=True)
    else:
        print(f"[analytics-bench] {vendor}: migrating", flush=True)
        call_command("migrate", verbosity=0)
        admin = User.objects.create_superuser("bench-admin", "b@example.ru", "bench-pass", time_zone="Europe/Moscow")
        manager = User.objects.create_user("bench-manager", "m@example.ru", "bench-pass", time_zone="Europe/Moscow")
        RoleAssignment.objects.create(role=Role.objects.get(code="sales_manager"), user=manager)
        rights_changed()
        t0 = time.perf_counter()
        contacts = opts.contacts or max(1, opts.deals // 2)
        generate(leads=opts.leads, deals=opts.deals, contacts=contacts, seed=opts.seed)
        fill = time.perf_counter() - t0
        # the generator gives everything to nobody or to random demo users; give the manager a share
        from voronka.deals.models import Deal
        from voronka.leads.models import Lead

        Lead.objects.filter(id__lt=opts.leads // 20 + 1).update(responsible=manager)
        Deal.objects.filter(id__lt=opts.deals // 20 + 1).update(responsible=manager)
        from voronka.pipelines import daily, totals

        t1 = time.perf_counter()
        for type_id, model in ((1, Lead), (2, Deal)):  # the updates above bypass the actions
            totals.rebuild(type_id, model)
            daily_rows = daily.rebuild(type_id, model)
            from voronka.pipelines.models import StayTotal

            print(f"[analytics-bench] daily totals of type {type_id}: {daily_rows} rows, stay totals: "
                  f"{StayTotal.objects.filter(entity_type_id=type_id).count()} rows", flush=True)
        print(f"[analytics-bench] rebuilt the read models in {time.perf_counter() - t1:.1f} s", flush=True)
        if opts.observe:
            observe_beyond_rights(manager, opts.observe)
        history = StageHistory.objects.count()
        print(f"[analytics-bench] filled {opts.leads} leads, {opts.deals} deals, {history} stage-history rows "
              f"in {fill:.0f} s", flush=True)

    today = timezone.now().date()
    periods = {"30 days by day": {"date_from": (today - dt.timedelta(days=29)).isoformat(), "date_to": today.isoformat(),
                                  "group": "day"},
               "365 days by month": {"date_from": (today - dt.timedelta(days=364)).isoformat(),
                                     "date_to": today.isoformat(), "group": "month"}}
    slugs = [*reports.REPORTS, *PLAN_REPORTS]
    only = set(opts.only.split(",")) if opts.only else None
    if only:
        slugs = [s for s in slugs if s in only]
    results: dict = {"db": vendor, "leads": opts.leads, "deals": opts.deals, "stage_history": history,
                     "fill_seconds": round(fill, 1), "reports": {}}
    for who, user in (("admin", admin), ("manager", manager)):
        actor = Actor.for_user(user, "bench")
        for label, query in periods.items():
            for slug in slugs:
                d = reports.definition(slug)
                q = dict(query)
                if d.group in ("none", "pipeline", "user"):
                    q["group"] = d.group
                def fn(s=slug, q=q, a=actor):
                    return reports.run(a, s, q)

                if opts.compare:  # the read model and the exact path, interleaved run by run
                    both = ab(fn, opts.repeat)
                    for mode, m in both.items():
                        results["reports"][f"{who} · {label} · {slug} · {mode}"] = m
                    mm, me = both["read model"], both["exact"]
                    print(f"{who:8} {label:18} {slug:16} model p50 {mm['p50_ms']:9.1f} ms {mm['queries']:3} q"
                          f"   exact p50 {me['p50_ms']:9.1f} ms {me['queries']:3} q", flush=True)
                    continue
                m = timed(fn, opts.repeat)
                m.update(path_of(fn))
                results["reports"][f"{who} · {label} · {slug}"] = m
                print(f"{who:8} {label:18} {slug:16} p50 {m['p50_ms']:9.1f} ms  max {m['max_ms']:9.1f} ms"
                      f"  {m['queries']:3} q  {m['path']}", flush=True)
    if opts.existing:  # the view itself, without a session or a login (they would write)
        from django.contrib.messages.storage.cookie import CookieStorage
        from django.contrib.sessions.backends.signed_cookies import SessionStore
        from django.test import RequestFactory

        from voronka.ui import analytics_views

        factory = RequestFactory()

        def get(path, data):
            request = factory.get(path, data)
            request.user, request.session = admin, SessionStore()
            request._messages = CookieStorage(request)
            return analytics_views.dashboard(request, who="head")
    else:
        client = Client()
        client.force_login(admin)
        get = client.get
    for label, query in periods.items() if not only or "dashboard" in only else ():
        def page(q=query):
            r = get("/reports/dashboard/", {"date_from": q["date_from"], "date_to": q["date_to"]})
            assert r.status_code == 200, r.status_code
        if opts.compare:
            both = ab(page, opts.repeat)
            for mode, m in both.items():
                results["reports"][f"admin · {label} · head dashboard page · {mode}"] = m
            mm, me = both["read model"], both["exact"]
            print(f"{'admin':8} {label:18} {'dashboard page':16} model p50 {mm['p50_ms']:9.1f} ms {mm['queries']:3} q"
                  f"   exact p50 {me['p50_ms']:9.1f} ms {me['queries']:3} q", flush=True)
            continue
        m = timed(page, opts.repeat)
        results["reports"][f"admin · {label} · head dashboard page"] = m
        print(f"{'admin':8} {label:18} {'dashboard page':16} p50 {m['p50_ms']:9.1f} ms  max {m['max_ms']:9.1f} ms")
    out = Path(opts.out) if opts.out else ROOT / "bench" / "results" / f"analytics-{vendor}{'-existing' if opts.existing else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"[analytics-bench] written {out}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
