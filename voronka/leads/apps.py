from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "voronka.leads"
    label = "leads"
    verbose_name = "Leads"

    def ready(self):
        from voronka.core import entity_types

        from . import actions
        from .models import Lead

        entity_types.register(entity_types.LEAD, "lead", Lead, spec=actions.LEAD, staged=True, title="Lead")
        from voronka.core import history

        from . import firstaction

        if firstaction.on_entry not in history.listeners:
            history.listeners.append(firstaction.on_entry)
