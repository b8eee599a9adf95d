from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "voronka.distribution"
    label = "distribution"
    verbose_name = "Distribution"

    def ready(self):
        from voronka.core import jobs

        from . import actions

        jobs.register("distribution", actions.drain_working_hours)
