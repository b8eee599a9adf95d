from __future__ import annotations

import pytest


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
