"""The audit trail of sensitive operations (exports, deletions, restores, purges, rights changes, logins)."""

from __future__ import annotations

from .actor import Actor
from .history import jsonable
from .models import AuditEvent


def record(actor: Actor, action: str, *, entity_type_id: int | None = None, entity_id: int | None = None,
           count: int = 0, **details) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action, actor_kind=actor.kind, actor_user_id=actor.user_id, actor_label=actor.label[:200],
        entry_point=actor.entry_point[:20], ip=(actor.ip or "")[:45], entity_type_id=entity_type_id,
        entity_id=entity_id, count=count, details=jsonable(details))
