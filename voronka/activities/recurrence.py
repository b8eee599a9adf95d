"""Recurring tasks (F22): a task's recurrence rule is a five-field cron expression (``croniter``), read in the
installation's time zone. The UI's presets (every day, every week, every month at the deadline's time) are
written as cron too, so there is one stored form.

The next occurrence is created by ``complete_task`` in the transaction that completes the task (see
``actions._next_occurrence``), so completion and its successor commit together; ``Task.recurrence_of`` is
unique, so a task never gets two successors whatever calls it again.
"""

from __future__ import annotations

import datetime

from croniter import croniter
from django.utils import timezone
from django.utils.translation import gettext as _

MAX_LENGTH = 100
PRESETS = ("daily", "weekly", "monthly")


class RecurrenceError(ValueError):
    pass


def check(rule) -> str:
    """The normalised rule (``""`` for none), or RecurrenceError with a clear message."""
    if rule is None:
        return ""
    if not isinstance(rule, str):
        raise RecurrenceError(_("The recurrence rule is a cron expression such as «0 9 * * 1»."))
    rule = " ".join(rule.split())
    if not rule:
        return ""
    if len(rule) > MAX_LENGTH:
        raise RecurrenceError(_("The recurrence rule is at most %(n)s characters.") % {"n": MAX_LENGTH})
    if len(rule.split(" ")) != 5:
        raise RecurrenceError(_("The recurrence rule needs five fields: minute, hour, day of month, month, "
                                "day of week (e.g. «0 9 * * 1» is every Monday at 9:00)."))
    if not croniter.is_valid(rule):
        raise RecurrenceError(_("«%(rule)s» is not a valid cron expression.") % {"rule": rule})
    try:
        next_after(rule, timezone.now())
    except (ValueError, KeyError):  # CroniterBadDateError is a ValueError
        raise RecurrenceError(_("«%(rule)s» never comes true.") % {"rule": rule}) from None
    return rule


def next_after(rule: str, moment: datetime.datetime) -> datetime.datetime:
    """The first time the rule names strictly after ``moment`` (aware, in the installation's time zone)."""
    local = timezone.localtime(moment)
    found = croniter(rule, local, max_years_between_matches=5).get_next(datetime.datetime)
    return found if timezone.is_aware(found) else timezone.make_aware(found)


def from_preset(preset: str, at: datetime.datetime | None) -> str:
    """A UI preset as cron, at the time (and weekday / day of month) of ``at`` (9:00 without a deadline)."""
    local = timezone.localtime(at) if at is not None else None
    minute, hour = (local.minute, local.hour) if local else (0, 9)
    if preset == "daily":
        return f"{minute} {hour} * * *"
    if preset == "weekly":
        weekday = (local.isoweekday() % 7) if local else 1  # cron: 0 is Sunday
        return f"{minute} {hour} * * {weekday}"
    if preset == "monthly":
        return f"{minute} {hour} {local.day if local else 1} * *"
    raise RecurrenceError(_("Unknown repetition «%(p)s».") % {"p": preset})
