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


def test_a_waiting_writer_starts_as_soon_as_the_first_commits(tmp_path):
    db = tmp_path / "x.sqlite3"
    first = _wrapper(db)
    with first.cursor() as c:
        c.execute("CREATE TABLE t (v INTEGER)")
    first.set_autocommit(True)
    first._start_transaction_under_autocommit()
    first.cursor().execute("INSERT INTO t VALUES (1)")
    started = {}

    def writer():
        second = _wrapper(db)  # a connection belongs to its thread
        second._start_transaction_under_autocommit()
        started["at"] = time.monotonic()
        second.cursor().execute("INSERT INTO t VALUES (2)")
        second.commit()
        second.close()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)  # the second writer queues up behind the lock (SQLite's busy handler would nap 50–100 ms now)
    assert "at" not in started
    released = time.monotonic()
    first.commit()
    thread.join(5)
    assert started["at"] - released < 0.02  # promptly, not after a busy-handler nap
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
