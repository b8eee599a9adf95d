"""Settings → Working calendar: the company's week and days, a user's zone, hours, absences and days."""

from __future__ import annotations

import datetime

import pytest

from voronka.calendars.models import Absence, CalendarDay, CompanyCalendar, UserSchedule
from voronka.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    from django.conf import settings

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(admin_user)
    return client


WEEK = {"week_mon": "09:00-13:00, 14:00-18:00", "week_tue": "9:00-18:00", "week_wed": "09:00-18:00",
        "week_thu": "09:00-18:00", "week_fri": "09:00-17:00", "week_sat": "", "week_sun": ""}


def test_company_week_and_days(admin_client):
    page = admin_client.get("/settings/calendar/")
    assert page.status_code == 200 and "Monday" in page.content.decode()
    bad = admin_client.post("/settings/calendar/", {"op": "save", "time_zone": "Moscow", **WEEK})
    assert bad.status_code == 422 and "is not a time zone" in bad.content.decode()
    bad = admin_client.post("/settings/calendar/", {"op": "save", "time_zone": "", **WEEK, "week_sat": "10-"})
    assert bad.status_code == 422
    ok = admin_client.post("/settings/calendar/", {"op": "save", "time_zone": "Europe/Moscow", **WEEK})
    assert ok.status_code == 302
    row = CompanyCalendar.objects.get()
    assert row.week["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]] and row.week["tue"] == [["09:00", "18:00"]]
    assert row.week["sat"] == []
    year = datetime.date.today().year + 1
    days = f"{year}-01-01 holiday New year\n{year}-01-10 working\n{year}-02-22 09:00-17:00 short\n"
    assert admin_client.post("/settings/calendar/", {"op": "days", "days": days}).status_code == 302
    assert CalendarDay.objects.filter(user__isnull=True).count() == 3
    bad = admin_client.post("/settings/calendar/", {"op": "days", "days": "first of May holiday"})
    assert bad.status_code == 422 and "Line 1" in bad.content.decode()
    page = admin_client.get("/settings/calendar/").content.decode()
    assert f"01.01.{year}" in page and "day off" in page
    admin_client.post("/settings/calendar/", {"op": "delete_day", "date": f"{year}-01-01"})
    assert CalendarDay.objects.count() == 2
    assert AuditEvent.objects.filter(action="calendar.company_set").exists()


def test_a_users_schedule_and_absence(admin_client, manager_user):
    url = f"/settings/calendar/users/{manager_user.pk}/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"op": "save", "time_zone": "Asia/Yekaterinburg", "own_week": "on", **WEEK}).status_code == 302
    schedule = UserSchedule.objects.get(user=manager_user)
    assert schedule.time_zone == "Asia/Yekaterinburg" and schedule.week["fri"] == [["09:00", "17:00"]]
    admin_client.post(url, {"op": "save", "time_zone": "", **WEEK})  # own hours off: the company's again
    schedule.refresh_from_db()
    assert schedule.week is None and schedule.time_zone == ""
    bad = admin_client.post(url, {"op": "absence", "starts_on": "2026-12-10", "ends_on": "2026-12-01"})
    assert bad.status_code == 422 and "The end is before the start." in bad.content.decode()
    assert admin_client.post(url, {"op": "absence", "starts_on": "2026-12-01", "ends_on": "2026-12-10",
                                   "reason": "отпуск"}).status_code == 302
    absence = Absence.objects.get()
    assert "отпуск" in admin_client.get(url).content.decode()
    admin_client.post(url, {"op": "delete_absence", "absence": absence.pk})
    assert not Absence.objects.exists()
    admin_client.post(url, {"op": "days", "days": "2026-12-31 holiday"})
    assert CalendarDay.objects.get().user == manager_user
    assert admin_client.get("/settings/calendar/users/999999/").status_code == 302


def test_the_calendar_needs_the_right(client, manager_user, admin_user):
    client.force_login(manager_user)
    assert client.get("/settings/calendar/").status_code == 403
    assert client.get(f"/settings/calendar/users/{admin_user.pk}/").status_code == 403
    assert client.post("/settings/calendar/", {"op": "save", "time_zone": "UTC", **WEEK}).status_code == 403
    assert not CompanyCalendar.objects.exists()


def test_people_edit_their_own_absences_under_my_account(client, manager_user, admin_user):
    """My account → My absences: a person adds and removes their own; another person's absence cannot be
    removed from there (it does not exist for them), and the change is audited like the administrator's."""
    from django.conf import settings

    from voronka.calendars import actions as calendars
    from voronka.core.actor import Actor

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(manager_user)
    page = client.get("/account/")
    assert page.status_code == 200 and "My absences" in page.content.decode() and "No absences." in page.content.decode()
    bad = client.post("/account/", {"op": "absence", "starts_on": "2026-12-14", "ends_on": "2026-12-01"})
    assert bad.status_code == 422 and "The end is before the start." in bad.content.decode()
    bad = client.post("/account/", {"op": "absence", "starts_on": "2026-02-30", "ends_on": ""})
    assert bad.status_code == 422 and "A date like 2026-01-01." in bad.content.decode()
    ok = client.post("/account/", {"op": "absence", "starts_on": "2026-12-01", "ends_on": "2026-12-14",
                                   "reason": "отпуск"})
    assert ok.status_code == 302
    mine = Absence.objects.get(user=manager_user)
    assert (mine.starts_on, mine.ends_on, mine.reason) == (datetime.date(2026, 12, 1), datetime.date(2026, 12, 14),
                                                          "отпуск")
    assert "01.12.2026" in client.get("/account/").content.decode()
    assert AuditEvent.objects.filter(action="calendar.absence_added", actor_user_id=manager_user.pk).exists()
    theirs = calendars.add_absence(Actor.for_user(admin_user, "test"), admin_user.pk, starts_on="2026-12-01",
                                   ends_on="2026-12-02")
    denied = client.post("/account/", {"op": "delete_absence", "absence": theirs.pk})
    assert denied.status_code == 422 and f"Absence #{theirs.pk} does not exist." in denied.content.decode()
    assert Absence.objects.filter(pk=theirs.pk).exists()
    assert "02.12.2026" not in client.get("/account/").content.decode()  # only one's own are listed
    assert client.post("/account/", {"op": "delete_absence", "absence": mine.pk}).status_code == 302
    assert not Absence.objects.filter(user=manager_user).exists()
    # the settings screens stay for managers of users
    assert client.get(f"/settings/calendar/users/{manager_user.pk}/").status_code == 403
