"""Reads of working calendars for screens and the API: the company calendar and every user's schedule for those
with the ``settings:users`` right; one's own schedule for oneself."""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from voronka.core import policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound

from .actions import RIGHT
from .models import Absence, CalendarDay, CompanyCalendar, UserSchedule, default_week


def can_manage(actor: Actor) -> bool:
    return policies.can(actor, RIGHT, 0)


def company(actor: Actor) -> dict:
    policies.require(actor, RIGHT, 0)
    row = CompanyCalendar.objects.order_by("id").first()
    return {"time_zone": row.time_zone if row else "", "week": (row.week if row else None) or default_week()}


def company_days(actor: Actor, since: datetime.date | None = None) -> list[CalendarDay]:
    policies.require(actor, RIGHT, 0)
    qs = CalendarDay.objects.filter(user__isnull=True)
    if since is not None:
        qs = qs.filter(date__gte=since)
    return list(qs.order_by("date")[:1000])


def user_schedule(actor: Actor, user_id) -> dict:
    """A user's schedule: themselves, or anyone for a manager of users; others get «not found»."""
    user = get_user_model().objects.filter(pk=user_id).first() if str(user_id).isdigit() else None
    if user is None or (actor.user_id != user.pk and not can_manage(actor)):
        raise NotFound(_("User #%(id)s does not exist.") % {"id": user_id})
    own = UserSchedule.objects.filter(user=user).first()
    return {"user": user, "time_zone": own.time_zone if own else "", "week": own.week if own else None,
            "days": list(CalendarDay.objects.filter(user=user).order_by("date")[:500]),
            "absences": list(Absence.objects.filter(user=user).order_by("-starts_on")[:200])}
