"""The one clock that time-based engines read (automation delays, stage time limits, leases).

``now()`` is the real time unless it is controlled, in this order:

1. ``clock.freeze(dt)`` in the current process (unit tests; ``clock.freeze(None)`` releases it);
2. the environment variable ``VORONKA_CLOCK_FILE`` naming a file that holds an ISO 8601 timestamp
   (e.g. ``2026-01-05T12:00:00+00:00``). The file is re-read on every call, so a test can move the
   time of a real ``voronka worker`` subprocess by rewriting the file, without sleeping. A missing or
   empty file means the real time; a file that cannot be parsed is an error (never a silent fallback).

Production never sets either, and ``now()`` is ``django.utils.timezone.now()``.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from django.utils import timezone
from django.utils.dateparse import parse_datetime

ENV = "VORONKA_CLOCK_FILE"
_frozen: dict[str, datetime.datetime | None] = {"at": None}


class ClockError(RuntimeError):
    pass


def freeze(at: datetime.datetime | None) -> None:
    """Pin this process's clock at ``at`` (aware); ``None`` gives the real time back."""
    if at is not None and timezone.is_naive(at):
        raise ClockError("the clock needs an aware datetime")
    _frozen["at"] = at


def advance(delta: datetime.timedelta) -> datetime.datetime:
    """Move a frozen clock forward (freezing it at the real time first if it was not frozen)."""
    freeze(now() + delta)
    return _frozen["at"]


def _from_file(path: str) -> datetime.datetime | None:
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    parsed = parse_datetime(text)
    if parsed is None:
        raise ClockError(f"{ENV}={path}: {text!r} is not an ISO 8601 timestamp")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, datetime.UTC)


def write_file(path: str | os.PathLike, at: datetime.datetime) -> None:
    """Set the time of every process that reads ``path`` (atomically: no reader sees half a line)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(at.isoformat())
    os.replace(tmp, path)


def now() -> datetime.datetime:
    if _frozen["at"] is not None:
        return _frozen["at"]
    path = os.environ.get(ENV)
    if path:
        at = _from_file(path)
        if at is not None:
            return at
    return timezone.now()
