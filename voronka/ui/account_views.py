"""The user's own settings: name, time zone, language, password, absences."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from voronka.core import audit

from .views import actor_of, page

RUSSIAN_ZONES = ["Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
                 "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
                 "Asia/Magadan", "Asia/Kamchatka"]


class ProfileForm(forms.Form):
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150, required=False)
    time_zone = forms.ChoiceField(label=gettext_lazy("Time zone"), required=False)
    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False,
                                 choices=[("", "—"), ("ru", "Русский"), ("en", "English")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        others = sorted(z for z in zoneinfo.available_timezones() if "/" in z and z not in RUSSIAN_ZONES)
        self.fields["time_zone"].choices = [("", gettext_lazy("as the company (default)"))] + \
            [(z, z) for z in RUSSIAN_ZONES] + [(z, z) for z in others]


@login_required
def account(request):
    user = request.user
    absence: dict = {"starts_on": "", "ends_on": "", "reason": ""}
    absence_errors: dict = {}
    profile = ProfileForm(request.POST if request.POST.get("op") == "profile" else None,
                          initial={"first_name": user.first_name, "last_name": user.last_name,
                                   "time_zone": user.time_zone, "language": user.language})
    password = PasswordChangeForm(user, request.POST if request.POST.get("op") == "password" else None)
    if request.method == "POST":
        if request.POST.get("op") == "profile" and profile.is_valid():
            # one's own profile: a plain update of these four columns, audited
            for key in ("first_name", "last_name", "time_zone", "language"):
                setattr(user, key, profile.cleaned_data[key])
            user.save(update_fields=["first_name", "last_name", "time_zone", "language"])
            audit.record(actor_of(request), "user.profile_changed", user=user.pk)
            response = redirect("ui:account")
            if user.language:
                from django.conf import settings

                response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
            messages.success(request, _("Saved."))
            return response
        if request.POST.get("op") == "password" and password.is_valid():
            password.save()
            update_session_auth_hash(request, password.user)
            audit.record(actor_of(request), "user.password_changed", user=user.pk)
            messages.success(request, _("Your password is changed."))
            return redirect("ui:account")
        if request.POST.get("op") in ("absence", "delete_absence"):
            done, absence, absence_errors = _absences(request)
            if done:
                return redirect(f"{reverse('ui:account')}#absences")
    from voronka.calendars import selectors

    mine = selectors.user_schedule(actor_of(request), user.pk)
    return page(request, "ui/account.html", {
        "profile": profile, "password": password, "absences": mine["absences"], "absence": absence,
        "absence_errors": absence_errors,
    }, nav="account", status=422 if absence_errors else 200)


def _absences(request) -> tuple[bool, dict, dict]:
    """One's own absences (vacation, sick leave): added and removed through ``calendars.actions``, which let
    each person edit their own. Returns (done, the form's values, errors)."""
    from voronka.calendars import actions as calendars
    from voronka.core.errors import ActionError

    actor = actor_of(request)
    values = {"starts_on": request.POST.get("starts_on", ""), "ends_on": request.POST.get("ends_on", ""),
              "reason": request.POST.get("reason", "")}
    try:
        if request.POST.get("op") == "absence":
            calendars.add_absence(actor, request.user.pk, **values)
            messages.success(request, _("The absence is added."))
        else:
            calendars.delete_absence(actor, request.POST.get("absence", ""))
            messages.success(request, _("The absence is removed."))
    except ActionError as exc:
        return False, values, {name: list(msgs) for name, msgs in (exc.fields or {"general": [exc.message]}).items()}
    return True, values, {}
