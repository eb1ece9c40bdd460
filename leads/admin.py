from __future__ import annotations

from django.contrib import admin

from .models import Lead


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "phone", "company", "title", "source_file", "worksheet", "updated_at")
    list_filter = ("worksheet", "created_at", "updated_at")
    search_fields = ("first_name", "last_name", "email", "company", "title", "phone", "source_file")
    readonly_fields = (
        "source_file",
        "worksheet",
        "source_row",
        "source_sequence",
        "raw",
        "import_job",
        "created_at",
        "updated_at",
    )
    list_select_related = ("import_job",)
    show_full_result_count = False  # COUNT(*) on a million leads for every admin page is not free
