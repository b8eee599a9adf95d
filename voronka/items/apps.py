from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "voronka.items"
    label = "items"
    verbose_name = "Smart processes"

    def ready(self):
        from voronka.core import entity_types

        from . import registry

        entity_types.set_loader(registry.sync)
