from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "voronka.items"
    label = "items"
    verbose_name = "Smart processes"

    def ready(self):
        from django.core.signals import request_finished, request_started

        from voronka.core import entity_types

        from . import registry

        entity_types.set_loader(registry.sync)
        request_started.connect(registry.request_started, dispatch_uid="items.registry.started")
        request_finished.connect(registry.request_finished, dispatch_uid="items.registry.finished")

        from voronka.leads import demo as lead_demo

        from . import demo

        if demo.install not in lead_demo.SETTINGS_HOOKS:  # before automation's hook, which adds the robots
            lead_demo.SETTINGS_HOOKS.insert(0, demo.install)
