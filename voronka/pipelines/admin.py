from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import Pipeline, Stage


class StageInline(admin.TabularInline):
    model = Stage
    fields = ("sort", "name", "code", "semantics", "color", "required_fields", "ask_fields")
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Pipeline)
class PipelineAdmin(ReadOnlyAdmin):
    list_display = ("name", "entity_type_id", "code", "is_default", "is_active")
    inlines = [StageInline]
