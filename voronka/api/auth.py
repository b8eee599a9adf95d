"""Who calls the API: a personal token (Bearer or X-Api-Key) or a signed-in user's session.

Each method puts a ``voronka.core.actor.Actor`` into ``request.auth``; views pass it to actions and
selectors, which apply the user's rights. A token limited to scopes is also checked here as a whole:
"read" for reading, "write" for every change, so a read-only token can never write.
"""

from __future__ import annotations

import dataclasses

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import APIKeyCookie, APIKeyHeader, HttpBearer
from ninja.utils import check_csrf

from voronka.core.actor import Actor
from voronka.core.clientip import client_ip
from voronka.core.errors import PermissionDenied
from voronka.identity.models import ApiToken

from .errors import NotAuthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _check_scopes(request: HttpRequest, actor: Actor) -> None:
    if not actor.scopes:
        return  # a token without scopes has all the rights of its user
    needed = "read" if request.method in SAFE_METHODS else "write"
    if needed not in actor.scopes:
        raise PermissionDenied(_("This API token may not %(what)s.") % {
            "what": _("read") if needed == "read" else _("make changes")}, code="forbidden_scope")


def actor_for_token(request: HttpRequest, raw: str) -> Actor:
    token = ApiToken.authenticate(raw.strip())
    if token is None:
        raise NotAuthenticated(_("The API token is not valid, has expired or has been revoked."), code="invalid_token")
    actor = Actor(kind="token", user=token.user, entry_point="api", token_id=token.pk,
                  scopes=frozenset(token.scopes or ()), ip=client_ip(request))  # Actor.for_token with the address
    _check_scopes(request, actor)
    return actor


class BearerToken(HttpBearer):
    """``Authorization: Bearer vk_…``"""

    def __call__(self, request: HttpRequest):
        # Ninja's own version reads ``request.headers``, which builds a dict of every header on first use
        value = request.META.get("HTTP_AUTHORIZATION")
        if not value:
            return None
        scheme, _sep, token = value.partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str):
        if not token:
            return None
        return actor_for_token(request, token)


class HeaderToken(APIKeyHeader):
    """``X-Api-Key: vk_…``"""

    param_name = "X-Api-Key"

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.META.get("HTTP_X_API_KEY")

    def authenticate(self, request: HttpRequest, key: str | None):
        if not key:
            return None
        return actor_for_token(request, key)


class Session(APIKeyCookie):
    """The Django session of a signed-in user (for the web UI). Changes need the CSRF token."""

    def __init__(self) -> None:
        from django.conf import settings

        self.param_name = settings.SESSION_COOKIE_NAME
        super().__init__(csrf=False)  # checked below, and only for a signed-in session

    def authenticate(self, request: HttpRequest, key: str | None):
        user = getattr(request, "user", None)
        if not key or user is None or not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise PermissionDenied(_("The CSRF check failed: send the X-CSRFToken header with the session."),
                                   code="csrf_failed")
        return dataclasses.replace(Actor.for_user(user, "api"), ip=client_ip(request))


def methods() -> list:
    return [BearerToken(), HeaderToken(), Session()]
