"""``voronka token create|list|revoke``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from voronka.identity.models import ApiToken

pytestmark = pytest.mark.django_db


def _run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_a_token_that_authenticates(manager_user):
    out, err = _run("create", "--user", "manager", "--name", "Обмен с 1С", "--scopes", "read,write",
                    "--expires-days", "30")
    raw = out.strip()
    assert "\n" not in raw and raw.startswith("vk_")  # only the token on stdout, for scripts
    assert "shown only once" in err
    token = ApiToken.authenticate(raw)
    assert token is not None and token.user == manager_user
    assert token.name == "Обмен с 1С" and token.scopes == ["read", "write"]
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    assert token.secret_hash != raw and raw not in str(list(ApiToken.objects.values()))  # stored hashed
    from voronka.core.models import AuditEvent

    assert AuditEvent.objects.filter(action="token.issued", details__token=token.prefix).exists()


def test_default_token_has_all_rights_and_no_expiry(manager_user):
    raw = _run("create", "--user", "manager")[0].strip()
    token = ApiToken.authenticate(raw)
    assert token.scopes == [] and token.expires_at is None


def test_list_shows_prefixes_not_secrets(manager_user, admin_user):
    raw = _run("create", "--user", "manager", "--name", "скрипт")[0].strip()
    _run("create", "--user", "admin")
    out = _run("list")[0]
    prefix = raw.split("_")[1]
    assert prefix in out and "скрипт" in out and "active" in out
    assert raw not in out and raw.split("_", 2)[2] not in out
    only = _run("list", "--user", "admin")[0]
    assert prefix not in only and "admin" in only


def test_revoke_makes_the_token_fail(manager_user):
    raw = _run("create", "--user", "manager")[0].strip()
    prefix = raw.split("_")[1]
    out = _run("revoke", prefix)[0]
    assert "revoked" in out
    assert ApiToken.authenticate(raw) is None
    from voronka.core.models import AuditEvent

    assert AuditEvent.objects.filter(action="token.revoked", details__token=prefix).count() == 1
    assert "already revoked" in _run("revoke", raw)[0]  # the whole token is accepted too
    assert "revoked" in _run("list")[0]


@pytest.mark.parametrize("args, message", [
    (("create", "--user", "nobody"), "No user"),
    (("create", "--user", "manager", "--scopes", "read,admin"), "Unknown scope"),
    (("create", "--user", "manager", "--expires-days", "0"), "at least 1"),
    (("revoke", "0123456789"), "No token"),
    (("list", "--user", "nobody"), "No user"),
])
def test_clear_errors(manager_user, args, message):
    with pytest.raises(CommandError) as err:
        _run(*args)
    assert message in str(err.value)
    assert ApiToken.objects.count() == 0


def test_inactive_user_gets_no_token(manager_user):
    manager_user.is_active = False
    manager_user.save()
    with pytest.raises(CommandError):
        _run("create", "--user", "manager")
