"""Import bookkeeping: the job (the seed's status record) and its batches (the seed's SQS messages
made durable)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.db.models import Case, F, Q, Sum, Value, When
from django.urls import reverse
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


class _JsonArrayLength(models.Func):
    """The length of a JSON array column, computed by the database (SQLite and PostgreSQL)."""

    output_field = models.IntegerField()
    arity = 1

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="json_array_length", **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="jsonb_array_length", **extra_context)


def skipped_batch_rows(batches: models.QuerySet) -> int:
    """How many rows the skipped batches among `batches` hold, counted by the database."""
    total = batches.filter(status=ImportBatch.Status.SKIPPED).aggregate(rows=Sum(_JsonArrayLength("rows")))
    return total["rows"] or 0


class ImportJob(models.Model):
    class Status(models.TextChoices):
        UPLOADING = "uploading", "Uploading"
        UPLOADED = "uploaded", "Uploaded"
        # Read and split, nothing queued: waiting for a person to confirm the mapping (processing.review).
        REVIEW = "review", "Ready for review"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.COMPLETED, Status.COMPLETED_WITH_ERRORS, Status.FAILED, Status.CANCELLED)
    ACTIVE = (Status.UPLOADING, Status.UPLOADED, Status.REVIEW, Status.PROCESSING)

    class Review(models.TextChoices):
        """IMPORT_REVIEW: when an import stops for a person to confirm it (processing.review)."""

        ALWAYS = "always", "Always"
        WHEN_UNSURE = "when_unsure", "When a column is unsure"
        NEVER = "never", "Never"

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
    # Whether the split stops for a review (IMPORT_REVIEW for the web upload, never for import_leads).
    review_mode = models.CharField(max_length=16, choices=Review.choices, default=Review.NEVER)
    # What the split found of each worksheet, in file order (parsing._sheet_head plus "rows" and
    # "first_batch"): the review screen's sheets, header rows and first rows.
    sheets = models.JSONField(default=list, blank=True)
    # What a person chose on the review screen: {"header_rows": {sheet: row}, "skip_sheets": [sheet],
    # "include_sheets": [sheet], "reviewed": bool, "reviewed_by": name, "reviewed_at": iso, "remembered":
    # {sheet: {"by", "on"}}, "preview": {"key", "leads"} (the model's answer for the first batch)}.
    review = models.JSONField(default=dict, blank=True)

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

    def get_absolute_url(self) -> str:
        return reverse("processing:detail", args=[self.pk])

    @property
    def review_remembered(self) -> dict | None:
        """{"by", "on"} when a saved mapping covers every sheet with rows: one click imports it."""
        remembered = self.review.get("remembered") or {}
        sheets = [sheet["sheet"] for sheet in self.sheets if sheet.get("rows")]
        if not sheets or any(sheet not in remembered for sheet in sheets):
            return None
        return remembered[sheets[0]]

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
        """Skipped and failed rows, those the cancel left out included: the problem rows' CSV."""
        return self.rows_skipped + self.rows_failed

    @property
    def rows_cancelled(self) -> int:
        """Rows never standardized because the import was cancelled: the rows of its skipped batches
        (a batch is only ever skipped by a cancel). They are in rows_skipped too — each row has one
        outcome — so one query here keeps the counters as they are; no query without skipped batches."""
        if not self.skipped_batches:
            return 0
        key = (self.skipped_batches, self.rows_skipped)
        cached = getattr(self, "_rows_cancelled", None)
        if cached is None or cached[0] != key:
            cached = (key, skipped_batch_rows(self.batches.all()))
            self._rows_cancelled = cached
        return cached[1]

    @property
    def rows_skipped_not_leads(self) -> int:
        """Rows read and skipped as not leads (repeated headers, totals, instructions, nothing usable)."""
        return self.rows_skipped - self.rows_cancelled

    @property
    def finished_batches(self) -> int:
        return self.completed_batches + self.failed_batches + self.skipped_batches

    @property
    def batches_run(self) -> int:
        """Batches that went through the standardizer (done or failed), not those a cancel skipped."""
        return self.completed_batches + self.failed_batches

    @property
    def rows_processed(self) -> int:
        """Rows that went through the standardizer so far, with whatever outcome."""
        return (
            self.leads_created
            + self.leads_updated
            + self.rows_unchanged
            + self.rows_skipped
            + self.rows_failed
            - self.rows_cancelled
        )

    @property
    def progress_percent(self) -> int:
        """Share of the batches that ran: a cancelled import shows how far it got, not a full bar."""
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.total_batches:
            return 0
        return min(100, int(100 * self.batches_run / self.total_batches))

    @property
    def settling(self) -> bool:
        """Cancelled, but a batch is still running (it finishes and is counted) or queued (the cancel
        or the split is still skipping it): the numbers are not final yet, so the panel keeps polling."""
        if self.status != self.Status.CANCELLED:
            return False
        unsettled = (ImportBatch.Status.RUNNING, ImportBatch.Status.QUEUED)
        return self.batches.filter(status__in=unsettled).exists()

    @property
    def can_resume(self) -> bool:
        """A cancelled import, not undone, whose cancel skipped batches: they can be queued again
        (services.import_resume checks the same under a lock)."""
        return (
            self.status == self.Status.CANCELLED
            and not self.undone_at
            and self.total_batches > 0
            and self.skipped_batches > 0
            and not self.settling
            and not self.review_pending
        )

    @property
    def review_pending(self) -> bool:
        """The split stopped for a review that nobody confirmed (processing.review)."""
        return bool(self.review.get("held")) and not self.review.get("reviewed")

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
        otherwise. One locking query and one executemany instead of an UPDATE per batch; the results
        are sent as the JSON text the field would send (json.dumps), without its per-value walk."""
        ids = [pk for pk, *_ in closes]
        if len(list(self.select_for_update().filter(claim, pk__in=ids).values_list("pk", flat=True))) != len(
            ids
        ):
            return False
        meta = ImportBatch._meta
        quote = connection.ops.quote_name
        pk_field = meta.pk
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
                json.dumps(results),
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


class SavedMapping(models.Model):
    """A mapping a person confirmed on the review screen, for every sheet with the same set of headers:
    the next such sheet is imported with it (processing.review)."""

    signature = models.CharField(max_length=64, unique=True)
    headers = models.JSONField(default=list)
    # {header: role value, "remarks" or "ignore"}: every column of the sheet.
    roles = models.JSONField(default=dict)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(default=timezone.now)
    times_used = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-confirmed_at"]
        verbose_name = "saved column mapping"

    def __str__(self) -> str:
        shown = ", ".join(self.headers[:4])
        return f"{shown}{'…' if len(self.headers) > 4 else ''}"
