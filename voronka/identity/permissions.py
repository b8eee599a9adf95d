"""Foundation permission rules (issue 3 replaces them with roles per pipeline and scope).

- the system actor may do everything (it acts for rules an administrator configured);
- inactive users nothing; superusers everything;
- other users read, add, update and import; deleting and exporting need a superuser;
- a token limited to scopes may only do what its scopes name ("read" or "write").
"""

from __future__ import annotations

from voronka.core.actor import Actor

WRITE_PERMS = {"add", "update", "delete", "import"}


class BasicEngine:
    def can(self, actor: Actor, perm: str, entity_type_id: int, obj=None, pipeline_id=None) -> bool:
        if actor.is_system:
            return True
        user = actor.user
        if user is None or not user.is_active:
            return False
        if actor.scopes:
            needed = "write" if perm in WRITE_PERMS else perm
            if needed not in actor.scopes:
                return False
        if user.is_superuser:
            return True
        return perm in {"read", "add", "update", "import"}

    def visible(self, actor: Actor, entity_type_id: int, qs):
        if actor.is_system:
            return qs
        user = actor.user
        if user is None or not user.is_active:
            return qs.none()
        return qs
