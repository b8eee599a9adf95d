from __future__ import annotations

import pytest


@pytest.fixture
def users(db):
    """Five present sales people."""
    from voronka.identity.models import User

    return [User.objects.create_user(f"seller{i}", f"s{i}@example.ru", "x-pass-123", first_name=f"Продавец{i}")
            for i in range(5)]


@pytest.fixture
def queue(admin, users):
    from voronka.distribution.actions import create_queue

    return create_queue(admin, code="sales", name="Продажи", members=[{"user": u.pk} for u in users])


from voronka.api.tests.conftest import admin_token, anonymous  # noqa: E402,F401
