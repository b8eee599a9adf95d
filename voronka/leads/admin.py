from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import Lead, Source


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "stage", "responsible", "source", "opportunity", "created_at")
    list_filter = ("pipeline", "source")
    search_fields = ("title",)
    list_select_related = ("stage", "responsible")
    show_full_result_count = False


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "sort", "is_active")
