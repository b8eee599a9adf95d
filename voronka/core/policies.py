"""The permission engine's entry points.

Every action asks ``require(actor, perm, entity_type_id, obj)`` and every selector narrows
its queryset with ``visible(actor, entity_type_id, qs)``. The rules behind them live in
``voronka.identity.permissions`` (roles, scopes, pipelines), plugged in at start-up, so
core stays free of domain knowledge.
"""

from __future__ import annotations

from typing import Protocol

from .actor import Actor
from .errors import PermissionDenied

READ, ADD, UPDATE, DELETE, EXPORT, IMPORT = "read", "add", "update", "delete", "export", "import"


class Engine(Protocol):
    def can(self, actor: Actor, perm: str, entity_type_id: int, obj=None, pipeline_id: int | None = None) -> bool: ...

    def visible(self, actor: Actor, entity_type_id: int, qs, perm: str = "read", *, observers: bool = True): ...


class _AllowAll:
    def can(self, actor, perm, entity_type_id, obj=None, pipeline_id=None):
        return True

    def visible(self, actor, entity_type_id, qs, perm="read", *, observers=True):
        return qs


_engine: Engine = _AllowAll()


def install(engine: Engine) -> None:
    global _engine
    _engine = engine


def can(actor: Actor, perm: str, entity_type_id: int, obj=None, pipeline_id: int | None = None) -> bool:
    return _engine.can(actor, perm, entity_type_id, obj, pipeline_id)


def require(actor: Actor, perm: str, entity_type_id: int, obj=None, pipeline_id: int | None = None) -> None:
    if not _engine.can(actor, perm, entity_type_id, obj, pipeline_id):
        from django.utils.translation import gettext as _

        raise PermissionDenied(_("You do not have the right to do this."), code=f"forbidden_{perm}")


def visible(actor: Actor, entity_type_id: int, qs, perm: str = READ, *, observers: bool = True):
    """Narrow ``qs`` to the records the actor may ``perm`` (read by default; export for exports). ``observers``
    False: by the roles alone, without the records the actor reads only because he observes them (read models,
    whose rows carry the responsible, openness and pipeline but not who observes what)."""
    if not observers:
        return _engine.visible(actor, entity_type_id, qs, perm, observers=False)
    return _engine.visible(actor, entity_type_id, qs, perm)


def readers(users, entity_type_id: int, obj) -> list:
    """The users among ``users`` who may read ``obj``: notifications about a record go only to them."""
    from .actor import Actor

    return [u for u in users if u is not None and can(Actor.for_user(u, "system"), READ, entity_type_id, obj)]
