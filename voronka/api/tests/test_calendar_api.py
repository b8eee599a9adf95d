"""/api/v1/calendar: the company's calendar, days, a user's schedule and absences, the next working time."""

from __future__ import annotations

import pytest

from voronka.identity.models import ApiToken

from .conftest import bearer

pytestmark = pytest.mark.django_db


def test_company_calendar_days_and_next_working_time(api):
    week = {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]],
            "thu": [["09:00", "18:00"]], "fri": [["09:00", "17:00"]]}
    ok = api.put("/calendar", {"time_zone": "Europe/Moscow", "week": week})
    assert ok.status_code == 200 and ok.json()["week"]["sat"] == []
    bad = api.put("/calendar", {"week": {"mon": [["9", "18"]]}})
    assert bad.status_code == 422 and "week" in bad.json()["fields"]
    assert api.put("/calendar", {"time_zone": "Mars/Olympus"}).status_code == 422
    assert api.put("/calendar/days", {"date": "2026-11-23", "working": False, "note": "праздник"}).status_code == 200
    # Friday 2026-11-20 16:30 MSK + 60 working minutes: 30 on Friday, Monday is a holiday, 30 on Tuesday
    when = api.get("/calendar/next-working-time", at="2026-11-20T16:30:00+03:00", minutes=60).json()["at"]
    assert when.startswith("2026-11-24T06:30:00")
    naive = api.get("/calendar/next-working-time", at="2026-11-21T12:00:00").json()["at"]
    assert naive.startswith("2026-11-24T06:00:00")
    assert api.delete("/calendar/days/2026-11-23").status_code == 204
    assert api.get("/calendar").json()["days"] == []


def test_user_schedule_and_absences(api, manager_user):
    url = f"/calendar/users/{manager_user.pk}"
    assert api.put(url, {"time_zone": "Asia/Yekaterinburg"}).json()["time_zone"] == "Asia/Yekaterinburg"
    absence = api.post(f"{url}/absences", {"starts_on": "2026-12-01", "ends_on": "2026-12-14", "reason": "отпуск"})
    assert absence.status_code == 201
    assert api.post(f"{url}/absences", {"starts_on": "2026-12-14", "ends_on": "2026-12-01"}).status_code == 422
    assert [a["reason"] for a in api.get(url).json()["absences"]] == ["отпуск"]
    assert api.delete(f"/calendar/absences/{absence.json()['id']}").status_code == 204
    assert api.get("/calendar/users/999999").status_code == 404


def test_rights(manager_user, admin_user):
    manager = bearer(ApiToken.issue(manager_user, name="m")[1])
    assert manager.get("/calendar").status_code == 403
    assert manager.put("/calendar", {"time_zone": "UTC"}).status_code == 403
    assert manager.get(f"/calendar/users/{manager_user.pk}").status_code == 200  # one's own schedule
    assert manager.get(f"/calendar/users/{admin_user.pk}").status_code == 404  # others: not found
    assert manager.put(f"/calendar/users/{manager_user.pk}", {"time_zone": "UTC"}).status_code == 403  # hours: no


def test_a_person_edits_their_own_absences_only(api, manager_user, admin_user):
    manager = bearer(ApiToken.issue(manager_user, name="m")[1])
    own = manager.post(f"/calendar/users/{manager_user.pk}/absences",
                       {"starts_on": "2026-12-01", "ends_on": "2026-12-02", "reason": "отпуск"})
    assert own.status_code == 201, own.content
    assert manager.post(f"/calendar/users/{manager_user.pk}/absences",
                        {"starts_on": "2026-02-30", "ends_on": "2026-03-02"}).status_code == 422  # no such day
    # somebody else's: the person and the absence do not exist for him (404, not 403: nothing leaks)
    assert manager.post(f"/calendar/users/{admin_user.pk}/absences",
                        {"starts_on": "2026-12-01", "ends_on": "2026-12-02"}).status_code == 404
    theirs = api.post(f"/calendar/users/{admin_user.pk}/absences", {"starts_on": "2026-12-01", "ends_on": "2026-12-02"})
    assert manager.delete(f"/calendar/absences/{theirs.json()['id']}").status_code == 404
    assert manager.delete("/calendar/absences/999999").status_code == 404
    assert api.get(f"/calendar/users/{admin_user.pk}").json()["absences"] != []  # still there
    # a read-only token may not write even one's own
    reader = bearer(ApiToken.issue(manager_user, name="r", scopes=["read"])[1])
    assert reader.post(f"/calendar/users/{manager_user.pk}/absences",
                       {"starts_on": "2026-12-05", "ends_on": "2026-12-06"}).status_code == 403
    assert manager.delete(f"/calendar/absences/{own.json()['id']}").status_code == 204
    assert manager.get(f"/calendar/users/{manager_user.pk}").json()["absences"] == []
    # the administrator removes anyone's
    assert api.delete(f"/calendar/absences/{theirs.json()['id']}").status_code == 204
