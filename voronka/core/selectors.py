"""Reads of any record kind, already narrowed to what the actor may see."""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.utils.translation import gettext as _

from . import entity_types, policies
from .actor import Actor
from .errors import NotFound, ValidationFailed
from .models import TimelineEntry


def records_visible_to(actor: Actor, entity_type_id: int, *, deleted: bool = False) -> QuerySet:
    qs = entity_types.get(entity_type_id).objects.filter(deleted_at__isnull=not deleted)
    return policies.visible(actor, entity_type_id, qs)


def get_record_for(actor: Actor, entity_type_id: int, pk: Any):
    info = entity_types.get(entity_type_id)
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        pk = None
    obj = records_visible_to(actor, entity_type_id).filter(pk=pk).first() if pk is not None else None
    if obj is None:
        # the same answer whether it does not exist or the actor may not see it: nothing leaks
        raise NotFound(_("%(what)s #%(id)s does not exist.") % {"what": info.label.capitalize(),
                                                               "id": pk})
    return obj


def timeline_for(actor: Actor, entity_type_id: int, pk: int, *, limit: int = 50, before_id: int | None = None):
    get_record_for(actor, entity_type_id, pk)  # raises if not visible
    qs = TimelineEntry.objects.filter(
        Q(entity_type_id=entity_type_id, entity_id=pk) | Q(bindings__entity_type_id=entity_type_id, bindings__entity_id=pk)
    ).distinct().order_by("-id")
    if before_id:
        qs = qs.filter(id__lt=before_id)
    return list(qs[:limit])


# --- keyset pagination -------------------------------------------------------------------------

@dataclass
class Page:
    items: list
    next_cursor: str | None
    seen: int = 0  # rows on the pages before this one (carried in the cursor)


MAX_ID = 2**63 - 1


def encode_cursor(values: list) -> str:
    return _encode(values)


def decode_cursor(cursor: str) -> list:
    return _decode(cursor)


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed(_("The cursor is not valid; start from the first page."),
                               fields={"cursor": [_("not valid")]}) from None
    if not isinstance(values, list) or len(values) not in (2, 3):
        raise ValidationFailed(_("The cursor is not valid; start from the first page."), fields={"cursor": [_("not valid")]})
    return values


def _after(qs: QuerySet, name: str, desc: bool, value, last_id: int) -> QuerySet:
    op = "lt" if desc else "gt"
    if name == "id":
        return qs.filter(**{f"id__{op}": last_id})
    if value is None:
        return qs.filter(**{f"{name}__isnull": True, f"id__{op}": last_id})
    value = qs.model._meta.get_field(name).to_python(value)  # a forged value fails here, not in the database
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.UTC) if value.tzinfo else value
    elif isinstance(value, decimal.Decimal) and not value.is_finite():
        raise ValueError("not a finite number")
    return qs.filter(Q(**{f"{name}__{op}": value}) | Q(**{name: value, f"id__{op}": last_id}))


def keyset_page(qs: QuerySet, *, order: str = "-id", cursor: str | None = None, limit: int = 50,
                lead: tuple[str, ...] = (), related: tuple[str, ...] | None = None,
                known: dict[str, dict] | None = None, parts: tuple[str, list] | None = None) -> Page:
    """One page ordered by ``order`` (a field, optionally with '-') with id as the tie-breaker.

    ``lead``: columns put first in the ORDER BY that the filter holds to one value (they do not change the
    order, only which index the planner can use; see ``ui.record_views.stage_pinned``).

    ``related`` (not None): the items are ``BoardRow``s, not model instances, with these foreign keys attached
    (one ``in_bulk`` each, without the records of ``known``, by relation name and id); what a list screen
    shows of 50 rows cost more to build as model instances with their joined records than the query took.

    ``parts`` (``(field, values)``, with ``related``): the filter holds ``field`` to these few values (the stages
    of a list). On PostgreSQL the page is then read as one index-ordered part per value, merged (see
    ``_merged_parts``); elsewhere, or when no index leads with the field and the order, as a plain filter.

    No OFFSET and no COUNT: the cost of page N is the cost of page 1.
    """
    desc = order.startswith("-")
    name = order.lstrip("-")
    seen = 0
    if cursor:
        value, last_id, *rest = _decode(cursor)
        seen = rest[0] if rest else 0
        if not isinstance(seen, int) or isinstance(seen, bool) or not 0 <= seen <= MAX_ID:
            raise ValidationFailed(_("The cursor is not valid; start from the first page."),
                                   fields={"cursor": [_("not valid")]})
        if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 <= last_id <= MAX_ID or \
                isinstance(value, float | dict | list | bool):
            raise ValidationFailed(_("The cursor is not valid; start from the first page."),
                                   fields={"cursor": [_("not valid")]})
        try:
            qs = _after(qs, name, desc, value, last_id)
        except (ValidationError, ValueError, TypeError, OverflowError):
            raise ValidationFailed(_("The cursor is not valid; start from the first page."),
                                   fields={"cursor": [_("not valid")]}) from None
    ordering = [order, "-id" if desc else "id"] if name != "id" else [order]
    ordered = qs.order_by(*lead, *ordering)[: limit + 1]
    if parts is not None and related is not None and _plain(qs) and _part_index(qs, parts[0], name):
        rows = _merged_parts(qs, parts, ordering, limit + 1, related, known or {})
    elif related is not None and _plain(qs):
        compiler = ordered.select_related(None).query.get_compiler(using=qs.db)
        sql, params = compiler.as_sql()
        rows = _board_rows(qs, compiler, sql, list(params), related, known or {})
    else:
        rows = list(ordered)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode([None if name == "id" else getattr(last, name), last.pk, seen + len(rows)])
    return Page(rows, next_cursor, seen)


def first_pages(qs: QuerySet, field: str, values: list, *, limit: int = 20, related: tuple[str, ...] = (),
                known: dict[str, dict] | None = None) -> dict[Any, Page]:
    """Page 1 (newest first) of ``qs`` for each value of ``field``: the columns of a board.

    One ``UNION ALL`` of index-ordered, limited subqueries answers all of them: one round trip instead of
    one per column, and one part compiled instead of one per column (the parts differ only in the value,
    which is swapped in the parameters; compiling a queryset costs more than running it). SQLite cannot
    limit the parts of a compound query directly, so there each part is wrapped as
    ``SELECT * FROM (part)``, which it can (and still walks the index of each part).
    ``related``: foreign keys to load for the items, in one query each (not joined per part); ``known``: records
    the caller has already read, by relation name and id (e.g. the users of the page's user select), so that only
    the others are queried.
    The items of the combined query are ``BoardRow``s (the selected columns as attributes, ``pk``, and the
    ``related`` records), not model instances.
    """
    if not values:
        return {}
    connection = _connection_of(qs)
    wrap = not connection.features.supports_slicing_ordering_in_compound
    if qs.db != "default" or qs.query.combinator or len(values) == 1 or (wrap and connection.vendor != "sqlite"):
        pages = {v: keyset_page(qs.filter(**{field: v}), order="-id", limit=limit) for v in values}
        if related:
            prefetch_related_objects([o for p in pages.values() for o in p.items], *related)
        return pages
    marker = MARKER
    pin = connection.vendor == "postgresql"
    # PostgreSQL: each part says «field in (v, 0)» (0 is no row's value) and orders by (field, id). With a plain
    # «field = v» the field drops out of the order and the planner may walk the primary key backwards,
    # filtering, on the assumption that the column's rows are spread evenly over the ids; they are not
    # (new records sit in early stages, old ones in closed stages), and a manager's 14-column board read
    # 14k rows for one column. With the field leading the order only the (field, id) index gives it, so every
    # part walks its own column newest first (see docs/benchmarks-screens.md; ``column_page`` and the lists'
    # ``stage_pinned`` do the same).
    column = qs.model._meta.get_field(field).attname  # the column itself: «-stage» would join the stages
    part = qs.select_related(None)
    part = (part.filter(**{f"{column}__in": [marker, 0]}).order_by(f"-{column}", "-id") if pin
            else part.filter(**{field: marker}).order_by("-id"))[: limit + 1]
    compiler = part.query.get_compiler(using=qs.db)
    sql, params = compiler.as_sql()
    union_params = _params_per_value(params, values)
    if union_params is None:  # pragma: no cover - the value must appear once; fall back to the plain union
        parts = [qs.filter(**{field: v}).order_by("-id")[: limit + 1] for v in values]
        rows = list(parts[0].union(*parts[1:], all=True))
        if related:
            prefetch_related_objects(rows, *related)
    else:
        one_part = f"SELECT * FROM ({sql})" if wrap else f"({sql})"
        rows = _board_rows(qs, compiler, " UNION ALL ".join([one_part] * len(values)), union_params, related,
                           known or {})
    attname = qs.model._meta.get_field(field).attname
    grouped: dict[Any, list] = {v: [] for v in values}
    for row in rows:
        grouped.setdefault(getattr(row, attname), []).append(row)
    pages = {}
    for v in values:
        items = sorted(grouped.get(v, []), key=lambda o: o.pk, reverse=True)
        more = len(items) > limit
        items = items[:limit]
        pages[v] = Page(items, _encode([None, items[-1].pk, len(items)]) if more and items else None, 0)
    return pages


def column_page(qs: QuerySet, field: str, value: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    """The next page of one board column (``field`` = ``value``, newest first), as ``keyset_page(order="-id")``
    would read it, but walking the (field, id) index on PostgreSQL for the reason given in ``first_pages``:
    the field is compared with a two-value list (0 is no row's value) and leads the order."""
    connection = _connection_of(qs)
    if connection.vendor != "postgresql" or qs.db != "default" or value == 0:
        return keyset_page(qs.filter(**{field: value}), order="-id", cursor=cursor, limit=limit)
    seen, last_id = 0, None
    if cursor:
        page_value, last_id, *rest = _decode(cursor)
        seen = rest[0] if rest else 0
        if page_value is not None or not isinstance(last_id, int) or isinstance(last_id, bool) or \
                not 0 <= last_id <= MAX_ID or not isinstance(seen, int) or isinstance(seen, bool) or not 0 <= seen <= MAX_ID:
            raise ValidationFailed(_("The cursor is not valid; start from the first page."),
                                   fields={"cursor": [_("not valid")]})
    column = qs.model._meta.get_field(field).attname
    qs = qs.filter(**{f"{column}__in": [value, 0]})
    if last_id is not None:
        qs = qs.filter(id__lt=last_id)
    rows = list(qs.order_by(f"-{column}", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode([None, rows[-1].pk, seen + len(rows)]) if more and rows else None, seen)


class BoardRow:
    """A record's row on a board: the selected columns as attributes (``pk`` too), the ``related`` records
    attached. Not a model instance: building 300 of those per board cost more than the query (issue 4)."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _board_rows(qs: QuerySet, compiler, sql: str, params: list, related: tuple[str, ...],
                known: dict[str, dict]) -> list[BoardRow]:
    from django.db import connections

    names = [col.target.attname for col, _alias, _ in compiler.select]
    converters = compiler.get_converters([col for col, _alias, _ in compiler.select])
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    if converters and fetched:
        fetched = compiler.apply_converters(fetched, converters)
    pk_name = qs.model._meta.pk.attname
    rows = []
    for values in fetched:
        row = BoardRow(**dict(zip(names, values, strict=True)))
        row.pk = getattr(row, pk_name)
        rows.append(row)
    for name in related:
        fk = qs.model._meta.get_field(name)
        found = dict(known.get(name, {}))
        ids = {getattr(r, fk.attname) for r in rows} - {None} - set(found)
        if ids:
            found.update(fk.related_model._default_manager.in_bulk(ids))
        for r in rows:
            setattr(r, name, found.get(getattr(r, fk.attname)))
    return rows


def _part_index(qs: QuerySet, field: str, name: str) -> bool:
    """PostgreSQL, and an index on (field, name[, id]) that gives each part its order."""
    if _connection_of(qs).vendor != "postgresql" or qs.db != "default":
        return False
    wanted = [field, name] if name != "id" else [field, "id"]
    return any(list(index.fields[:2]) == wanted for index in qs.model._meta.indexes)


def _merged_parts(qs: QuerySet, parts: tuple[str, list], ordering: list[str], limit: int,
                  related: tuple[str, ...], known: dict[str, dict]) -> list[BoardRow]:
    """The first ``limit`` rows of ``qs`` in ``ordering``, read as one part per value of the field.

    Filtered to several stages and ordered by id, PostgreSQL walks the primary key backwards and filters by
    stage, assuming the stages' rows are spread evenly over the ids; the rows of old stages are not, and
    such a page can read most of the table. Each part says «field in (v, 0)» (0 is no row's value) and
    orders by the field first, which only the (field, order) index gives, so it reads at most ``limit``
    rows; the parts are merged by a sort of at most ``limit`` × values rows."""
    field, values = parts
    column = qs.model._meta.get_field(field).attname
    marker = MARKER
    desc = ordering[0].startswith("-")
    part = qs.select_related(None).filter(**{f"{column}__in": [marker, 0]})
    part = part.order_by(f"-{column}" if desc else column, *ordering)[:limit]
    compiler = part.query.get_compiler(using=qs.db)
    sql, params = compiler.as_sql()
    union_params = _params_per_value(params, values)
    if union_params is None:  # pragma: no cover - the marker must appear once; read it plainly
        plain = qs.filter(**{f"{column}__in": values}).order_by(*ordering)[:limit].select_related(None)
        compiler = plain.query.get_compiler(using=qs.db)
        sql, params = compiler.as_sql()
        return _board_rows(qs, compiler, sql, list(params), related, known)
    qn = _connection_of(qs).ops.quote_name
    outer = ", ".join(f"{qn(qs.model._meta.get_field(o.lstrip('-')).column)}{' DESC' if o.startswith('-') else ''}"
                      for o in ordering)
    merged = f"SELECT * FROM ({' UNION ALL '.join([f'({sql})'] * len(values))}) AS parts ORDER BY {outer} LIMIT {limit}"
    return _board_rows(qs, compiler, merged, union_params, related, known)


MARKER = -(2**62) + 7  # a value no column holds: put in a part's filter, found in its parameters, replaced per part


def _params_per_value(params, values: list) -> list | None:
    """The parameters of one compiled part repeated for each value, ``MARKER`` replaced by it; None when the marker
    does not appear exactly once (the caller then reads the parts plainly)."""
    at = [i for i, p in enumerate(params) if p == MARKER]
    if len(at) != 1:
        return None
    out: list = []
    for v in values:
        one = list(params)
        one[at[0]] = v
        out.extend(one)
    return out


def _plain(qs: QuerySet) -> bool:
    """The query selects the model's own columns only (what ``_board_rows`` can name)."""
    query = qs.query
    return not (query.annotations or query.extra_select or query.values_select or query.combinator
                or query.deferred_loading[0] or not query.default_cols)


def _connection_of(qs: QuerySet):
    from django.db import connections

    return connections[qs.db]
