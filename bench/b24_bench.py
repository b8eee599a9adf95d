"""Bitrix24 facade benchmark through the real fast-bitrix24 client against a real gunicorn server.

    python bench/b24_bench.py [--leads 100000] [--workers 2] [--json out.json]
    scripts/with-postgres.sh .venv/bin/python bench/b24_bench.py --leads 100000     # on PostgreSQL

Measures, on a fresh database (a temporary SQLite file, or VORONKA_DATABASE_URL when it is set):
1. creation: ``--leads`` leads through ``batch`` of 50 ``crm.lead.add`` per call (fast-bitrix24 ``call`` with a
   list), reported as leads/s;
2. listing: every lead through fast-bitrix24 ``get_all("crm.lead.list")`` (pages of 50 inside batches of 50),
   reported in seconds.
The client runs without its rate limiter (it measures the server, not Bitrix24's cloud limits). Run it on a
quiet machine for figures worth keeping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str, capture: bool = False) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True,
                            capture_output=True, text=True)
    return result.stdout


SETUP = """
from voronka.core.actor import Actor
from voronka.identity.models import User
from voronka.pipelines.actions import create_pipeline
from voronka.compat_b24.actions import create_webhook
admin = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "b@example.ru", "bench-pass-1")
actor = Actor.for_user(admin, "cli")
from voronka.pipelines.models import Pipeline
if not Pipeline.objects.filter(entity_type_id=1).exists():
    create_pipeline(actor, entity_type_id=1, name="Leads", code="leads", stages=[
        {"name": "New", "code": "new"}, {"name": "Won", "code": "won", "semantics": "success"},
        {"name": "Junk", "code": "junk", "semantics": "failure"}])
hook, secret = create_webhook(actor, user_id=admin.pk, scopes=["crm"])
print(f"{admin.pk}/{secret}")
"""


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


async def create(url: str, count: int, pool: int) -> float:
    from fast_bitrix24 import BitrixAsync

    b = BitrixAsync(url, verbose=False, request_pool_size=pool, requests_per_second=100000.0)
    items = [{"fields": {"TITLE": f"Bench lead {n}", "NAME": "Иван", "OPPORTUNITY": n % 1000,
                         "PHONE": [{"VALUE": f"+7900{n:07d}", "VALUE_TYPE": "MOBILE"}]}} for n in range(count)]
    start = time.perf_counter()
    ids = await b.call("crm.lead.add", items)
    elapsed = time.perf_counter() - start
    assert len(ids) == count, (len(ids), count)
    return elapsed


async def list_all(url: str, pool: int) -> tuple[float, int]:
    from fast_bitrix24 import BitrixAsync

    b = BitrixAsync(url, verbose=False, request_pool_size=pool, requests_per_second=100000.0)
    start = time.perf_counter()
    rows = await b.get_all("crm.lead.list", {"select": ["ID", "TITLE", "STATUS_ID", "OPPORTUNITY", "DATE_CREATE"]})
    return time.perf_counter() - start, len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--pool", type=int, default=4, help="concurrent requests of the client")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="b24bench-")
    env = {**os.environ, "VORONKA_VAR_DIR": tmp, "DJANGO_SETTINGS_MODULE": "voronka.settings", "VORONKA_DEBUG": "0"}
    database = "PostgreSQL" if env.get("VORONKA_DATABASE_URL") else "SQLite"
    manage(env, "migrate", "--noinput")
    credentials = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", SETUP], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([str(BIN / "gunicorn"), "voronka.wsgi:application", "--bind", f"127.0.0.1:{port}",
                               "--workers", str(args.workers), "--timeout", "300", "--log-level", "warning"],
                              env=env, cwd=ROOT)
    try:
        wait_ready(port)
        url = f"http://127.0.0.1:{port}/rest/{credentials}/"
        created = asyncio.run(create(url, args.leads, args.pool))
        listed, rows = asyncio.run(list_all(url, args.pool))
    finally:
        server.terminate()
        server.wait(30)
    result = {"database": database, "leads": args.leads, "workers": args.workers, "pool": args.pool,
              "create_seconds": round(created, 2), "create_leads_per_second": round(args.leads / created, 1),
              "get_all_seconds": round(listed, 2), "get_all_rows": rows}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if rows == args.leads else 1


if __name__ == "__main__":
    sys.exit(main())
