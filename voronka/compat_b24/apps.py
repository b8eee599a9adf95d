from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CompatB24Config(AppConfig):
    name = "voronka.compat_b24"
    label = "compat_b24"
    verbose_name = _("Bitrix24-compatible API")

    def ready(self) -> None:
        from voronka.core import jobs, outbox

        from . import events

        for prefix in events.WATCHED_PREFIXES:
            outbox.subscribe(prefix, events.on_outbox_event)
        outbox.subscribe("*", events.on_dynamic_event)  # smart processes: their codes are defined at run time
        jobs.register("b24_events", events.deliver_due)
