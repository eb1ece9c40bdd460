"""Import bookkeeping: the job (the seed's status record) and its batches (the seed's SQS messages
made durable)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .parsing import SourceRow


class ImportJobManager(models.Manager):
    def claim_split(self, pk) -> bool:
        """uploaded → processing, for the one split task that wins; a redelivered one gets False."""
        return bool(
            self.filter(pk=pk, status=ImportJob.Status.UPLOADED).update(
                status=ImportJob.Status.PROCESSING, started_at=timezone.now(), stage="Reading your file…"
            )
        )

    def finish_if_done(self, pk) -> bool:
        """The batch that brings done+failed+skipped to the total finishes the job — exactly once,
        because only a job still `processing` matches."""
        finished = F("completed_batches") + F("failed_batches") + F("skipped_batches")
        return bool(
            self.filter(pk=pk, status=ImportJob.Status.PROCESSING, total_batches__lte=finished)
            .exclude(total_batches=0)
            .update(
                status=Case(
                    When(completed_batches=0, failed_batches__gt=0, then=Value(ImportJob.Status.FAILED)),
                    When(failed_batches__gt=0, then=Value(ImportJob.Status.COMPLETED_WITH_ERRORS)),
                    default=Value(ImportJob.Status.COMPLETED),
                ),
                stage="",
                finished_at=timezone.now(),
            )
        )

    def fail(self, pk, message: str) -> bool:
        """Any state but a final one → failed with `message` for the user."""
        return bool(
            self.filter(pk=pk)
            .exclude(status__in=ImportJob.TERMINAL)
            .update(
                status=ImportJob.Status.FAILED, error_message=message, stage="", finished_at=timezone.now()
            )
        )


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
    # What each column of each sheet was taken for, and why (standardize.sheet_column_roles), recorded
    # when the file is split: [{"sheet": …, "columns": [{"header", "role", "taken_as", "reason"}, …]}, …].
    column_roles = models.JSONField(default=list, blank=True)
    # DEEPSEEK_MODE=columns: what the model said each sheet's columns hold, asked once per sheet
    # (processing.column_mode): {sheet: {"roles": {header: role}, "transforms": {header: transform}}}.
    model_column_roles = models.JSONField(default=dict, blank=True)
    standardizer = models.CharField(max_length=20, blank=True)

    total_rows = models.PositiveIntegerField(default=0)
    total_batches = models.PositiveIntegerField(default=0)
    completed_batches = models.PositiveIntegerField(default=0)
    failed_batches = models.PositiveIntegerField(default=0)
    skipped_batches = models.PositiveIntegerField(default=0)
    leads_created = models.PositiveIntegerField(default=0)
    leads_updated = models.PositiveIntegerField(default=0)
    # Rows whose lead already held every value they carry: nothing written, no revision.
    rows_unchanged = models.PositiveIntegerField(default=0)
    # Rows that would have overwritten a value a person edited on the lead: the person's value was kept.
    rows_kept_edits = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)

    llm_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    # When the split task was last queued, and how often the sweeper queued it again (lost messages).
    split_queued_at = models.DateTimeField(null=True, blank=True)
    split_attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set once by processing.undo.import_undo; the status keeps saying how the import ended.
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ImportJobManager()

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
    def can_retry(self) -> bool:
        """A finished import with failed batches, not undone: its failed batches can run again."""
        retryable = (self.Status.COMPLETED_WITH_ERRORS, self.Status.FAILED)
        return self.status in retryable and self.failed_batches > 0 and not self.undone_at

    @property
    def can_undo(self) -> bool:
        """Worth offering Undo (processing.undo still checks whether later changes prevent it)."""
        return self.is_terminal and not self.undone_at and bool(self.leads_created + self.leads_updated)

    @property
    def resuming(self) -> bool:
        """A batch of this running import lost its worker (its lease ran out), was taken over from
        one, or is queued again after a failed store: the import goes on, say so."""
        if self.status != self.Status.PROCESSING:
            return False
        running = models.Q(status=ImportBatch.Status.RUNNING)
        retaken = (
            models.Q(status=ImportBatch.Status.QUEUED, attempts__gte=1)
            | (running & models.Q(attempts__gte=2))
            | (running & models.Q(lease_until__lt=timezone.now()))  # its worker stopped renewing
        )
        return self.batches.filter(retaken).exists()

    @property
    def rows_not_imported(self) -> int:
        return self.rows_skipped + self.rows_failed

    @property
    def finished_batches(self) -> int:
        return self.completed_batches + self.failed_batches + self.skipped_batches

    @property
    def rows_processed(self) -> int:
        return (
            self.leads_created
            + self.leads_updated
            + self.rows_unchanged
            + self.rows_skipped
            + self.rows_failed
        )

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


class ImportBatchManager(models.Manager):
    def claim(self, pk, *, token: uuid.UUID, max_attempts: int) -> bool:
        """queued (or running with an expired lease) → running under `token`, one attempt more; only
        one worker wins a batch, and one that already had `max_attempts` is not claimed again."""
        now = timezone.now()
        claimable = Q(status=ImportBatch.Status.QUEUED) | Q(
            status=ImportBatch.Status.RUNNING, lease_until__lt=now
        )
        return bool(
            self.filter(claimable, pk=pk, attempts__lt=max_attempts).update(
                status=ImportBatch.Status.RUNNING,
                claim_token=token,
                lease_until=now + timedelta(seconds=settings.BATCH_LEASE_SECONDS),
                started_at=now,
                attempts=F("attempts") + 1,
            )
        )

    def claim_more(self, *, job_id, token: uuid.UUID, limit: int, max_attempts: int) -> list[ImportBatch]:
        """Up to `limit` further queued batches of the job, in batch order, claimed under `token` (the
        same claim as ImportBatchManager.claim); batches another worker took meanwhile are left out."""
        wanted = list(
            self.filter(job_id=job_id, status=ImportBatch.Status.QUEUED, attempts__lt=max_attempts)
            .order_by("batch_number")
            .values_list("pk", flat=True)[:limit]
        )
        if not wanted:
            return []
        now = timezone.now()
        self.filter(pk__in=wanted, status=ImportBatch.Status.QUEUED, attempts__lt=max_attempts).update(
            status=ImportBatch.Status.RUNNING,
            claim_token=token,
            lease_until=now + timedelta(seconds=settings.BATCH_LEASE_SECONDS),
            started_at=now,
            attempts=F("attempts") + 1,
        )
        return list(self.filter(pk__in=wanted, claim_token=token).order_by("batch_number"))

    def renew_lease(self, token: uuid.UUID) -> int:
        """Push back the lease of the running batches held under `token` (the holder is alive)."""
        lease_until = timezone.now() + timedelta(seconds=settings.BATCH_LEASE_SECONDS)
        return self.filter(status=ImportBatch.Status.RUNNING, claim_token=token).update(
            lease_until=lease_until
        )

    def close_done(self, closes: list[tuple[uuid.UUID, list[dict], int, float]], *, claim: Q) -> bool:
        """running → done for many batches at once, each with its (pk, results, calls, seconds) — only
        if every one still matches `claim` (their rows are locked first); False, and nothing written,
        otherwise. One locking query and one executemany instead of an UPDATE per batch."""
        ids = [pk for pk, *_ in closes]
        if len(list(self.select_for_update().filter(claim, pk__in=ids).values_list("pk", flat=True))) != len(
            ids
        ):
            return False
        meta = ImportBatch._meta
        quote = connection.ops.quote_name
        results_field, pk_field = meta.get_field("results"), meta.pk
        sql = (
            f"UPDATE {quote(meta.db_table)} SET {quote('status')} = %s, {quote('results')} = %s, "  # noqa: S608
            f"{quote('finished_at')} = %s, {quote('last_error')} = '', {quote('lease_until')} = NULL, "
            f"{quote('llm_calls')} = {quote('llm_calls')} + %s, {quote('llm_seconds')} = {quote('llm_seconds')} + %s "
            f"WHERE {quote(pk_field.column)} = %s"
        )
        finished_at = meta.get_field("finished_at").get_db_prep_save(timezone.now(), connection)
        params = [
            [
                ImportBatch.Status.DONE.value,
                results_field.get_db_prep_save(results, connection),
                finished_at,
                calls,
                seconds,
                pk_field.get_db_prep_value(pk, connection),
            ]
            for pk, results, calls, seconds in closes
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
        return True

    def close(
        self, pk, *, claim: Q, status: str, results: list[dict], reason: str = "", calls: int, seconds: float
    ) -> bool:
        """running/queued → done, failed or skipped with one result per row — only while `claim`
        (see ImportBatch.held_by, ImportBatch.QUEUED) still matches, so each batch is counted once."""
        return bool(
            self.filter(claim, pk=pk).update(
                status=status,
                results=results,
                last_error=reason if status == ImportBatch.Status.FAILED else "",
                finished_at=timezone.now(),
                lease_until=None,
                llm_calls=F("llm_calls") + calls,
                llm_seconds=F("llm_seconds") + seconds,
            )
        )


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
    # The seed's message body: the batch's source rows as SourceRow.to_json() (processing.parsing).
    rows = models.JSONField(default=list)
    environment = models.CharField(max_length=50, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Processing attempts (claims); a batch whose worker died MAX_BATCH_ATTEMPTS times is failed.
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    llm_calls = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # One entry per row: {"row", "worksheet", "outcome", "reason", "lead_id"}; outcome is one of
    # created, updated, unchanged, skipped, failed.
    results = models.JSONField(default=list, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    llm_seconds = models.FloatField(default=0)

    # The claim for ImportBatchManager.close of a batch nobody has taken yet.
    QUEUED = Q(status="queued")

    objects = ImportBatchManager()

    class Meta:
        ordering = ["job", "batch_number"]
        verbose_name_plural = "import batches"
        constraints = [
            models.UniqueConstraint(fields=["job", "batch_number"], name="batch_unique_number_per_job")
        ]
        indexes = [models.Index(fields=["status", "lease_until"], name="batch_status_lease_idx")]

    def __str__(self) -> str:
        return f"Batch {self.batch_number}/{self.total_batches} of {self.source_file}"

    @staticmethod
    def held_by(token: uuid.UUID) -> Q:
        """The claim for ImportBatchManager.close of a batch still held under `token`."""
        return Q(status="running", claim_token=token)

    @property
    def source_rows(self) -> list[SourceRow]:
        return [SourceRow.from_json(row) for row in self.rows]

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None
