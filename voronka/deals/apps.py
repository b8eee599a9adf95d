from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "voronka.deals"
    label = "deals"
    verbose_name = "Deals"

    def ready(self):
        from voronka.core import entity_types

        from . import actions
        from .models import Deal

        entity_types.register(entity_types.DEAL, "deal", Deal, spec=actions.DEAL, staged=True, title="Deal")
