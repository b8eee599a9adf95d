"""Keeps the entity-type registry of this process in step with the smart types in the database.

``sync`` is the registry's loader: it reads the settings version (one tiny query) and reloads the types only
when it changed, so every process sees a type created or renamed elsewhere on its next request.
"""

from __future__ import annotations

import threading
import time

from voronka.core import config_cache, entity_types
from voronka.core.recordkit import RecordSpec
from voronka.pipelines.stages import StageHook

from .models import ListRow, SmartItem, SmartType

WRITABLE = ("title", "opportunity", "currency", "source", "comment", "responsible", "begin_date", "close_date")
LIST_WRITABLE = ("title", "comment", "source", "responsible")

_lock = threading.Lock()
_state: dict = {"version": None, "types": {}}  # types: id -> (code, name, plural, links) registered
_request = threading.local()  # within a web request the version is checked once (menus ask several times)


def request_started(**kwargs) -> None:
    _request.active, _request.checked_at = True, None


def request_finished(**kwargs) -> None:
    _request.active = False


def spec_of(t: SmartType) -> RecordSpec:
    links = tuple(x for x in ("contact", "company") if x in (t.links or []))
    if t.kind == SmartType.Kind.LIST:
        return RecordSpec(model=ListRow, entity_type_id=t.id, code=t.code, writable=(*LIST_WRITABLE, *links),
                          scope={"entity_type_id": t.id})
    return RecordSpec(model=SmartItem, entity_type_id=t.id, code=t.code, writable=(*WRITABLE, *links),
                      hooks=(StageHook(),), scope={"entity_type_id": t.id})


def install(t: SmartType) -> None:
    """Register one type in this process (also used right after creating or changing it)."""
    model = ListRow if t.kind == SmartType.Kind.LIST else SmartItem
    entity_types.register(t.id, t.code, model, staged=model is SmartItem, title=t.name, spec=spec_of(t),
                          scope={"entity_type_id": t.id}, name=t.name, name_plural=t.name_plural)
    _state["types"][t.id] = (t.code, t.name, t.name_plural, tuple(t.links or ()))


def forget() -> None:
    """Make the next ``sync`` reload (after a change that may roll back)."""
    _state["version"] = None
    _request.checked_at = None


def sync(*, force: bool = False) -> None:
    """Reload the types if the settings changed. Within a web request the check is made once (a request whose
    end was never signalled counts for a few seconds at most); ``force`` always checks."""
    if getattr(_request, "active", False) and not force:
        now = time.monotonic()
        if _request.checked_at is not None and now - _request.checked_at < 5:
            return
        _request.checked_at = now
    try:
        version = config_cache.current_version()
    except Exception:  # no database yet (before migrate) or no database access (unit tests): nothing to load
        return
    if version == _state["version"]:
        return
    with _lock:
        try:
            rows = list(SmartType.objects.all())
        except Exception:  # the table is not there yet (migrating)
            return
        seen = set()
        for t in rows:
            seen.add(t.id)
            if _state["types"].get(t.id) != (t.code, t.name, t.name_plural, tuple(t.links or ())):
                install(t)
        for gone in set(_state["types"]) - seen:
            entity_types.unregister(gone)
            del _state["types"][gone]
        _state["version"] = version
