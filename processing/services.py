"""The import pipeline: upload → split into batches → standardize each batch → upsert leads.

The web upload, the `import_leads` command and the task workers all call these functions; see
docs/pipeline.md for the state machine and the guarantees (exactly-once counting, leases).
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Case, F, Max, Q, QuerySet, Value, When
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from leads.services import lead_upsert

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
    for batch_id in ids.iterator() if hasattr(ids, "iterator") else ids:
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
        for raw, lead in zip(batch.rows, cleaned, strict=True):
            if lead.skip_reason:
                outcome_name, reason, lead_id = "skipped", lead.skip_reason, None
            else:
                fields = {FIELD_NAMES.get(name, name): value for name, value in lead.fields.items()}
                outcome = lead_upsert(fields=fields, raw=raw, job=batch.job, source_file=batch.source_file)
                outcome_name, reason, lead_id = outcome.outcome, outcome.reason, outcome.lead_id
            counts[outcome_name] += 1
            results.append(_result(raw, outcome_name, reason, lead_id))
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
    lease = timedelta(seconds=settings.DEEPSEEK_CONNECT_TIMEOUT + settings.DEEPSEEK_READ_TIMEOUT + 30)
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
        failed = list(ImportBatch.objects.filter(job=job, status=ImportBatch.Status.FAILED))
        if not failed or job.status not in (ImportJob.Status.COMPLETED_WITH_ERRORS, ImportJob.Status.FAILED):
            return []
        rows = sum(len(batch.rows) for batch in failed)
        ImportBatch.objects.filter(pk__in=[b.pk for b in failed]).update(
            status=ImportBatch.Status.QUEUED, attempts=0, results=[], claim_token=None, lease_until=None
        )
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.PROCESSING,
            failed_batches=F("failed_batches") - len(failed),
            rows_failed=F("rows_failed") - rows,
            error_message="",
            finished_at=None,
            stage="Retrying failed batches…",
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
