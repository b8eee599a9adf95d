"""Shared pieces of the engine: people references, time units, delays, record specs, settings."""

from __future__ import annotations

import datetime
import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, npgettext

from voronka.core import entity_types

from .models import UNITS


def setting(name: str, default: int) -> int:
    """``VORONKA_AUTOMATION_<NAME>`` from Django settings or the environment."""
    key = f"VORONKA_AUTOMATION_{name}"
    value = getattr(settings, key, None)
    if value is None:
        value = os.environ.get(key, default)
    return int(value)


def max_depth() -> int:
    return setting("MAX_DEPTH", 5)


def lease_seconds() -> int:
    return setting("LEASE_SECONDS", 300)


def max_attempts() -> int:
    return setting("MAX_ATTEMPTS", 5)


def backoff_seconds(attempt: int) -> int:
    """Seconds before retry number ``attempt`` + 1 of an external effect: 30 s, 1 min, 2 min … at most 1 h."""
    base = setting("BACKOFF_SECONDS", 30)
    return min(base * 2 ** max(attempt - 1, 0), 3600)


def delta(amount: int, unit: str) -> datetime.timedelta:
    if unit not in UNITS:
        raise ValueError(unit)
    return datetime.timedelta(**{unit: amount})


def human_duration(amount: int, unit: str, *, after_more_than: bool = False) -> str:
    """«3 hours». ``after_more_than``: the form that follows «more than» (Russian needs the genitive there:
    «более 3 часов», «более 1 часа»)."""
    if after_more_than:
        if unit == "minutes":
            return npgettext("after 'more than'", "%(n)d minute", "%(n)d minutes", amount) % {"n": amount}
        if unit == "hours":
            return npgettext("after 'more than'", "%(n)d hour", "%(n)d hours", amount) % {"n": amount}
        return npgettext("after 'more than'", "%(n)d day", "%(n)d days", amount) % {"n": amount}
    if unit == "minutes":
        return ngettext("%(n)d minute", "%(n)d minutes", amount) % {"n": amount}
    if unit == "hours":
        return ngettext("%(n)d hour", "%(n)d hours", amount) % {"n": amount}
    return ngettext("%(n)d day", "%(n)d days", amount) % {"n": amount}


def check_duration(value, where: str, *, signed: bool = False) -> tuple[int, str]:
    """``{"amount": N, "unit": "minutes|hours|days"}`` → (N, unit), or ValueError with a clear message."""
    if not isinstance(value, dict) or set(value) - {"amount", "unit"}:
        raise ValueError(_("%(w)s must be {amount: N, unit: minutes|hours|days}.") % {"w": where})
    amount, unit = value.get("amount", 0), value.get("unit", "minutes")
    if not isinstance(amount, int) or isinstance(amount, bool) or (amount < 0 and not signed):
        raise ValueError(_("%(w)s: the amount must be a whole number%(s)s.")
                         % {"w": where, "s": "" if signed else _(" of zero or more")})
    if unit not in UNITS:
        raise ValueError(_("%(w)s: the unit must be minutes, hours or days.") % {"w": where})
    return amount, unit


# --- people ------------------------------------------------------------------------------------------

PEOPLE_HELP = "responsible, head, creator, observers, user:ID, user:LOGIN, role:CODE"


def check_person(ref, where: str, *, allow_role: bool = True) -> None:
    if not isinstance(ref, str):
        raise ValueError(_("%(w)s: a person is written as one of: %(h)s.") % {"w": where, "h": PEOPLE_HELP})
    kind, _sep, arg = ref.partition(":")
    if ref in ("responsible", "head", "creator", "observers"):
        return
    if kind == "user" and arg:
        user = _user(arg)
        if user is None:
            raise ValueError(_("%(w)s: no active user «%(u)s».") % {"w": where, "u": arg})
        return
    if kind == "role" and arg and allow_role:
        from voronka.identity.models import Role

        if not Role.objects.filter(code=arg).exists():
            raise ValueError(_("%(w)s: no role «%(r)s».") % {"w": where, "r": arg})
        return
    raise ValueError(_("%(w)s: «%(r)s» is not one of: %(h)s.") % {"w": where, "r": ref, "h": PEOPLE_HELP})


def _user(arg: str):
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(pk=int(arg)).first() if arg.isdigit() else users.filter(username=arg).first()


def head_of(user):
    return user.head() if user is not None else None


def people(refs, obj) -> list:
    """Resolve references to active users, in order, without repeats. A head that does not exist is skipped."""
    found: list = []
    for ref in refs or []:
        kind, _sep, arg = ref.partition(":")
        if ref == "responsible":
            users = [getattr(obj, "responsible", None)]
        elif ref == "creator":  # who created the record (a sales manager for a production order)
            users = [getattr(obj, "created_by", None)]
        elif ref == "head":
            users = [head_of(getattr(obj, "responsible", None))]
        elif ref == "observers":  # who follows the record (F30: the sales manager on a production order)
            from voronka.core.models import Observer

            ids = list(Observer.objects.filter(entity_type_id=obj.ENTITY_TYPE_ID, entity_id=obj.pk)
                       .order_by("id").values_list("user_id", flat=True))
            users = list(get_user_model().objects.filter(pk__in=ids).order_by("id"))
        elif kind == "user":
            users = [_user(arg)]
        elif kind == "role":
            users = list(get_user_model().objects.filter(
                Q(role_assignments__role__code=arg) | Q(department__role_assignments__role__code=arg),
                is_active=True).distinct().order_by("id"))
        else:
            users = []
        for u in users:
            if u is not None and u.is_active and all(u.pk != f.pk for f in found):
                found.append(u)
    return found


def export_person(ref: str) -> str:
    """``user:5`` → ``user:login`` so an exported file means the same on another installation."""
    kind, _sep, arg = ref.partition(":")
    if kind == "user" and arg.isdigit():
        user = get_user_model().objects.filter(pk=int(arg)).first()
        if user is not None:
            return f"user:{user.username}"
    return ref


# --- records ------------------------------------------------------------------------------------------

def spec_for(entity_type_id: int):
    """The write-path spec of a kind of record (robots write through the same actions as everyone)."""
    from voronka.deals.actions import DEAL
    from voronka.leads.actions import LEAD
    from voronka.parties.actions import COMPANY, CONTACT

    specs = {entity_types.LEAD: LEAD, entity_types.DEAL: DEAL, entity_types.CONTACT: CONTACT,
             entity_types.COMPANY: COMPANY}
    if entity_type_id in specs:
        return specs[entity_type_id]
    return entity_types.spec_for(entity_type_id)  # smart processes register theirs


def date_field_moment(obj, name: str) -> datetime.datetime | None:
    """The moment a date (midnight in the installation's time zone) or date-time field stands for."""
    from . import fields

    value = fields.raw(obj, name)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        from django.utils.dateparse import parse_date, parse_datetime

        value = parse_datetime(value) or parse_date(value)
        if value is None:
            return None
    if isinstance(value, datetime.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, datetime.date):
        return timezone.make_aware(datetime.datetime.combine(value, datetime.time()))
    return None
