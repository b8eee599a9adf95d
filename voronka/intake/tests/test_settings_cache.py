"""Web forms and intake sources are kept per process behind the settings version: a submission does not look them
up again, and a change (through the action, the admin, or another process) is seen by the next submission."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from voronka.core import config_cache
from voronka.intake import forms
from voronka.intake.actions import Routing
from voronka.intake.models import IntakeSource, WebForm
from voronka.leads.models import Lead

from .test_channels import FIELDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def form(admin, lead_pipeline, queue):
    return forms.create_form(admin, slug="kesh", name="Кэш", source="landing-kesh", fields=FIELDS,
                             consent_text="Согласен", queue=queue.pk, mode="now")


NAMES = ["Иван", "Ольга", "Пётр", "Мария"]


def _submit(n: int):
    return Client().post("/f/kesh/", {"name": NAMES[n], "phone": f"+7916000{n:04d}", "consent": "1"},
                         HTTP_ACCEPT="application/json")


def test_the_form_is_not_read_again_by_the_next_submission(form, users):
    assert _submit(1).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert _submit(2).status_code == 200
    assert not any("FROM \"intake_webform\"" in q["sql"] for q in ctx.captured_queries)


def test_a_change_through_the_action_is_seen_by_the_next_submission(admin, form, users):
    assert _submit(1).json()["message"] != "Готово"
    forms.update_form(admin, form.pk, success_message="Готово")
    assert _submit(2).json()["message"] == "Готово"
    forms.update_form(admin, form.pk, is_active=False)
    assert _submit(3).status_code == 404
    assert Lead.objects.count() == 2  # the refused third one wrote nothing


def test_a_change_by_another_process_is_seen_after_its_version_bump(form, users):
    assert _submit(1).status_code == 200
    WebForm.objects.filter(pk=form.pk).update(is_active=False)  # another process: no signal here
    assert _submit(2).status_code == 200  # not told yet
    config_cache.bump()
    assert _submit(3).status_code == 404


def test_unknown_slugs_are_not_kept(form):
    for n in range(5):
        assert Client().get(f"/f/nope-{n}/").status_code == 404
    assert not any(k[0] == "webform" and k[1].startswith("nope-") for k in config_cache._cache)


def test_source_settings_follow_their_changes(admin, lead_pipeline):
    source = IntakeSource.objects.create(code="kesh-src", name="Кэш", duplicate_policy="create")
    assert Routing.for_source("kesh-src").policy == "create"
    source.duplicate_policy = "merge"
    source.save()  # as the action or the admin does: tells every process
    assert Routing.for_source("kesh-src").policy == "merge"
    IntakeSource.objects.filter(pk=source.pk).update(duplicate_policy="attach")  # another process
    assert Routing.for_source("kesh-src").policy == "merge"
    config_cache.bump()
    assert Routing.for_source("kesh-src").policy == "attach"


def test_each_request_gets_its_own_copy_of_the_kept_forms_json(form):
    from voronka.intake.views import _form

    first = _form("kesh")
    first.fields[0]["label"] = "changed in one request"
    first.fields.append({"name": "extra"})
    first.allowed_origins.append("https://evil.example.com")
    second = _form("kesh")
    assert second.fields == FIELDS and second.allowed_origins == []
    assert (second.slug, second.name, second.queue_id) == ("kesh", "Кэш", form.queue_id)
