"""Global methods: ``scope``, ``methods``, ``method.get``, ``server.time``."""

from __future__ import annotations

from django.utils import timezone

from . import params as P
from . import registry
from .registry import Call, method


@method("scope", scope=None)
def scope(call: Call, params: dict) -> list:
    return list(call.webhook.scopes or [])


@method("methods", scope=None)
def methods(call: Call, params: dict) -> list:
    return [n for n in registry.names() if (m := registry.find(n)) and (m.scope is None or m.scope in call.webhook.scopes)]


@method("method.get", scope=None)
def method_get(call: Call, params: dict) -> dict:
    found = registry.find(str(P.get(params, "name", "") or ""))
    return {"isExisting": found is not None,
            "isAvailable": bool(found and (found.scope is None or found.scope in call.webhook.scopes))}


@method("server.time", scope=None)
def server_time(call: Call, params: dict) -> str:
    return timezone.localtime().isoformat(timespec="seconds")
