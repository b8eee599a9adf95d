"""Settings → Working calendar: the company's week, time zone and exceptions (holidays, transferred and shortened
days), and each user's own zone, hours, exceptions and absences. Reads through ``calendars.selectors``, writes
through ``calendars.actions`` (the ``settings:users`` right)."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from voronka.calendars import actions as calendars
from voronka.calendars import selectors
from voronka.calendars.models import WEEKDAYS
from voronka.core.errors import ActionError, NotFound

from .views import actor_of, page


def _day_names() -> dict[str, str]:
    return {"mon": _("Monday"), "tue": _("Tuesday"), "wed": _("Wednesday"), "thu": _("Thursday"),
            "fri": _("Friday"), "sat": _("Saturday"), "sun": _("Sunday")}


def week_text(week: dict | None) -> dict[str, str]:
    """``{"mon": [["09:00", "13:00"], ["14:00", "18:00"]]}`` → ``{"mon": "09:00-13:00, 14:00-18:00"}``."""
    return {day: ", ".join(f"{a}-{b}" for a, b in (week or {}).get(day) or []) for day in WEEKDAYS}


def week_from(post, errors: dict) -> dict:
    week = {}
    for day in WEEKDAYS:
        text = post.get(f"week_{day}", "").strip()
        pairs = []
        for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
            bits = [b.strip() for b in part.split("-")]
            if len(bits) != 2:
                errors.setdefault("week", []).append(_("%(d)s: write hours like 09:00-18:00, several separated by commas.")
                                                     % {"d": _day_names()[day]})
                break
            pairs.append([bits[0].zfill(5), bits[1].zfill(5)])
        week[day] = pairs
    return week


def _manager(request):
    actor = actor_of(request)
    if not selectors.can_manage(actor):
        raise DjangoPermissionDenied
    return actor


def _apply(request, errors: dict, fn, *args, **kwargs) -> bool:
    try:
        fn(*args, **kwargs)
    except ActionError as exc:
        for name, msgs in (exc.fields or {"general": [exc.message]}).items():
            errors.setdefault(name, []).extend(msgs)
        return False
    return True


@login_required
def company_calendar(request):
    actor = _manager(request)
    errors: dict[str, list[str]] = {}
    data = selectors.company(actor)
    values = {"time_zone": data["time_zone"], "week": week_text(data["week"]), "days": ""}
    if request.method == "POST":
        op = request.POST.get("op", "")
        if op == "save":
            values = {"time_zone": request.POST.get("time_zone", "").strip(),
                      "week": {d: request.POST.get(f"week_{d}", "") for d in WEEKDAYS}, "days": ""}
            week = week_from(request.POST, errors)
            if not errors and _apply(request, errors, calendars.set_company_calendar, actor,
                                     time_zone=values["time_zone"], week=week):
                messages.success(request, _("The working calendar is saved."))
                return redirect("ui:calendar")
        elif op == "days":
            values["days"] = request.POST.get("days", "")
            if _apply(request, errors, calendars.import_days, actor, values["days"]):
                messages.success(request, _("The days are saved."))
                return redirect("ui:calendar")
        elif op == "delete_day":
            if _apply(request, errors, calendars.delete_day, actor, date=request.POST.get("date", "")):
                messages.success(request, _("The day was removed."))
                return redirect("ui:calendar")
        else:
            errors["general"] = [_("Unknown operation.")]
    since = datetime.date.today() - datetime.timedelta(days=31)
    return page(request, "ui/calendar/company.html", {
        "values": values, "errors": errors, "days": selectors.company_days(actor, since), "day_names": _day_names(),
        "weekdays": WEEKDAYS, "users": get_user_model().objects.filter(is_active=True).order_by("last_name", "first_name"),
    }, nav="calendar", status=422 if errors else 200)


@login_required
def user_calendar(request, user_id: int):
    actor = _manager(request)
    try:
        data = selectors.user_schedule(actor, user_id)
    except NotFound:
        messages.error(request, _("User #%(id)s does not exist.") % {"id": user_id})
        return redirect("ui:calendar")
    errors: dict[str, list[str]] = {}
    values = {"time_zone": data["time_zone"], "own_week": data["week"] is not None,
              "week": week_text(data["week"] if data["week"] is not None else selectors.company(actor)["week"]),
              "days": "", "starts_on": "", "ends_on": "", "reason": ""}
    if request.method == "POST":
        op = request.POST.get("op", "")
        here = redirect("ui:user_calendar", user_id=user_id)
        if op == "save":
            values.update(time_zone=request.POST.get("time_zone", "").strip(),
                          own_week=request.POST.get("own_week") == "on",
                          week={d: request.POST.get(f"week_{d}", "") for d in WEEKDAYS})
            week = week_from(request.POST, errors) if values["own_week"] else None
            if not errors and _apply(request, errors, calendars.set_user_schedule, actor, user_id,
                                     time_zone=values["time_zone"], week=week, own_week=values["own_week"]):
                messages.success(request, _("The schedule is saved."))
                return here
        elif op == "absence":
            values.update(starts_on=request.POST.get("starts_on", ""), ends_on=request.POST.get("ends_on", ""),
                          reason=request.POST.get("reason", ""))
            if _apply(request, errors, calendars.add_absence, actor, user_id, starts_on=values["starts_on"],
                      ends_on=values["ends_on"], reason=values["reason"]):
                messages.success(request, _("The absence is added."))
                return here
        elif op == "delete_absence":
            if _apply(request, errors, calendars.delete_absence, actor, request.POST.get("absence", "")):
                return here
        elif op == "days":
            values["days"] = request.POST.get("days", "")
            with transaction.atomic():
                if _apply(request, errors, calendars.import_days, actor, values["days"], user=user_id):
                    messages.success(request, _("The days are saved."))
                    return here
        elif op == "delete_day":
            if _apply(request, errors, calendars.delete_day, actor, date=request.POST.get("date", ""), user=user_id):
                return here
        else:
            errors["general"] = [_("Unknown operation.")]
    return page(request, "ui/calendar/user.html", {
        "person": data["user"], "values": values, "errors": errors, "days": data["days"], "absences": data["absences"],
        "day_names": _day_names(), "weekdays": WEEKDAYS,
    }, nav="calendar", status=422 if errors else 200)
