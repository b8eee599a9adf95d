from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "voronka.intake"
    label = "intake"
    verbose_name = "Intake"

    def ready(self):
        from voronka.core import jobs, outbox

        from . import mail, names

        jobs.register("mail", mail.poll_due)  # IMAP intake mailboxes, each at its own interval

        # keep the name index used for duplicate search current for records written through any door
        for prefix in ("lead.", "contact.", "company."):
            outbox.subscribe(prefix, names.on_record_event)

        from voronka.leads import demo as lead_demo

        from . import demo

        if demo.install not in lead_demo.SETTINGS_HOOKS:
            lead_demo.SETTINGS_HOOKS.append(demo.install)
