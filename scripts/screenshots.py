"""Regenerate docs/screenshots/*.png: the main screens with demo data, in Russian and English.

Usage: make screenshots   (or: .venv/bin/python scripts/screenshots.py [--leads 400 --deals 120])
Runs in a temporary VAR_DIR with its own SQLite database, so your data is not touched.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PAGES = [
    ("board-leads", "/crm/leads/board/"),
    ("board-deals", "/crm/deals/board/"),
    ("list-leads", "/crm/leads/"),
    ("card-lead", "/crm/leads/{lead}/"),
    ("card-deal", "/crm/deals/{deal}/"),
    ("tasks", "/tasks/"),
    ("roles", "/settings/roles/{role}/"),
    ("view-as", "/settings/view-as/?user={operator}"),
    ("pipeline", "/settings/pipelines/{pipeline}/"),
    ("robots", "/settings/robots/{pipeline}/"),
    ("automation-log", "/settings/automation-log/"),
    ("notifications", "/notifications/"),
    ("dashboard", "/reports/dashboard/"),
    ("report-funnel", "/reports/funnel/"),
    ("report-end-to-end", "/reports/end-to-end/"),
    ("board-production", "/crm/production-orders/board/"),
    ("smart-processes", "/settings/types/"),
    ("web-forms", "/settings/intake/forms/"),
    ("intake-log", "/settings/intake/log/"),
    ("calendar", "/settings/calendar/"),
    ("b24-webhooks", "/settings/integrations/bitrix24/"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=400)
    parser.add_argument("--deals", type=int, default=120)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="voronka-shots-"))
    env = {**os.environ, "VORONKA_VAR_DIR": str(var)}
    env.pop("VORONKA_DATABASE_URL", None)
    python = sys.executable
    manage = [python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, env=env, cwd=ROOT)
    subprocess.run([*manage, "demo", "--leads", str(args.leads), "--deals", str(args.deals), "--no-progress"],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    login = (var / "demo-login.txt").read_text()
    password = re.search(r"password: (\S+)", login).group(1)
    ids = subprocess.run([*manage, "shell", "-c", (
        "from voronka.leads.models import Lead; from voronka.deals.models import Deal;"
        "from voronka.identity.models import Role, User; from voronka.pipelines.models import Pipeline;"
        "lead = Lead.objects.filter(contact__isnull=False).order_by('-id').first() or Lead.objects.first();"
        "deal = Deal.objects.filter(lead__isnull=False).order_by('-id').first() or Deal.objects.first();"
        "op = User.objects.filter(username='operator1').first() or User.objects.first();"
        "print(lead.pk, deal.pk, Role.objects.get(code='sales_manager').pk, op.pk,"
        " Pipeline.objects.filter(entity_type_id=2).first().pk)")],
        check=True, env=env, cwd=ROOT, capture_output=True, text=True).stdout.split()[-5:]
    values = dict(zip(["lead", "deal", "role", "operator", "pipeline"], ids, strict=True))
    port = free_port()
    server = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        from playwright.sync_api import sync_playwright

        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                              "--disable-background-networking", "--disable-component-update",
                                              "--disable-sync", "--disable-quic"])
            for lang in ("ru", "en"):
                page = browser.new_page(viewport={"width": 1366, "height": 800})
                page.goto(base + "/login/")
                if lang == "ru":
                    page.screenshot(path=str(OUT / "login.png"))
                page.fill("#id_username", "admin")
                page.fill("#id_password", password)
                page.click("main button[type=submit], form.login-card button[type=submit]")
                page.wait_for_url(base + "/")
                page.context.add_cookies([{"name": "django_language", "value": lang, "url": base}])
                for name, path in PAGES:
                    page.goto(base + path.format(**values))
                    page.screenshot(path=str(OUT / f"{name}-{lang}.png"))
                page.set_viewport_size({"width": 390, "height": 844})
                page.goto(base + f"/crm/leads/{values['lead']}/")
                page.screenshot(path=str(OUT / f"phone-card-{lang}.png"))
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(var, ignore_errors=True)
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
