"""The SQLite backend hands the write lock from one process's transaction to the next promptly, and a
transaction that cannot get it in time fails clearly instead of hanging."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError

from voronka.core.db_sqlite.base import DatabaseWrapper


@pytest.fixture(autouse=True)
def _own_connections(django_db_blocker):
    with django_db_blocker.unblock():  # these tests open their own databases, not the test database
        yield


def _wrapper(path, timeout=20) -> DatabaseWrapper:
    settings = {"ENGINE": "voronka.core.db_sqlite", "NAME": str(path), "OPTIONS": {"transaction_mode": "IMMEDIATE",
                "timeout": timeout}, "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "CONN_MAX_AGE": 0,
                "CONN_HEALTH_CHECKS": False, "TIME_ZONE": None, "USER": "", "PASSWORD": "", "HOST": "", "PORT": "",
                "TEST": {}}
    wrapper = DatabaseWrapper(settings, alias=f"lock-test-{id(settings)}")
    wrapper.ensure_connection()
    return wrapper


def test_a_waiting_writer_queues_on_the_lock_and_starts_when_the_first_commits(tmp_path, monkeypatch):
    """The second writer waits on the ``flock`` (never in SQLite's busy handler: its busy timeout is 0, so
    reaching SQLite while the first transaction is open would fail at once with «database is locked»)."""
    from voronka.core.db_sqlite import base

    db = tmp_path / "x.sqlite3"
    first = _wrapper(db)
    with first.cursor() as c:
        c.execute("CREATE TABLE t (v INTEGER)")
    first.set_autocommit(True)
    first._start_transaction_under_autocommit()
    first.cursor().execute("INSERT INTO t VALUES (1)")
    refused = threading.Event()
    real_sleep = time.sleep

    def pause(seconds):  # called by _acquire only after the lock was refused
        refused.set()
        real_sleep(seconds)

    monkeypatch.setattr(base.time, "sleep", pause)
    outcome = {}

    def writer():
        second = _wrapper(db)  # a connection belongs to its thread
        second.cursor().execute("PRAGMA busy_timeout = 0")
        try:
            second._start_transaction_under_autocommit()
            second.cursor().execute("INSERT INTO t VALUES (2)")
            second.commit()
            outcome["ok"] = True
        except OperationalError as exc:
            outcome["error"] = str(exc)
        finally:
            second.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert refused.wait(10), "the second writer never queued on the lock"
    assert "ok" not in outcome  # still waiting: the first transaction holds the lock
    first.commit()
    thread.join(10)
    assert outcome == {"ok": True}
    with first.cursor() as c:
        c.execute("SELECT v FROM t ORDER BY v")
        assert [r[0] for r in c.fetchall()] == [1, 2]
    first.close()


def test_a_writer_that_cannot_get_the_lock_in_time_gets_a_clear_error(tmp_path):
    db = tmp_path / "x.sqlite3"
    holder, late = _wrapper(db), _wrapper(db, timeout=0.1)
    holder.set_autocommit(True)
    holder._start_transaction_under_autocommit()
    with pytest.raises(OperationalError, match="locked"):
        late._start_transaction_under_autocommit()
    holder.close()  # closing (a crashed process) releases the lock
    late._start_transaction_under_autocommit()
    late.rollback()
    late.close()


def test_remembered_query_conversion_matches_djangos(tmp_path):
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    from voronka.core.db_sqlite import base

    wrapper = _wrapper(tmp_path / "convert.sqlite3")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("CREATE TABLE t (a integer, b text)")
            for _ in range(2):  # the second time from memory
                cursor.execute("INSERT INTO t (a, b) VALUES (%s, '100%%')", [1])
                cursor.executemany("INSERT INTO t (a, b) VALUES (%s, %s)", [(2, "x"), (3, "y")])
                cursor.execute("INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)", {"a": 4, "b": "named"})
            cursor.execute("SELECT a, b FROM t ORDER BY a, b")
            rows = cursor.fetchall()
            sql = "SELECT %s, '%%s' FROM t WHERE b LIKE %s"
            cursor.execute(sql, [1, "x"])
            assert cursor.fetchall() == [(1, "%s")] * 2
        assert rows == [(1, "100%"), (1, "100%"), (2, "x"), (2, "x"), (3, "y"), (3, "y"), (4, "named"), (4, "named")]
        assert base._converted[sql] == SQLiteCursorWrapper.convert_query(None, sql)
    finally:
        wrapper.close()
