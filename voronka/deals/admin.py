from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import Deal


@admin.register(Deal)
class DealAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "pipeline", "stage", "responsible", "opportunity", "currency", "created_at")
    list_filter = ("pipeline",)
    search_fields = ("title",)
    list_select_related = ("pipeline", "stage", "responsible")
    show_full_result_count = False
