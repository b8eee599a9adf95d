from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "voronka.identity"
    label = "identity"
    verbose_name = "Users and departments"

    def ready(self):
        from django.db.models.signals import post_migrate

        from voronka.core import policies

        from .permissions import RoleEngine
        policies.install(RoleEngine())

        from django.contrib import admin

        from .forms import AdminLoginForm

        admin.site.login_form = AdminLoginForm
        post_migrate.connect(_presets_after_migrate, sender=self)


def _presets_after_migrate(sender, **kwargs):
    from .presets import install_presets

    install_presets()
