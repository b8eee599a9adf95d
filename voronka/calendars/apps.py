from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "voronka.calendars"
    label = "calendars"
    verbose_name = "Working calendar"
