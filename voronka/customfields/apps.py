from django.apps import AppConfig


class CustomFieldsConfig(AppConfig):
    name = "voronka.customfields"
    label = "customfields"
    verbose_name = "Custom fields"
