"""The settings screen for webhooks and the ``voronka b24-webhook`` command."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def test_screen_create_use_revoke(client, admin_user, manager_user, lead_pipeline):
    from voronka.compat_b24.models import Webhook

    client.force_login(admin_user)
    client.cookies["django_language"] = "en"
    resp = client.post("/settings/integrations/bitrix24/", {"op": "create", "name": "Сайт", "scopes": ["crm", "user"],
                                                            "user": manager_user.pk})
    assert resp.status_code == 200
    url = re.search(r'id="new-webhook">([^<]+)<', resp.content.decode()).group(1)
    assert url.startswith("http://testserver/rest/") and f"/rest/{manager_user.pk}/" in url
    path = url.removeprefix("http://testserver")
    assert client.post(path + "user.current").json()["result"]["ID"] == str(manager_user.pk)
    hook = Webhook.objects.get()
    assert hook.scopes == ["crm", "user"] and hook.user == manager_user
    # the manager sees their own webhook, not the administrator's others; revoking works for them
    client.force_login(manager_user)
    mine = client.get("/settings/integrations/bitrix24/").content.decode()
    assert "Сайт" in mine
    client.post("/settings/integrations/bitrix24/", {"op": "revoke", "webhook": hook.pk})
    assert client.post(path + "user.current").json()["error"] == "INVALID_CREDENTIALS"


def test_a_user_cannot_touch_others_webhooks(client, admin, admin_user, manager_user):
    from voronka.compat_b24.actions import create_webhook
    from voronka.compat_b24.models import Webhook

    hook, _secret = create_webhook(admin, user_id=admin_user.pk, name="Админский")
    client.force_login(manager_user)
    client.cookies["django_language"] = "en"
    page = client.get("/settings/integrations/bitrix24/").content.decode()
    assert "Админский" not in page
    client.post("/settings/integrations/bitrix24/", {"op": "revoke", "webhook": hook.pk})
    assert Webhook.objects.get(pk=hook.pk).is_active
    resp = client.post("/settings/integrations/bitrix24/", {"op": "create", "user": admin_user.pk, "scopes": ["crm"]})
    assert Webhook.objects.count() == 1 and "new-webhook" not in resp.content.decode()


def test_cli_create_list_revoke(admin_user):
    out, err = io.StringIO(), io.StringIO()
    call_command("b24-webhook", "create", "--user", "admin", "--scopes", "crm,user,task", stdout=out, stderr=err)
    url = out.getvalue().strip()
    assert re.fullmatch(rf"http://127\.0\.0\.1:8000/rest/{admin_user.pk}/[0-9a-f]{{16}}/", url)
    listing = io.StringIO()
    call_command("b24-webhook", "list", stdout=listing)
    assert "crm,user,task" in listing.getvalue() and "active" in listing.getvalue()
    from voronka.compat_b24.models import Webhook

    call_command("b24-webhook", "revoke", str(Webhook.objects.get().pk), stdout=io.StringIO())
    assert not Webhook.objects.get().is_active
    with pytest.raises(CommandError, match="No user"):
        call_command("b24-webhook", "create", "--user", "nobody")
    with pytest.raises(CommandError, match="Unknown scopes"):
        call_command("b24-webhook", "create", "--user", "admin", "--scopes", "crm,bizproc")
