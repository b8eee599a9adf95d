"""The entity-type registry: one numbering for every kind of record.

Bitrix24's numbering is kept so the compat facade can use it unchanged:
1 lead, 2 deal, 3 contact, 4 company, 7 quote, 31 invoice, 1030+ smart processes (dynamic types).
Domain apps register their models in ``AppConfig.ready``; engines (automation,
analytics, API) look records up here and never import a domain model by name.

Smart processes are defined by an administrator at run time and share one table: their entries carry
a ``scope`` (``{"entity_type_id": 1030}``) that every query of the type applies (``info.objects``), and
their write-path ``spec``. A loader installed by the app that owns them (``set_loader``) keeps this
process's registry in step with the database: it is asked on every ``all_types()`` and on a miss, and
answers from the per-process settings cache (one tiny read of the settings version).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LEAD = 1
DEAL = 2
CONTACT = 3
COMPANY = 4
FIRST_DYNAMIC = 1030  # the first smart-process type id, as in Bitrix24's dynamic types


@dataclass(frozen=True)
class EntityTypeInfo:
    id: int
    code: str  # "lead", "deal" …
    model: Any
    staged: bool
    title: str
    spec: Any = None  # the write-path RecordSpec (smart processes register theirs here)
    scope: tuple[tuple[str, Any], ...] = ()  # filters that select this type's rows in a shared table
    name: Any = None  # singular, shown to people (default: the model's verbose name)
    name_plural: Any = None

    @property
    def dynamic(self) -> bool:
        return bool(self.scope)

    @property
    def objects(self):
        """A queryset of this type's rows (all of them, deleted included)."""
        qs = self.model.objects.all()
        return qs.filter(**dict(self.scope)) if self.scope else qs

    @property
    def label(self) -> str:
        return str(self.name or self.model._meta.verbose_name)

    @property
    def label_plural(self) -> str:
        return str(self.name_plural or self.model._meta.verbose_name_plural)

    def get(self, pk: int):
        return self.objects.get(pk=pk)

    def owns(self, obj) -> bool:
        return isinstance(obj, self.model) and all(getattr(obj, k, None) == v for k, v in self.scope)


_registry: dict[int, EntityTypeInfo] = {}
_loader: Callable[[], None] | None = None


def register(type_id: int, code: str, model, *, staged: bool, title: str, spec=None, scope: dict | None = None,
             name=None, name_plural=None) -> None:
    _registry[type_id] = EntityTypeInfo(type_id, code, model, staged, title, spec=spec,
                                        scope=tuple(sorted((scope or {}).items())), name=name, name_plural=name_plural)


def unregister(type_id: int) -> None:
    _registry.pop(type_id, None)


def set_loader(loader: Callable[[], None] | None) -> None:
    """Install the function that brings run-time defined types up to date (idempotent, cheap when nothing changed)."""
    global _loader
    _loader = loader


def _sync() -> None:
    if _loader is not None:
        _loader()


def _find(test) -> EntityTypeInfo | None:
    for info in list(_registry.values()):
        if test(info):
            return info
    return None


def get(type_id: int) -> EntityTypeInfo:
    info = _registry.get(type_id)
    if info is None and isinstance(type_id, int) and type_id >= FIRST_DYNAMIC:
        _sync()
        info = _registry.get(type_id)
    if info is None:
        raise LookupError(f"unknown entity type {type_id}")
    return info


def by_code(code: str) -> EntityTypeInfo:
    info = _find(lambda i: i.code == code)
    if info is None:
        _sync()
        info = _find(lambda i: i.code == code)
    if info is None:
        raise LookupError(f"unknown entity type {code!r}")
    return info


def for_model(model) -> EntityTypeInfo:
    for info in list(_registry.values()):
        if info.scope:
            if not isinstance(model, type) and info.owns(model):
                return info
        elif info.model is model or isinstance(model, info.model):
            return info
    raise LookupError(f"{model!r} is not a registered entity type")


def spec_for(type_id: int):
    """The write-path spec a kind of record registered, or LookupError."""
    spec = get(type_id).spec
    if spec is None:
        raise LookupError(f"no write path registered for entity type {type_id}")
    return spec


def all_types() -> list[EntityTypeInfo]:
    _sync()
    return known()


def known() -> list[EntityTypeInfo]:
    """What this process has registered, without asking the database (hot loops; call ``all_types`` first)."""
    return sorted(_registry.values(), key=lambda i: i.id)
