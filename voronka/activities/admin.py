from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import Task


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "responsible", "deadline", "status", "entity_type_id", "entity_id")
    list_filter = ("status",)
    list_select_related = ("responsible",)
    show_full_result_count = False
