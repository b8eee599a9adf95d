from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "voronka.identity"
    label = "identity"
    verbose_name = "Users and departments"

    def ready(self):
        from voronka.core import policies

        from .permissions import BasicEngine

        policies.install(BasicEngine())
