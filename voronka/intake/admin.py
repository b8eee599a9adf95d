"""Admin: the intake log read-only with a replay action; bots and per-source settings are configuration."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy

from voronka.core.actor import Actor
from voronka.core.admin import ReadOnlyAdmin
from voronka.core.errors import ActionError

from . import actions
from .models import IntakeLog, IntakeSource, Mailbox, TelegramBot, WebForm


@admin.register(IntakeLog)
class IntakeLogAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "channel", "source", "status", "reason", "entity_type_id", "entity_id",
                    "remote_addr", "attempts")
    list_filter = ("channel", "status")
    show_full_result_count = False
    actions = ["replay"]

    @admin.action(description=gettext_lazy("Replay the selected payloads"))
    def replay(self, request, queryset):
        actor = Actor.for_user(request.user, "admin")
        for entry in queryset.order_by("id")[:200]:
            try:
                result = actions.replay(actor, entry.pk, force=False)
            except ActionError as exc:
                self.message_user(request, f"#{entry.pk}: {exc.message}", messages.WARNING)
                continue
            self.message_user(request, f"#{entry.pk}: {result.get_status_display()} {result.reason}".strip())


@admin.register(WebForm)
class WebFormAdmin(ReadOnlyAdmin):  # created and changed through the API (validated by intake.forms)
    list_display = ("slug", "name", "source", "queue", "is_active")


@admin.register(TelegramBot)
class TelegramBotAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "is_active", "secret")


@admin.register(IntakeSource)
class IntakeSourceAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "duplicate_policy", "queue", "pipeline", "stage")


@admin.register(Mailbox)
class MailboxAdmin(ReadOnlyAdmin):  # created and changed in Settings → Intake or the API (validated by intake.mail)
    list_display = ("name", "kind", "source", "is_active", "imap_host", "imap_folder", "last_polled_at", "last_error")
    exclude = ("imap_password",)
