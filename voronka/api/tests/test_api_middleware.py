"""A token-authenticated API call skips the browser's session, session user and flash messages; every other
request keeps them (voronka/api/middleware.py)."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from voronka.api.middleware import token_call
from voronka.core.stacks import layer_names

from .conftest import ApiClient, bearer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("path", "headers", "expected"), [
    ("/api/v1/leads", {"HTTP_AUTHORIZATION": "Bearer vk_abc_def"}, True),
    ("/api/v1/leads", {"HTTP_AUTHORIZATION": "bearer vk_abc_def"}, True),
    ("/api/v1/leads", {"HTTP_X_API_KEY": "vk_abc_def"}, True),
    ("/api/v1/leads", {"HTTP_AUTHORIZATION": "Bearer "}, False),  # an empty token: Ninja tries the session next
    ("/api/v1/leads", {"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}, False),
    ("/api/v1/leads", {"HTTP_X_API_KEY": "  "}, False),
    ("/api/v1/leads", {}, False),
    ("/leads/", {"HTTP_AUTHORIZATION": "Bearer vk_abc_def"}, False),  # the web UI always has its session
    ("/rest/1/secret/crm.lead.add", {"HTTP_AUTHORIZATION": "Bearer vk_abc_def"}, False),
])
def test_which_calls_count_as_token_calls(path, headers, expected):
    assert token_call(RequestFactory().post(path, **headers)) is expected


def test_a_token_call_gets_no_session_and_an_anonymous_request_user(api, lead_pipeline):
    seen = {}
    response = api.post("/leads", {"title": "Без сессии"})
    assert response.status_code == 201, response.content
    assert "sessionid" not in response.cookies and "messages" not in response.cookies
    assert "Cookie" not in response.get("Vary", "")
    request = response.wsgi_request
    seen["session"] = hasattr(request, "session")
    seen["messages"] = hasattr(request, "_messages")
    assert seen == {"session": False, "messages": False}
    assert not request.user.is_authenticated and request.auth.user.username == "admin"


def test_a_bad_token_is_still_401_and_never_falls_back_to_a_session(admin_user, lead_pipeline):
    """A signed-in browser that also sends a wrong token is refused: the token decides, as before."""
    client = Client()
    client.force_login(admin_user)
    response = client.post("/api/v1/leads", '{"title": "x"}', content_type="application/json",
                           HTTP_AUTHORIZATION="Bearer vk_nope_nope")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_the_session_api_and_the_web_ui_keep_their_session(admin_user, lead_pipeline):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.get("/api/v1/leads")
    assert response.status_code == 200
    assert response.wsgi_request.user == admin_user and hasattr(response.wsgi_request, "session")
    page = client.get("/")
    assert page.wsgi_request.user == admin_user and hasattr(page.wsgi_request, "_messages")


def test_x_api_key_calls_skip_the_session_too(admin_token, lead_pipeline):
    response = ApiClient({"X-Api-Key": admin_token}).post("/leads", {"title": "Ключ"})
    assert response.status_code == 201
    assert not hasattr(response.wsgi_request, "session")


def test_a_token_call_answers_in_the_language_asked(admin_token, lead_pipeline):
    """The locale middleware still runs for token calls (it is not one of the skipped steps)."""
    client = bearer(admin_token)
    client.client.cookies["django_language"] = "en"
    response = client.post("/leads", {"title": "x", "phones": ["not a phone"]})
    assert response.status_code == 422
    assert response.json()["message"] == "Some fields are not valid."


@pytest.mark.parametrize(("cookie", "accept", "expected"), [
    (None, None, "ru"), (None, "en-US,en;q=0.9", "en"), (None, "de, en;q=0.5", "en"), (None, "*", "ru"),
    ("en", "ru", "en"), ("xx", "en", "en"), (None, "ru;q=0.1, en", "en"),
])
def test_the_token_stacks_language_is_djangos(cookie, accept, expected, admin_token, lead_pipeline):
    """The cached choice gives what Django's LocaleMiddleware gives, headers included, again on a second call."""
    from django.middleware.locale import LocaleMiddleware

    from voronka.api.middleware import ApiLocaleMiddleware

    def request():
        extra = {"HTTP_AUTHORIZATION": f"Bearer {admin_token}"}
        if accept is not None:
            extra["HTTP_ACCEPT_LANGUAGE"] = accept
        if cookie is not None:
            extra["HTTP_COOKIE"] = f"django_language={cookie}"
        return RequestFactory().get("/api/v1/leads", **extra)

    def view(req):
        from django.http import HttpResponse

        return HttpResponse(req.LANGUAGE_CODE)

    fast, django = ApiLocaleMiddleware(view), LocaleMiddleware(view)
    for _ in range(2):
        ours, theirs = fast(request()), django(request())
        assert ours.content == theirs.content == expected.encode()
        assert (ours["Vary"], ours["Content-Language"]) == (theirs["Vary"], theirs["Content-Language"])


def test_the_kept_language_follows_the_language_settings(admin_token, lead_pipeline, settings):
    from django.utils import translation

    from voronka.api.middleware import ApiLocaleMiddleware

    def view(req):
        from django.http import HttpResponse

        return HttpResponse(req.LANGUAGE_CODE)

    def request():
        return RequestFactory().get("/api/v1/leads", HTTP_AUTHORIZATION=f"Bearer {admin_token}")

    middleware = ApiLocaleMiddleware(view)
    assert middleware(request()).content == b"ru"
    settings.LANGUAGE_CODE = "en"  # override_settings: the kept choice is forgotten
    try:
        assert middleware(request()).content == b"en"
    finally:
        translation.activate("ru")


def test_a_token_call_runs_the_short_stack_and_others_the_full_one(settings):
    from django.test.client import ClientHandler

    from voronka.api.middleware import TokenApiStack

    handler = ClientHandler()
    handler.load_middleware()
    top = handler._middleware_chain.__wrapped__
    assert isinstance(top, TokenApiStack)
    assert layer_names(top.short) == ["VersionsMiddleware", "SecurityMiddleware", "ApiLocaleMiddleware", "CommonMiddleware",
                                  "DefaultTimeZoneMiddleware", "XFrameOptionsMiddleware", "dispatch"]
    full = layer_names(top.get_response)
    assert "ApiSessionMiddleware" in full and "CsrfViewMiddleware" in full and full[-1] == "dispatch"
    settings.API_TOKEN_MIDDLEWARE = None  # unset: token calls take the full list (with its skipping steps)
    handler = ClientHandler()
    handler.load_middleware()
    assert handler._middleware_chain.__wrapped__.short is None


def test_a_token_call_keeps_the_security_headers_and_the_host_check(api, lead_pipeline, settings):
    response = api.post("/leads", {"title": "Заголовки"})
    assert response.status_code == 201
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == settings.SECURE_REFERRER_POLICY
    assert response["Content-Language"] and "Accept-Language" in response["Vary"]
    assert int(response["Content-Length"]) == len(response.content)
    assert not response.cookies  # no session, CSRF or language cookie is set
    bad_host = api.client.post("/api/v1/leads", '{"title": "x"}', content_type="application/json",
                               HTTP_HOST="evil.example")
    assert bad_host.status_code == 400  # ALLOWED_HOSTS still applies (CommonMiddleware's host check)


def test_a_token_call_answers_in_the_default_time_zone_after_a_user_with_their_own(admin_user, admin_token,
                                                                                    lead_pipeline):
    from django.utils import timezone

    admin_user.time_zone = "Asia/Vladivostok"
    admin_user.save()
    browser = Client()
    browser.force_login(admin_user)
    assert browser.get("/api/v1/leads").status_code == 200  # the session call activates the user's zone
    seen = {}

    from voronka.api import records

    original = records.created_response

    def spy(data):
        seen["zone"] = timezone.get_current_timezone_name()
        return original(data)

    records.created_response = spy
    try:
        assert bearer(admin_token).post("/leads", {"title": "Зона"}).status_code == 201
    finally:
        records.created_response = original
    assert seen["zone"] == timezone.get_default_timezone_name()
