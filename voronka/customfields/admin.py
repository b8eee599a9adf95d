from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import FieldDefinition


@admin.register(FieldDefinition)
class FieldDefinitionAdmin(ReadOnlyAdmin):
    list_display = ("code", "label", "entity_type_id", "pipeline", "kind", "required", "multiple")
    list_filter = ("entity_type_id", "kind")
