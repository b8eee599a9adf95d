from django.apps import AppConfig


class UiConfig(AppConfig):
    name = "voronka.ui"
    label = "ui"
    verbose_name = "Web interface"
