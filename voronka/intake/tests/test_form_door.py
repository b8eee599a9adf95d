"""The public form door's short middleware stack (``voronka/intake/middleware.py``): what it keeps (security
headers, the language, the host check, the time zone) and what it leaves out (the session, the CSRF cookie, the
session user, flash messages), for every kind of request under ``/f/``."""

from __future__ import annotations

import pytest
from django.test import Client
from django.test.client import ClientHandler

from voronka.core.stacks import layer_names
from voronka.intake import forms
from voronka.intake.middleware import FormDoorStack
from voronka.intake.models import IntakeLog

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
    {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
]


@pytest.fixture
def form(admin, lead_pipeline):
    return forms.create_form(admin, slug="door", name="Дверь", source="door", fields=FIELDS, mode="now",
                             allowed_origins=["https://site.example.ru"])


def _door() -> FormDoorStack:
    handler = ClientHandler()
    handler.load_middleware()
    step = handler._middleware_chain
    while step is not None:
        layer = getattr(step, "__wrapped__", None)
        if isinstance(layer, FormDoorStack):
            return layer
        step = getattr(layer, "get_response", None)
    raise AssertionError("FormDoorStack is not in MIDDLEWARE")


def test_the_form_door_runs_the_short_stack_and_others_the_full_one(settings):
    door = _door()
    assert layer_names(door.short) == ["VersionsMiddleware", "SecurityMiddleware", "ApiLocaleMiddleware",
                                   "CommonMiddleware", "DefaultTimeZoneMiddleware", "XFrameOptionsMiddleware",
                                   "dispatch"]
    full = layer_names(door.get_response)
    assert "ApiSessionMiddleware" in full and "CsrfViewMiddleware" in full and full[-1] == "dispatch"
    settings.FORM_DOOR_MIDDLEWARE = None  # unset: the form door takes the full list
    assert _door().short is None


def test_a_submission_sets_no_cookie_and_keeps_the_security_headers(form, settings):
    client = Client()
    answer = client.post("/f/door/", {"name": "Иван", "phone": "+79160000001"}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert not answer.cookies  # no session, CSRF or language cookie
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Referrer-Policy"] == settings.SECURE_REFERRER_POLICY
    assert answer["Content-Language"] and "Accept-Language" in answer["Vary"]
    assert "X-Frame-Options" not in answer  # embedded in other sites: the view is exempt
    assert int(answer["Content-Length"]) == len(answer.content)
    assert IntakeLog.objects.get().status == "created"
    page = client.get("/f/door/")
    assert page.status_code == 200 and not page.cookies and "X-Frame-Options" not in page
    script = client.get("/f/door/embed.js")
    assert script.status_code == 200 and script["X-Frame-Options"] == "DENY"  # as the full stack answers it
    assert client.get("/f/nothing-here/").status_code == 404
    assert client.get("/f/door").status_code == 301  # CommonMiddleware's APPEND_SLASH
    bad_host = client.post("/f/door/", {"name": "Иван", "phone": "+79160000002"}, HTTP_HOST="evil.example")
    assert bad_host.status_code == 400  # ALLOWED_HOSTS still applies
    preflight = client.options("/f/door/", HTTP_ORIGIN="https://site.example.ru")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "https://site.example.ru"


def test_the_form_answers_in_the_visitors_language_and_a_signed_in_visitor_stays_signed_in(form, admin_user):
    client = Client()
    client.force_login(admin_user)
    english = client.post("/f/door/", {"name": ""}, HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 422 and english.json()["message"] == "Please correct the marked fields."
    assert english["Content-Language"] == "en"
    russian = client.post("/f/door/", {"name": ""}, HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE="ru")
    assert russian.json()["message"] == "Пожалуйста, исправьте отмеченные поля."
    assert not english.cookies and not russian.cookies  # the session is neither read nor saved
    assert client.get("/").status_code == 200  # the UI still sees the session


def test_the_form_answers_in_the_default_time_zone_after_a_user_with_their_own(form, admin_user):
    from django.utils import timezone

    from voronka.intake import views

    admin_user.time_zone = "Asia/Vladivostok"
    admin_user.save()
    browser = Client()
    browser.force_login(admin_user)
    assert browser.get("/").status_code == 200  # the UI request activates the user's zone
    seen = {}
    original = views._submit

    def spy(*args, **kwargs):
        seen["zone"] = timezone.get_current_timezone_name()
        seen["user"] = args[0].user.is_authenticated
        return original(*args, **kwargs)

    views._submit = spy
    try:
        assert browser.post("/f/door/", {"name": "Иван", "phone": "+79160000003"},
                            HTTP_ACCEPT="application/json").status_code == 200
    finally:
        views._submit = original
    assert seen == {"zone": timezone.get_default_timezone_name(), "user": False}
