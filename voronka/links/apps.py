from django.apps import AppConfig


class LinksConfig(AppConfig):
    name = "voronka.links"
    label = "links"
    verbose_name = "Links between records"
