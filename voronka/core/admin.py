"""Read-only admin views of domain data.

The Django admin would write with ``.save()`` and bypass actions (history, events, rights),
so domain models are shown read-only here; all writes go through the API, the UI and the CLI.
"""

from django.contrib import admin

from .models import OutboxEvent, TimelineEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "entity_type_id", "entity_id", "kind", "actor_label", "entry_point", "text")
    list_filter = ("kind", "entity_type_id", "entry_point")
    show_full_result_count = False


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "name", "entity_type_id", "entity_id", "dispatched_at")
    list_filter = ("name",)
    show_full_result_count = False
