"""Read queries compiled once and run many times: for lookups on every request (token, settings version).

Compiling a queryset to SQL costs several hundred microseconds in Django, far more than running the
query. ``Prepared`` builds the queryset once per database alias and thread with placeholder values,
keeps the SQL, the parameter positions and the result converters, and later only swaps the values in.
Only use it for simple lookups whose SQL does not depend on the values (no ``__in`` lists, no ``None``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from . import bound


class Prepared:
    def __init__(self, build: Callable[..., QuerySet], placeholders: Sequence[Any], *, bound: bool = False):
        """``build(*placeholders)`` returns a ``values_list`` queryset; the placeholders must be distinct
        values of the types the real arguments have, and each must appear once in the SQL parameters.
        ``bound``: on PostgreSQL the values are bound on the server and the statement is prepared once per
        connection (``voronka.core.bound``; for the lookups of every request: plain columns compared to values)."""
        self.build = build
        self.bound = bound
        self.placeholders = tuple(placeholders)
        self._local = threading.local()

    def _compiled(self, using: str):
        cache = self._local.__dict__.setdefault("by_alias", {})
        connection = connections[using]
        hit = cache.get(using)
        if hit is not None and hit[0] is connection:
            return hit
        qs = self.build(*self.placeholders)
        compiler = qs.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        params = list(params)
        positions = []
        for value in self.placeholders:
            found = [i for i, p in enumerate(params) if p == value]
            if len(found) != 1:
                raise ValueError(f"placeholder {value!r} appears {len(found)} times in the query parameters")
            positions.append(found[0])
        converters = compiler.get_converters([col for col, _, _ in compiler.select])
        hit = (connection, sql, params, positions, converters, compiler)
        cache[using] = hit
        return hit

    def rows(self, *values, using: str = "default") -> list[tuple]:
        _, sql, params, positions, converters, compiler = self._compiled(using)
        params = list(params)
        for pos, value in zip(positions, values, strict=True):
            params[pos] = value
        connection = connections[using]
        with (bound.cursor(connection, prepare=True) if self.bound else connection.cursor()) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters and rows:
            rows = [tuple(r) for r in compiler.apply_converters(rows, converters)]
        return rows
