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
        from voronka.core import history

        from . import leadstatus

        if leadstatus.on_entry not in history.listeners:  # links between deals move the leads' end-to-end outcome
            history.listeners.append(leadstatus.on_entry)
