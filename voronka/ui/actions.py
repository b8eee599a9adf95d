"""Writes of UI preferences (saved views). Sharing a view with a role needs the «roles» settings right."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed

from .models import SavedView

PARAM_KEYS = {"stage", "semantics", "responsible", "source", "created_from", "created_to", "order", "q", "columns",
              "pipeline"}


def clean_params(params: dict) -> dict:
    cleaned = {}
    for key, value in (params or {}).items():
        if key not in PARAM_KEYS or value in ("", None, []):
            continue
        cleaned[key] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return cleaned


def save_view(actor: Actor, *, entity_type_id: int, name: str, params: dict, role_id: int | None = None,
              is_default: bool = False) -> SavedView:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("A view needs a name."), fields={"name": [_("empty")]})
    if role_id is not None and not policies.can(actor, "settings:roles", 0):
        raise PermissionDenied(_("Only those who manage roles can share a view with a role."))
    with transaction.atomic():
        return SavedView.objects.create(entity_type_id=entity_type_id, name=name[:100], params=clean_params(params),
                                        owner_id=None if role_id else actor.user_id, role_id=role_id,
                                        is_default=is_default)


def delete_view(actor: Actor, view_id: int) -> None:
    view = SavedView.objects.filter(pk=view_id).first()
    if view is None:
        raise NotFound(_("No such view."))
    if view.owner_id != actor.user_id and not policies.can(actor, "settings:roles", 0):
        raise PermissionDenied(_("This view is not yours."))
    view.delete()
