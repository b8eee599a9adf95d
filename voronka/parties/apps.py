from django.apps import AppConfig


class PartiesConfig(AppConfig):
    name = "voronka.parties"
    label = "parties"
    verbose_name = "Contacts and companies"

    def ready(self):
        from voronka.core import entity_types

        from . import actions
        from .models import Company, Contact

        entity_types.register(entity_types.CONTACT, "contact", Contact, spec=actions.CONTACT, staged=False, title="Contact")
        entity_types.register(entity_types.COMPANY, "company", Company, spec=actions.COMPANY, staged=False, title="Company")
