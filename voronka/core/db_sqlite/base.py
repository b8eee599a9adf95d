"""Django's SQLite backend with a fair, prompt hand-over of the write lock between processes.

SQLite lets one writer in at a time. A writer that finds the database locked sleeps in SQLite's busy
handler in growing steps (1, 2, 5, 10 … 100 ms), so with several web processes a waiting write often
sleeps long after the lock was freed: throughput drops as clients are added. Here every write
transaction (Django's ``BEGIN IMMEDIATE``) first takes an exclusive ``flock`` on a file next to the
database, waiting with short polls, and releases it at commit or rollback, so the next writer starts
within a fraction of a millisecond. Statements outside a transaction still rely on the busy timeout.
An in-memory database needs no lock.

Its cursor also remembers the ``%s`` → ``?`` conversion of the statements it has seen (Django runs a regular
expression over every statement; the hot paths send the same few statements again and again).
"""

from __future__ import annotations

import fcntl
import os
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_converted: dict[str, str] = {}
CONVERTED_MAX = 5000  # distinct statements remembered (IN lists of every length make new ones)


class CursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query, *, param_names=None):
        if param_names is not None:
            return super().convert_query(query, param_names=param_names)
        converted = _converted.get(query)
        if converted is None:
            converted = super().convert_query(query)
            if len(_converted) >= CONVERTED_MAX:
                _converted.clear()
            _converted[query] = converted
        return converted


class DatabaseWrapper(base.DatabaseWrapper):
    _lock_fd: int | None = None
    _locked = False

    def create_cursor(self, name=None):
        return self.connection.cursor(factory=CursorWrapper)

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict.get("NAME") or "")
        if not name or self.is_in_memory_db() or name.startswith("file:"):
            return None
        return f"{name}-writelock"

    def _acquire(self) -> None:
        path = self._lock_path()
        if path is None or self._locked:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + float(self.settings_dict.get("OPTIONS", {}).get("timeout", 20))
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._locked = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationalError("database is locked (another process holds the write lock)") from None
                time.sleep(pause)
                pause = min(pause * 1.5, 0.002)

    def _release(self) -> None:
        if self._locked and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._locked = False

    def _start_transaction_under_autocommit(self):
        self._acquire()
        try:
            super()._start_transaction_under_autocommit()
        except Exception:
            self._release()
            raise

    def _commit(self):
        try:
            super()._commit()
        finally:
            self._release()

    def _rollback(self):
        try:
            super()._rollback()
        finally:
            self._release()

    def _close(self):
        try:
            super()._close()
        finally:
            self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
