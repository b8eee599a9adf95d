"""The working calendar over the API: the company's week, zone and exceptions, each user's schedule and absences,
and the computed next working time. Writes need the ``settings:users`` right (and a token's settings scope)."""

from __future__ import annotations

import datetime
from typing import Any

from ninja import Query, Router, Status
from pydantic import BaseModel, Field

from voronka.calendars import actions, selectors
from voronka.calendars.working_time import add_working_time, next_working_time

from .records import RecordId, payload_data
from .schemas import MAX_ID, Strict, responses

router = Router(tags=["Working calendar"])


class DayOut(BaseModel):
    date: datetime.date
    working: bool
    hours: list[Any]
    note: str


class CalendarOut(BaseModel):
    time_zone: str = Field(description="Empty: the installation's.")
    week: dict[str, Any] = Field(description='{"mon": [["09:00", "18:00"]], …, "sun": []}')
    days: list[DayOut]


class CalendarIn(Strict):
    time_zone: str | None = Field(None, max_length=64)
    week: dict[str, Any] | None = None


class DayIn(Strict):
    date: datetime.date
    working: bool
    hours: list[Any] = Field(default_factory=list, max_length=10, description="Empty: the usual hours.")
    note: str = Field("", max_length=200)
    user: int | None = Field(None, ge=1, le=MAX_ID, description="A user's own day; empty: the company's.")


class AbsenceIn(Strict):
    starts_on: datetime.date
    ends_on: datetime.date
    reason: str = Field("", max_length=200)


class AbsenceOut(BaseModel):
    id: int
    starts_on: datetime.date
    ends_on: datetime.date
    reason: str


class UserScheduleOut(BaseModel):
    user: int
    time_zone: str
    week: dict[str, Any] | None = Field(description="null: the company's hours.")
    days: list[DayOut]
    absences: list[AbsenceOut]


class UserScheduleIn(Strict):
    time_zone: str | None = Field(None, max_length=64)
    week: dict[str, Any] | None = None
    own_week: bool | None = Field(None, description="false: back to the company's hours.")


class WhenQuery(BaseModel):
    at: datetime.datetime
    user: int | None = Field(None, ge=1, le=MAX_ID)
    minutes: int = Field(0, ge=0, le=60 * 24 * 366, description="Working minutes to add.")


class WhenOut(BaseModel):
    at: datetime.datetime


def _day(d) -> dict:
    return {"date": d.date, "working": d.working, "hours": d.hours or [], "note": d.note}


@router.get("", response=responses({200: CalendarOut}), operation_id="get_calendar",
            summary="The company's working calendar (exceptions from a month ago on)")
def get_calendar(request):
    data = selectors.company(request.auth)
    since = datetime.date.today() - datetime.timedelta(days=31)
    return {**data, "days": [_day(d) for d in selectors.company_days(request.auth, since)]}


@router.put("", response=responses({200: CalendarOut}), operation_id="set_calendar",
            summary="Set the company's time zone and working hours")
def set_calendar(request, payload: CalendarIn):
    actions.set_company_calendar(request.auth, **payload_data(payload))
    return get_calendar(request)


@router.put("/days", response=responses({200: DayOut}), operation_id="set_calendar_day",
            summary="A holiday, a transferred working day or a shortened day (the company's or a user's)")
def set_day(request, payload: DayIn):
    return _day(actions.set_day(request.auth, **payload_data(payload)))


@router.delete("/days/{date}", response=responses({204: None}), operation_id="delete_calendar_day",
               summary="Remove the company's exception on a date")
def delete_day(request, date: datetime.date):
    actions.delete_day(request.auth, date=date)
    return Status(204, None)


def _schedule(request, user_id: int) -> dict:
    data = selectors.user_schedule(request.auth, user_id)
    return {"user": data["user"].pk, "time_zone": data["time_zone"], "week": data["week"],
            "days": [_day(d) for d in data["days"]],
            "absences": [{"id": a.pk, "starts_on": a.starts_on, "ends_on": a.ends_on, "reason": a.reason}
                         for a in data["absences"]]}


@router.get("/users/{id}", response=responses({200: UserScheduleOut}), operation_id="get_user_schedule",
            summary="A user's zone, hours, days and absences (oneself, or anyone with the right)")
def get_user_schedule(request, id: int = RecordId):
    return _schedule(request, id)


@router.put("/users/{id}", response=responses({200: UserScheduleOut}), operation_id="set_user_schedule",
            summary="Set a user's own time zone and working hours")
def set_user_schedule(request, payload: UserScheduleIn, id: int = RecordId):
    actions.set_user_schedule(request.auth, id, **payload_data(payload))
    return _schedule(request, id)


@router.post("/users/{id}/absences", response=responses({201: AbsenceOut}), operation_id="add_absence",
             summary="Add an absence (both ends included)")
def add_absence(request, payload: AbsenceIn, id: int = RecordId):
    row = actions.add_absence(request.auth, id, **payload_data(payload))
    return Status(201, {"id": row.pk, "starts_on": row.starts_on, "ends_on": row.ends_on, "reason": row.reason})


@router.delete("/absences/{id}", response=responses({204: None}), operation_id="delete_absence",
               summary="Remove an absence")
def delete_absence(request, id: int = RecordId):
    actions.delete_absence(request.auth, id)
    return Status(204, None)


@router.get("/next-working-time", response=responses({200: WhenOut}), operation_id="next_working_time",
            summary="The next working time of a user (or the company) at a moment, plus working minutes")
def when(request, query: Query[WhenQuery]):
    from django.utils import timezone

    user = selectors.user_schedule(request.auth, query.user)["user"] if query.user else None
    if user is None:
        selectors.company(request.auth)
    at = query.at if timezone.is_aware(query.at) else timezone.make_aware(query.at)  # naive: the installation's zone
    found = add_working_time(user, at, datetime.timedelta(minutes=query.minutes)) if query.minutes \
        else next_working_time(user, at)
    return {"at": found.astimezone(datetime.UTC)}  # in UTC: old dates' local mean time has seconds in its offset
