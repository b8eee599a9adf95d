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

        from django.db.models.signals import post_delete, post_save

        from .models import ApiToken, User, tokens_changed

        # API tokens are cached per process (models._token_with_user): any change of a token or a user, made
        # through an action, the admin or the shell, tells every process
        for model in (ApiToken, User):
            post_save.connect(tokens_changed, sender=model, dispatch_uid=f"voronka-tokens-{model.__name__}-save")
            post_delete.connect(tokens_changed, sender=model, dispatch_uid=f"voronka-tokens-{model.__name__}-delete")


def _presets_after_migrate(sender, **kwargs):
    from .presets import install_presets

    install_presets()
