"""Plain ``INSERT`` of model instances, for the hot write path.

``Model.objects.bulk_create`` compiles its SQL and prepares every field through the ORM on each call;
for the half-dozen small rows a record write adds (the record, its phones, stage history, timeline,
outbox) that costs far more than the database does. ``insert`` builds the statement once per model and
database vendor, prepares values with a converter chosen once per field, and runs one statement per
chunk (``executemany`` when no ids are wanted, a multi-row ``VALUES … RETURNING id`` when they are).

It writes exactly what ``bulk_create`` would for the instances given: fields with ``auto_now`` /
``auto_now_add`` get their value through ``pre_save``, defaults are already on the instance from its
constructor. It does not send signals (the project uses none for models) and expects values that the
write path validated (``full_clean`` or the record kit's checks).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connections, models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.expressions import DatabaseDefault
from django.db.models.fields.json import JSONField
from django.utils import timezone
from django.utils.functional import Promise

from . import bound

_plans: dict[tuple, _Plan] = {}


_SCALARS = frozenset({str, int, float, bool, type(None)})  # stored as they are: no enum or lazy text to unwrap


def _plain(value):
    if isinstance(value, enum.Enum):  # TextChoices / IntegerChoices members: store the value, never the name
        return value.value
    if isinstance(value, Promise):
        return str(value)
    return value


def _sqlite_datetime(ops) -> Callable:
    def adapt(value):
        if value is None:
            return None
        if isinstance(value, dt.datetime) and value.tzinfo is dt.UTC:
            return str(value.replace(tzinfo=None))  # what Django's SQLite backend stores: naive UTC text
        return ops.adapt_datetimefield_value(value)
    return adapt


def _json_text(field, connection) -> Callable:
    """A JSON column's value as the text ``get_db_prep_save`` would store or send for a dict or a list
    (``json.dumps`` with the default encoder) without its calls per value; an empty dict or list (most of a create's
    JSON columns) is a constant; other values go through ``get_db_prep_save``.

    SQLite stores that text. On PostgreSQL it is what the ``Jsonb`` wrapper of ``adapt_json_value`` would send:
    psycopg sends a ``str`` with no type (oid 0), so the server reads it as the column's ``jsonb`` in an INSERT's
    VALUES, a ``SET`` and ``COPY``; the wrapper cost a dumper lookup and a Python call per value (2,000 of them in a
    500-lead bulk)."""
    def adapt(value):
        kind = value.__class__
        if kind is dict or kind is list:
            return json.dumps(value) if value else ("{}" if kind is dict else "[]")
        return field.get_db_prep_save(value, connection)
    return adapt


def _json_converter(field, connection, ops) -> Callable:
    """``_json_text`` where the backend's own conversion is Django's default one (no encoder on the field, the
    stock ``adapt_json_value`` and JSON dumps), else ``get_db_prep_save`` for every value."""
    default = lambda v: field.get_db_prep_save(v, connection)  # noqa: E731
    if field.encoder is not None:
        return default
    if connection.vendor == "sqlite":
        stock = type(ops).adapt_json_value is BaseDatabaseOperations.adapt_json_value
    elif connection.vendor == "postgresql":
        from django.db.backends.postgresql.operations import DatabaseOperations, get_json_dumps

        stock = type(ops).adapt_json_value is DatabaseOperations.adapt_json_value and get_json_dumps(None) is json.dumps
    else:  # pragma: no cover - another backend
        stock = False
    return _json_text(field, connection) if stock else default


_SIMPLE = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.FloatField,
           models.ForeignKey, models.AutoField, models.BigAutoField, models.SmallAutoField)


class _Plan:
    def __init__(self, model, alias: str, with_pk: bool):
        connection = connections[alias]
        ops = connection.ops
        self.fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        self.auto = [f for f in self.fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
        self.attnames = [f.attname for f in self.fields]
        # a field left to its database default (``db_default``, a constant) gets that constant, on the row and on
        # the object, which then holds what the row holds
        self.db_defaults = {f.attname: f.db_default.value for f in self.fields
                            if f.has_db_default() and isinstance(f.db_default, models.Value)}
        self.converters: list[Callable | None] = [self._converter(f, connection, ops) for f in self.fields]
        q = ops.quote_name
        self.table = q(model._meta.db_table)
        self.columns = [q(f.column) for f in self.fields]
        self.head = f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES "
        self.row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.pk_column = q(model._meta.pk.column)
        limit = 30000 if connection.vendor == "sqlite" else 60000  # bound parameters per statement
        self.chunk = max(1, min(500, limit // max(1, len(self.fields))))

    @staticmethod
    def _converter(field, connection, ops) -> Callable | None:
        if isinstance(field, JSONField):
            return _json_converter(field, connection, ops)
        if isinstance(field, models.DateTimeField):
            if connection.vendor == "sqlite":
                return _sqlite_datetime(ops)
            return lambda v: None if v is None else ops.adapt_datetimefield_value(v)
        if isinstance(field, models.DateField):
            return lambda v: None if v is None else ops.adapt_datefield_value(v)
        if isinstance(field, models.DecimalField):
            return lambda v, f=field: None if v is None else ops.adapt_decimalfield_value(
                f.to_python(v), f.max_digits, f.decimal_places)
        if isinstance(field, _SIMPLE):
            return None  # handled by _plain
        return lambda v, f=field: f.get_db_prep_save(v, connection)

    def values(self, obj) -> list:
        for f in self.auto:
            f.pre_save(obj, add=True)
        out = []
        # the instance's own values, as ``getattr`` returns them (a foreign key's id through its descriptor's
        # ``__get__`` otherwise: a Python call per column)
        held = obj.__dict__
        for name, conv in zip(self.attnames, self.converters, strict=True):
            v = held[name] if name in held else getattr(obj, name)
            if v.__class__ is DatabaseDefault and name in self.db_defaults:
                v = self.db_defaults[name]
                setattr(obj, name, v)
            if conv is not None:
                v = conv(v)
            elif v.__class__ not in _SCALARS:
                v = _plain(v)
            out.append(v)
        return out


COPY_FROM = 20  # rows; below this a pipelined executemany is as fast on PostgreSQL


def _write(connection, table: str, columns: list[str], sql: str, rows: list, *, row: str = "") -> None:
    """One INSERT statement per row batch; PostgreSQL gets ``COPY`` for larger batches (a row-by-row
    executemany makes the server parse and plan every row, and psycopg dump every value one by one).
    ``row`` is the ``(%s, …)`` group of ``sql`` (which then ends with it): inside ``pipelined()`` on PostgreSQL
    the rows join the block's single statement."""
    staged = getattr(_local, "staged", None)
    if staged is not None:
        staged.add(_write, (connection, table, columns, sql, rows), {"row": row}, rows)
        return
    if len(rows) >= COPY_FROM and connection.vendor == "postgresql" and not _in_pipeline(connection):
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row_values in rows:
                    copy.write_row(row_values)
        return
    if row and _queue(connection, sql[:-len(row)], row, "", rows, upsert=False):
        return
    with bound.cursor(connection, prepare=len(rows) == 1) as cursor:
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, rows)


def write_rows(connection, head: str, row: str, tail: str, rows: list) -> None:
    """Run ``head + row + tail`` for each of ``rows`` (e.g. an upsert: ``INSERT … VALUES `` + ``(%s, …)`` +
    `` ON CONFLICT …``), or, inside ``pipelined()`` on PostgreSQL, add them to the block's single statement."""
    staged = getattr(_local, "staged", None)
    if staged is not None:
        staged.add(write_rows, (connection, head, row, tail, rows), {}, rows)
        return
    if _queue(connection, head, row, tail, rows, upsert=bool(tail)):
        return
    with bound.cursor(connection) as cursor:
        cursor.executemany(head + row + tail, rows)


def _in_pipeline(connection) -> bool:
    from psycopg import pq

    return connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF


_sequences: dict[tuple, str] = {}
_next_sql: dict[tuple, str] = {}


def reserve_ids(model, n: int, using: str = "default") -> list[int]:
    """``n`` fresh primary keys for ``model``, in increasing order, for rows written later with their ids.

    PostgreSQL: from the table's identity sequence (its name looked up once per process:
    ``pg_get_serial_sequence`` in the select list ran once per id), so concurrent writers never collide. SQLite: the
    ids after the highest ever given (``sqlite_sequence``, else the largest id: ``AUTOINCREMENT`` never gives a
    deleted row's id again, and neither does this), which is safe only while the caller's transaction holds the
    write lock (the settings open every transaction with ``BEGIN IMMEDIATE``)."""
    connection = connections[using]
    table, pk = model._meta.db_table, model._meta.pk.column
    if connection.vendor == "postgresql":
        key = (table, pk, using)
        with connection.cursor() as cursor:  # Django's cursor: the statement shows in query logs with its values
            sequence = _sequences.get(key)
            if sequence is None:
                cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, pk])
                sequence = _sequences[key] = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, n])
            return sorted(r[0] for r in cursor.fetchall())
    if connection.vendor != "sqlite":
        raise NotImplementedError(f"primary keys are reserved on SQLite and PostgreSQL, not {connection.vendor}")
    sql = _next_sql.get((table, using))
    if sql is None:
        q = connection.ops.quote_name
        sql = _next_sql[(table, using)] = (
            f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), "
            f"COALESCE((SELECT MAX({q(pk)}) FROM {q(table)}), 0)) + 1")
    with bound.cursor(connection) as cursor:
        cursor.execute(sql)
        start = cursor.fetchone()[0]
    return list(range(start, start + n))


def _plan(model, alias: str, with_pk: bool) -> _Plan:
    key = (model, alias, with_pk)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = _Plan(model, alias, with_pk)
    return plan


class _Deferred:
    def __init__(self, models_: set, using: str, chunk: int):
        self.models, self.using, self.chunk = models_, using, chunk
        self.ids: dict = {}  # model: reserved primary keys not used yet, in increasing order
        self.rows: dict = {}  # model: instances waiting for the flush, in order


_local = threading.local()


@contextmanager
def deferred(models_: Sequence[type[models.Model]], *, using: str = "default", chunk: int = 64) -> Iterator[None]:
    """Inside a transaction on PostgreSQL: ``insert`` of the given append-only models (timeline entries, outbox
    events) takes the primary keys from the table's sequence, ``chunk`` at a time in one round trip, sets them
    on the instances at once and writes the rows at the end of the block (``COPY`` or one statement per model),
    instead of one ``INSERT … RETURNING`` round trip per row. ``flush_deferred()`` writes them earlier.

    For code that does not read those rows back before the block ends (the automation batch flushes before a
    run that might). Foreign keys referencing them are checked at commit on PostgreSQL (deferred constraints),
    so a binding row may be written before its entry. If the block raises, the rows are dropped with the
    transaction that the caller rolls back. Elsewhere (SQLite, nested use) a no-op: rows are inserted at once.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or getattr(_local, "deferred", None) is not None:
        yield
        return
    _local.deferred = _Deferred(set(models_), using, chunk)
    try:
        yield
        flush_deferred()
    finally:
        _local.deferred = None


def flush_deferred() -> None:
    """Write the rows ``deferred`` holds back (a no-op outside it)."""
    state = getattr(_local, "deferred", None)
    if state is None:
        return
    rows, state.rows = state.rows, {}
    for objs in rows.values():
        _insert_now(objs, using=state.using)


def _defer(objs: Sequence[models.Model], using: str) -> bool:
    state = getattr(_local, "deferred", None)
    model = type(objs[0])
    if state is None or using != state.using or model not in state.models:
        return False
    if objs[0].pk is None:
        ids = state.ids.setdefault(model, [])
        if len(ids) < len(objs):
            ids.extend(reserve_ids(model, max(state.chunk, len(objs) - len(ids)), using))
        for obj in objs:
            obj.pk = ids.pop(0)
    state.rows.setdefault(model, []).extend(objs)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using
    return True


def insert(objs: Sequence[models.Model], *, returning: bool = False, using: str = "default") -> None:
    """Insert ``objs`` (all of one model). With ``returning`` the new primary keys are set on them, in order.

    Instances that already carry a primary key are written with it (``returning`` is then not needed).
    Call inside ``transaction.atomic()`` when the rows must land together. Inside ``deferred()`` rows of its
    models are written at the end of that block (their primary keys are set at once all the same).
    """
    if not objs or _defer(objs, using):
        return
    _insert_now(objs, returning=returning, using=using)


def _insert_now(objs: Sequence[models.Model], *, returning: bool = False, using: str = "default") -> None:
    if not objs:
        return
    model = type(objs[0])
    with_pk = objs[0].pk is not None
    connection = connections[using]
    if returning and not with_pk and len(objs) > 1 and connection.vendor == "postgresql":
        # A long multi-row VALUES costs psycopg more to bind than the insert itself: take the ids from the
        # sequence in one round trip and insert with them (COPY, or a pipelined executemany).
        for obj, pk in zip(objs, reserve_ids(model, len(objs), using), strict=True):
            obj.pk = pk
        _insert_now(objs, using=using)
        return
    plan = _plan(model, using, with_pk)
    rows = [plan.values(o) for o in objs]
    if not returning or with_pk:
        staged = getattr(_local, "staged", None)
        if staged is not None:
            staged.fix(objs, plan.attnames, rows)  # the instances get the ids their rows get
        _write(connection, plan.table, plan.columns, plan.head + plan.row, rows, row=plan.row)
    else:
        if getattr(_local, "staged", None) is not None:
            raise RuntimeError("an INSERT … RETURNING cannot be staged: its ids are needed at once")
        _insert_returning(connection, plan, objs, rows)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def _insert_returning(connection, plan: _Plan, objs: Sequence[models.Model], rows: list) -> None:
    with bound.cursor(connection, prepare=len(rows) == 1) as cursor:
        for start in range(0, len(rows), plan.chunk):
            part = rows[start:start + plan.chunk]
            sql = plan.head + ", ".join([plan.row] * len(part)) + f" RETURNING {plan.pk_column}"
            cursor.execute(sql, [v for row in part for v in row])
            # RETURNING promises no order; ids from the sequence grow in the order the rows were processed
            ids = sorted(r[0] for r in cursor.fetchall())
            if len(ids) != len(part):  # pragma: no cover - the database broke its promise
                raise RuntimeError(f"INSERT … RETURNING gave {len(ids)} ids for {len(part)} rows")
            for obj, pk in zip(objs[start:start + plan.chunk], ids, strict=True):
                obj.pk = pk


def insert_later(objs: Sequence[models.Model], *, using: str = "default") -> Callable[[], None]:
    """``insert(objs, returning=True)`` in two steps: the rows' values are prepared now (converters, defaults),
    the returned callable runs the statement and sets the ids. A write prepares before ``BEGIN`` and runs inside
    its transaction, so SQLite's write lock is held for the statement, not for the Python around it.
    PostgreSQL's many-row path (ids from the sequence, then ``COPY``) and rows of a ``deferred()`` model are
    prepared inside the call."""
    connection = connections[using]
    if not objs or objs[0].pk is not None or (len(objs) > 1 and connection.vendor == "postgresql") \
            or getattr(_local, "deferred", None) is not None:
        return lambda: insert(objs, returning=True, using=using)
    plan = _plan(type(objs[0]), using, with_pk=False)
    rows = [plan.values(o) for o in objs]

    def run() -> None:
        _insert_returning(connection, plan, objs, rows)
        for obj in objs:
            obj._state.adding = False
            obj._state.db = using
    return run


class Pending:
    """The primary key of a record whose ``INSERT`` has not run yet, in the rows of a ``staged()`` block: each
    place it stands in gets the id once ``resolve`` knows it (before the staged statements run)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int | None = None

    def __repr__(self) -> str:
        return f"<Pending id {self.value}>"


class Staged:
    """The statements of a ``staged()`` block, with their values prepared, to run later (``run``) in order."""

    def __init__(self, connection):
        self.connection = connection
        self.steps: list[tuple[Callable, tuple, dict]] = []
        self.slots: list[tuple[list, int, Pending]] = []  # (row, position, the id it waits for)
        self.fixups: list[tuple[models.Model, str, Pending]] = []  # (instance, attname, the id it waits for)

    def add(self, fn: Callable, args: tuple, kwargs: dict, rows: list) -> None:
        for i, values in enumerate(rows):
            row = None
            for j, value in enumerate(values):
                if value.__class__ is Pending:
                    if row is None:
                        row = values if values.__class__ is list else list(values)
                        rows[i] = row  # the statement's own list of rows: the id goes in place
                    self.slots.append((row, j, value))
        self.steps.append((fn, args, kwargs))

    def fix(self, objs: Sequence[models.Model], attnames: list[str], rows: list) -> None:
        for obj, values in zip(objs, rows, strict=True):
            for name, value in zip(attnames, values, strict=True):
                if value.__class__ is Pending:
                    self.fixups.append((obj, name, value))

    def then(self, fn: Callable) -> None:
        self.steps.append((fn, (), {}))

    def run(self) -> None:
        """Put the ids in (every ``Pending`` must have one by now), then run the statements in their order."""
        for row, j, pending in self.slots:
            if pending.value is None:
                raise RuntimeError("a staged row refers to a record that was not inserted")
            row[j] = pending.value
        for obj, name, pending in self.fixups:
            setattr(obj, name, pending.value)
        for fn, args, kwargs in self.steps:
            fn(*args, **kwargs)


def _refuse(execute, sql, params, many, context):
    if not sql.lstrip()[:6].upper() == "SELECT":
        raise RuntimeError(f"a statement that writes cannot run while a write is staged: {sql[:80]}")
    return execute(sql, params, many, context)


@contextmanager
def staged(using: str = "default") -> Iterator[Staged]:
    """Prepare a write's rows before its transaction: inside the block ``insert`` (without ``returning``),
    ``insert_rows`` and ``write_rows`` compute their statements' values but do not run them, ``then(fn)`` keeps
    ``fn`` for later, and a record's id not known yet stands as a ``Pending``; ``Staged.run()`` (inside the
    transaction, after the records' ``INSERT``) runs it all in order. Reads may run in the block (they see what
    the transaction would not yet see: use it for settings, not for rows the write depends on); any other
    statement raises, so nothing is ever written outside the transaction by mistake."""
    if getattr(_local, "staged", None) is not None:
        raise RuntimeError("staged() blocks do not nest")
    connection = connections[using]
    state = _local.staged = Staged(connection)
    try:
        with connection.execute_wrapper(_refuse):
            yield state
    finally:
        _local.staged = None


def then(fn: Callable[[], None]) -> None:
    """Run ``fn`` now, or, inside ``staged()``, in its place among the staged statements (a write that is not one
    of this module's, e.g. a marker upsert, or an ``on_commit`` that needs the transaction)."""
    state = getattr(_local, "staged", None)
    if state is None:
        fn()
    else:
        state.then(fn)


_update_plans: dict[tuple, tuple] = {}


def update(obj: models.Model, attnames: Sequence[str], *, using: str = "default") -> int:
    """``UPDATE`` the columns ``attnames`` of ``obj``'s row from the instance (values prepared like ``insert``'s);
    the statement is built once per model, column set and database. Returns the rows updated (0 or 1)."""
    model = type(obj)
    key = (model, tuple(attnames), using)
    plan = _update_plans.get(key)
    if plan is None:
        connection = connections[using]
        ops = connection.ops
        fields = [next(f for f in model._meta.concrete_fields if f.attname == a) for a in attnames]
        sets = ", ".join(f"{ops.quote_name(f.column)} = %s" for f in fields)
        sql = f"UPDATE {ops.quote_name(model._meta.db_table)} SET {sets} WHERE {ops.quote_name(model._meta.pk.column)} = %s"
        plan = _update_plans[key] = (sql, [_Plan._converter(f, connection, ops) for f in fields])
    sql, converters = plan
    values = []
    for name, conv in zip(attnames, converters, strict=True):
        v = getattr(obj, name)
        values.append(_plain(v) if conv is None else conv(v))
    values.append(obj.pk)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount


_row_plans: dict[tuple, tuple] = {}


def insert_batches(model, rows: Iterable[dict], size: int = 5000, *, using: str = "default") -> int:
    """``insert_rows`` over an iterable of rows, ``size`` at a time, so that a rebuild of millions of rows never
    holds them all as dicts at once. Returns the number of rows written."""
    written = 0
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            insert_rows(model, batch, using=using)
            written += len(batch)
            batch = []
    if batch:
        insert_rows(model, batch, using=using)
        written += len(batch)
    return written


_VARYING = object()


def _fixed_default(field, conv):
    """The stored form of a column's default when it is the same on every call (no callable, not the time)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) or callable(field.default):
        return _VARYING
    value = field.get_default()
    return _plain(value) if conv is None else conv(value)


def insert_rows(model, rows: Sequence[dict], *, using: str = "default") -> None:
    """Insert plain rows (``{attname: value}``, every row with the same keys) without building instances.

    Columns missing from the rows get the field's default, computed once per call (``auto_now`` /
    ``auto_now_add`` fields: the current time). The bulk write path uses this for its side tables, where a
    model instance per row cost more than the insert.
    """
    if not rows:
        return
    keys = tuple(rows[0])
    key = (model, using, keys)
    plan = _row_plans.get(key)
    if plan is None:
        base = _plan(model, using, with_pk=False)
        by_attname = dict(zip(base.attnames, zip(base.fields, base.converters, strict=True), strict=True))
        unknown = set(keys) - set(by_attname)
        if unknown:
            raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
        given = [(k, *by_attname[k]) for k in keys]
        rest = [(f, conv) for name, (f, conv) in by_attname.items() if name not in keys]
        q = connections[using].ops.quote_name
        columns = [q(f.column) for _, f, _ in given] + [q(f.column) for f, _ in rest]
        row = f"({', '.join(['%s'] * len(columns))})"
        sql = f"INSERT INTO {base.table} ({', '.join(columns)}) VALUES {row}"
        rest = [(f, conv, _fixed_default(f, conv)) for f, conv in rest]
        plan = _row_plans[key] = (sql, row, base.table, columns, [conv for _, _, conv in given], rest)
    sql, row, table, columns, converters, rest = plan
    now = None
    constants = []
    for f, conv, fixed in rest:
        if fixed is not _VARYING:
            constants.append(fixed)  # a default that is neither the time nor a callable: converted once per plan
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            now = now or timezone.now()
            value = now
        else:
            value = f.get_default()
            if value.__class__ is DatabaseDefault and isinstance(f.db_default, models.Value):
                value = f.db_default.value
        constants.append(_plain(value) if conv is None else conv(value))
    constants = tuple(constants)
    params = []
    for given_row in rows:
        values = []
        for conv, value in zip(converters, given_row.values(), strict=True):
            if conv is not None:
                value = conv(value)
            elif value.__class__ not in _SCALARS:
                value = _plain(value)
            values.append(value)
        params.append((*values, *constants))
    _write(connections[using], table, columns, sql, params, row=row)


MAX_PARAMS = 30000

try:  # psycopg keeps the parse of a statement's %s placeholders only up to 50 parameters; a single create's one
    # side-row statement has about a hundred (same text every time): let the cache keep it (its size stays 128)
    from psycopg import _queries as _psycopg_queries

    _psycopg_queries.MAX_CACHED_STATEMENT_PARAMS = max(_psycopg_queries.MAX_CACHED_STATEMENT_PARAMS, 400)
except (ImportError, AttributeError):  # pragma: no cover - another driver, or psycopg moved it: only slower
    pass


class _Statement:
    """The INSERTs of a ``pipelined()`` block, sent at its end as one statement of data-modifying CTEs."""

    def __init__(self, connection):
        self.connection, self.alias = connection, connection.alias
        self.parts: list[tuple[str, str, str, list]] = []  # head, row group, tail, rows
        self.upserted: set[str] = set()
        self.params = 0
        self.sending = False

    def before_other(self, execute, sql, params, many, context):
        """Any other statement of the block (a read, an update) runs after the queued rows, as it would
        have without the queue."""
        if self.parts and not self.sending:
            self.flush()
        return execute(sql, params, many, context)

    def add(self, head: str, row: str, tail: str, rows: list, upsert: bool) -> None:
        size = sum(len(r) for r in rows)
        if (upsert and head in self.upserted) or self.params + size > MAX_PARAMS:
            # two upserts of one table in one statement could meet on a key and fail; PostgreSQL takes at most
            # 65,535 parameters: send what is held now
            self.flush()
        self.params += size
        if upsert:
            self.upserted.add(head)
        self.parts.append((head, row, tail, rows))

    def flush(self) -> None:
        parts, self.parts, self.upserted, self.params = self.parts, [], set(), 0
        if not parts:
            return
        texts, params = [], []
        for head, row, tail, rows in parts:
            texts.append(head + ", ".join([row] * len(rows)) + tail)
            for values in rows:
                params.extend(values)
        *withs, last = texts
        sql = ("WITH " + ", ".join(f"w{i} AS ({text})" for i, text in enumerate(withs)) + " " + last) if withs \
            else last
        self.sending = True
        try:
            # the same text for every single create: bound on the server and prepared once per connection
            with bound.cursor(self.connection, prepare=True) as cursor:
                cursor.execute(sql, params)
        finally:
            self.sending = False


def _queue(connection, head: str, row: str, tail: str, rows: list, *, upsert: bool) -> bool:
    statement = getattr(_local, "statement", None)
    if statement is None or statement.alias != connection.alias or len(rows) >= COPY_FROM:
        return False
    statement.add(head, row, tail, rows, upsert)
    return True


@contextmanager
def pipelined(rows: int = 1, using: str = "default") -> Iterator[None]:
    """The side rows of a write (phones, stage history, board and daily totals, timeline, outbox) in one round
    trip and one statement on PostgreSQL: their INSERTs and upserts (``insert``, ``insert_rows``,
    ``write_rows``) are held back and sent at the end of the block as one statement (``WITH w0 AS (INSERT …),
    w1 AS (INSERT … ON CONFLICT …) INSERT …``), so the server parses and plans one statement instead of seven
    to ten and the client sends one message (session 5 sent them in pipeline mode: one round trip, but ten
    messages and ten statements to parse and plan). Any other statement inside the block (a read, an update)
    first sends what is held back, so the order of effects is the same as without the block. Errors of the held
    back rows are raised at the end of the block, as Django's database errors. Elsewhere, and for ``rows`` of
    ``COPY_FROM`` or more (``COPY`` is faster then), a no-op.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or rows >= COPY_FROM or getattr(_local, "statement", None) is not None:
        yield  # large batches go by COPY instead; a nested block joins the outer one
        return
    statement = _local.statement = _Statement(connection)
    try:
        with connection.execute_wrapper(statement.before_other):
            yield
            statement.flush()
    finally:
        _local.statement = None
