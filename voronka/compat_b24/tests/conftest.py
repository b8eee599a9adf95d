from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest

from .live import make_certificate, tls_proxy


@pytest.fixture
def hook(admin, admin_user):
    """An incoming webhook of the administrator with every scope: (webhook, path prefix)."""
    from voronka.compat_b24.actions import create_webhook

    webhook, secret = create_webhook(admin, user_id=admin_user.pk, scopes=["crm", "user", "task"])
    return webhook, f"/rest/{admin_user.pk}/{secret}/"


@pytest.fixture
def rest(client, hook):
    """POST a JSON body to a method; returns (status, body)."""
    _webhook, prefix = hook

    def call(method: str, body: dict | None = None, **kw):
        resp = client.post(prefix + method, data=body or {}, content_type="application/json", **kw)
        return resp.status_code, resp.json()

    return call


@pytest.fixture
def server(live_server, admin, admin_user, lead_pipeline, deal_pipelines):
    from django.db import connection

    from voronka.compat_b24.actions import create_webhook

    _hook, secret = create_webhook(admin, user_id=admin_user.pk, scopes=["crm", "user"])
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # the live server's threads share the test's one in-memory SQLite connection: one request at a time
        # (the clients still send theirs concurrently; on PostgreSQL every thread has its own connection)
        lock = threading.Lock()

        def serial(environ, start_response):
            with lock:
                return app(environ, start_response)

        httpd.set_app(serial)
    yield {"url": f"{live_server.url}/rest/{admin_user.pk}/{secret}/", "uid": admin_user.pk, "secret": secret,
           "port": urlsplit(live_server.url).port}
    httpd.set_app(app)


@pytest.fixture
def b24sdk(server, tmp_path, monkeypatch):
    from b24pysdk import BitrixWebhook, Client

    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with tls_proxy(server["port"], cert, key) as port:
        token = BitrixWebhook(domain=f"127.0.0.1:{port}", webhook_token=f"{server['uid']}/{server['secret']}")
        yield Client(token)
