from django.contrib import admin

from voronka.core.admin import ReadOnlyAdmin

from .models import Company, Contact


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("id", "last_name", "first_name", "company", "city", "responsible")
    search_fields = ("last_name", "first_name")
    list_select_related = ("company", "responsible")
    show_full_result_count = False


@admin.register(Company)
class CompanyAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "company_type", "industry", "responsible")
    search_fields = ("name",)
    show_full_result_count = False
