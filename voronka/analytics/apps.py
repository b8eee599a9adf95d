from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "voronka.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        from voronka.pipelines import stays

        from . import reports

        stays.QUALIFYING = reports.qualifying_for  # the durations' read model keeps the leads' time to qualification
