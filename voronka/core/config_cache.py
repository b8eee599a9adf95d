"""A per-process cache of CRM settings (pipelines, stages, custom fields), always checked against the
database's ``ConfigVersion`` so that no process ever writes with stale settings.

The version rows («crm» for pipelines, stages, fields and robots; «rights» for roles, users and departments;
«tokens» for API tokens and their users) are read together in one statement. Inside a request
(``request_scope``, opened by ``VersionsMiddleware``) that read happens once, at the first need, and serves
the whole request: the token check, the rights and every write. Outside a request (worker, CLI, tests that
call actions) every call reads them afresh. A change made by another process is therefore seen by the next
request; a change made in this process clears the request's snapshot at once.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .models import ConfigVersion
from .prepared import Prepared

KEY = "crm"
RIGHTS = "rights"
TOKENS = "tokens"
KEYS = (KEY, RIGHTS, TOKENS)
_lock = threading.Lock()
_cache: dict[tuple, tuple[int, Any]] = {}
_request = threading.local()

_VERSION = Prepared(lambda key: ConfigVersion.objects.filter(key=key).values_list("version"), ["\x00key"])
# compiled once: this runs on every request that writes or authenticates
_ALL = Prepared(lambda: ConfigVersion.objects.filter(key__in=KEYS).values_list("key", "version"), [],
                bound=True)


def versions() -> dict[str, int]:
    """{key: version} of the shared keys: from the request's snapshot, or one read."""
    snapshot = getattr(_request, "snapshot", None)
    if snapshot is not None:
        return snapshot
    snapshot = dict.fromkeys(KEYS, 0)
    for key, version in _ALL.rows():
        snapshot[key] = version or 0
    if getattr(_request, "depth", 0):
        _request.snapshot = snapshot
    return snapshot


def current_version(key: str = KEY) -> int:
    if key in KEYS:
        return versions()[key]
    rows = _VERSION.rows(key)
    return (rows[0][0] if rows else 0) or 0


@contextmanager
def request_scope() -> Iterator[None]:
    """Read the version rows at most once inside the block (one request)."""
    depth = getattr(_request, "depth", 0)
    _request.depth = depth + 1
    try:
        yield
    finally:
        _request.depth = depth
        if not depth:
            _request.snapshot = None


def forget_snapshot() -> None:
    """The next ``versions()`` reads the database again (after a change made here)."""
    _request.snapshot = None


def bump(key: str = KEY) -> None:
    """Call inside the transaction that changes settings.

    The new version is random, not the next number: a transaction that bumped and rolled back must never
    leave behind a number that a later change could reuse while some process caches what it saw.
    """
    token = secrets.randbits(62) + 1
    updated = ConfigVersion.objects.filter(key=key).update(version=token)
    if not updated:
        ConfigVersion.objects.update_or_create(key=key, defaults={"version": token})
    forget_snapshot()  # later reads in this request see the change (or, after a rollback, the old version)


def peek(key: tuple, version: int) -> Any:
    """What ``cached`` keeps under ``key`` for ``version``, or None."""
    hit = _cache.get(key)
    return hit[1] if hit is not None and hit[0] == version else None


def cached(key: tuple, loader: Callable[[], Any], version: int) -> Any:
    hit = _cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = loader()
    with _lock:
        _cache[key] = (version, value)
    return value


class VersionsMiddleware:
    """Opens ``request_scope`` around each request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_scope():
            return self.get_response(request)
