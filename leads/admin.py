from __future__ import annotations

from django.contrib import admin

from .models import Lead, LeadChange, LeadNote, LeadRevision, SavedView

admin.site.site_header = "Easy CRM administration"
admin.site.site_title = "Easy CRM admin"
admin.site.index_title = "Data fixes"


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "email",
        "phone",
        "company",
        "title",
        "status",
        "owner",
        "source_file",
        "worksheet",
        "updated_at",
    )
    list_filter = ("status", "worksheet", "created_at", "updated_at")
    list_select_related = ("import_job", "owner")
    raw_id_fields = ("owner",)
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
    show_full_result_count = False  # COUNT(*) on a million leads for every admin page is not free


@admin.register(LeadRevision)
class LeadRevisionAdmin(admin.ModelAdmin):
    list_display = ("lead", "job", "action", "created_at")
    list_filter = ("action", "created_at")
    search_fields = ("lead__email", "job__original_filename")
    readonly_fields = ("lead", "job", "action", "before", "created_at")
    list_select_related = ("lead", "job")


@admin.register(LeadChange)
class LeadChangeAdmin(admin.ModelAdmin):
    list_display = ("lead", "field", "before", "after", "user", "created_at")
    list_filter = ("field", "created_at")
    readonly_fields = ("lead", "user", "field", "before", "after", "created_at")
    list_select_related = ("lead", "user")


@admin.register(LeadNote)
class LeadNoteAdmin(admin.ModelAdmin):
    list_display = ("lead", "author", "created_at")
    raw_id_fields = ("lead", "author")
    list_select_related = ("lead", "author")


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "querystring", "created_at")
    list_select_related = ("user",)
