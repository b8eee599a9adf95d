"""Reading parameters leniently, the way Bitrix24 does: ``fields``/``FIELDS``/``arFields``, ``id``/``ID`` …"""

from __future__ import annotations

from typing import Any

from .errors import B24Error, bad_param


def get(params: dict, name: str, default: Any = None) -> Any:
    if name in params:
        return params[name]
    lower = name.lower()
    for alias in (name.upper(), name.capitalize(), "ar" + name.capitalize()):
        if alias in params:
            return params[alias]
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return default


def mapping(params: dict, name: str) -> dict:
    """A parameter that must be an array (PHP) — a dict or list here; absent is empty."""
    value = get(params, name)
    if value is None or value == "" or value == []:
        return {}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if not isinstance(value, dict):
        raise bad_param(name)
    return value


def names(params: dict, name: str) -> list[str]:
    value = get(params, name)
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise bad_param(name)
    return [str(v) for v in value if isinstance(v, str | int) and str(v) != ""]


def entity_id(params: dict) -> int:
    raw = params.get("ID", params.get("id"))
    try:
        value = int(str(raw).strip()) if raw is not None and not isinstance(raw, dict | list | bool) else 0
    except ValueError:
        value = 0
    if value <= 0 or value > 2**63 - 1:
        raise B24Error("ID is not defined or invalid.")
    return value


def integer(params: dict, name: str, default: int | None = None) -> int | None:
    raw = get(params, name)
    if raw is None or raw == "":
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise B24Error(f"The parameter {name} is not defined or invalid.") from None


def flag(value: Any) -> bool:
    """PHP truthiness of a request value: 0, "0", "", false, "N" are false."""
    if isinstance(value, str):
        return value.strip().upper() not in ("", "0", "N", "FALSE", "NONE")
    return bool(value)


def php_true(value: Any) -> bool:
    """PHP's own truthiness, for ``halt`` of a batch: only 0, "0", "", false, null and empty arrays are false
    (the string "false" is true, as in Bitrix24)."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)
