"""A per-process cache of CRM settings (pipelines, stages, custom fields), always checked against the
database's ``ConfigVersion`` so that no process ever writes with stale settings."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

from .models import ConfigVersion
from .prepared import Prepared

KEY = "crm"
_lock = threading.Lock()
_cache: dict[tuple, tuple[int, Any]] = {}


_VERSION = Prepared(lambda key: ConfigVersion.objects.filter(key=key).values_list("version"), ["\x00key"])


def current_version(key: str = KEY) -> int:
    rows = _VERSION.rows(key)  # compiled once: this runs on every write
    return (rows[0][0] if rows else 0) or 0


def bump(key: str = KEY) -> None:
    """Call inside the transaction that changes settings.

    The new version is random, not the next number: a transaction that bumped and rolled back must never
    leave behind a number that a later change could reuse while some process caches what it saw.
    """
    token = secrets.randbits(62) + 1
    updated = ConfigVersion.objects.filter(key=key).update(version=token)
    if not updated:
        ConfigVersion.objects.update_or_create(key=key, defaults={"version": token})


def cached(key: tuple, loader: Callable[[], Any], version: int) -> Any:
    hit = _cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = loader()
    with _lock:
        _cache[key] = (version, value)
    return value
