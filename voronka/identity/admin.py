from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import ApiToken, Department, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = BaseUserAdmin.fieldsets + (("Voronka", {"fields": ("middle_name", "department", "position", "phone",
                                                                  "time_zone", "language", "is_present")}),)
    list_display = ("username", "first_name", "last_name", "department", "is_active", "is_superuser")
    list_filter = ("department", "is_active", "is_superuser")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "parent", "head")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "secret_hash", "last_used_at")
