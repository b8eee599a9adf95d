"""The embed script in a real browser on a foreign site: it posts urlencoded (a simple request: no preflight), and
the lead is made with the host page's UTM tags."""

from __future__ import annotations

import os
import shutil

import pytest

from voronka.intake import forms
from voronka.intake.models import IntakeLog
from voronka.leads.models import Lead

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true",
                       reason="Chromium is not installed on this machine (CI installs Debian's chromium)"),
]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in the test's thread


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def foreign_site(live_server):
    """Another origin on loopback (its own port) serving a shop's page with the embed tag."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = ('<!doctype html><html><body><h1>Магазин</h1>'
                    f'<script src="{live_server.url}/f/shop/embed.js"></script></body></html>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_embed_script_posts_a_simple_cross_origin_request(chromium, live_server, foreign_site, admin,
                                                              lead_pipeline):
    site = foreign_site  # 127.0.0.1:<its port>; the server is localhost:<another port>
    forms.create_form(admin, slug="shop", name="Магазин", source="shop", allowed_origins=[site], mode="now", fields=[
        {"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
        {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
        {"name": "question", "label": "Вопрос", "type": "textarea", "maps_to": "inquiry"}])
    context = chromium.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(20000)
    sent = []
    page.on("request", lambda request: sent.append((request.method, request.url, request.headers)))
    page.goto(f"{site}/landing?utm_source=vk")
    page.fill("#voronka-name", "Ольга Смирнова")
    page.fill("#voronka-phone", "+7 916 555-12-34")
    page.fill("#voronka-question", "Есть ли доставка & самовывоз?")
    page.click(".voronka-form button[type=submit]")
    page.wait_for_selector(".voronka-done")
    to_server = [(m, h) for m, url, h in sent if url.startswith(f"{live_server.url}/f/shop/") and m != "GET"]
    assert [m for m, _ in to_server] == ["POST"]  # a «simple» request: no OPTIONS preflight before it
    assert to_server[0][1]["content-type"].startswith("application/x-www-form-urlencoded")
    context.close()
    entry = IntakeLog.objects.get(channel="form")
    assert entry.status == "created" and entry.meta["origin"] == site and entry.meta["embedded"] is True
    assert entry.payload["question"] == "Есть ли доставка & самовывоз?" and entry.payload["utm_source"] == "vk"
    lead = Lead.objects.get(pk=entry.entity_id)
    assert lead.first_name == "Ольга Смирнова" and lead.utm_source == "vk" and "самовывоз" in lead.inquiry
