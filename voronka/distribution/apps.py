from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "voronka.distribution"
    label = "distribution"
    verbose_name = "Distribution"
