"""The import pipeline: upload → split into batches → standardize each batch → upsert leads.

The web upload, the `import_leads` command and the task workers all call these functions; see
docs/pipeline.md for the state machine and the guarantees (exactly-once counting, leases).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Case, F, Max, Q, QuerySet, Value, When
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from leads.models import Lead, LeadRevision
from leads.services import SNAPSHOT_FIELDS, RowOutcome, leads_upsert, neutralize_cell

from . import deepseek
from .models import ImportBatch, ImportJob, LlmSlot
from .parsing import SUPPORTED_EXTENSIONS, FileRejected, iter_rows
from .standardize import FIELD_NAMES, offline_standardize, validate_lead

logger = logging.getLogger("easycrm.pipeline")

BATCH_CLUSTER = "deepseek"
MAX_BATCH_ATTEMPTS = 3
UNREADABLE_FILE = "We could not read this file. Check that it opens in Excel, then upload it again."


class ImportRejected(Exception):
    """The upload was refused before anything was stored; str() is shown to the user."""


# --- Upload -----------------------------------------------------------------------------------


def upload_check(*, filename: str, size: int) -> None:
    """Raise ImportRejected for a file the pipeline will never accept (type, size)."""
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        shown = extension or "without an extension"
        raise ImportRejected(f"Files of type {shown} are not supported. Upload a .csv, .xlsx or .xls file.")
    limit = settings.MAX_UPLOAD_MB * 1024 * 1024
    if size > limit:
        raise ImportRejected(
            f"This file is {size / 1024 / 1024:.1f} MB; the limit is {settings.MAX_UPLOAD_MB} MB. "
            "Split it into smaller files."
        )
    if size == 0:
        raise ImportRejected("This file is empty.")


def import_start(*, file: File, filename: str, user=None, enqueue: bool = True) -> ImportJob:
    """Record an import and store its file; a refused file gives a `failed` job with the reason.

    With enqueue, the split task is queued once the transaction commits (the seed's S3 trigger).
    """
    filename = Path(filename).name[:255] or "upload"
    size = file.size or 0
    job = ImportJob.objects.create(
        original_filename=filename,
        size=size,
        uploaded_by=user if user is not None and user.is_authenticated else None,
    )
    try:
        upload_check(filename=filename, size=size)
    except ImportRejected as exc:
        job.status = ImportJob.Status.FAILED
        job.error_message = str(exc)
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error_message", "finished_at"])
        logger.info("upload refused", extra={"job_id": job.pk})
        return job
    job.file.save(filename, file, save=False)
    job.status = ImportJob.Status.UPLOADED
    job.stage = "Waiting for a worker…"
    job.save(update_fields=["file", "status", "stage"])
    logger.info("upload stored", extra={"job_id": job.pk})
    if enqueue:
        job_id = job.pk
        transaction.on_commit(lambda: async_task("processing.tasks.split_import", str(job_id)))
    return job


# --- Split (the seed's Lead Splitter) ---------------------------------------------------------


@contextlib.contextmanager
def _local_copy(job: ImportJob) -> Iterator[Path]:
    """The stored file as a local path: the parsers need one, and S3 storage has none."""
    suffix = Path(job.original_filename).suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp, job.file.open("rb") as stored:
        shutil.copyfileobj(stored, tmp, length=1024 * 1024)
        tmp.flush()
        yield Path(tmp.name)


def import_split(*, job: ImportJob) -> bool:
    """Parse the file into durable batches and record the totals; False if there is nothing to run.

    Claims the job with a conditional update, so a redelivered split task does nothing.
    """
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.UPLOADED).update(
        status=ImportJob.Status.PROCESSING, started_at=now, stage="Reading your file…"
    )
    if not claimed:
        logger.info("split skipped: job not waiting", extra={"job_id": job.pk})
        return False
    job.refresh_from_db()
    warnings: list[str] = []
    try:
        total_rows, total_batches = _batches_create(job, warnings)
    except FileRejected as exc:
        _job_fail_unreadable(job, str(exc))
        return False
    except Exception:
        logger.exception("split failed", extra={"job_id": job.pk})
        _job_fail_unreadable(job, UNREADABLE_FILE)
        return False
    job.total_rows = total_rows
    job.total_batches = total_batches
    job.warnings = warnings
    job.standardizer = "deepseek" if deepseek.is_configured() else "offline"
    job.stage = "Standardizing…"
    job.save(update_fields=["total_rows", "total_batches", "warnings", "standardizer", "stage"])
    logger.info("split done: %s rows in %s batches", total_rows, total_batches, extra={"job_id": job.pk})
    if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.PROCESSING).exists():
        return True
    # Cancelled while the file was read: the batches made since then must not stay queued.
    for batch in ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED).iterator():
        _batch_close(batch, QUEUED, ImportBatch.Status.SKIPPED, "The import was cancelled.", _Usage())
    return False


def _batches_create(job: ImportJob, warnings: list[str]) -> tuple[int, int]:
    size = settings.LEAD_BATCH_SIZE
    pending: list[ImportBatch] = []
    rows: list[dict] = []
    sequence = batch_number = 0

    def close_batch() -> None:
        nonlocal rows, batch_number
        batch_number += 1
        pending.append(
            ImportBatch(
                job=job,
                batch_number=batch_number,
                total_batches=0,
                source_file=job.original_filename,
                rows=rows,
                environment=settings.ENVIRONMENT,
            )
        )
        rows = []

    with _local_copy(job) as path:
        for row in iter_rows(
            path, job.original_filename, max_rows=settings.MAX_IMPORT_ROWS, warnings=warnings
        ):
            sequence += 1
            row["_seq"] = sequence
            rows.append(row)
            if len(rows) == size:
                close_batch()
            if len(pending) >= 500:
                ImportBatch.objects.bulk_create(pending)
                pending.clear()
        if rows:
            close_batch()
        ImportBatch.objects.bulk_create(pending)
    ImportBatch.objects.filter(job=job).update(total_batches=batch_number)
    return sequence, batch_number


def _job_fail_unreadable(job: ImportJob, message: str) -> None:
    ImportBatch.objects.filter(job=job).delete()
    ImportJob.objects.filter(pk=job.pk).exclude(status__in=ImportJob.TERMINAL).update(
        status=ImportJob.Status.FAILED, error_message=message, stage="", finished_at=timezone.now()
    )
    logger.info("job failed: file rejected", extra={"job_id": job.pk})


def import_enqueue(*, job: ImportJob, batch_ids: list | None = None) -> int:
    """Queue one standardize task per queued batch, all through one broker connection."""
    broker = get_broker(BATCH_CLUSTER)
    ids = batch_ids
    if ids is None:
        ids = ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED).values_list(
            "id", flat=True
        )
    count = 0
    # A list, not a cursor: the ORM broker closes old connections on every enqueue, which would
    # close a SQLite cursor mid-iteration.
    for batch_id in list(ids):
        async_task("processing.tasks.standardize_batch", str(batch_id), broker=broker, cluster=BATCH_CLUSTER)
        count += 1
    return count


# --- Standardize (the seed's DeepSeek Caller) ------------------------------------------------


@dataclass
class _Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def batch_standardize(*, batch_id: uuid.UUID | str) -> str:
    """Standardize one batch and store its leads; returns the batch's final status.

    Safe to run twice for the same batch (a redelivered task): only the claim holder writes.
    """
    token = uuid.uuid4()
    now = timezone.now()
    lease = now + timedelta(seconds=settings.BATCH_LEASE_SECONDS)
    claimable = Q(status=ImportBatch.Status.QUEUED) | Q(
        status=ImportBatch.Status.RUNNING, lease_until__lt=now
    )
    claimed = ImportBatch.objects.filter(claimable, pk=batch_id, attempts__lt=MAX_BATCH_ATTEMPTS).update(
        status=ImportBatch.Status.RUNNING,
        claim_token=token,
        lease_until=lease,
        started_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        logger.info("batch not claimable (done, running or exhausted)", extra={"batch_id": batch_id})
        return ImportBatch.objects.filter(pk=batch_id).values_list("status", flat=True).first() or ""
    batch = ImportBatch.objects.select_related("job").get(pk=batch_id)
    job = batch.job
    extra = {"job_id": job.pk, "batch_id": batch.pk, "batch_number": batch.batch_number}
    if job.status != ImportJob.Status.PROCESSING:
        _batch_close(
            batch, _claimed(token), ImportBatch.Status.SKIPPED, "The import was cancelled.", _Usage()
        )
        return ImportBatch.Status.SKIPPED
    usage = _Usage(extra=extra)
    try:
        leads = _standardize(batch.rows, usage)
    except deepseek.DeepSeekConfigError as exc:
        _batch_close(batch, _claimed(token), ImportBatch.Status.FAILED, exc.user_message, usage)
        _job_stop_on_config_error(job, exc.user_message)
        return ImportBatch.Status.FAILED
    except deepseek.DeepSeekError as exc:
        _batch_close(batch, _claimed(token), ImportBatch.Status.FAILED, exc.user_message, usage)
        return ImportBatch.Status.FAILED
    except Exception:
        logger.exception("standardizer crashed", extra=extra)
        _batch_close(
            batch, _claimed(token), ImportBatch.Status.FAILED, "Unexpected error while standardizing.", usage
        )
        return ImportBatch.Status.FAILED
    cleaned = [validate_lead(raw, lead) for raw, lead in zip(batch.rows, leads, strict=True)]
    _batch_store(batch, token, cleaned, usage)
    return ImportBatch.Status.DONE


def _standardize(rows: list[dict], usage: _Usage) -> list:
    started = time.monotonic()
    try:
        if not deepseek.is_configured():
            return offline_standardize(rows)
        try:
            leads, completion = deepseek.standardize_rows(rows, guard=llm_slot, log_extra=usage.extra)
        except deepseek.DeepSeekError as exc:
            usage.calls += exc.attempts
            raise
        usage.calls += completion.attempts
        usage.prompt_tokens += completion.prompt_tokens
        usage.completion_tokens += completion.completion_tokens
        return leads
    finally:
        usage.seconds = time.monotonic() - started


def _batch_store(batch: ImportBatch, token: uuid.UUID, cleaned: list, usage: _Usage) -> None:
    """Upsert the leads and mark the batch done in one transaction; a lost claim rolls both back."""
    counts = {"created": 0, "updated": 0, "skipped": 0}
    results = []
    with transaction.atomic():
        usable = [(index, lead) for index, lead in enumerate(cleaned) if not lead.skip_reason]
        stored = leads_upsert(
            rows=[
                (
                    {FIELD_NAMES.get(name, name): value for name, value in lead.fields.items()},
                    batch.rows[index],
                )
                for index, lead in usable
            ],
            job=batch.job,
            source_file=batch.source_file,
        )
        outcomes = {index: outcome for (index, _), outcome in zip(usable, stored, strict=True)}
        for index, (raw, lead) in enumerate(zip(batch.rows, cleaned, strict=True)):
            outcome = outcomes.get(index) or RowOutcome("skipped", reason=lead.skip_reason)
            counts[outcome.outcome] += 1
            results.append(_result(raw, outcome.outcome, outcome.reason, outcome.lead_id))
        closed = ImportBatch.objects.filter(_claimed(token), pk=batch.pk).update(
            status=ImportBatch.Status.DONE,
            results=results,
            finished_at=timezone.now(),
            last_error="",
            lease_until=None,
            llm_calls=F("llm_calls") + usage.calls,
            llm_seconds=F("llm_seconds") + usage.seconds,
        )
        if not closed:
            raise transaction.TransactionManagementError("batch claim lost before commit")
        ImportJob.objects.filter(pk=batch.job_id).update(
            completed_batches=F("completed_batches") + 1,
            leads_created=F("leads_created") + counts["created"],
            leads_updated=F("leads_updated") + counts["updated"],
            rows_skipped=F("rows_skipped") + counts["skipped"],
            **_usage_updates(usage),
        )
        _job_finish_if_done(batch.job_id)
    logger.info(
        "batch done: %(created)s created, %(updated)s updated, %(skipped)s skipped",
        counts,
        extra={"job_id": batch.job_id, "batch_id": batch.pk, "duration_ms": int(usage.seconds * 1000)},
    )


def _result(raw: dict, outcome: str, reason: str, lead_id: int | None) -> dict:
    return {
        "row": raw.get("_row"),
        "worksheet": raw.get("_worksheet", ""),
        "outcome": outcome,
        "reason": reason,
        "lead_id": lead_id,
    }


def _usage_updates(usage: _Usage) -> dict:
    return {
        "llm_calls": F("llm_calls") + usage.calls,
        "prompt_tokens": F("prompt_tokens") + usage.prompt_tokens,
        "completion_tokens": F("completion_tokens") + usage.completion_tokens,
    }


QUEUED = Q(status=ImportBatch.Status.QUEUED)


def _claimed(token: uuid.UUID) -> Q:
    return Q(status=ImportBatch.Status.RUNNING, claim_token=token)


def _batch_close(batch: ImportBatch, claim: Q, status: str, reason: str, usage: _Usage) -> bool:
    """End a batch as failed or skipped (every row gets that outcome and reason), counted once:
    only while `claim` still matches the batch row."""
    row_outcome = "failed" if status == ImportBatch.Status.FAILED else "skipped"
    results = [_result(raw, row_outcome, reason, None) for raw in batch.rows]
    with transaction.atomic():
        closed = ImportBatch.objects.filter(claim, pk=batch.pk).update(
            status=status,
            results=results,
            last_error=reason if status == ImportBatch.Status.FAILED else "",
            finished_at=timezone.now(),
            lease_until=None,
            llm_calls=F("llm_calls") + usage.calls,
            llm_seconds=F("llm_seconds") + usage.seconds,
        )
        if not closed:
            return False
        if status == ImportBatch.Status.FAILED:
            counters = {
                "failed_batches": F("failed_batches") + 1,
                "rows_failed": F("rows_failed") + len(batch.rows),
            }
        else:
            counters = {
                "skipped_batches": F("skipped_batches") + 1,
                "rows_skipped": F("rows_skipped") + len(batch.rows),
            }
        ImportJob.objects.filter(pk=batch.job_id).update(**counters, **_usage_updates(usage))
        _job_finish_if_done(batch.job_id)
    level = logging.WARNING if status == ImportBatch.Status.FAILED else logging.INFO
    logger.log(level, "batch %s: %s", status, reason, extra={"job_id": batch.job_id, "batch_id": batch.pk})
    return True


def _job_finish_if_done(job_id) -> None:
    """The batch that brings done+failed+skipped to the total finishes the job — exactly once,
    because only a job still `processing` matches."""
    finished = F("completed_batches") + F("failed_batches") + F("skipped_batches")
    ImportJob.objects.filter(
        pk=job_id, status=ImportJob.Status.PROCESSING, total_batches__lte=finished
    ).exclude(total_batches=0).update(
        status=Case(
            When(completed_batches=0, failed_batches__gt=0, then=Value(ImportJob.Status.FAILED)),
            When(failed_batches__gt=0, then=Value(ImportJob.Status.COMPLETED_WITH_ERRORS)),
            default=Value(ImportJob.Status.COMPLETED),
        ),
        stage="",
        finished_at=timezone.now(),
    )


def _job_stop_on_config_error(job: ImportJob, message: str) -> None:
    """A rejected key or request fails every batch the same way: stop calling, keep them re-runnable."""
    ImportJob.objects.filter(pk=job.pk, error_message="").update(error_message=message)
    for batch in ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED).iterator():
        _batch_close(batch, QUEUED, ImportBatch.Status.FAILED, message, _Usage())


@contextlib.contextmanager
def llm_slot() -> Iterator[int]:
    """Hold one of DEEPSEEK_CONCURRENCY permits for one model call, across every process.

    A permit is a row taken with a conditional update and given back afterwards; its lease
    frees it if the holder dies, so no long transaction is held during the HTTP call.
    """
    limit = settings.DEEPSEEK_CONCURRENCY
    token = uuid.uuid4().hex
    # Longer than one HTTP attempt can take, so a live holder never loses its permit.
    lease = timedelta(seconds=settings.DEEPSEEK_CONNECT_TIMEOUT + settings.DEEPSEEK_READ_TIMEOUT + 5)
    delay = 0.02
    while True:
        now = timezone.now()
        free = Q(holder="") | Q(lease_until__lt=now)
        numbers = list(LlmSlot.objects.filter(free, number__lt=limit).values_list("number", flat=True))
        random.shuffle(numbers)
        slot = next(
            (
                n
                for n in numbers
                if LlmSlot.objects.filter(free, number=n).update(holder=token, lease_until=now + lease)
            ),
            None,
        )
        if slot is not None:
            break
        if not numbers and LlmSlot.objects.filter(number__lt=limit).count() < limit:
            _llm_slots_create(limit)
            continue
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.25)
    try:
        yield slot
    finally:
        LlmSlot.objects.filter(number=slot, holder=token).update(holder="", lease_until=None)


def _llm_slots_create(limit: int) -> None:
    LlmSlot.objects.bulk_create([LlmSlot(number=n) for n in range(limit)], ignore_conflicts=True)


# --- Cancel, retry, recovery -----------------------------------------------------------------


def import_cancel(*, job: ImportJob) -> bool:
    """Cancel an import that is still running: queued batches are skipped, running ones finish,
    no new model calls start. Returns False when the job had already ended."""
    with transaction.atomic():
        cancelled = ImportJob.objects.filter(pk=job.pk, status__in=ImportJob.ACTIVE).update(
            status=ImportJob.Status.CANCELLED, stage="", finished_at=timezone.now()
        )
        if not cancelled:
            return False
        queued = list(ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED))
    for batch in queued:
        _batch_close(batch, QUEUED, ImportBatch.Status.SKIPPED, "The import was cancelled.", _Usage())
    logger.info("job cancelled", extra={"job_id": job.pk})
    job.refresh_from_db()
    return True


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
            transaction.on_commit(lambda: import_enqueue(job=job, batch_ids=ids))
    logger.info("retrying %s failed batches", len(ids), extra={"job_id": job.pk})
    job.refresh_from_db()
    return ids


def batches_requeue_stale(*, older_than: timedelta | None = None) -> int:
    """Recover work a dead worker or a lost broker message left behind (run every minute).

    Running batches whose lease ran out are queued again, or failed after MAX_BATCH_ATTEMPTS. A job
    whose queued batches have seen no progress for `older_than` (its messages were lost, e.g. with
    the Redis broker, which has no receipts) gets fresh tasks for them; a duplicate task is
    harmless, only one claim succeeds.
    """
    now = timezone.now()
    older_than = older_than or timedelta(seconds=settings.BATCH_LEASE_SECONDS)
    cutoff = now - older_than
    expired = ImportBatch.objects.filter(
        job__status=ImportJob.Status.PROCESSING, status=ImportBatch.Status.RUNNING, lease_until__lt=now
    )
    still_expired = Q(status=ImportBatch.Status.RUNNING, lease_until__lt=now)
    for batch in expired.filter(attempts__gte=MAX_BATCH_ATTEMPTS):
        reason = "The worker processing this batch stopped repeatedly."
        _batch_close(batch, still_expired, ImportBatch.Status.FAILED, reason, _Usage())
    stale_ids = list(expired.filter(attempts__lt=MAX_BATCH_ATTEMPTS).values_list("id", flat=True))
    for job in _jobs_stalled(cutoff):
        stale_ids += list(job.batches.filter(status=ImportBatch.Status.QUEUED).values_list("id", flat=True))
    if stale_ids:
        import_enqueue(job=None, batch_ids=stale_ids)
        logger.warning("re-enqueued %s stale batches", len(stale_ids))
    _jobs_recover(cutoff)
    return len(stale_ids)


def _jobs_stalled(cutoff) -> list[ImportJob]:
    """Processing jobs with queued batches, nothing running and nothing finished since `cutoff`."""
    stalled = []
    for job in ImportJob.objects.filter(status=ImportJob.Status.PROCESSING, total_batches__gt=0):
        batches = job.batches.all()
        if not batches.filter(status=ImportBatch.Status.QUEUED).exists():
            continue
        if batches.filter(status=ImportBatch.Status.RUNNING).exists():
            continue
        last = batches.aggregate(last=Max("finished_at"))["last"] or job.started_at
        if last is None or last < cutoff:
            stalled.append(job)
    return stalled


def _jobs_recover(cutoff) -> None:
    """Jobs whose split task was lost are queued again; a split that died half-way fails the job."""
    for job_id in ImportJob.objects.filter(
        status=ImportJob.Status.UPLOADED, created_at__lt=cutoff
    ).values_list("id", flat=True):
        async_task("processing.tasks.split_import", str(job_id))
    for job in ImportJob.objects.filter(
        status=ImportJob.Status.PROCESSING, total_batches=0, started_at__lt=cutoff
    ):
        _job_fail_unreadable(job, "The import stopped while reading the file. Please upload it again.")


def imports_active_for(*, user) -> QuerySet[ImportJob]:
    """The imports a user's status panel shows: theirs that are still running."""
    return ImportJob.objects.filter(uploaded_by=user, status__in=ImportJob.ACTIVE).order_by("created_at")


# --- Undo -------------------------------------------------------------------------------------

# Revision times equal the lead's updated_at as written; the tolerance only absorbs database rounding.
UNDO_CLOCK_TOLERANCE = timedelta(seconds=1)
_UNDO_CHUNK = 500


class UndoRefused(Exception):
    """The import cannot be undone; str() says why, for the user."""


@dataclass(frozen=True)
class UndoResult:
    deleted: int
    restored: int

    def __str__(self) -> str:
        return f"Import undone: {self.deleted:,} leads removed, {self.restored:,} leads restored."


@dataclass
class _LeadWrites:
    """This import's writes of one lead: the first says how to undo, the last when it ended."""

    first_revision_id: int
    first_action: str
    first_at: datetime
    last_at: datetime


@transaction.atomic
def import_undo(*, job: ImportJob, user=None) -> UndoResult:
    """Remove the leads an import created and give the leads it updated their previous values.

    Refused (UndoRefused, nothing changed) while the import runs, when it was undone already, and
    when anything changed one of its leads afterwards: a later edit (updated_at), a later import
    that has not been undone itself, or a lead now attributed to another import. Undoing imports
    newest first therefore works: each undo restores the older import's state exactly.
    """
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.undone_at:
        raise UndoRefused("This import was already undone.")
    if not job.is_terminal:
        raise UndoRefused("This import is still running. Cancel it first, then undo it.")
    if job.batches.filter(status=ImportBatch.Status.RUNNING).exists():
        raise UndoRefused("A batch of this import is still being stored. Try again in a minute.")
    writes = _undo_writes(job)
    if not writes:
        raise UndoRefused("There is nothing to undo: no lead written by this import remains.")
    changed = _undo_changed_leads(job, writes)
    if changed:
        were = "lead was" if changed == 1 else "leads were"
        raise UndoRefused(f"{changed:,} {were} changed by a later import since; undo is not possible.")
    created = [lead_id for lead_id, w in writes.items() if w.first_action == LeadRevision.Action.CREATED]
    restored_revisions = [
        w.first_revision_id for w in writes.values() if w.first_action == LeadRevision.Action.UPDATED
    ]
    for chunk in _chunks(created):
        Lead.objects.filter(pk__in=chunk).delete()
    for chunk in _chunks(restored_revisions):
        _leads_restore(chunk)
    ImportJob.objects.filter(pk=job.pk).update(undone_at=timezone.now(), undone_by=user)
    logger.info(
        "import undone: %s leads removed, %s restored",
        len(created),
        len(restored_revisions),
        extra={"job_id": job.pk},
    )
    return UndoResult(deleted=len(created), restored=len(restored_revisions))


def _undo_writes(job: ImportJob) -> dict[int, _LeadWrites]:
    writes: dict[int, _LeadWrites] = {}
    revisions = (
        LeadRevision.objects.filter(job=job)
        .order_by("created_at", "id")
        .values_list("id", "lead_id", "action", "created_at")
    )
    for revision_id, lead_id, action, created_at in revisions.iterator(chunk_size=2000):
        if lead_id in writes:
            writes[lead_id].last_at = created_at
        else:
            writes[lead_id] = _LeadWrites(revision_id, action, created_at, created_at)
    return writes


def _undo_changed_leads(job: ImportJob, writes: dict[int, _LeadWrites]) -> int:
    """How many of the import's leads something else wrote after it (locking them meanwhile)."""
    changed: set[int] = set()
    for chunk in _chunks(list(writes)):
        leads = Lead.objects.select_for_update().filter(pk__in=chunk)
        for lead_id, updated_at, import_job_id in leads.values_list("id", "updated_at", "import_job_id"):
            if import_job_id != job.pk or updated_at > writes[lead_id].last_at + UNDO_CLOCK_TOLERANCE:
                changed.add(lead_id)
        later = (
            LeadRevision.objects.filter(lead_id__in=chunk, job__undone_at__isnull=True)
            .exclude(job=job)
            .values_list("lead_id", "created_at")
        )
        changed.update(lead_id for lead_id, at in later if at > writes[lead_id].first_at)
    return len(changed)


def _leads_restore(revision_ids: list[int]) -> None:
    """Give each revision's lead the values it had before that revision."""
    revisions = list(LeadRevision.objects.filter(pk__in=revision_ids).only("lead_id", "before"))
    # The import that wrote a lead before may have been deleted since (the lead then says None).
    referenced = {revision.before["import_job_id"] for revision in revisions} - {None}
    existing = {str(pk) for pk in ImportJob.objects.filter(pk__in=referenced).values_list("pk", flat=True)}
    for revision in revisions:
        before = revision.before
        values = {name: before[name] for name in SNAPSHOT_FIELDS}
        values["import_job_id"] = before["import_job_id"] if before["import_job_id"] in existing else None
        # update() rather than save(): updated_at goes back too, so an older import stays undoable.
        values["updated_at"] = datetime.fromisoformat(before["updated_at"])
        Lead.objects.filter(pk=revision.lead_id).update(**values)


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), _UNDO_CHUNK):
        yield items[start : start + _UNDO_CHUNK]


# --- Problem rows -----------------------------------------------------------------------------

PROBLEM_OUTCOMES = ("skipped", "failed")


def import_problems_lines(*, job: ImportJob) -> Iterator[str]:
    """The import's skipped and failed rows as CSV lines (BOM first): worksheet, row, outcome,
    reason, then the raw columns of those rows in first-seen order.

    Reads the batches twice (once for the header) rather than holding the rows in memory.
    """
    headers: dict[str, None] = {}
    for raw, _result in _problem_rows(job):
        headers.update(dict.fromkeys(name for name in raw if not name.startswith("_")))
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralize_cell(cell) for cell in cells])
        return buffer.getvalue()

    yield "\ufeff"
    yield line(["worksheet", "row", "outcome", "reason", *headers])
    for raw, result in _problem_rows(job):
        described = [result["worksheet"], result["row"], result["outcome"], result["reason"]]
        yield line([*described, *(raw.get(name, "") for name in headers)])


def _problem_rows(job: ImportJob) -> Iterator[tuple[dict, dict]]:
    batches = ImportBatch.objects.filter(job=job).order_by("batch_number").only("rows", "results")
    for batch in batches.iterator(chunk_size=100):
        # A queued batch has no results yet; a finished one has one per row, in order.
        for raw, result in zip(batch.rows, batch.results, strict=False):
            if result["outcome"] in PROBLEM_OUTCOMES:
                yield raw, result
