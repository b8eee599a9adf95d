from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import FreeItem, Queue


@admin.register(Queue)
class QueueAdmin(ReadOnlyAdmin):  # changed through distribution.actions (create_queue, set_members)
    list_display = ("code", "name", "mode", "cap", "is_active", "assigned_total")


@admin.register(FreeItem)
class FreeItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "queue", "entity_type_id", "entity_id", "created_at")
