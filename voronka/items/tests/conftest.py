from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def production(admin):
    from voronka.items.actions import create_type

    return create_type(admin, name="Production order", name_plural="Production", code="production", stages=[
        {"name": "Queued", "code": "queued"},
        {"name": "Cutting", "code": "cutting"},
        {"name": "Assembly", "code": "assembly", "required_fields": ["close_date"]},
        {"name": "Done", "code": "done", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"},
    ])
