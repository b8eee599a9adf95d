"""Every write to working calendars: the ``settings:users`` right (who manages users manages their working time;
each person may add and remove their own absences), validation with per-field messages, one transaction, an audit event and a ``calendar.changed`` event (automation
re-plans working-time timers on it)."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from voronka.core import audit, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed

from .models import WEEKDAYS, Absence, CalendarDay, CompanyCalendar, UserSchedule
from .working_time import parse_hhmm

RIGHT = "settings:users"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def check_hours(hours, where: str) -> list:
    """A list of ``["HH:MM", "HH:MM"]`` pairs; ValueError with a clear message otherwise."""
    if not isinstance(hours, list) or len(hours) > 10:
        raise ValueError(_("%(w)s: a list of [from, to] pairs like [\"09:00\", \"18:00\"].") % {"w": where})
    for pair in hours:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(_("%(w)s: a list of [from, to] pairs like [\"09:00\", \"18:00\"].") % {"w": where})
        try:
            start, end = parse_hhmm(pair[0]), parse_hhmm(pair[1])
        except ValueError:
            raise ValueError(_("%(w)s: «%(v)s» is not a time like 09:00 (00:00–24:00).")
                             % {"w": where, "v": f"{pair[0]}–{pair[1]}"}) from None
        if start is None or start == end:
            raise ValueError(_("%(w)s: «%(v)s» is not an interval.") % {"w": where, "v": f"{pair[0]}–{pair[1]}"})
    return [list(p) for p in hours]


def check_week(week) -> dict:
    if not isinstance(week, dict) or set(week) - set(WEEKDAYS):
        raise _invalid("week", _("The week maps mon, tue, wed, thu, fri, sat, sun to working hours."))
    try:
        return {day: check_hours(week.get(day) or [], day) for day in WEEKDAYS}
    except ValueError as exc:
        raise _invalid("week", str(exc)) from None


def check_zone(name) -> str:
    if name in (None, ""):
        return ""
    try:
        if not isinstance(name, str) or "/" not in name and name != "UTC":
            raise ValueError
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("time_zone", _("«%(z)s» is not a time zone like Europe/Moscow.") % {"z": name}) from None
    return name


def _changed(actor: Actor, what: str, user_id: int | None = None, **details) -> None:
    audit.record(actor, f"calendar.{what}", entity_id=user_id, **details)
    outbox.emit(actor, "calendar.changed", None, user_id, {"what": what, "user": user_id})


def _user(user_id):
    user = get_user_model().objects.filter(pk=user_id).first() if str(user_id).isdigit() else None
    if user is None:
        raise NotFound(_("User #%(id)s does not exist.") % {"id": user_id})
    return user


def set_company_calendar(actor: Actor, *, time_zone: str | None = None, week: dict | None = None) -> CompanyCalendar:
    policies.require(actor, RIGHT, 0)
    with transaction.atomic():
        row = CompanyCalendar.objects.select_for_update().order_by("id").first() or CompanyCalendar()
        if time_zone is not None:
            row.time_zone = check_zone(time_zone)
        if week is not None:
            row.week = check_week(week)
        row.updated_at = timezone.now()
        row.save()
        _changed(actor, "company_set")
        return row


def _date(value) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    try:
        parsed = parse_date(value.strip()) if isinstance(value, str) else None
    except ValueError:  # well formed but not a day of the calendar (2026-02-30)
        parsed = None
    if parsed is None:
        raise _invalid("date", _("A date like 2026-01-01."))
    return parsed


def set_day(actor: Actor, *, date, working: bool, hours: list | None = None, note: str = "",
            user: int | None = None) -> CalendarDay:
    """An exception on ``date`` for the company (``user`` None) or one user: not working, working with the usual
    hours (``hours`` empty) or working with these hours. Replaces an exception on the same date."""
    policies.require(actor, RIGHT, 0)
    day = _date(date)
    if not isinstance(working, bool):
        raise _invalid("working", _("«working» is true or false."))
    try:
        hours = check_hours(hours or [], _("hours")) if working else []
    except ValueError as exc:
        raise _invalid("hours", str(exc)) from None
    if not isinstance(note, str) or len(note) > 200:
        raise _invalid("note", _("At most %(n)s characters.") % {"n": 200})
    owner = _user(user) if user is not None else None
    with transaction.atomic():
        row, _new = CalendarDay.objects.update_or_create(user=owner, date=day,
                                                         defaults={"working": working, "hours": hours, "note": note})
        _changed(actor, "day_set", owner.pk if owner else None, date=day.isoformat(), working=working)
        return row


def delete_day(actor: Actor, *, date, user: int | None = None) -> None:
    policies.require(actor, RIGHT, 0)
    day = _date(date)
    with transaction.atomic():
        deleted, _detail = CalendarDay.objects.filter(user_id=user, date=day).delete() if user is not None else \
            CalendarDay.objects.filter(user__isnull=True, date=day).delete()
        if deleted:
            _changed(actor, "day_deleted", user, date=day.isoformat())


def set_user_schedule(actor: Actor, user: int, *, time_zone: str | None = None, week: dict | None = None,
                      own_week: bool | None = None) -> UserSchedule:
    """A user's own time zone (empty: the company's) and, with ``own_week``, own working hours."""
    policies.require(actor, RIGHT, 0)
    owner = _user(user)
    with transaction.atomic():
        row = UserSchedule.objects.select_for_update().filter(user=owner).first() or UserSchedule(user=owner)
        if time_zone is not None:
            row.time_zone = check_zone(time_zone)
        if own_week is False:
            row.week = None
        elif week is not None:
            row.week = check_week(week)
        row.updated_at = timezone.now()
        row.save()
        _changed(actor, "user_set", owner.pk)
        return row


def _may_edit_absences(actor: Actor, owner_id: int, missing: str) -> None:
    """Absences are edited by whoever manages users (``settings:users``) and by each person for themselves
    (an API token then needs the «write» scope). For anyone else the person or absence does not exist."""
    if policies.can(actor, RIGHT, 0):
        return
    if actor.user_id is not None and actor.user_id == owner_id:
        if actor.scopes and "write" not in actor.scopes:
            raise PermissionDenied(_("This token may not write."), code="forbidden_write")
        return
    raise NotFound(missing)


def add_absence(actor: Actor, user: int, *, starts_on, ends_on, reason: str = "") -> Absence:
    """An absence of ``user`` (both ends included): by a manager of users, or by the user themselves."""
    owner = get_user_model().objects.filter(pk=user).first() if str(user).isdigit() else None
    _may_edit_absences(actor, owner.pk if owner is not None else -1,
                       _("User #%(id)s does not exist.") % {"id": user})
    if owner is None:  # a manager of users asked for somebody who does not exist
        raise NotFound(_("User #%(id)s does not exist.") % {"id": user})
    start, end = _date(starts_on), _date(ends_on)
    if end < start:
        raise _invalid("ends_on", _("The end is before the start."))
    if (end - start).days > 366:
        raise _invalid("ends_on", _("An absence is at most a year."))
    if not isinstance(reason, str) or len(reason) > 200:
        raise _invalid("reason", _("At most %(n)s characters.") % {"n": 200})
    with transaction.atomic():
        row = Absence.objects.create(user=owner, starts_on=start, ends_on=end, reason=reason)
        _changed(actor, "absence_added", owner.pk, starts_on=start.isoformat(), ends_on=end.isoformat())
        return row


def delete_absence(actor: Actor, absence_id: int) -> None:
    """Remove an absence: a manager of users any, a person their own (others do not exist for them)."""
    with transaction.atomic():
        row = Absence.objects.select_for_update().filter(pk=absence_id).first() if str(absence_id).isdigit() else None
        missing = _("Absence #%(id)s does not exist.") % {"id": absence_id}
        _may_edit_absences(actor, row.user_id if row is not None else -1, missing)
        if row is None:
            raise NotFound(missing)
        user_id = row.user_id
        row.delete()
        _changed(actor, "absence_deleted", user_id)


def parse_days(text: str) -> list[dict]:
    """Lines of a pasted production calendar: ``2026-01-01 holiday [note]``, ``2026-11-01 working [note]``,
    ``2026-03-07 09:00-17:00 [note]`` (a shortened working day); ``#`` starts a comment. ValidationFailed names
    the first bad line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        try:
            if len(parts) < 2:
                raise ValueError
            day = _date(parts[0])
            kind, note = parts[1], parts[2] if len(parts) > 2 else ""
            if kind == "holiday":
                found.append({"date": day, "working": False, "hours": [], "note": note})
            elif kind == "working":
                found.append({"date": day, "working": True, "hours": [], "note": note})
            else:
                hours = [p.split("-") for p in kind.split(",")]
                found.append({"date": day, "working": True, "hours": check_hours(hours, ""), "note": note})
        except (ValueError, ValidationFailed):
            message = _("Line %(n)s: write «YYYY-MM-DD holiday», «YYYY-MM-DD working» or «YYYY-MM-DD 09:00-17:00», "
                        "then an optional note.") % {"n": number}
            raise _invalid("days", message) from None
    return found


def import_days(actor: Actor, text: str, *, user: int | None = None) -> int:
    """Set every exception of a pasted list (see ``parse_days``) in one transaction; returns how many."""
    policies.require(actor, RIGHT, 0)
    days = parse_days(text)
    with transaction.atomic():
        for day in days:
            set_day(actor, user=user, **day)
    return len(days)
