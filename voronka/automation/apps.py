from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "voronka.automation"
    label = "automation"
    verbose_name = "Automation"

    def ready(self):
        from voronka.core import jobs, outbox

        from . import engine, overdue, scheduler, triggers

        outbox.subscribe("*", engine.on_event)
        outbox.subscribe("*", triggers.on_event)
        outbox.subscribe("task.", overdue.on_event)
        outbox.subscribe("calendar.changed", overdue.on_event)
        jobs.register("automation", scheduler.tick)

        from voronka.leads import demo as lead_demo

        from . import demo

        if demo.install not in lead_demo.SETTINGS_HOOKS:
            lead_demo.SETTINGS_HOOKS.append(demo.install)
        if demo.in_flight not in lead_demo.LIVE_HOOKS:
            lead_demo.LIVE_HOOKS.append(demo.in_flight)
