"""Working time: when a user works, by the company calendar and the user's own schedule, time zone and absences.

- ``next_working_time(user, t)``: ``t`` itself if it falls in working time, else the start of the next working
  interval;
- ``add_working_time(user, t, duration)``: the moment when ``duration`` of working time has passed from ``t``
  (counting only working intervals; a zero duration is ``next_working_time``);
- ``is_working_time(user, t)``: whether ``t`` falls in the user's working time (distribution's «present» is
  this and not «away»).

``user`` may be None: the company's calendar. All moments are aware datetimes; results are in UTC's
instant-equivalent (compare them, store them; show them in any zone). Wall-clock hours are read in the schedule's
time zone with ``zoneinfo``, so a zone with daylight saving gets the right instants too.

If a schedule has no (or too little) working time in the next ``HORIZON_DAYS`` days (an empty week, a year-long
absence), the functions fall back to calendar time (``t``; the rest of the duration after the last working
interval) rather than wait for ever; ``Schedule.empty`` tells callers.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from .models import WEEKDAYS, Absence, CalendarDay, CompanyCalendar, UserSchedule, default_week

HORIZON_DAYS = 400
Interval = tuple[datetime.datetime, datetime.datetime]


def parse_hhmm(text: str) -> datetime.time | None:
    """``"09:30"`` → 09:30; ``"24:00"`` → None (the end of the day). ValueError for anything else."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        raise ValueError(text)
    hours, minutes = int(text[:2]), int(text[3:])
    if (hours, minutes) == (24, 0):
        return None
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    return datetime.time(hours, minutes)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


@dataclass
class Schedule:
    """Everything needed to compute a person's working time, loaded once (``schedule_for``)."""

    tz: ZoneInfo
    week: dict
    days: dict[datetime.date, list] = field(default_factory=dict)  # date → intervals ([] = not working)
    absent: list[tuple[datetime.date, datetime.date]] = field(default_factory=list)

    def normal_hours(self) -> list:
        """The hours of a usual working day (the first weekday that has any): for transferred working days."""
        for day in WEEKDAYS:
            if self.week.get(day):
                return self.week[day]
        return []

    def hours_on(self, date: datetime.date) -> list:
        if any(start <= date <= end for start, end in self.absent):
            return []
        if date in self.days:
            return self.days[date]
        return self.week.get(WEEKDAYS[date.weekday()]) or []

    def day_length(self) -> datetime.timedelta:
        """The working time of a usual day (9:00–18:00: nine hours): what «N working days» count in."""
        total = datetime.timedelta()
        for start, end in _day_intervals(self, datetime.date(2001, 1, 1), self.normal_hours()):
            total += end - start
        return total

    @property
    def empty(self) -> bool:
        return not any(self.week.get(day) for day in WEEKDAYS) and not any(self.days.values())


def _at(date: datetime.date, t: datetime.time | None, tz: ZoneInfo) -> datetime.datetime:
    if t is None:  # 24:00
        return datetime.datetime.combine(date + datetime.timedelta(days=1), datetime.time(), tzinfo=tz)
    return datetime.datetime.combine(date, t, tzinfo=tz)


def _day_intervals(schedule: Schedule, date: datetime.date, hours: list) -> list[Interval]:
    found = []
    for pair in hours or []:
        start_t, end_t = parse_hhmm(pair[0]), parse_hhmm(pair[1])
        if start_t is None:
            continue  # an interval starting at 24:00 belongs to the next day
        start = _at(date, start_t, schedule.tz)
        end = _at(date, end_t, schedule.tz)
        if end <= start:  # crosses midnight: a night shift
            end = _at(date + datetime.timedelta(days=1), end_t, schedule.tz) if end_t is not None else end
        if end > start:
            found.append((start, end))
    return sorted(found)


def intervals(schedule: Schedule, t: datetime.datetime, days: int = HORIZON_DAYS) -> Iterator[Interval]:
    """Working intervals that end after ``t``, in order, overlapping ones merged."""
    local = t.astimezone(schedule.tz).date() - datetime.timedelta(days=1)  # yesterday's night shift may still run
    current: Interval | None = None
    for offset in range(days + 2):
        date = local + datetime.timedelta(days=offset)
        for start, end in _day_intervals(schedule, date, schedule.hours_on(date)):
            if current is not None and start <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None and current[1] > t:
                yield current
            current = (start, end)
    if current is not None and current[1] > t:
        yield current


def next_working_time_in(schedule: Schedule, t: datetime.datetime) -> datetime.datetime:
    for start, _end in intervals(schedule, t):
        return max(start, t)
    return t


def add_working_time_in(schedule: Schedule, t: datetime.datetime, duration: datetime.timedelta) -> datetime.datetime:
    if duration < datetime.timedelta():
        raise ValueError("a negative duration")
    remaining, last = duration, t
    for start, end in intervals(schedule, t):
        start = max(start, t)
        if end - start >= remaining:
            return start + remaining
        remaining -= end - start
        last = end
    return last + remaining  # the horizon has too little working time: the rest counts as calendar time


def is_working_time_in(schedule: Schedule, t: datetime.datetime) -> bool:
    for start, _end in intervals(schedule, t):
        return start <= t
    return False


# --- loading -----------------------------------------------------------------------------------------------

def schedule_for(user, around: datetime.datetime | None = None) -> Schedule:
    """The user's schedule (or the company's for None): their week and zone if set, the company's exceptions
    overridden by their own, and their absences. Exceptions are loaded from ``around`` − 1 day onwards."""
    company = CompanyCalendar.objects.order_by("id").first()
    week = (company.week if company is not None else None) or default_week()
    tz_name = company.time_zone if company is not None else ""
    own = UserSchedule.objects.filter(user=user).first() if user is not None else None
    if own is not None:
        week = own.week if own.week is not None else week
        tz_name = own.time_zone or tz_name
    schedule = Schedule(tz=zone(tz_name), week=week)
    since = ((around.date() if around is not None else datetime.date.today()) - datetime.timedelta(days=2))
    until = since + datetime.timedelta(days=HORIZON_DAYS + 4)
    days = CalendarDay.objects.filter(date__gte=since, date__lte=until)
    for row in days.filter(user__isnull=True):
        schedule.days[row.date] = (row.hours or schedule.normal_hours()) if row.working else []
    if user is not None:
        for row in days.filter(user=user):
            schedule.days[row.date] = (row.hours or schedule.normal_hours()) if row.working else []
        schedule.absent = list(Absence.objects.filter(user=user, ends_on__gte=since, starts_on__lte=until)
                               .values_list("starts_on", "ends_on"))
    return schedule


def next_working_time(user, t: datetime.datetime) -> datetime.datetime:
    return next_working_time_in(schedule_for(user, t), t)


def add_working_time(user, t: datetime.datetime, duration: datetime.timedelta) -> datetime.datetime:
    return add_working_time_in(schedule_for(user, t), t, duration)


def is_working_time(user, t: datetime.datetime) -> bool:
    return is_working_time_in(schedule_for(user, t), t)


def working_duration(user, amount: int, unit: str) -> datetime.timedelta:
    """``amount`` minutes / hours / working days as working time (a working day = the usual day's length)."""
    if unit == "days":
        return schedule_for(user).day_length() * amount
    return datetime.timedelta(**{unit: amount})
