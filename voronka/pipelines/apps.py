from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "voronka.pipelines"
    label = "pipelines"
    verbose_name = "Pipelines and stages"
