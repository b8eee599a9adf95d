"""Server time of the main screens at scale, per persona (in-process: middleware, views, templates, queries).

    VORONKA_VAR_DIR=... python bench/ui_bench.py [--runs 60] [--json out.json]

Expects a database filled with `voronka demo` (users, departments, pipelines) and `voronka generate`.
Personas: the administrator (sees everything) and a sales manager («own and department» scope).
Prints p50/p95 per screen and persona, and the manager/administrator ratio (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voronka.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from voronka.identity.models import Role, RoleAssignment, User  # noqa: E402
from voronka.identity.permissions import rights_changed  # noqa: E402


def personas() -> dict[str, User]:
    admin = User.objects.filter(is_superuser=True).order_by("id").first()
    manager = User.objects.filter(username="manager1").first() or User.objects.filter(is_superuser=False).first()
    role = Role.objects.get(code="sales_manager")
    RoleAssignment.objects.filter(user=manager).delete()
    RoleAssignment.objects.create(role=role, user=manager)
    rights_changed()
    return {"admin": admin, "manager": manager}


def screens(lead_stage: int, deal_stage: int) -> dict[str, str]:
    return {
        "leads board": "/crm/leads/board/",
        "deals board": "/crm/deals/board/",
        "leads list (stage filter, sort by created)": f"/crm/leads/?stage={lead_stage}&order=-created_at&all=1",
        "deals list (sort by amount)": "/crm/deals/?order=-opportunity&all=1",
        "deals list (stage filter)": f"/crm/deals/?stage={deal_stage}&all=1",
    }


def measure(client: Client, url: str, runs: int) -> list[float]:
    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    return times


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--json")
    args = parser.parse_args()
    from voronka.deals.models import Deal
    from voronka.leads.models import Lead
    from voronka.pipelines.models import Stage

    people = personas()
    lead_stage = Stage.objects.filter(pipeline__entity_type_id=1, semantics="process").order_by("sort").first().pk
    deal_stage = Stage.objects.filter(pipeline__entity_type_id=2, semantics="process").order_by("sort").first().pk
    results = {"leads": Lead.objects.count(), "deals": Deal.objects.count(), "screens": {}}
    print(f"leads: {results['leads']:,}  deals: {results['deals']:,}  runs per screen: {args.runs}")
    for name, url in screens(lead_stage, deal_stage).items():
        row = {}
        for persona, user in people.items():
            client = Client()
            client.force_login(user)
            times = measure(client, url, args.runs)
            row[persona] = {"p50": round(statistics.median(times), 1), "p95": round(pct(times, 0.95), 1)}
        row["ratio_p95"] = round(row["manager"]["p95"] / row["admin"]["p95"], 2)
        results["screens"][name] = row
        print(f"{name:45s} admin p50 {row['admin']['p50']:6.1f} p95 {row['admin']['p95']:6.1f} ms | "
              f"manager p50 {row['manager']['p50']:6.1f} p95 {row['manager']['p95']:6.1f} ms | ratio {row['ratio_p95']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
