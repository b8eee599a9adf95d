"""The real ``voronka worker`` process, on SQLite and on PostgreSQL, with a controlled clock.

Each test module run gets its own database (a SQLite file in a temporary directory, or a new PostgreSQL
database on the test server), migrated once; a driver subprocess writes to it through actions, the worker
subprocess does the automation, and the test reads the outcome with plain SQL. Time is moved by rewriting
the clock file the worker reads (``VORONKA_CLOCK_FILE``); nothing sleeps for a fixed time: the test waits
for a condition in the database, with a deadline.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from voronka.core import clock

ROOT = Path(__file__).resolve().parents[3]


class Database:
    """A database of its own for the subprocesses, and plain SQL to read it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.base_url = os.environ.get("VORONKA_DATABASE_URL")
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "voronka.settings", "VORONKA_VAR_DIR": str(tmp),
                    "PYTHONUNBUFFERED": "1", "VORONKA_LANGUAGE": "en"}
        if self.base_url:
            import psycopg

            self.name = f"voronka_auto_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(self.base_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = self.base_url.rsplit("/", 1)[0] + "/" + self.name
            self.env["VORONKA_DATABASE_URL"] = self.url
        else:
            self.env.pop("VORONKA_DATABASE_URL", None)
            self.path = tmp / "voronka.sqlite3"
        self.env.pop("VORONKA_CLOCK_FILE", None)
        subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=self.env, cwd=ROOT, check=True,
                       timeout=300)

    def drop(self) -> None:
        if self.base_url:
            import psycopg

            with psycopg.connect(self.base_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def rows(self, sql: str) -> list[tuple]:
        if self.base_url:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def value(self, sql: str):
        return self.rows(sql)[0][0]

    def drive(self, command: str, **args) -> dict:
        out = subprocess.run([sys.executable, "-m", "voronka.automation.tests.driver", command, json.dumps(args)],
                             env=self.env, cwd=ROOT, check=True, timeout=300, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def worker(self, clock_file: Path, **env) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "django", "worker", "--no-tasks", "--interval", "0.05"],
            env={**self.env, "VORONKA_CLOCK_FILE": str(clock_file), **env}, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    db = Database(tmp_path_factory.mktemp("automation-db"))
    db.setup = db.drive("setup_e2e")
    yield db
    db.drop()


def wait_for(check, what: str, timeout: float = 60.0, proc: subprocess.Popen | None = None):
    """Poll a condition in the database until it holds (or fail after ``timeout``): no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the worker exited early while waiting for {what}:\n{proc.stdout.read()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out


def test_lead_task_three_hour_limit_escalation_with_the_real_worker(database, tmp_path):
    clock_file = tmp_path / "clock"
    clock_file.write_text("")  # empty: the real time
    worker = database.worker(clock_file)
    try:
        lead = database.drive("create_lead", title="Windows for the dacha")
        # the robot makes a task at once
        task = wait_for(lambda: database.rows(
            f"SELECT title, responsible_id, cause FROM activities_task WHERE entity_type_id = 1 AND entity_id = {lead['id']}"),
            "the robot's task", proc=worker)
        assert task == [("Call Windows for the dacha", database.setup["operator"], task[0][2])]
        assert task[0][2].startswith("robot:")
        assert database.value("SELECT COUNT(*) FROM activities_notification") == 0
        # three hours pass (on the worker's clock): the limit's timer fires and the owner is told
        entered = datetime.datetime.fromisoformat(lead["entered"])
        clock.write_file(clock_file, entered + datetime.timedelta(hours=3, seconds=1))
        notes = wait_for(lambda: database.rows("SELECT user_id, text, entity_id FROM activities_notification"),
                         "the escalation notification", proc=worker)
        assert notes == [(database.setup["owner"],
                          "Lead «Windows for the dacha» has been in stage «Not processed» for more than 3 hours, "
                          "responsible Ira Zvonkova", lead["id"])]
        wait_for(lambda: database.value("SELECT COUNT(*) FROM automation_run WHERE status IN ('pending', 'running')") == 0,
                 "every run to finish", proc=worker)
        assert sorted(database.rows("SELECT action, status, error FROM automation_run")) == [
            ("create_task", "done", ""), ("escalate", "done", "")]
        assert database.value("SELECT COUNT(*) FROM activities_notification") == 1
    finally:
        out = stop(worker)
    assert worker.returncode == 0, out
    assert "worker: stopped" in out


def test_kill_9_in_the_middle_of_a_burst_loses_nothing_and_doubles_nothing(database, tmp_path):
    count = 300
    planned = database.drive("burst", count=count)
    robots = 2
    total = database.value("SELECT COUNT(*) FROM automation_run WHERE rule IN "
                           "(SELECT 'robot:' || CAST(id AS TEXT) FROM automation_robot WHERE stage_id = "
                           f"{database.setup['stages']['burst']})")
    assert total == count * robots, planned
    clock_file = tmp_path / "clock"
    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
    clock.write_file(clock_file, start)  # frozen: leases do not expire until the test moves the clock
    lease = {"VORONKA_AUTOMATION_LEASE_SECONDS": "60"}
    done_sql = "SELECT COUNT(*) FROM automation_run WHERE status = 'done' AND action IN ('create_task', 'comment') " \
               "AND entity_id IN (SELECT id FROM leads_lead WHERE title LIKE 'B%')"

    first = database.worker(clock_file, **lease)
    try:
        wait_for(lambda: database.value(done_sql) >= 40, "the burst to be under way", proc=first)
        first.send_signal(signal.SIGKILL)  # no chance to finish anything
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.stdout.close()
    at_kill = database.value(done_sql)
    held = database.value("SELECT COUNT(*) FROM automation_run WHERE status = 'running'")  # claimed by the dead
    assert at_kill < total, "the worker finished before it was killed: make the burst bigger"

    # a new worker, after the dead one's leases have expired
    clock.write_file(clock_file, start + datetime.timedelta(seconds=61))
    second = database.worker(clock_file, **lease)
    try:
        wait_for(lambda: database.value(done_sql) == total, "every run of the burst", timeout=240, proc=second)
    finally:
        out = stop(second)
    assert second.returncode == 0, out

    statuses = database.rows("SELECT status, COUNT(*) FROM automation_run GROUP BY status")
    assert dict(statuses).get("done") >= total and set(dict(statuses)) <= {"done"}
    burst_leads = "SELECT id FROM leads_lead WHERE title LIKE 'B%'"
    tasks = database.rows(f"SELECT entity_id, COUNT(*) FROM activities_task WHERE title LIKE 'Burst %' "
                          f"AND entity_id IN ({burst_leads}) GROUP BY entity_id")
    comments = database.rows(f"SELECT entity_id, COUNT(*) FROM core_timelineentry WHERE kind = 'comment' "
                             f"AND text LIKE 'Seen %' AND entity_id IN ({burst_leads}) GROUP BY entity_id")
    assert len(tasks) == count and {n for _, n in tasks} == {1}  # every lead got its task, exactly one
    assert len(comments) == count and {n for _, n in comments} == {1}  # and its comment, exactly one
    reclaimed = database.value("SELECT COUNT(*) FROM automation_run WHERE attempts > 1")
    assert reclaimed == held  # the runs the dead worker held were taken again after their lease …
    assert database.value("SELECT COUNT(*) FROM activities_task WHERE title LIKE 'Burst %'") == count  # … and not doubled


def test_an_overdue_recurring_task_escalates_once_with_the_real_worker(database, tmp_path):
    clock_file = tmp_path / "clock"
    clock_file.write_text("")
    # this test's own events: a worker killed by the previous test may have left one claimed (its outbox lease
    # lasts five minutes of real time before another worker delivers it)
    since = database.value("SELECT COALESCE(MAX(id), 0) FROM core_outboxevent")
    worker = database.worker(clock_file)
    try:
        deadline = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(days=1)
        task = database.drive("overdue_task", title="Weekly call", deadline=deadline.isoformat(),
                              recurrence="0 9 * * 1")
        wait_for(lambda: database.value(f"SELECT COUNT(*) FROM automation_tasktimer WHERE task_id = {task['id']}"),
                 "the task's timer", proc=worker)
        clock.write_file(clock_file, deadline + datetime.timedelta(seconds=1))
        notes = wait_for(lambda: database.rows(
            "SELECT user_id, text FROM activities_notification WHERE text LIKE '%Weekly call%'"),
            "the overdue notification", proc=worker)
        assert notes == [(database.setup["operator"],
                          f"Task «Weekly call» is overdue since {notes[0][1].split('since ')[1].split(',')[0]}, "
                          "responsible Ira Zvonkova")]
        wait_for(lambda: database.value(
            f"SELECT status FROM automation_tasktimer WHERE task_id = {task['id']}") == "fired", "the timer fired",
            proc=worker)
        database.drive("complete_task", task=task["id"])
        assert database.value(f"SELECT COUNT(*) FROM activities_task WHERE recurrence_of_id = {task['id']}") == 1
        clock.write_file(clock_file, deadline + datetime.timedelta(hours=1))
        wait_for(lambda: database.value("SELECT COUNT(*) FROM core_outboxevent WHERE dispatched_at IS NULL "
                                        f"AND id > {since}") == 0, "the events to be delivered", proc=worker)
        assert database.value("SELECT COUNT(*) FROM activities_notification WHERE text LIKE '%Weekly call%'") == 1
        assert database.value(f"SELECT COUNT(*) FROM automation_tasktimer WHERE task_id = {task['id']} "
                              "AND status = 'pending'") == 0
    finally:
        out = stop(worker)
    assert worker.returncode == 0, out
