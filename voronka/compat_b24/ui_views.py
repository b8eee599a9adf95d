"""Settings → Integrations → Bitrix24 webhooks: create, list and revoke incoming webhooks.

Every user manages their own webhooks; a user with the «integrations» settings right manages everyone's.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from voronka.core import policies
from voronka.core.errors import ActionError
from voronka.identity.models import User
from voronka.ui.views import action_error, actor_of, page

from . import actions
from .models import SCOPES, EventDelivery, EventHandler, Webhook


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@login_required
def webhooks(request):
    actor = actor_of(request)
    manage_all = policies.can(actor, actions.INTEGRATIONS, 0)
    url = None
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "create":
                hook, secret = actions.create_webhook(actor, user_id=_int(request.POST.get("user")) or actor.user_id,
                                                      name=request.POST.get("name", ""),
                                                      scopes=request.POST.getlist("scopes"))
                url = request.build_absolute_uri(f"/rest/{hook.user_id}/{secret}/")
                messages.success(request, _("Webhook created. Copy its address now: it is shown only once."))
            elif op == "revoke":
                actions.revoke_webhook(actor, _int(request.POST.get("webhook")) or 0)
                messages.success(request, _("Webhook revoked."))
                return redirect("ui:b24_webhooks")
        except ActionError as exc:
            action_error(request, exc)
    hooks = Webhook.objects.select_related("user").order_by("-id")
    handlers = EventHandler.objects.select_related("user").order_by("id")
    if not manage_all:
        hooks = hooks.filter(user=request.user)
        handlers = handlers.filter(user=request.user)
    handlers = list(handlers[:200])
    failed = {h: EventDelivery.objects.filter(handler=h, failed_at__isnull=False).count() for h in handlers}
    return page(request, "compat_b24/webhooks.html", {
        "webhooks": hooks[:200], "url": url, "manage_all": manage_all, "scopes": SCOPES,
        "handlers": [(h, failed[h]) for h in handlers],
        "users": User.objects.filter(is_active=True).order_by("last_name") if manage_all else []}, nav="b24_webhooks")
