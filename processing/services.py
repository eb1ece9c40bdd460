"""The import pipeline as a state machine: upload → split into batches → standardize each batch →
store its leads, plus cancel, retry and the sweeper that recovers what dead workers left behind.

The web upload, the `import_leads` command and the task workers all call these functions; see
docs/pipeline.md for the states and the guarantees (exactly-once counting, leases). Undo lives in
processing.undo, the problem-rows CSV in processing.problems.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from leads.services import LeadInput, RowOutcome, leads_upsert, rows_insert
from llm import client

from . import review
from .column_mode import columns_standardize
from .models import ImportBatch, ImportJob, skipped_batch_rows
from .parsing import SUPPORTED_EXTENSIONS, FileRejected, SourceRow, accepted_types, iter_rows
from .standardize import (
    FIELD_NAMES,
    ROLE_SAMPLE_ROWS,
    column_roles_record,
    deepseek_standardize,
    is_instructions_sheet,
    offline_standardize,
)

logger = logging.getLogger("easycrm.pipeline")

BATCH_CLUSTER = "deepseek"
MAX_BATCH_ATTEMPTS = 3
# How often a lost split task is queued again before the import fails.
MAX_SPLIT_ATTEMPTS = 3
UNREADABLE_FILE = "We could not read this file. Check that it opens in Excel, then upload it again."
NOT_STORED = "The file could not be saved, so nothing was imported. Please upload it again."
CANCELLED = "The import was cancelled."
# When imports_sweep last ran (the default cluster's scheduler runs it every minute): /healthz shows it.
LAST_SWEEP_KEY = "easycrm:last-sweep"


class ImportRejected(Exception):
    """The upload was refused before anything was stored; str() is shown to the user."""


# --- Upload (the seed's File Upload) ---------------------------------------------------------------


def upload_rules() -> str:
    """What the importer accepts, as the upload card and the error messages say it."""
    kinds = ", ".join(extension[1:].upper() for extension in SUPPORTED_EXTENSIONS)
    return f"{kinds}, up to {settings.MAX_UPLOAD_MB} MB. Every worksheet is imported."


def upload_check(*, filename: str, size: int) -> None:
    """Raise ImportRejected for a file the pipeline will never accept (type, size)."""
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        shown = extension or "without an extension"
        raise ImportRejected(f"Files of type {shown} are not supported. Upload a {accepted_types()} file.")
    limit = settings.MAX_UPLOAD_MB * 1024 * 1024
    if size > limit:
        raise ImportRejected(
            f"This file is {size / 1024 / 1024:.1f} MB; the limit is {settings.MAX_UPLOAD_MB} MB. "
            "Split it into smaller files."
        )
    if size == 0:
        raise ImportRejected("This file is empty.")


def import_start(
    *, file: File, filename: str, user=None, enqueue: bool = True, review_mode: str = ImportJob.Review.NEVER
) -> ImportJob:
    """Record an import and store its file; a refused file gives a `failed` job with the reason.

    `review_mode` (ImportJob.Review; the web upload passes IMPORT_REVIEW) says whether the split stops
    for a person to review the mapping (processing.review).

    The job never stays `uploading`: a file that cannot be stored fails the job with NOT_STORED (and
    the sweeper fails one whose process died mid-store). With enqueue, the split task is queued once
    the transaction commits (the seed's S3 trigger).
    """
    size = file.size or 0
    job = _job_create(filename=filename, size=size, user=user, review_mode=review_mode)
    if job.status == ImportJob.Status.FAILED:
        return job
    try:
        job.file.save(job.original_filename, file, save=False)
    except Exception:
        logger.exception("upload could not be stored", extra={"job_id": job.pk})
        ImportJob.objects.fail(job.pk, NOT_STORED)
        job.refresh_from_db()
        return job
    return _job_stored(job, enqueue=enqueue)


def import_start_stored(
    *,
    name: str,
    filename: str,
    size: int,
    user=None,
    enqueue: bool = True,
    review_mode: str = ImportJob.Review.NEVER,
) -> ImportJob:
    """import_start for a file already in storage under `name` (the browser's direct upload to S3,
    processing.direct_upload): the same checks and split, nothing copied; a refused file is deleted
    unless KEEP_REJECTED_UPLOADS."""
    job = _job_create(filename=filename, size=size, user=user, review_mode=review_mode)
    job.file.name = name
    if job.status == ImportJob.Status.FAILED:
        if not settings.KEEP_REJECTED_UPLOADS:
            file_delete(job)
        job.refresh_from_db()
        return job
    return _job_stored(job, enqueue=enqueue)


def _job_create(*, filename: str, size: int, user, review_mode: str) -> ImportJob:
    """The job of a new upload; `failed` with the reason when upload_check refuses the file."""
    filename = Path(filename).name[:255] or "upload"
    job = ImportJob.objects.create(
        original_filename=filename,
        size=size,
        uploaded_by=user if user is not None and user.is_authenticated else None,
        review_mode=review_mode,
    )
    try:
        upload_check(filename=filename, size=size)
    except ImportRejected as exc:
        ImportJob.objects.fail(job.pk, str(exc))
        logger.info("upload refused", extra={"job_id": job.pk})
        job.refresh_from_db()
    return job


def _job_stored(job: ImportJob, *, enqueue: bool) -> ImportJob:
    """The upload is in storage: the job waits for its split task (queued after the commit)."""
    job.status = ImportJob.Status.UPLOADED
    job.stage = "Waiting for a worker…"
    job.split_queued_at = timezone.now()
    job.save(update_fields=["file", "status", "stage", "split_queued_at"])
    logger.info("upload stored", extra={"job_id": job.pk})
    if enqueue:
        transaction.on_commit(lambda: split_enqueue(job.pk))
    return job


def split_enqueue(job_id) -> None:
    async_task("processing.tasks.import_split", str(job_id))


# --- Split (the seed's Lead Splitter) ---------------------------------------------------------


def import_split(*, job_id, enqueue: bool = True) -> list:
    """Parse the file into durable batches, record the totals and (with enqueue) queue one
    standardize task per batch; returns the queued batches' ids ([] when there is nothing to run).

    Claims the job with a conditional update, so a redelivered split task does nothing.
    """
    if not ImportJob.objects.claim_split(job_id):
        logger.info("split skipped: job not waiting", extra={"job_id": job_id})
        return []
    job = ImportJob.objects.get(pk=job_id)
    warnings: list[str] = []
    try:
        total_rows, total_batches = _batches_create(job, warnings)
    except FileRejected as exc:
        _job_fail_unreadable(job, str(exc))
        return []
    except Exception:
        logger.exception("split failed", extra={"job_id": job.pk})
        _job_fail_unreadable(job, UNREADABLE_FILE)
        return []
    job.total_rows = total_rows
    job.total_batches = total_batches
    job.warnings = warnings
    job.standardizer = "deepseek" if client.is_configured() else "offline"
    job.stage = "Standardizing…"
    job.save(
        update_fields=[
            *("total_rows", "total_batches", "warnings", "standardizer", "stage", "column_roles"),
            *("sheets", "review"),
        ]
    )
    logger.info("split done: %s rows in %s batches", total_rows, total_batches, extra={"job_id": job.pk})
    if review.review_needed(job):
        # Nothing is queued until a person confirms (processing.review.review_confirm).
        job.review["held"] = True
        ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.PROCESSING).update(
            status=ImportJob.Status.REVIEW, stage="Waiting for your review", review=job.review
        )
        logger.info("split done: waiting for a review", extra={"job_id": job.pk})
        return []
    queued = ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED)
    if not ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.PROCESSING).exists():
        # Cancelled while the file was read: the batches made since then must not stay queued.
        for batch in queued.iterator():
            _batch_close(batch, ImportBatch.QUEUED, ImportBatch.Status.SKIPPED, CANCELLED, _Usage())
        return []
    batch_ids = list(queued.values_list("id", flat=True))
    if enqueue:
        import_enqueue(batch_ids=batch_ids)
    return batch_ids


# What _batches_create writes of each batch, in this order; the other columns get their defaults.
_BATCH_COLUMNS = ("id", "batch_number", "total_batches", "rows", "job", "source_file", "environment")


def _batches_create(job: ImportJob, warnings: list[str]) -> tuple[int, int]:
    size = settings.LEAD_BATCH_SIZE
    pending: list[tuple] = []
    rows: list[dict] = []
    sequence = batch_number = 0
    # For the column roles recorded on the job: every header of each sheet, and its first rows' values.
    headers: dict[str, dict[str, None]] = {}
    samples: dict[str, list[dict[str, str]]] = {}
    # For the review screen: each sheet's header row and top rows (from the reader), rows, first batch.
    heads: list[dict] = []
    sheet_rows: dict[str, int] = {}
    first_batch: dict[str, int] = {}

    # The batches go in as database values (rows_insert), a thousand times per 10k rows: building and
    # preparing an ImportBatch per batch was most of the split's time on PostgreSQL.
    pk_value = ImportBatch._meta.pk.get_db_prep_value
    shared = (
        ImportBatch._meta.get_field("job").get_db_prep_value(job.pk, connection),
        job.original_filename,
        settings.ENVIRONMENT,
    )

    def close_batch() -> None:
        nonlocal rows, batch_number
        batch_number += 1
        pending.append((pk_value(uuid.uuid4(), connection), batch_number, 0, json.dumps(rows), *shared))
        rows = []

    with _local_copy(job) as path:
        for row in iter_rows(
            path,
            job.original_filename,
            max_rows=settings.MAX_IMPORT_ROWS,
            warnings=warnings,
            header_rows=job.review.get("header_rows"),
            sheets=heads,
        ):
            sequence += 1
            rows.append(SourceRow(row.worksheet, row.row, row.cells, seq=sequence).to_json())
            headers.setdefault(row.worksheet, {}).update(dict.fromkeys(row.cells))
            sheet_rows[row.worksheet] = sheet_rows.get(row.worksheet, 0) + 1
            first_batch.setdefault(row.worksheet, batch_number + 1)
            sample = samples.setdefault(row.worksheet, [])
            if len(sample) < ROLE_SAMPLE_ROWS:
                sample.append(row.cells)
            if len(rows) == size:
                close_batch()
            if len(pending) >= 500:
                rows_insert(ImportBatch, _BATCH_COLUMNS, pending)
                pending.clear()
        if rows:
            close_batch()
        rows_insert(ImportBatch, _BATCH_COLUMNS, pending)
    ImportBatch.objects.filter(job=job).update(total_batches=batch_number)
    # Every named column of a sheet, in the header's order, even one without a value: the set of
    # headers is what a saved mapping is found by.
    for head in heads:
        if head["sheet"] in headers:
            headers[head["sheet"]] = {**dict.fromkeys(head.get("headers") or ()), **headers[head["sheet"]]}
    job.column_roles = column_roles_record(headers, samples)
    job.sheets = [
        {
            **head,
            "rows": sheet_rows.get(head["sheet"], 0),
            "first_batch": first_batch.get(head["sheet"]),
            "instructions": is_instructions_sheet(head["sheet"]),
        }
        for head in heads
    ]
    review.apply_choices(job)
    return sequence, batch_number


@contextlib.contextmanager
def _local_copy(job: ImportJob) -> Iterator[Path]:
    """The stored file as a local path: the parsers need one, and S3 storage has none."""
    suffix = Path(job.original_filename).suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp, job.file.open("rb") as stored:
        shutil.copyfileobj(stored, tmp, length=1024 * 1024)
        tmp.flush()
        yield Path(tmp.name)


def _job_fail_unreadable(job: ImportJob, message: str) -> None:
    ImportBatch.objects.filter(job=job).delete()
    ImportJob.objects.fail(job.pk, message)
    logger.info("job failed: file rejected", extra={"job_id": job.pk})
    if not settings.KEEP_REJECTED_UPLOADS:
        file_delete(job)


def file_delete(job: ImportJob) -> None:
    """Remove a stored upload nothing will read again (the job keeps its name and size)."""
    if not job.file:
        return
    try:
        job.file.delete(save=False)
    except Exception:
        logger.exception("could not delete the stored upload", extra={"job_id": job.pk})
        return
    ImportJob.objects.filter(pk=job.pk).update(file="")


def import_enqueue(*, batch_ids: list) -> int:
    """Queue the standardize tasks for these batches, all through one broker connection; returns how
    many tasks were queued.

    With the model, one task per batch (a batch is the unit of a model call). Offline, a task stores a
    chunk of up to STORE_CHUNK_BATCHES queued batches of its job (batch_standardize), so one task per
    chunk is queued — for every STORE_CHUNK_BATCHES-th batch of each job, in batch order; the others
    would find nothing left to claim.
    """
    # A list, not a cursor: the ORM broker closes old connections on every enqueue, which would
    # close a SQLite cursor mid-iteration.
    batch_ids = _task_batches(list(batch_ids))
    broker = get_broker(BATCH_CLUSTER)
    for batch_id in batch_ids:
        async_task("processing.tasks.batch_standardize", str(batch_id), broker=broker, cluster=BATCH_CLUSTER)
    return len(batch_ids)


def _task_batches(batch_ids: list) -> list:
    """The batches that get a task: all of them for a job standardized by the model, every
    STORE_CHUNK_BATCHES-th (by batch number) of each offline job."""
    step = settings.STORE_CHUNK_BATCHES
    if step <= 1 or len(batch_ids) <= 1:
        return batch_ids
    by_job: dict = {}
    for start in range(0, len(batch_ids), 500):
        found = ImportBatch.objects.filter(pk__in=batch_ids[start : start + 500]).values_list(
            "pk", "job_id", "batch_number", "job__standardizer"
        )
        for pk, job_id, number, standardizer in found:
            by_job.setdefault((job_id, standardizer), []).append((number, pk))
    chosen = []
    for (_job_id, standardizer), batches in by_job.items():
        batches.sort()
        kept = batches if standardizer != "offline" else batches[::step]
        chosen += [pk for _number, pk in kept]
    return chosen


# --- Standardize and store (the seed's DeepSeek Caller) -------------------------------------------


@dataclass
class _Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def job_updates(self) -> dict:
        return {
            "llm_calls": F("llm_calls") + self.calls,
            "prompt_tokens": F("prompt_tokens") + self.prompt_tokens,
            "completion_tokens": F("completion_tokens") + self.completion_tokens,
        }


@dataclass
class _Standardized:
    """One claimed batch on its way to the store: its rows, their validated leads, what it cost."""

    batch: ImportBatch
    rows: list[SourceRow]
    cleaned: list
    usage: _Usage


def batch_standardize(*, batch_id: uuid.UUID | str) -> str:
    """Standardize one batch and store its leads; returns the batch's final status.

    When no model call is needed (offline mode) the task stands for a chunk: it claims up to
    STORE_CHUNK_BATCHES queued batches of the job (its own first, when still queued) and stores them
    all in one transaction. Safe to run twice for the same batch (a redelivered task): only the claim
    holder writes.
    """
    token = uuid.uuid4()
    chunked = not client.is_configured() and settings.STORE_CHUNK_BATCHES > 1
    own = ImportBatch.objects.claim(batch_id, token=token, max_attempts=MAX_BATCH_ATTEMPTS)
    batches: list[ImportBatch] = []
    if own:
        batch = ImportBatch.objects.select_related("job").get(pk=batch_id)
        job = batch.job
        batches.append(batch)
    elif chunked:
        # Offline a task stands for a chunk (import_enqueue queues one per chunk): its own batch was
        # taken by another chunk, so it stores the job's next queued batches instead.
        job = ImportJob.objects.filter(batches__pk=batch_id).first()
    else:
        job = None
    if chunked and job is not None:
        batches += _claim_chunk(job.pk, token, settings.STORE_CHUNK_BATCHES - len(batches))
    if not batches:
        logger.info("batch not claimable (done, running or exhausted)", extra={"batch_id": batch_id})
        return ImportBatch.objects.filter(pk=batch_id).values_list("status", flat=True).first() or ""
    claim = ImportBatch.held_by(token)
    if job.status != ImportJob.Status.PROCESSING:
        for claimed in batches:
            _batch_close(claimed, claim, ImportBatch.Status.SKIPPED, CANCELLED, _Usage())
        return ImportBatch.Status.SKIPPED
    with _lease_heartbeat(token):
        if chunked and len(batches) > 1:
            ready = _chunk_standardize_offline(batches, job, claim)
        else:
            ready = [entry for entry in (_batch_standardize_one(b, job, claim) for b in batches) if entry]
        if not ready:
            return ImportBatch.Status.FAILED
        try:
            _batches_store(job, claim, ready)
        except Exception as exc:
            return _batches_store_failed(claim, ready, exc)
    if own:
        return ImportBatch.Status.DONE if ready[0].batch.pk == batches[0].pk else ImportBatch.Status.FAILED
    return ImportBatch.objects.filter(pk=batch_id).values_list("status", flat=True).first() or ""


def _claim_chunk(job_id, token: uuid.UUID, limit: int) -> list[ImportBatch]:
    """Up to `limit` queued batches of the job under `token`. Another worker claiming at the same
    moment may take some of the ones asked for: ask again while queued batches are left, so each
    chunk task takes a full chunk (the one-task-per-chunk queue relies on it)."""
    claimed: list[ImportBatch] = []
    for _attempt in range(10):
        if len(claimed) >= limit:
            break
        more = ImportBatch.objects.claim_more(
            job_id=job_id, token=token, limit=limit - len(claimed), max_attempts=MAX_BATCH_ATTEMPTS
        )
        claimed += more
        if (
            not more
            and not ImportBatch.objects.filter(
                job_id=job_id, status=ImportBatch.Status.QUEUED, attempts__lt=MAX_BATCH_ATTEMPTS
            ).exists()
        ):
            break
    return claimed


@contextlib.contextmanager
def _lease_heartbeat(token: uuid.UUID) -> Iterator[None]:
    """Renew the lease of the batches held under `token` every BATCH_HEARTBEAT_SECONDS while the body
    runs (a model call may take minutes), so a short lease finds a dead worker's batches quickly."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.BATCH_HEARTBEAT_SECONDS):
                try:
                    ImportBatch.objects.renew_lease(token)
                except DatabaseError:
                    logger.warning("lease renewal failed", exc_info=True)
        finally:
            connection.close()  # the thread's own connection

    thread = threading.Thread(target=beat, name="batch-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _chunk_standardize_offline(batches: list[ImportBatch], job: ImportJob, claim: Q) -> list[_Standardized]:
    """Offline, a chunk's batches are standardized in one call: the column roles are judged once over
    all of the chunk's rows, so every batch of it reads a column the same way (and the standardizer
    does not judge them again for every 10 rows). Should that call crash, batch by batch, so that a
    bad batch fails alone."""
    started = time.monotonic()
    rows_of = [batch.source_rows for batch in batches]
    rows = [row for batch_rows in rows_of for row in batch_rows]
    try:
        cleaned = review.validate_rows(job, rows, offline_standardize(rows, review.overrides(job)))
    except Exception:
        logger.exception("chunk standardizer crashed; batch by batch", extra={"job_id": job.pk})
        return [entry for entry in (_batch_standardize_one(b, job, claim) for b in batches) if entry]
    seconds = (time.monotonic() - started) / len(batches)
    ready, start = [], 0
    for batch, batch_rows in zip(batches, rows_of, strict=True):
        batch.job = job
        usage = _Usage(seconds=seconds, extra={"job_id": job.pk, "batch_id": batch.pk})
        ready.append(_Standardized(batch, batch_rows, cleaned[start : start + len(batch_rows)], usage))
        start += len(batch_rows)
    return ready


def _batch_standardize_one(batch: ImportBatch, job: ImportJob, claim: Q) -> _Standardized | None:
    """The batch's validated leads, or None after closing it as failed (the model refused or crashed)."""
    batch.job = job
    usage = _Usage(extra={"job_id": job.pk, "batch_id": batch.pk, "batch_number": batch.batch_number})
    rows = batch.source_rows
    try:
        leads = _standardize(rows, usage, job=job, batch_number=batch.batch_number)
    except client.DeepSeekConfigError as exc:
        _batch_close(batch, claim, ImportBatch.Status.FAILED, exc.user_message, usage)
        _job_stop_on_config_error(job, exc.user_message)
        return None
    except client.DeepSeekError as exc:
        _batch_close(batch, claim, ImportBatch.Status.FAILED, exc.user_message, usage)
        return None
    except Exception:
        logger.exception("standardizer crashed", extra=usage.extra)
        _batch_close(batch, claim, ImportBatch.Status.FAILED, "Unexpected error while standardizing.", usage)
        return None
    return _Standardized(batch, rows, review.validate_rows(job, rows, leads), usage)


def _standardize(rows: list[SourceRow], usage: _Usage, *, job: ImportJob, batch_number: int) -> list:
    started = time.monotonic()
    completions: list[client.Completion] = []
    try:
        if not client.is_configured():
            return offline_standardize(rows, review.overrides(job))
        try:
            if settings.DEEPSEEK_MODE == "columns":
                return columns_standardize(
                    rows, job=job, batch_number=batch_number, completions=completions, log_extra=usage.extra
                )
            answered = review.preview_answer(job, rows)
            if answered is not None:
                return answered  # the review's preview call already asked for exactly these rows
            # The roles recorded at split time: the same hints for every batch of a sheet.
            leads, completion = deepseek_standardize(
                rows, column_roles=job.column_roles, log_extra=usage.extra
            )
            completions.append(completion)
            return leads
        except client.DeepSeekError as exc:
            usage.calls += exc.attempts
            raise
    finally:
        for completion in completions:
            usage.calls += completion.attempts
            usage.prompt_tokens += completion.prompt_tokens
            usage.completion_tokens += completion.completion_tokens
        usage.seconds = time.monotonic() - started


def _batches_store(job: ImportJob, claim: Q, ready: list[_Standardized]) -> None:
    """Upsert the leads of every batch in `ready` and mark each batch done, in one transaction, with
    one counter update for the job; a lost claim on any of them rolls all of it back."""
    counts = dict.fromkeys(("created", "updated", "unchanged", "skipped", "kept_edits"), 0)
    inputs: list[LeadInput] = []
    positions: list[tuple[int, int]] = []
    for entry_index, entry in enumerate(ready):
        for row_index, (row, lead) in enumerate(zip(entry.rows, entry.cleaned, strict=True)):
            if not lead.skip_reason:
                inputs.append(_lead_input(row, lead.fields))
                positions.append((entry_index, row_index))
    usage = _Usage()
    with transaction.atomic():
        stored = dict(
            zip(positions, leads_upsert(rows=inputs, job=job, source_file=job.original_filename), strict=True)
        )
        closes = []
        for entry_index, entry in enumerate(ready):
            results = []
            for row_index, (row, lead) in enumerate(zip(entry.rows, entry.cleaned, strict=True)):
                outcome = stored.get((entry_index, row_index)) or RowOutcome(
                    "skipped", reason=lead.skip_reason
                )
                counts[outcome.outcome] += 1
                counts["kept_edits"] += outcome.kept_edits
                results.append(_result(row, outcome.outcome, outcome.reason, outcome.lead_id))
            closes.append((entry.batch.pk, results, entry.usage.calls, entry.usage.seconds))
            usage.calls += entry.usage.calls
            usage.prompt_tokens += entry.usage.prompt_tokens
            usage.completion_tokens += entry.usage.completion_tokens
            usage.seconds += entry.usage.seconds
        if not ImportBatch.objects.close_done(closes, claim=claim):
            raise transaction.TransactionManagementError("batch claim lost before commit")
        ImportJob.objects.filter(pk=job.pk).update(
            completed_batches=F("completed_batches") + len(ready),
            leads_created=F("leads_created") + counts["created"],
            leads_updated=F("leads_updated") + counts["updated"],
            rows_unchanged=F("rows_unchanged") + counts["unchanged"],
            rows_kept_edits=F("rows_kept_edits") + counts["kept_edits"],
            rows_skipped=F("rows_skipped") + counts["skipped"],
            **usage.job_updates(),
        )
        ImportJob.objects.finish_if_done(job.pk)
    logger.info(
        "%(batches)s batches done: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
        "%(skipped)s skipped",
        {**counts, "batches": len(ready)},
        extra={"job_id": job.pk, "batch_id": ready[0].batch.pk, "duration_ms": int(usage.seconds * 1000)},
    )


def _batches_store_failed(claim: Q, ready: list[_Standardized], exc: Exception) -> str:
    """Storing raised (database error, lost claim): log it, and say so where the batches' fate is
    shown. The claims are released so another attempt can run; the last allowed attempt fails a batch
    with this reason instead of the lease's "the worker stopped"."""
    logger.exception("storing the batch failed", extra=ready[0].usage.extra)
    reason = f"Storing the leads of this batch failed ({type(exc).__name__})."
    requeued = []
    with contextlib.suppress(Exception):  # the database itself may be what failed
        for entry in ready:
            batch = entry.batch
            if batch.attempts >= MAX_BATCH_ATTEMPTS:
                _batch_close(batch, claim, ImportBatch.Status.FAILED, reason, entry.usage)
            elif ImportBatch.objects.filter(claim, pk=batch.pk).update(
                status=ImportBatch.Status.QUEUED, claim_token=None, lease_until=None, last_error=reason
            ):
                requeued.append(batch.pk)
        if requeued:
            transaction.on_commit(lambda: import_enqueue(batch_ids=requeued))
    return ImportBatch.Status.QUEUED if requeued else ImportBatch.Status.FAILED


def _lead_input(row: SourceRow, fields: dict[str, str]) -> LeadInput:
    return LeadInput(
        fields={FIELD_NAMES.get(name, name): value for name, value in fields.items()},
        cells=row.cells,
        worksheet=row.worksheet,
        row=row.row,
        seq=row.seq,
    )


def _result(row: SourceRow, outcome: str, reason: str, lead_id: int | None) -> dict:
    return {
        "row": row.row,
        "worksheet": row.worksheet,
        "outcome": outcome,
        "reason": reason,
        "lead_id": lead_id,
    }


def _batch_close(batch: ImportBatch, claim: Q, status: str, reason: str, usage: _Usage) -> bool:
    """End a batch as failed or skipped (every row gets that outcome and reason), counted once:
    only while `claim` still matches the batch row."""
    row_outcome = "failed" if status == ImportBatch.Status.FAILED else "skipped"
    results = [_result(row, row_outcome, reason, None) for row in batch.source_rows]
    with transaction.atomic():
        closed = ImportBatch.objects.close(
            batch.pk,
            claim=claim,
            status=status,
            results=results,
            reason=reason,
            calls=usage.calls,
            seconds=usage.seconds,
        )
        if not closed:
            return False
        if status == ImportBatch.Status.FAILED:
            counters = {
                "failed_batches": F("failed_batches") + 1,
                "rows_failed": F("rows_failed") + len(results),
            }
        else:
            counters = {
                "skipped_batches": F("skipped_batches") + 1,
                "rows_skipped": F("rows_skipped") + len(results),
            }
        ImportJob.objects.filter(pk=batch.job_id).update(**counters, **usage.job_updates())
        ImportJob.objects.finish_if_done(batch.job_id)
    level = logging.WARNING if status == ImportBatch.Status.FAILED else logging.INFO
    logger.log(level, "batch %s: %s", status, reason, extra={"job_id": batch.job_id, "batch_id": batch.pk})
    return True


def _job_stop_on_config_error(job: ImportJob, message: str) -> None:
    """A rejected key or request fails every batch the same way: stop calling, keep them re-runnable."""
    ImportJob.objects.filter(pk=job.pk, error_message="").update(error_message=message)
    for batch in ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED).iterator():
        _batch_close(batch, ImportBatch.QUEUED, ImportBatch.Status.FAILED, message, _Usage())


# --- Cancel, resume, retry ----------------------------------------------------------------------


def import_cancel(*, job: ImportJob) -> bool:
    """Cancel an import that is still running: queued batches are skipped, running ones finish,
    no new model calls start (import_resume queues the skipped ones again). Returns False when the
    job had already ended."""
    with transaction.atomic():
        cancelled = ImportJob.objects.filter(pk=job.pk, status__in=ImportJob.ACTIVE).update(
            status=ImportJob.Status.CANCELLED, stage="", finished_at=timezone.now()
        )
        if not cancelled:
            return False
        queued = list(ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED))
    for batch in queued:
        _batch_close(batch, ImportBatch.QUEUED, ImportBatch.Status.SKIPPED, CANCELLED, _Usage())
    logger.info("job cancelled", extra={"job_id": job.pk})
    job.refresh_from_db()
    return True


def import_resume(*, job: ImportJob, enqueue: bool = True) -> list:
    """Queue again the batches a cancel skipped; returns their ids ([] when the job cannot resume).

    Only a cancelled import, not undone, with skipped batches and none still running or queued (its
    numbers are final, see ImportJob.settling). Under the job's row lock, the skipped batches and
    their rows leave the counters in the same conditional update that reopens the job, so two clicks
    correct them once; each row then gets its one outcome when its batch runs.
    """
    with transaction.atomic():
        # total_batches > 0: the split has finished (a split cancelled half-way still adds batches).
        locked = ImportJob.objects.select_for_update().filter(
            pk=job.pk, status=ImportJob.Status.CANCELLED, undone_at__isnull=True, total_batches__gt=0
        )
        held = list(locked.values_list("review", flat=True))
        if not held or (held[0].get("held") and not held[0].get("reviewed")):
            return []  # gone, or cancelled while waiting for its review: nothing was confirmed to run
        batches = ImportBatch.objects.filter(job_id=job.pk)
        unsettled = (ImportBatch.Status.RUNNING, ImportBatch.Status.QUEUED)
        if batches.filter(status__in=unsettled).exists():
            return []
        skipped = batches.filter(status=ImportBatch.Status.SKIPPED)
        ids = list(skipped.order_by("batch_number").values_list("id", flat=True))
        if not ids:
            return []
        rows = skipped_batch_rows(batches)
        locked.update(
            status=ImportJob.Status.PROCESSING,
            skipped_batches=F("skipped_batches") - len(ids),
            rows_skipped=F("rows_skipped") - rows,
            finished_at=None,
            stage="Resuming…",
        )
        skipped.update(
            status=ImportBatch.Status.QUEUED,
            attempts=0,
            results=[],
            claim_token=None,
            lease_until=None,
            started_at=None,
            finished_at=None,
        )
        if enqueue:
            transaction.on_commit(lambda: import_enqueue(batch_ids=ids))
    logger.info("resuming %s skipped batches", len(ids), extra={"job_id": job.pk})
    job.refresh_from_db()
    return ids


def import_retry_failed(*, job: ImportJob, enqueue: bool = True) -> list:
    """Put the failed batches of a finished import back in the queue; returns their ids.

    The only way a finished job becomes `processing` again: an explicit user request.
    """
    with transaction.atomic():
        failed = list(
            ImportBatch.objects.filter(job=job, status=ImportBatch.Status.FAILED).only("id", "rows")
        )
        if not failed:
            return []
        rows = sum(len(batch.rows) for batch in failed)
        # Conditional on the job's state in the database, so two clicks cannot both re-queue.
        reopened = ImportJob.objects.filter(
            pk=job.pk,
            status__in=(ImportJob.Status.COMPLETED_WITH_ERRORS, ImportJob.Status.FAILED),
            undone_at__isnull=True,
        ).update(
            status=ImportJob.Status.PROCESSING,
            failed_batches=F("failed_batches") - len(failed),
            rows_failed=F("rows_failed") - rows,
            error_message="",
            finished_at=None,
            stage="Retrying failed batches…",
        )
        if not reopened:
            return []
        ImportBatch.objects.filter(pk__in=[b.pk for b in failed], status=ImportBatch.Status.FAILED).update(
            status=ImportBatch.Status.QUEUED, attempts=0, results=[], claim_token=None, lease_until=None
        )
        ids = [batch.pk for batch in failed]
        if enqueue:
            transaction.on_commit(lambda: import_enqueue(batch_ids=ids))
    logger.info("retrying %s failed batches", len(ids), extra={"job_id": job.pk})
    job.refresh_from_db()
    return ids


def imports_active_for(*, user) -> QuerySet[ImportJob]:
    """The imports a user's status panel shows: theirs that are still running."""
    return ImportJob.objects.filter(uploaded_by=user, status__in=ImportJob.ACTIVE).order_by("created_at")


# --- The sweeper (every minute) -------------------------------------------------------------------


def split_lease() -> timedelta:
    """How long a split may run before the sweeper calls it dead: longer than a task may run."""
    return timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)


def imports_sweep(*, older_than: timedelta | None = None) -> int:
    """Recover work a dead worker or a lost broker message left behind; returns how many batches
    were queued again.

    Running batches whose lease ran out are queued again, or failed after MAX_BATCH_ATTEMPTS (with the
    last error they recorded, if any); in a cancelled import they are skipped. A job whose queued
    batches have seen no progress for `older_than` (its messages were lost, e.g. with the Redis
    broker, which has no receipts) gets fresh tasks for them; a duplicate task is harmless, only one
    claim succeeds. Uploads and splits are recovered by _jobs_recover.
    """
    now = timezone.now()
    cutoff = now - (older_than or timedelta(seconds=settings.STALLED_JOB_SECONDS))
    expired = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING, lease_until__lt=now)
    still_expired = Q(status=ImportBatch.Status.RUNNING, lease_until__lt=now)
    for batch in expired.exclude(job__status=ImportJob.Status.PROCESSING):
        _batch_close(batch, still_expired, ImportBatch.Status.SKIPPED, CANCELLED, _Usage())
    expired = expired.filter(job__status=ImportJob.Status.PROCESSING)
    for batch in expired.filter(attempts__gte=MAX_BATCH_ATTEMPTS):
        reason = batch.last_error or "The worker processing this batch stopped repeatedly."
        _batch_close(batch, still_expired, ImportBatch.Status.FAILED, reason, _Usage())
    stale_ids = list(expired.filter(attempts__lt=MAX_BATCH_ATTEMPTS).values_list("id", flat=True))
    for job in _jobs_stalled(cutoff):
        stale_ids += list(job.batches.filter(status=ImportBatch.Status.QUEUED).values_list("id", flat=True))
    if stale_ids:
        import_enqueue(batch_ids=stale_ids)
        logger.warning("re-enqueued %s stale batches", len(stale_ids))
    _jobs_recover(now)
    cache.set(LAST_SWEEP_KEY, now, timeout=None)
    return len(stale_ids)


def _jobs_stalled(cutoff) -> list[ImportJob]:
    """Processing jobs with queued batches while no batch of any import runs or has started or
    finished since `cutoff` — the workers are idle, so those batches' messages were lost (the Redis broker drops what
    a killed cluster had fetched; the ORM broker keeps it locked for the task timeout). While workers
    are busy with other imports, nothing is re-queued, so the queue is not flooded with duplicates."""
    batches = ImportBatch.objects.all()
    # A running batch whose lease ran out has no live worker: it does not count as activity.
    if batches.filter(status=ImportBatch.Status.RUNNING, lease_until__gte=timezone.now()).exists():
        return []
    if batches.filter(Q(finished_at__gte=cutoff) | Q(started_at__gte=cutoff)).exists():
        return []
    jobs = ImportJob.objects.filter(status=ImportJob.Status.PROCESSING, total_batches__gt=0)
    return [
        job
        for job in jobs.filter(Q(started_at__lt=cutoff) | Q(started_at__isnull=True))
        if job.batches.filter(status=ImportBatch.Status.QUEUED).exists()
    ]


def _jobs_recover(now) -> None:
    """Uploads whose process died mid-store fail; split tasks that were lost are queued again, at most
    MAX_SPLIT_ATTEMPTS times, once per split lease; a split that died half-way fails the job."""
    lease = split_lease()
    for job_id in ImportJob.objects.filter(
        status=ImportJob.Status.UPLOADING, created_at__lt=now - lease
    ).values_list("id", flat=True):
        ImportJob.objects.fail(job_id, NOT_STORED)
    waiting = ImportJob.objects.filter(status=ImportJob.Status.UPLOADED, split_queued_at__lt=now - lease)
    for job_id in waiting.filter(split_attempts__gte=MAX_SPLIT_ATTEMPTS - 1).values_list("id", flat=True):
        ImportJob.objects.fail(job_id, "No worker picked up this import. Please upload the file again.")
    for job_id in waiting.values_list("id", flat=True):
        requeued = ImportJob.objects.filter(
            pk=job_id, status=ImportJob.Status.UPLOADED, split_queued_at__lt=now - lease
        ).update(split_queued_at=now, split_attempts=F("split_attempts") + 1)
        if requeued:
            split_enqueue(job_id)
    for job in ImportJob.objects.filter(
        status=ImportJob.Status.PROCESSING, total_batches=0, started_at__lt=now - lease
    ):
        _job_fail_unreadable(job, "The import stopped while reading the file. Please upload it again.")
