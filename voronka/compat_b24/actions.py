"""Writes of the facade's own data: incoming webhooks and event handlers."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, ValidationFailed

from .models import SCOPES, EventHandler, Webhook, hash_secret

INTEGRATIONS = "settings:integrations"


def _may_manage(actor: Actor, user_id: int) -> None:
    """Oneself, or anyone with the «integrations» settings right."""
    if actor.user_id != user_id:
        policies.require(actor, INTEGRATIONS, 0)


def clean_scopes(scopes) -> list[str]:
    scopes = [str(s).strip().lower() for s in (scopes or []) if str(s).strip()]
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValidationFailed(_("Unknown scopes: %(s)s. Known: %(k)s.") % {"s": ", ".join(bad), "k": ", ".join(SCOPES)},
                               fields={"scopes": [_("unknown: %(s)s") % {"s": ", ".join(bad)}]})
    return [s for s in SCOPES if s in scopes] or ["crm"]


def create_webhook(actor: Actor, *, user_id: int, name: str = "", scopes=None) -> tuple[Webhook, str]:
    """A new incoming webhook; returns it and its secret (shown once, only its hash is kept)."""
    from voronka.identity.models import User

    _may_manage(actor, user_id)
    scopes = clean_scopes(scopes)
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed(_("No such active user."), fields={"user_id": [_("not found")]})
    name = (name or "").strip()
    if len(name) > 100:
        raise ValidationFailed(_("The name is too long."), fields={"name": [_("at most 100 characters")]})
    secret = secrets.token_hex(8)  # 16 characters, the length Bitrix24's webhook codes have
    with transaction.atomic():
        hook = Webhook.objects.create(user=user, name=name, secret_hash=hash_secret(secret), hint=secret[-4:],
                                      scopes=scopes)
        audit.record(actor, "b24_webhook.created", user=user.pk, webhook=hook.pk, scopes=scopes)
    return hook, secret


def revoke_webhook(actor: Actor, webhook_id: int) -> Webhook:
    hook = Webhook.objects.filter(pk=webhook_id).first()
    if hook is None:
        raise NotFound(_("Webhook #%(id)s does not exist.") % {"id": webhook_id})
    try:
        _may_manage(actor, hook.user_id)
    except policies.PermissionDenied:
        raise NotFound(_("Webhook #%(id)s does not exist.") % {"id": webhook_id}) from None
    if hook.is_active:
        with transaction.atomic():
            Webhook.objects.filter(pk=hook.pk).update(is_active=False, revoked_at=timezone.now())
            audit.record(actor, "b24_webhook.revoked", user=hook.user_id, webhook=hook.pk)
        hook.refresh_from_db()
    return hook


def handler_address_problem(url: str) -> str | None:
    """Why the server must not post to ``url`` (a loopback, private or otherwise non-public address), or None.

    Checked when a handler is bound and again before every delivery (the name may resolve elsewhere later).
    ``VORONKA_B24_EVENT_PRIVATE_HANDLERS=1`` allows such addresses (receivers inside the company network).
    """
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    from django.conf import settings

    if settings.VORONKA_B24_EVENT_PRIVATE_HANDLERS:
        return None
    host = urlsplit(url).hostname
    if not host:
        return _("The handler address has no host.")
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return _("The handler host «%(h)s» cannot be resolved.") % {"h": host}
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return _("The handler must be on a public address, not %(a)s (see VORONKA_B24_EVENT_PRIVATE_HANDLERS).") % {
                "a": address}
    return None


def bind_event(actor: Actor, *, event: str, handler: str) -> tuple[EventHandler, bool]:
    """Subscribe ``handler`` (an http(s) URL) to ``event`` for the actor's user. Returns (handler, created)."""
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    try:
        URLValidator(schemes=["http", "https"])(handler)
    except ValidationError:
        raise ValidationFailed(_("The handler must be an http or https address."),
                               fields={"handler": [_("not a valid address")]}) from None
    problem = handler_address_problem(handler)
    if problem:
        raise ValidationFailed(problem, fields={"handler": [problem]})
    with transaction.atomic():
        existing = EventHandler.objects.filter(user_id=actor.user_id, event=event, handler=handler).first()
        if existing:
            return existing, False
        found = EventHandler.objects.filter(user_id=actor.user_id).exclude(application_token="").first()
        token = found.application_token if found else secrets.token_hex(16)
        created = EventHandler.objects.create(user_id=actor.user_id, event=event, handler=handler,
                                              application_token=token)
        audit.record(actor, "b24_event.bound", event=event, handler=handler)
    return created, True


def unbind_event(actor: Actor, *, event: str, handler: str | None = None) -> int:
    qs = EventHandler.objects.filter(user_id=actor.user_id, event=event)
    if handler:
        qs = qs.filter(handler=handler)
    with transaction.atomic():
        count = qs.count()
        if count:
            qs.delete()
            audit.record(actor, "b24_event.unbound", event=event, handler=handler or "*", count=count)
    return count
