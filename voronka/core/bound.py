"""Cursors for the hot path's own statements on PostgreSQL: values bound on the server, statements prepared.

Django runs every query through psycopg's ``ClientCursor``: each value is turned into an SQL literal in Python
(``as_literal`` per parameter) and the server parses and plans the whole text again. For the few statements a
single create sends (the versions read, the record's ``INSERT … RETURNING``, the one statement of its side rows:
~140 parameters in all) that was a fifth of the request's CPU. The statements built by ``fastinsert`` and the
``Prepared`` reads are simple (``INSERT … VALUES``, ``ON CONFLICT … DO UPDATE``, lookups by key) and safe to bind
on the server (the extended protocol: the text with ``$1 …``, the values dumped by psycopg's C adapters), which
Django cannot promise for every ORM query (it keeps client binding by default for that reason).

With ``prepare`` the statement is also prepared once per connection (psycopg names it and keeps up to 100 per
connection; a ROLLBACK or a DDL statement drops them all) so the server skips parsing and planning it. Prepared
statements live in a server session: behind PgBouncer in transaction mode they need PgBouncer 1.21 or newer with
``max_prepared_statements`` above 0; otherwise set ``VORONKA_PG_PREPARE=0`` (values are still bound on the
server). Connections closed after each request (``CONN_MAX_AGE=0``) never prepare. SQLite and other databases get
Django's usual cursor.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.connection import ConnectionProxy

#: psycopg prepares only on a connection whose ``prepare_threshold`` is set; Django leaves it unset (None) and so
#: never prepares the ORM's queries (its client-binding cursors cannot be prepared anyway). Only the statements
#: asked for with ``prepare=True`` reach this threshold's «prepare now» branch.
NEVER_BY_COUNT = 2**31 - 1

_classes: dict[bool, type] = {}


def _cursor_class(prepare: bool) -> type:
    hit = _classes.get(prepare)
    if hit is None:
        from django.db.backends.postgresql.base import ServerBindingCursor

        if prepare:
            class PreparingCursor(ServerBindingCursor):
                def execute(self, query, params=None, *, prepare=None, binary=None):
                    return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

                def _send_query_prepared(self, name, pgq, *, binary=None):
                    self._query = pgq  # psycopg leaves it unset for a prepared run: Django's query log reads it
                    return super()._send_query_prepared(name, pgq, binary=binary)

            hit = PreparingCursor
        else:
            hit = ServerBindingCursor
        _classes[prepare] = hit
    return hit


def preparing(connection: BaseDatabaseWrapper) -> bool:
    """Prepare only on connections kept between requests: preparing costs a round trip of its own the first time,
    which a connection closed after each request (``CONN_MAX_AGE=0``, e.g. behind PgBouncer) would pay every time."""
    return bool(getattr(settings, "VORONKA_PG_PREPARE", True)) and connection.settings_dict.get("CONN_MAX_AGE") != 0


class _Direct:
    """SQLite: the driver's cursor with what Django's cursor wrapper adds when nothing is logged or wrapped: the
    connection opened if needed (with Django's async-safety check), the broken-transaction check before each
    statement, and the driver's errors turned into Django's. Django's wrapper (``connection.cursor()``, its
    ``execute``, ``fetchall`` and ``close``, each through a layer or two) cost as much as the statement for the
    short INSERTs of a create: measured 66 against 33 µs for the versions read."""

    __slots__ = ("db", "cursor")

    def __init__(self, db: BaseDatabaseWrapper):
        db.close_if_health_check_failed()
        db.ensure_connection()
        self.db = db
        with db.wrap_database_errors:
            self.cursor = db.create_cursor()

    def execute(self, sql, params=None):
        db = self.db
        db.validate_no_broken_transaction()
        with db.wrap_database_errors:
            return self.cursor.execute(sql) if params is None else self.cursor.execute(sql, params)

    def executemany(self, sql, param_list):
        db = self.db
        db.validate_no_broken_transaction()
        with db.wrap_database_errors:
            return self.cursor.executemany(sql, param_list)

    def fetchall(self):
        with self.db.wrap_database_errors:
            return self.cursor.fetchall()

    def fetchone(self):
        with self.db.wrap_database_errors:
            return self.cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

    def close(self) -> None:
        self.cursor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.cursor.close()


def cursor(connection: BaseDatabaseWrapper, *, prepare: bool = False):
    """A cursor like ``connection.cursor()`` (Django's wrapper: execute wrappers, query logging, error
    translation); on PostgreSQL it binds the values on the server and, with ``prepare``, prepares the statement.
    On SQLite, when no query is logged and no execute wrapper is installed, the driver's cursor with Django's
    checks and error translation but without its wrapper layers (``_Direct``)."""
    if isinstance(connection, ConnectionProxy):  # ``django.db.connection``: each attribute would look it up again
        connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        if connection.vendor == "sqlite" and not connection.execute_wrappers and not connection.queries_logged:
            return _Direct(connection)
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        prepare = prepare and preparing(connection)
        if prepare and raw.prepare_threshold is None:
            raw.prepare_threshold = NEVER_BY_COUNT
        return connection._prepare_cursor(_cursor_class(prepare)(raw))
