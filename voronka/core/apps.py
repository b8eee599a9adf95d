from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "voronka.core"
    label = "core"
    verbose_name = "Voronka core"

    def ready(self):
        from django.db.backends.signals import connection_created

        from .sqlite import install

        connection_created.connect(install, dispatch_uid="voronka-sqlite-like")
