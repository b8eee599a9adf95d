"""The browser-only middleware steps, skipped for API calls that carry a token.

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

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

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
