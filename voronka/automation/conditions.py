"""Robot conditions: and/or groups of field comparisons, stored as JSON.

Format::

    {"all": [                                   # every item must hold ("any": at least one)
        {"field": "opportunity", "op": "greater", "value": 1000},
        {"any": [{"field": "source", "op": "in", "value": ["site", "call"]},
                 {"field": "custom.vip", "op": "not_empty"}]}]}

An empty object (or no conditions) always holds. Operators: equals, differs, greater, less, contains,
empty, not_empty, in. Numbers compare as numbers, dates as dates, everything else as text; «contains» is a
case-insensitive substring for text and membership for lists (phones, e-mails).
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from . import fields

OPERATORS = ("equals", "differs", "greater", "less", "contains", "empty", "not_empty", "in")
NO_VALUE = ("empty", "not_empty")


class ConditionError(ValueError):
    pass


def validate(spec: Any, path: str = "conditions") -> None:
    """Raise ConditionError with a clear message for a malformed condition tree."""
    if spec in (None, {}):
        return
    if not isinstance(spec, dict):
        raise ConditionError(_("%(path)s: a condition must be an object.") % {"path": path})
    groups = [k for k in ("all", "any") if k in spec]
    if groups:
        if len(spec) != 1:
            raise ConditionError(_("%(path)s: a group has exactly one key, «all» or «any».") % {"path": path})
        items = spec[groups[0]]
        if not isinstance(items, list):
            raise ConditionError(_("%(path)s.%(g)s must be a list.") % {"path": path, "g": groups[0]})
        for i, item in enumerate(items):
            validate(item, f"{path}.{groups[0]}[{i}]")
        return
    unknown = set(spec) - {"field", "op", "value"}
    if unknown:
        raise ConditionError(_("%(path)s: unknown keys %(k)s.") % {"path": path, "k": ", ".join(sorted(unknown))})
    if not isinstance(spec.get("field"), str) or not spec["field"]:
        raise ConditionError(_("%(path)s: «field» must name a field.") % {"path": path})
    op = spec.get("op")
    if op not in OPERATORS:
        raise ConditionError(_("%(path)s: unknown operator %(op)r; use one of %(ops)s.")
                             % {"path": path, "op": op, "ops": ", ".join(OPERATORS)})
    if op not in NO_VALUE and "value" not in spec:
        raise ConditionError(_("%(path)s: operator «%(op)s» needs a «value».") % {"path": path, "op": op})
    if op == "in" and not isinstance(spec["value"], list):
        raise ConditionError(_("%(path)s: operator «in» needs a list as its value.") % {"path": path})


def _number(value: Any) -> decimal.Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | decimal.Decimal):
        return decimal.Decimal(str(value))
    if isinstance(value, str):
        try:
            return decimal.Decimal(value.strip().replace(",", "."))
        except decimal.InvalidOperation:
            return None
    return None


def _when(value: Any) -> datetime.datetime | datetime.date | None:
    if isinstance(value, datetime.datetime | datetime.date):
        return value
    if isinstance(value, str):
        return parse_datetime(value) or parse_date(value)
    return None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, datetime.datetime | datetime.date) or isinstance(right, datetime.datetime | datetime.date):
        lw, rw = _when(left), _when(right)
        if lw is not None and rw is not None:
            if isinstance(lw, datetime.datetime) != isinstance(rw, datetime.datetime):
                lw = lw.date() if isinstance(lw, datetime.datetime) else lw
                rw = rw.date() if isinstance(rw, datetime.datetime) else rw
            return lw, rw
    ln, rn = _number(left), _number(right)
    if ln is not None and rn is not None and (not isinstance(left, str) or not isinstance(right, str)):
        return ln, rn  # a number on either side: compare as numbers
    return ("" if left is None else str(left)).strip().lower(), ("" if right is None else str(right)).strip().lower()


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def check_one(obj, cond: dict) -> bool:
    try:
        left = fields.raw(obj, cond["field"])
    except KeyError:
        raise ConditionError(_("Unknown field «%(f)s».") % {"f": cond["field"]}) from None
    op, right = cond["op"], cond.get("value")
    if op == "empty":
        return _is_empty(left)
    if op == "not_empty":
        return not _is_empty(left)
    if op == "contains":
        if isinstance(left, list):
            return any(_comparable(v, right)[0] == _comparable(v, right)[1] for v in left)
        return str(right).strip().lower() in ("" if left is None else str(left)).lower()
    if op == "in":
        return any(_comparable(left, v)[0] == _comparable(left, v)[1] for v in right)
    a, b = _comparable(left, right)
    if op == "equals":
        return a == b
    if op == "differs":
        return a != b
    if _is_empty(left):
        return False  # nothing is greater or less than an empty field
    try:
        return a > b if op == "greater" else a < b
    except TypeError:
        return False


def check(obj, spec: Any) -> bool:
    if spec in (None, {}):
        return True
    if "all" in spec:
        return all(check(obj, s) for s in spec["all"])
    if "any" in spec:
        return any(check(obj, s) for s in spec["any"])
    return check_one(obj, spec)
