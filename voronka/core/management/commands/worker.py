"""``voronka worker``: the background process that runs next to the web server.

It does three jobs:

- **outbox sweep** (in this process): every ``--interval`` seconds it delivers the outbox events
  nobody dispatched yet: all of them by default (web processes dispatch right after commit only
  with ``VORONKA_OUTBOX_DISPATCH_ON_COMMIT=1``), and those whose process died before dispatching. Claiming is a conditional UPDATE, so a sweep and a web process never deliver an
  event twice.
- **engine jobs** (in this process): after each sweep, one tick of every job an engine registered
  with ``voronka.core.jobs.register`` (the automation scheduler: due runs and stage-limit timers).
  While a job finds work the loop goes on without sleeping.
- **background tasks** (a child process): Django Tasks' ``db_worker`` from django-tasks-db,
  started with the same settings, processing every queue by default.

SIGTERM or SIGINT stops both gracefully: the sweep finishes the event in hand and the task
worker the task in hand. A second signal makes the task worker stop at once. If the task
worker dies, this command stops too and exits non-zero, so a process manager restarts it.

Run several of these against PostgreSQL to scale out (tasks are claimed with SKIP LOCKED).
``--once`` sweeps and ticks the jobs until nothing is left to do now, then exits (tests, cron);
``--no-tasks`` runs no task worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from voronka.core import jobs, outbox

log = logging.getLogger("voronka.worker")

BATCH = 1000


def sweep() -> int:
    """Deliver every pending outbox event; returns how many were delivered."""
    total = 0
    while True:
        delivered = outbox.dispatch_pending(limit=BATCH)
        total += delivered
        if delivered < BATCH:
            return total


def drain(max_rounds: int = 100) -> tuple[int, int]:
    """Sweep and tick the jobs until neither has anything to do now; returns (events, job work)."""
    events = work = 0
    for _ in range(max_rounds):
        delivered = sweep()
        done = sum(n for n in jobs.run_all().values() if n > 0)
        events, work = events + delivered, work + done
        if not delivered and not done:
            break
    return events, work


def optimize_planner() -> None:
    """Keep the query planner's statistics fresh. SQLite gathers none by itself: without them it may scan a
    million rows for a list a composite index would answer in a millisecond. PostgreSQL's autovacuum does it."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA optimize")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the task worker gets SIGTERM if this process dies without stopping it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:
        pass


class Command(BaseCommand):
    help = "Run the background worker: the outbox sweep and the Django Tasks db_worker."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true",
                            help="Deliver the pending outbox events and run the due engine jobs, then exit "
                                 "(no task worker).")
        parser.add_argument("--interval", type=float, default=0.5,
                            help="Seconds between outbox sweeps (default: 0.5).")
        parser.add_argument("--no-tasks", action="store_true",
                            help="Do not start the background task worker; only sweep the outbox.")
        parser.add_argument("--queue-name", default="*",
                            help="Task queues for db_worker, comma-separated; '*' = all (default).")
        parser.add_argument("--task-interval", type=float, default=1.0,
                            help="Seconds db_worker waits when its queues are empty (default: 1).")

    def handle(self, *args, **options):
        if options["interval"] <= 0:
            raise CommandError("--interval must be greater than zero.")
        if options["once"]:
            delivered, work = drain()
            if options["verbosity"] >= 1:
                self.stdout.write(f"outbox: {delivered} event(s) delivered; jobs: {work} item(s) done")
            return

        self._stop = threading.Event()
        self._signals = 0
        self._child: subprocess.Popen | None = None
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

        if not options["no_tasks"]:
            self._child = self._start_task_worker(options)
        self.stdout.write(
            f"worker: outbox sweep every {options['interval']:g} s"
            + ("" if self._child is None else f"; task worker pid {self._child.pid} (queues {options['queue_name']})")
        )
        self.stdout.flush()

        rc = 0
        failures = 0
        busy = 0
        next_optimize = time.monotonic() + 60
        while not self._stop.is_set():
            try:
                close_old_connections()
                if time.monotonic() >= next_optimize:
                    optimize_planner()
                    next_optimize = time.monotonic() + 3600
                delivered = sweep()
                busy = sum(n for n in jobs.run_all().values() if n > 0)
                failures = 0
                if delivered and options["verbosity"] >= 2:
                    self.stdout.write(f"outbox: {delivered} event(s) delivered")
            except Exception:  # the database may be away for a moment: log, back off, go on
                failures += 1
                log.exception("outbox sweep failed (%d in a row)", failures)
                close_old_connections()
            if self._child is not None and self._child.poll() is not None:
                if not self._stop.is_set():
                    self.stderr.write(f"worker: the task worker exited with code {self._child.returncode}; stopping")
                    rc = self._child.returncode or 1
                break
            if busy and not failures:
                continue  # more may be due right now: no sleep while a job finds work
            self._stop.wait(min(options["interval"] * (2 ** min(failures, 5)), 60.0))

        self._stop_child()
        self.stdout.write("worker: stopped")
        if rc:
            sys.exit(rc)

    # --- the task worker child -----------------------------------------------------------------

    def _start_task_worker(self, options) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "django", "db_worker",
               "--queue-name", options["queue_name"],
               "--interval", str(options["task_interval"]),
               "--no-reload",
               "-v", str(options["verbosity"])]
        settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "voronka.settings")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
        # Its own session: a terminal's Ctrl-C reaches only us, and we pass on exactly one SIGTERM
        # (db_worker treats a second signal as "abort the task in hand").
        return subprocess.Popen(cmd, env=env, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            if self._signals == 1:
                self.stderr.write(f"worker: {signal.strsignal(signum)}: stopping gracefully (again to force)")
            try:
                child.send_signal(signal.SIGTERM)  # the second one forces db_worker to stop now
            except ProcessLookupError:
                pass

    def _stop_child(self, timeout: float = 30.0) -> None:
        child = self._child
        if child is None:
            return
        if child.poll() is None and self._signals == 0:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if child.poll() is None:
            self.stderr.write("worker: the task worker did not stop in time; killing it")
            child.kill()
            child.wait()
