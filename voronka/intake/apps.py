from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "voronka.intake"
    label = "intake"
    verbose_name = "Intake"

    def ready(self):
        from voronka.core import jobs, outbox

        from . import mail, names

        jobs.register("mail", mail.poll_due)  # IMAP intake mailboxes, each at its own interval
        # web-form submissions queued at the door, a batch per tick (the worker ticks again at once while there
        # is work, else after its --interval, 0.5 s by default)
        from . import actions

        jobs.register("intake", actions.process_queued)

        # keep the name index used for duplicate search current for records written through any door
        for prefix in ("lead.", "contact.", "company."):
            outbox.subscribe(prefix, names.on_record_event)

        # forms and sources are kept per process behind the settings version: any change of one, through an
        # action, the admin or the demo, bumps it
        from django.db.models.signals import post_delete, post_save

        from .models import IntakeSource, WebForm

        for model in (WebForm, IntakeSource):
            post_save.connect(_settings_changed, sender=model, dispatch_uid=f"voronka-intake-{model.__name__}-save")
            post_delete.connect(_settings_changed, sender=model, dispatch_uid=f"voronka-intake-{model.__name__}-del")

        from voronka.leads import demo as lead_demo

        from . import demo

        if demo.install not in lead_demo.SETTINGS_HOOKS:
            lead_demo.SETTINGS_HOOKS.append(demo.install)


def _settings_changed(**kwargs) -> None:
    from voronka.core import config_cache

    config_cache.bump()
