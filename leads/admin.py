from __future__ import annotations

from django.contrib import admin

from .models import Lead, LeadRevision


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


@admin.register(LeadRevision)
class LeadRevisionAdmin(admin.ModelAdmin):
    list_display = ("lead", "job", "action", "created_at")
    list_filter = ("action", "created_at")
    search_fields = ("lead__email", "job__original_filename")
    readonly_fields = ("lead", "job", "action", "before", "created_at")
    list_select_related = ("lead", "job")
