"""The entity-type registry: one numbering for every kind of record.

Bitrix24's numbering is kept so the compat facade can use it unchanged:
1 lead, 2 deal, 3 contact, 4 company, 7 quote, 31 invoice, 128+ smart processes.
Domain apps register their models in ``AppConfig.ready``; engines (automation,
analytics, API) look records up here and never import a domain model by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LEAD = 1
DEAL = 2
CONTACT = 3
COMPANY = 4
FIRST_DYNAMIC = 128


@dataclass(frozen=True)
class EntityTypeInfo:
    id: int
    code: str  # "lead", "deal" …
    model: Any
    staged: bool
    title: str

    def get(self, pk: int):
        return self.model.objects.get(pk=pk)


_registry: dict[int, EntityTypeInfo] = {}


def register(type_id: int, code: str, model, *, staged: bool, title: str) -> None:
    _registry[type_id] = EntityTypeInfo(type_id, code, model, staged, title)


def get(type_id: int) -> EntityTypeInfo:
    try:
        return _registry[type_id]
    except KeyError:
        raise LookupError(f"unknown entity type {type_id}") from None


def by_code(code: str) -> EntityTypeInfo:
    for info in _registry.values():
        if info.code == code:
            return info
    raise LookupError(f"unknown entity type {code!r}")


def for_model(model) -> EntityTypeInfo:
    for info in _registry.values():
        if info.model is model or isinstance(model, info.model):
            return info
    raise LookupError(f"{model!r} is not a registered entity type")


def all_types() -> list[EntityTypeInfo]:
    return sorted(_registry.values(), key=lambda i: i.id)
