"""The working calendar: the company's week and exceptions (holidays, transferred working days, shortened
days — a Russian production calendar), and each user's optional own schedule, time zone and absences."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def default_week() -> dict:
    """Monday to Friday, 9:00–18:00."""
    return {day: ([["09:00", "18:00"]] if day not in ("sat", "sun") else []) for day in WEEKDAYS}


class CompanyCalendar(models.Model):
    """One row: the company's time zone and working hours per weekday.

    ``week`` maps ``mon`` … ``sun`` to a list of ``["HH:MM", "HH:MM"]`` intervals (a lunch break makes two);
    an end not after its start crosses midnight (``["22:00", "06:00"]``, a night shift); ``24:00`` is the end of
    the day."""

    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)  # empty: the installation's
    week = models.JSONField(_("working hours"), default=default_week)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("working calendar")
        verbose_name_plural = _("working calendars")

    def __str__(self) -> str:
        return self.time_zone or settings.TIME_ZONE


class CalendarDay(models.Model):
    """An exception on one date, for the company (``user`` empty) or one user: a holiday (not working), a
    transferred working day (working with the usual hours: ``hours`` empty) or a day with other hours (a
    shortened pre-holiday day). A user's own exception wins over the company's."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", verbose_name=_("user"))
    date = models.DateField(_("date"))
    working = models.BooleanField(_("working day"))
    hours = models.JSONField(_("working hours"), default=list, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["date"], condition=models.Q(user__isnull=True), name="calendar_day_company_uniq"),
            models.UniqueConstraint(fields=["user", "date"], condition=models.Q(user__isnull=False),
                                    name="calendar_day_user_uniq"),
        ]
        ordering = ["date"]
        verbose_name = _("calendar exception")
        verbose_name_plural = _("calendar exceptions")

    def __str__(self) -> str:
        return f"{self.date} {'working' if self.working else 'holiday'}"


class UserSchedule(models.Model):
    """A user's own time zone and/or working hours (empty: the company's)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="work_schedule",
                                verbose_name=_("user"))
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    week = models.JSONField(_("working hours"), null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("user's working schedule")
        verbose_name_plural = _("users' working schedules")

    def __str__(self) -> str:
        return f"{self.user_id}"


class Absence(models.Model):
    """Days a user does not work (vacation, sick leave, a business trip), both ends included, in the user's
    time zone."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="absences",
                             verbose_name=_("user"))
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("to"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_on", "id"]
        indexes = [models.Index(fields=["user", "ends_on"], name="absence_user_end_idx")]
        verbose_name = _("absence")
        verbose_name_plural = _("absences")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.starts_on}–{self.ends_on}"
