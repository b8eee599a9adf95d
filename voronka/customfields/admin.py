from django.contrib import admin

from .models import FieldDefinition


@admin.register(FieldDefinition)
class FieldDefinitionAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "entity_type_id", "pipeline", "kind", "required", "multiple")
    list_filter = ("entity_type_id", "kind")
