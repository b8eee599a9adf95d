"""SQLite: an index added by a migration to an analyzed database gets planner statistics (see
``core.apps.analyze_new_indexes``); without them SQLite took the new index for the best one (a deals list
2.6 s instead of 40 ms at 1M)."""

from __future__ import annotations

import sqlite3

from django.apps import apps

from voronka.core.apps import analyze_new_indexes, analyze_unanalyzed


def test_a_new_index_of_an_analyzed_database_gets_statistics(tmp_path):
    db = sqlite3.connect(tmp_path / "analyzed.sqlite3")
    cursor = db.cursor()
    cursor.execute("CREATE TABLE deal (id INTEGER PRIMARY KEY, stage INTEGER, since TEXT)")
    cursor.executemany("INSERT INTO deal (stage, since) VALUES (?, ?)", [(i % 7, f"2026-{i % 12 + 1:02d}") for i in range(300)])
    cursor.execute("CREATE INDEX deal_stage ON deal (stage)")
    assert analyze_unanalyzed(cursor) == []  # never analyzed: left as it is
    cursor.execute("ANALYZE")
    cursor.execute("CREATE INDEX deal_stage_since ON deal (stage, since)")  # what a migration adds

    def stats() -> list:
        cursor.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'deal_stage_since'")
        return cursor.fetchall()

    assert stats() == []
    assert analyze_unanalyzed(cursor) == ["deal"]
    assert stats() == [("300 43 4",)]  # rows, rows per stage, rows per (stage, since)
    assert analyze_unanalyzed(cursor) == []  # nothing new: nothing analyzed again


def test_the_hook_runs_once_per_migrate_and_not_on_postgresql(db):
    analyze_new_indexes(sender=apps.get_app_config("leads"))  # other apps' signals: nothing
    analyze_new_indexes(sender=apps.get_app_config("core"))  # the test database: no error on either backend
