"""Working time: weekends, holidays, transferred and shortened days, time zones (Moscow has no daylight saving;
Berlin has), night shifts, absences; and properties that hold for any moment and duration."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voronka.calendars import actions
from voronka.calendars.models import default_week
from voronka.calendars.working_time import (
    Schedule,
    add_working_time,
    add_working_time_in,
    intervals,
    is_working_time,
    is_working_time_in,
    next_working_time,
    next_working_time_in,
    working_duration,
)

MSK = ZoneInfo("Europe/Moscow")
H = datetime.timedelta(hours=1)
M = datetime.timedelta(minutes=1)


def msk(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=MSK)


def office(**days) -> Schedule:
    return Schedule(tz=MSK, week=default_week(), days=days.get("days", {}))


# 2026-11-20 is a Friday, 2026-11-23 a Monday.

def test_inside_working_hours_is_now():
    assert next_working_time_in(office(), msk(2026, 11, 20, 10, 0)) == msk(2026, 11, 20, 10, 0)


def test_friday_evening_goes_to_monday_morning():
    assert next_working_time_in(office(), msk(2026, 11, 20, 18, 0)) == msk(2026, 11, 23, 9, 0)
    assert next_working_time_in(office(), msk(2026, 11, 21, 12, 0)) == msk(2026, 11, 23, 9, 0)


def test_before_the_day_starts():
    assert next_working_time_in(office(), msk(2026, 11, 23, 6, 30)) == msk(2026, 11, 23, 9, 0)


def test_add_crosses_the_night_and_the_weekend():
    assert add_working_time_in(office(), msk(2026, 11, 20, 16, 0), 3 * H) == msk(2026, 11, 23, 10, 0)
    assert add_working_time_in(office(), msk(2026, 11, 21, 16, 0), 3 * H) == msk(2026, 11, 23, 12, 0)


def test_the_end_of_an_interval_is_not_working_time():
    assert add_working_time_in(office(), msk(2026, 11, 20, 9, 0), 9 * H) == msk(2026, 11, 20, 18, 0)
    assert not is_working_time_in(office(), msk(2026, 11, 20, 18, 0))
    assert is_working_time_in(office(), msk(2026, 11, 20, 17, 59))


def test_lunch_break():
    week = {**default_week(), "mon": [["09:00", "13:00"], ["14:00", "18:00"]]}
    schedule = Schedule(tz=MSK, week=week)
    assert add_working_time_in(schedule, msk(2026, 11, 23, 12, 0), 2 * H) == msk(2026, 11, 23, 15, 0)
    assert next_working_time_in(schedule, msk(2026, 11, 23, 13, 30)) == msk(2026, 11, 23, 14, 0)


def test_new_year_holidays_and_a_transferred_working_saturday():
    days = {datetime.date(2027, 1, d): [] for d in range(1, 9)}  # 1–8 January off
    days[datetime.date(2027, 1, 9)] = default_week()["mon"]  # a working Saturday
    schedule = Schedule(tz=MSK, week=default_week(), days=days)
    assert next_working_time_in(schedule, msk(2026, 12, 31, 18, 30)) == msk(2027, 1, 9, 9, 0)
    assert add_working_time_in(schedule, msk(2027, 1, 9, 17, 0), 2 * H) == msk(2027, 1, 11, 10, 0)


def test_a_shortened_pre_holiday_day():
    schedule = Schedule(tz=MSK, week=default_week(), days={datetime.date(2026, 12, 30): [["09:00", "17:00"]]})
    assert add_working_time_in(schedule, msk(2026, 12, 30, 16, 0), 2 * H) == msk(2026, 12, 31, 10, 0)


def test_moscow_has_no_daylight_saving():
    start = msk(2026, 3, 27, 17, 0)  # a Friday; Europe changes its clocks on the 29th
    assert add_working_time_in(office(), start, 2 * H).astimezone(datetime.UTC) == \
        datetime.datetime(2026, 3, 30, 7, 0, tzinfo=datetime.UTC)  # Monday 10:00 MSK = 07:00 UTC, as in winter


def test_a_zone_with_daylight_saving_keeps_wall_clock_hours():
    berlin = ZoneInfo("Europe/Berlin")
    schedule = Schedule(tz=berlin, week=default_week())
    friday = datetime.datetime(2026, 3, 27, 17, 0, tzinfo=berlin)  # CET, UTC+1
    monday = add_working_time_in(schedule, friday, 2 * H)
    assert monday == datetime.datetime(2026, 3, 30, 10, 0, tzinfo=berlin)  # CEST, UTC+2
    assert monday.astimezone(datetime.UTC).hour == 8


def test_the_moment_is_read_in_the_schedules_zone():
    # 06:30 UTC on a Monday is 09:30 in Moscow (working) and 11:30 in Yekaterinburg (working), 07:30 in Berlin
    t = datetime.datetime(2026, 11, 23, 6, 30, tzinfo=datetime.UTC)
    assert is_working_time_in(office(), t)
    assert not is_working_time_in(Schedule(tz=ZoneInfo("Europe/Berlin"), week=default_week()), t)


def test_overnight_shift():
    week = {day: [["22:00", "06:00"]] for day in default_week()}
    schedule = Schedule(tz=MSK, week=week)
    assert is_working_time_in(schedule, msk(2026, 11, 24, 3, 0))  # Monday's shift, Tuesday morning
    assert next_working_time_in(schedule, msk(2026, 11, 24, 12, 0)) == msk(2026, 11, 24, 22, 0)
    assert add_working_time_in(schedule, msk(2026, 11, 24, 5, 0), 2 * H) == msk(2026, 11, 24, 23, 0)


def test_round_the_clock_days_merge():
    week = {day: [["00:00", "24:00"]] for day in default_week()}
    schedule = Schedule(tz=MSK, week=week)
    assert add_working_time_in(schedule, msk(2026, 11, 20, 23, 0), 50 * H) == msk(2026, 11, 23, 1, 0)
    assert len(list(intervals(schedule, msk(2026, 11, 20, 23, 0), days=3))) == 1


def test_an_empty_calendar_falls_back_to_calendar_time():
    schedule = Schedule(tz=MSK, week={day: [] for day in default_week()})
    t = msk(2026, 11, 20, 10, 0)
    assert schedule.empty and next_working_time_in(schedule, t) == t
    assert add_working_time_in(schedule, t, 3 * H) == t + 3 * H


def test_absence_skips_days():
    schedule = office()
    schedule.absent = [(datetime.date(2026, 11, 23), datetime.date(2026, 11, 27))]
    assert next_working_time_in(schedule, msk(2026, 11, 20, 19, 0)) == msk(2026, 11, 30, 9, 0)


def test_day_length():
    assert office().day_length() == 9 * H


moments = st.datetimes(min_value=datetime.datetime(2025, 1, 1), max_value=datetime.datetime(2028, 12, 31),
                       timezones=st.just(MSK))
durations = st.integers(min_value=0, max_value=60 * 24 * 20).map(lambda m: datetime.timedelta(minutes=m))
weeks = st.fixed_dictionaries({day: st.sampled_from([[], [["09:00", "18:00"]], [["08:00", "12:00"], ["13:00", "17:00"]],
                                                     [["20:00", "08:00"]], [["00:00", "24:00"]]])
                               for day in default_week()})


def _working_between(schedule, a, b) -> datetime.timedelta:
    total = datetime.timedelta()
    for start, end in intervals(schedule, a):
        if start >= b:
            break
        total += min(end, b) - max(start, a)
    return total


@settings(max_examples=150, deadline=None)
@given(moments, weeks)
def test_next_working_time_is_working_and_not_earlier(t, week):
    schedule = Schedule(tz=MSK, week=week)
    nxt = next_working_time_in(schedule, t)
    assert nxt >= t
    if not schedule.empty:
        assert is_working_time_in(schedule, nxt)
        assert _working_between(schedule, t, nxt) == datetime.timedelta()  # nothing working was skipped


@settings(max_examples=150, deadline=None)
@given(moments, durations, durations, weeks)
def test_adding_working_time_is_additive_and_exact(t, a, b, week):
    schedule = Schedule(tz=MSK, week=week)
    if schedule.empty:
        return
    from voronka.calendars.working_time import HORIZON_DAYS

    if _working_between(schedule, t, t + datetime.timedelta(days=HORIZON_DAYS - 7)) < a + b:
        return  # beyond the horizon the remainder counts as calendar time (documented fallback, not additive)
    end = add_working_time_in(schedule, t, a)
    assert end >= t and end - t >= a  # never faster than calendar time
    assert _working_between(schedule, t, end) == a
    assert add_working_time_in(schedule, end, b) == add_working_time_in(schedule, t, a + b) or b == datetime.timedelta()


# --- the stored calendar -------------------------------------------------------------------------------------



@pytest.mark.django_db
def test_company_holidays_user_zone_override_and_absence(admin, manager_user):
    actions.import_days(admin, "2026-11-04 holiday День народного единства\n# comment\n2026-11-07 working\n"
                               "2026-11-03 09:00-17:00 предпраздничный\n")
    t = msk(2026, 11, 3, 16, 30)
    assert add_working_time(None, t, H) == msk(2026, 11, 5, 9, 30)  # 30 min on the 3rd, the 4th is off
    assert next_working_time(None, msk(2026, 11, 7, 8, 0)) == msk(2026, 11, 7, 9, 0)  # a working Saturday
    actions.set_user_schedule(admin, manager_user.pk, time_zone="Asia/Yekaterinburg")  # UTC+5, Moscow+2
    assert next_working_time(manager_user, msk(2026, 11, 5, 6, 30)) == msk(2026, 11, 5, 7, 0)  # 09:00 his time
    actions.add_absence(admin, manager_user.pk, starts_on="2026-11-05", ends_on="2026-11-06")
    assert next_working_time(manager_user, msk(2026, 11, 5, 6, 30)) == msk(2026, 11, 7, 7, 0)
    actions.set_day(admin, user=manager_user.pk, date="2026-11-07", working=False)  # his own day off wins
    assert next_working_time(manager_user, msk(2026, 11, 5, 6, 30)) == msk(2026, 11, 9, 7, 0)
    assert is_working_time(None, msk(2026, 11, 9, 10, 0))
    assert working_duration(None, 2, "days") == 18 * H


@pytest.mark.django_db
def test_calendar_writes_are_validated_and_need_the_right(admin, manager, settings):
    settings.LANGUAGE_CODE = "en"  # messages are asserted in English
    from voronka.core.errors import PermissionDenied, ValidationFailed

    with pytest.raises(PermissionDenied):
        actions.set_company_calendar(manager, time_zone="Europe/Moscow")
    for bad in ({"mon": [["9:00", "18:00"]]}, {"mon": [["09:00", "25:00"]]}, {"monday": []}, {"mon": "9-18"},
                {"mon": [["10:00", "10:00"]]}):
        with pytest.raises(ValidationFailed) as exc:
            actions.set_company_calendar(admin, week=bad)
        assert "week" in exc.value.fields
    with pytest.raises(ValidationFailed):
        actions.set_company_calendar(admin, time_zone="Moscow")
    with pytest.raises(ValidationFailed) as exc:
        actions.import_days(admin, "2026-11-04 holiday\n2026-13-01 holiday\n")
    assert "Line 2" in exc.value.fields["days"][0]
    with pytest.raises(ValidationFailed):
        actions.add_absence(admin, manager.user_id, starts_on="2026-11-05", ends_on="2026-11-01")
    row = actions.set_company_calendar(admin, time_zone="Asia/Novosibirsk",
                                       week={"mon": [["08:00", "12:00"], ["13:00", "17:00"]]})
    assert row.week["tue"] == [] and row.time_zone == "Asia/Novosibirsk"


def test_too_little_working_time_continues_in_calendar_time_after_the_last_interval():
    only = {datetime.date(2026, 11, 23): [["10:00", "11:00"]]}
    schedule = Schedule(tz=MSK, week={day: [] for day in default_week()}, days=only)
    assert add_working_time_in(schedule, msk(2026, 11, 20, 12, 0), 90 * M) == msk(2026, 11, 23, 11, 30)
