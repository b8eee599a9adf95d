"""Robot delays «at the next working time of the responsible» and stage limits in working time, by the working
calendar; re-planned when the responsible or the calendar changes."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from voronka.automation.actions import create_robot, set_stage_limit
from voronka.automation.models import Run, Timer
from voronka.calendars import actions as calendar
from voronka.identity.models import User
from voronka.leads.actions import create_lead, update_lead

pytestmark = pytest.mark.django_db
MSK = ZoneInfo("Europe/Moscow")
NOBODY_WORKS = {day: [] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def at(days: int, hh: int, mm: int = 0) -> datetime.datetime:
    """``days`` from today (Moscow), at hh:mm Moscow time."""
    today = timezone.now().astimezone(MSK).date()
    return datetime.datetime.combine(today + datetime.timedelta(days=days), datetime.time(hh, mm), tzinfo=MSK)


@pytest.fixture
def calendar_in_two_days(admin):
    """Nobody works except 10:00–11:00 the day after tomorrow (so «now» is never working time)."""
    calendar.set_company_calendar(admin, time_zone="Europe/Moscow", week=NOBODY_WORKS)
    calendar.set_day(admin, date=at(2, 0).date(), working=True, hours=[["10:00", "11:00"]])


def test_a_robot_waits_for_the_responsibles_next_working_time(admin, manager_user, stages, calendar_in_two_days, drive):
    create_robot(admin, stage=stages["new"].pk, action="comment", params={"text": "Доброе утро"},
                 delay={"kind": "working", "amount": 0, "unit": "minutes"})
    create_robot(admin, stage=stages["new"].pk, action="comment", params={"text": "Через полчаса работы"},
                 delay={"kind": "working", "amount": 90, "unit": "minutes"})
    create_lead(admin, title="Окна", responsible=manager_user.pk)
    drive()
    first, second = Run.objects.order_by("robot__order", "id")
    assert first.scheduled_at == at(2, 10)
    # 60 working minutes that day; the calendar has no more working time, so the rest counts as calendar time
    assert second.scheduled_at == at(2, 11, 30)
    assert first.status == "pending"


def test_the_users_own_zone_counts(admin, manager_user, stages, calendar_in_two_days, drive):
    calendar.set_user_schedule(admin, manager_user.pk, time_zone="Asia/Yekaterinburg")  # Moscow + 2 h
    create_robot(admin, stage=stages["new"].pk, action="comment", params={"text": "x"},
                 delay={"kind": "working", "amount": 0, "unit": "minutes"})
    create_lead(admin, title="Окна", responsible=manager_user.pk)
    drive()
    assert Run.objects.get().scheduled_at == at(2, 8)  # 10:00 in Yekaterinburg


def test_a_limit_in_working_time_follows_the_responsible_and_the_calendar(admin, manager_user, stages,
                                                                          calendar_in_two_days, drive):
    set_stage_limit(admin, stages["new"].pk, amount=30, unit="minutes", working_time=True,
                    steps=[{"notify": ["responsible"]}, {"after": {"amount": 1, "unit": "hours"}, "notify": ["head"]}])
    lead = create_lead(admin, title="Окна", responsible=manager_user.pk)
    drive()
    first, second = Timer.objects.order_by("step")
    assert first.due_at == at(2, 10, 30)
    assert second.due_at == at(2, 11, 30)  # 90 working minutes: the only hour, then calendar time (see above)
    other = User.objects.create_user("east", "e@example.ru", "x")
    calendar.set_user_schedule(admin, other.pk, time_zone="Asia/Vladivostok")  # Moscow + 7 h
    update_lead(admin, lead.pk, responsible=other.pk)
    drive()
    assert Timer.objects.get(step=0).due_at == at(2, 3, 30)  # 10:30 in Vladivostok
    calendar.set_day(admin, date=at(1, 0).date(), working=True, hours=[["10:00", "11:00"]])  # tomorrow too now
    drive()
    assert Timer.objects.get(step=0).due_at == at(1, 3, 30)


def test_limit_and_delay_validation(admin, stages):
    from voronka.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        create_robot(admin, stage=stages["new"].pk, action="comment", params={"text": "x"},
                     delay={"kind": "working", "amount": -5, "unit": "minutes"})
    with pytest.raises(ValidationFailed):
        set_stage_limit(admin, stages["new"].pk, amount=3, working_time="yes")
