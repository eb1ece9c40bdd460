"""Import bookkeeping: the job (the seed's status record), its batches (the seed's SQS messages
made durable) and the slots that cap concurrent DeepSeek calls across every process."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from leads.fields import OrderedJSONField


class ImportJob(models.Model):
    class Status(models.TextChoices):
        UPLOADING = "uploading", "Uploading"
        UPLOADED = "uploaded", "Uploaded"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.COMPLETED, Status.COMPLETED_WITH_ERRORS, Status.FAILED, Status.CANCELLED)
    ACTIVE = (Status.UPLOADING, Status.UPLOADED, Status.PROCESSING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to="uploads/%Y/%m/%d/", max_length=500, blank=True)
    original_filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.UPLOADING)
    stage = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    # Problems that did not stop the import (a corrupt sheet, ragged rows), shown to the user.
    warnings = models.JSONField(default=list, blank=True)
    standardizer = models.CharField(max_length=20, blank=True)

    total_rows = models.PositiveIntegerField(default=0)
    total_batches = models.PositiveIntegerField(default=0)
    completed_batches = models.PositiveIntegerField(default=0)
    failed_batches = models.PositiveIntegerField(default=0)
    skipped_batches = models.PositiveIntegerField(default=0)
    leads_created = models.PositiveIntegerField(default=0)
    leads_updated = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)

    llm_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set once by processing.services.import_undo; the status keeps saying how the import ended.
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="importjob_status_idx")]

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.get_status_display()})"

    @property
    def stage_display(self) -> str:
        if self.status == self.Status.PROCESSING and self.total_batches:
            current = min(self.finished_batches + 1, self.total_batches)
            return f"Standardizing batch {current:,} of {self.total_batches:,}…"
        return self.stage or self.get_status_display()

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def finished_batches(self) -> int:
        return self.completed_batches + self.failed_batches + self.skipped_batches

    @property
    def rows_processed(self) -> int:
        return self.leads_created + self.leads_updated + self.rows_skipped + self.rows_failed

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.total_batches:
            return 0
        return min(100, int(100 * self.finished_batches / self.total_batches))

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def rows_per_second(self) -> float | None:
        duration = self.duration
        if not duration or duration.total_seconds() < 1 or not self.rows_processed:
            return None
        return self.rows_processed / duration.total_seconds()

    @property
    def eta(self) -> timedelta | None:
        """Time left at the rate seen so far; None until a few batches have finished."""
        if self.is_terminal or not self.total_batches or self.finished_batches < 2:
            return None
        elapsed = self.duration
        if not elapsed:
            return None
        remaining = self.total_batches - self.finished_batches
        return elapsed * remaining / self.finished_batches


class ImportBatch(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="batches")
    batch_number = models.PositiveIntegerField()
    total_batches = models.PositiveIntegerField()
    source_file = models.CharField(max_length=255)
    # The seed's message body: raw rows ({header: value}, plus "_worksheet", "_row", "_seq").
    rows = OrderedJSONField(default=list)
    environment = models.CharField(max_length=50, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Processing attempts (claims); a batch whose worker died MAX_BATCH_ATTEMPTS times is failed.
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    llm_calls = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # One entry per row: {"row", "worksheet", "outcome": created|updated|skipped|failed, "reason", "lead_id"}.
    results = models.JSONField(default=list, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    llm_seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["job", "batch_number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "batch_number"], name="batch_unique_number_per_job")
        ]
        indexes = [models.Index(fields=["status", "lease_until"], name="batch_status_lease_idx")]

    def __str__(self) -> str:
        return f"Batch {self.batch_number}/{self.total_batches} of {self.source_file}"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class LlmSlot(models.Model):
    """One of DEEPSEEK_CONCURRENCY permits to call the model; held under a lease so a dead
    process cannot keep it (see processing.services.llm_slot)."""

    number = models.PositiveIntegerField(primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"LLM slot {self.number}"
