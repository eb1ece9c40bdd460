from __future__ import annotations

from django.contrib import admin, messages

from . import services
from .models import ImportBatch, ImportJob, SavedMapping


class ImportBatchInline(admin.TabularInline):
    model = ImportBatch
    fields = ("batch_number", "status", "attempts", "llm_calls", "last_error", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).defer("rows", "results")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "original_filename",
        "status",
        "uploaded_by",
        "total_rows",
        "leads_created",
        "leads_updated",
        "rows_skipped",
        "rows_failed",
        "failed_batches",
        "llm_calls",
        "created_at",
    )
    list_filter = ("status", "standardizer", "created_at")
    search_fields = ("original_filename", "id", "uploaded_by__username")
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    inlines = [ImportBatchInline]
    actions = ["retry_failed_batches", "cancel_imports"]

    @admin.action(description="Retry failed batches")
    def retry_failed_batches(self, request, queryset):
        count = sum(len(services.import_retry_failed(job=job)) for job in queryset)
        messages.info(request, f"{count} failed batch(es) queued again.")

    @admin.action(description="Cancel imports")
    def cancel_imports(self, request, queryset):
        count = sum(services.import_cancel(job=job) for job in queryset)
        messages.info(request, f"{count} import(s) cancelled.")


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ("__str__", "job", "status", "attempts", "llm_calls", "started_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("id", "job__id", "source_file")
    readonly_fields = [f.name for f in ImportBatch._meta.fields]
    list_select_related = ("job",)


@admin.register(SavedMapping)
class SavedMappingAdmin(admin.ModelAdmin):
    """Mappings confirmed on the import review; deleting one makes the next such file ask again."""

    list_display = ("__str__", "confirmed_by", "confirmed_at", "times_used")
    search_fields = ("headers", "confirmed_by__username")
    readonly_fields = ("signature", "headers", "roles", "confirmed_by", "confirmed_at", "times_used")

    def has_add_permission(self, request) -> bool:
        return False
