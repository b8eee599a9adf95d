"""``user.current``, ``user.get``, ``profile``: the users of the instance in Bitrix24's shape."""

from __future__ import annotations

from django.utils import timezone

from voronka.identity.models import User

from . import params as P
from . import values as V
from .registry import Call, ListResult, method

PAGE = 50
_FILTERABLE = {"ID": "pk", "ACTIVE": "is_active", "NAME": "first_name", "LAST_NAME": "last_name", "EMAIL": "email",
               "WORK_POSITION": "position", "UF_DEPARTMENT": "department_id", "LOGIN": "username"}


def user_row(user: User) -> dict:
    return {"ID": str(user.pk), "ACTIVE": bool(user.is_active), "NAME": user.first_name, "LAST_NAME": user.last_name,
            "SECOND_NAME": user.middle_name, "EMAIL": user.email, "LOGIN": user.username,
            "LAST_LOGIN": V.out_datetime(user.last_login), "DATE_REGISTER": V.out_datetime(user.date_joined),
            "IS_ONLINE": "N", "TIME_ZONE": user.time_zone, "PERSONAL_GENDER": "", "PERSONAL_MOBILE": user.phone,
            "WORK_POSITION": user.position, "UF_DEPARTMENT": [user.department_id] if user.department_id else [],
            "USER_TYPE": "employee"}


@method("user.current", scope="user")
def current(call: Call, params: dict) -> dict:
    return user_row(call.actor.user)


@method("user.get", scope="user")
def user_get(call: Call, params: dict) -> ListResult:
    raw = P.mapping(params, "filter") or {k: v for k, v in params.items() if str(k).upper() in _FILTERABLE}
    qs = User.objects.all()
    for key, value in raw.items():
        name = str(key).upper().lstrip("=")
        path = _FILTERABLE.get(name)
        if path is None:
            continue
        if name == "ACTIVE":
            value = P.flag(value) if not isinstance(value, bool) else value
        qs = qs.filter(**{f"{path}__in" if isinstance(value, list) else path: value})
    qs = qs.order_by("id")
    offset = max(call.start, 0) // PAGE * PAGE
    rows = list(qs[offset:offset + PAGE])
    total = qs.count()
    nxt = offset + len(rows) if offset + len(rows) < total else None
    return ListResult([user_row(u) for u in rows], total=total, next=nxt)


@method("profile", scope=None)
def profile(call: Call, params: dict) -> dict:
    user = call.actor.user
    now = timezone.localtime()
    return {"ID": str(user.pk), "ADMIN": bool(user.is_superuser), "NAME": user.first_name,
            "LAST_NAME": user.last_name, "PERSONAL_GENDER": "", "TIME_ZONE": user.time_zone or str(now.tzinfo),
            "TIME_ZONE_OFFSET": int(now.utcoffset().total_seconds()) if now.utcoffset() else 0}
