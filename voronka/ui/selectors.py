from __future__ import annotations

from django.db.models import Q

from voronka.core.actor import Actor

from .models import SavedView


def views_for(actor: Actor, entity_type_id: int):
    """Views a user may use: their own and those shared with one of their roles."""
    from voronka.identity.permissions import grants_for

    if actor.user is None:
        return SavedView.objects.none()
    role_ids = grants_for(actor.user).role_ids
    return SavedView.objects.filter(Q(owner_id=actor.user_id) | Q(role_id__in=list(role_ids)),
                                    entity_type_id=entity_type_id).order_by("sort", "name")
