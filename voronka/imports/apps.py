from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImportsConfig(AppConfig):
    name = "voronka.imports"
    label = "imports"
    verbose_name = _("Import")

    def ready(self) -> None:
        from voronka.core import jobs

        from . import runner

        jobs.register("imports", runner.resume_stalled)
