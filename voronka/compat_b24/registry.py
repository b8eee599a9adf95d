"""The methods of the facade: name → handler, scope. Handlers take (call, params) and return a result."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voronka.core.actor import Actor


@dataclass
class ListResult:
    """A list method's answer: the rows plus ``total`` and ``next`` (hoisted to the top level of the envelope)."""

    result: Any
    total: int | None = None
    next: int | None = None


@dataclass
class Call:
    """One method call: who (the webhook's user as an actor), through which webhook, from where."""

    actor: Actor
    webhook: Any
    base_url: str  # https://host/rest/<uid>/<secret>/ without the secret: "https://host/rest/"
    host: str
    start: int = 0  # the ``start`` parameter, peeled off every call
    cache: dict = field(default_factory=dict)

    def with_start(self, start: int) -> Call:
        return dataclasses.replace(self, start=start)


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[[Call, dict], Any]
    scope: str | None  # None: global (batch, profile, scope …)


_methods: dict[str, Method] = {}


def method(name: str, scope: str | None = "crm"):
    def register(fn):
        _methods[name.lower()] = Method(name.lower(), fn, scope)
        return fn
    return register


def find(name: str) -> Method | None:
    _load()
    return _methods.get(name.lower())


def names() -> list[str]:
    _load()
    return sorted(_methods)


_loaded = {"done": False}


def _load() -> None:
    if not _loaded["done"]:
        from . import crm, directories, events, extras, item, misc, smart, users  # noqa: F401  (they register their methods)

        _loaded["done"] = True
