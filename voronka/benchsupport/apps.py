from django.apps import AppConfig


class BenchsupportConfig(AppConfig):
    name = "voronka.benchsupport"
    label = "benchsupport"
    verbose_name = "Benchmark baseline"
    default_auto_field = "django.db.models.BigAutoField"
