"""The browser-only middleware steps, skipped for API calls that carry a token.

``TokenApiStack`` (first in ``MIDDLEWARE``) sends such a call through ``API_TOKEN_MIDDLEWARE`` instead of the full
list: the request's versions scope, the security headers, the answer's language, the host check and the common
response headers, the default time zone and ``X-Frame-Options``. It leaves out what only a browser session needs
(static files, the session, CSRF cookies, the session user and its time zone, flash messages, htmx): every layer
of the full list cost its wrapper and its own work on every API create. The classes below skip the same steps
when a token call goes through the full list anyway (``API_TOKEN_MIDDLEWARE`` unset).

A call to ``/api/`` with a non-empty ``Authorization: Bearer …`` or ``X-Api-Key`` header is authenticated by
that token alone: Ninja tries the token methods before the session one and answers 401 when the token is bad,
so the session is never consulted (``voronka.api.auth``). Such a call needs no session store, no session user
and no flash-message storage; building and saving them was a tenth of a single create's CPU. These subclasses
of Django's middleware stand in the same places of ``MIDDLEWARE`` (so Django's own checks still find them) and
do their usual work for every other request: the web UI, the API with a session, the Bitrix24 facade.

For a token call ``request.user`` is the anonymous user (the actor is in ``request.auth``) and
``request.session`` is not set; nothing under ``/api/`` reads either (``test_api_middleware`` pins it).
"""

from __future__ import annotations

from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

from voronka.core.stacks import ShortStack

API_PREFIX = "/api/"


def token_call(request) -> bool:
    """An API call authenticated by a token header (decided once per request)."""
    known = request.__dict__.get("_voronka_token_call")
    if known is not None:
        return known
    meta = request.META
    answer = False
    if request.path_info.startswith(API_PREFIX):
        header = meta.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        answer = (scheme.lower() == "bearer" and bool(value.strip())) or bool(meta.get("HTTP_X_API_KEY", "").strip())
    request._voronka_token_call = answer
    return answer


class ApiSessionMiddleware(SessionMiddleware):
    def __call__(self, request):
        if token_call(request):
            return self.get_response(request)
        return super().__call__(request)


class ApiAuthenticationMiddleware(AuthenticationMiddleware):
    def __call__(self, request):
        if token_call(request):
            request.user = AnonymousUser()  # the caller is the token's actor, in request.auth
            return self.get_response(request)
        return super().__call__(request)


class ApiMessageMiddleware(MessageMiddleware):
    def __call__(self, request):
        if token_call(request):
            return self.get_response(request)
        return super().__call__(request)


class TokenApiStack(ShortStack):
    """First in ``MIDDLEWARE``: a token API call runs the short ``API_TOKEN_MIDDLEWARE`` stack around the same view
    dispatch (URL resolution, the view middleware, the view); every other request the full list below this one."""

    setting = "API_TOKEN_MIDDLEWARE"

    def wants(self, request) -> bool:
        return token_call(request)


class DefaultTimeZoneMiddleware:
    """A token call has no session user whose time zone could apply: the default one (the thread may have served a
    signed-in user's request before)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.user = AnonymousUser()  # the caller is the token's actor, in request.auth
        timezone.deactivate()
        return self.get_response(request)


_CACHED = 512  # distinct (cookie, Accept-Language) pairs kept (cleared when full: a few in practice)
_chosen: dict[tuple, str] = {}  # (language cookie, Accept-Language): the language Django chooses for them
_LANGUAGE_SETTINGS = frozenset({"LANGUAGES", "LANGUAGE_CODE", "LANGUAGE_COOKIE_NAME", "LOCALE_PATHS", "ROOT_URLCONF"})


@receiver(setting_changed)
def _forget_languages(*, setting, **kwargs) -> None:
    """The choice depends on the language settings (changed only by tests' ``override_settings``)."""
    if setting in _LANGUAGE_SETTINGS:
        _chosen.clear()


class ApiLocaleMiddleware(LocaleMiddleware):
    """Django's ``LocaleMiddleware`` for the token stack, the same language and headers for less work: without
    language-prefixed URL patterns (this project has none) the language depends only on the language cookie and
    ``Accept-Language``, so the choice is kept per pair of them, and the answer gets its ``Vary`` and
    ``Content-Language`` headers directly. With prefixed patterns, or a request-specific urlconf, Django's own steps
    run."""

    async_capable = False  # the token stack is synchronous (``TokenApiStack``)

    def _plain(self, request) -> bool:
        if getattr(request, "urlconf", None) is not None:
            return False
        return not is_language_prefix_patterns_used(settings.ROOT_URLCONF)[0]

    def __call__(self, request):
        if not self._plain(request):
            return super().__call__(request)
        meta = request.META
        cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) if meta.get("HTTP_COOKIE") else None
        key = (cookie, meta.get("HTTP_ACCEPT_LANGUAGE"))
        language = _chosen.get(key)
        if language is None:
            language = translation.get_language_from_request(request, check_path=False)
            if len(_chosen) >= _CACHED:
                _chosen.clear()
            _chosen[key] = language
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        headers = response.headers
        if "Vary" in headers:
            patch_vary_headers(response, ("Accept-Language",))
        else:
            headers["Vary"] = "Accept-Language"  # what patch_vary_headers writes when there is no Vary yet
        headers.setdefault("Content-Language", translation.get_language())
        return response

