"""Sign-in: wrong passwords are rate limited; the second factor is required once enabled."""

from __future__ import annotations

import pytest

from voronka.identity import actions, totp
from voronka.identity.models import LoginAttempt

pytestmark = pytest.mark.django_db


def _login(client, username, password, otp=""):
    return client.post("/admin/login/", {"username": username, "password": password, "otp": otp,
                                         "next": "/admin/"})


def test_good_login(client, admin_user):
    response = _login(client, "admin", "admin-pass")
    assert response.status_code == 302
    assert LoginAttempt.objects.filter(username="admin", success=True).count() == 1


def test_guessing_locks_the_account(client, admin_user):
    for _ in range(5):
        response = _login(client, "admin", "wrong")
        assert response.status_code == 200
    response = _login(client, "admin", "admin-pass")  # right password, but locked now
    assert response.status_code == 200
    assert "15" in response.content.decode()  # «wait 15 minutes»
    assert "_auth_user_id" not in client.session


def test_second_factor(client, admin, admin_user):
    secret, uri = actions.enable_second_factor(admin, admin_user.pk)
    assert uri.startswith("otpauth://totp/") and secret in uri
    assert _login(client, "admin", "admin-pass").status_code == 200  # no code: refused
    assert "_auth_user_id" not in client.session
    import time

    code = totp.code_at(secret, int(time.time() // totp.STEP))
    assert _login(client, "admin", "admin-pass", code).status_code == 302


def test_totp_matches_rfc6238_vector():
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T=59 s → 94287082 (8 digits); 6 digits: 287082
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at(secret, 59 // 30) == "287082"
    assert totp.verify(secret, "287082", now=59)
    assert not totp.verify(secret, "287083", now=59)
