"""Periodic jobs that ``voronka worker`` runs after every outbox sweep.

Engines register a job from their ``AppConfig.ready`` (``register("automation", tick)``); core knows
nothing about them. A job is called with no arguments, does a bounded amount of work and returns
how many things it did (the worker sleeps only when every job had nothing to do). A failing job is
logged and retried on the next tick; it does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("voronka.worker")

Job = Callable[[], int]
_jobs: dict[str, Job] = {}


def register(name: str, job: Job) -> None:
    _jobs[name] = job


def registered() -> dict[str, Job]:
    return dict(_jobs)


def run_all() -> dict[str, int]:
    """One tick of every job; returns {name: work done} (-1 for a job that failed)."""
    done: dict[str, int] = {}
    for name, job in list(_jobs.items()):
        try:
            done[name] = int(job() or 0)
        except Exception:
            log.exception("worker job %s failed", name)
            done[name] = -1
    return done
