"""Bulk import from the command line through the same services and tasks as the web upload."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection, connections

from llm import client
from processing import review, services, tasks
from processing.models import ImportBatch, ImportJob


def _run_batch(batch_id: str) -> str:
    try:
        return tasks.batch_standardize(batch_id)
    finally:
        connection.close()  # each pool thread has its own connection


def _drain(job_id: str, tries: int) -> None:
    """Run the batch task for the first still-queued batch of the job until none is left. Each task
    stores a chunk of queued batches (STORE_CHUNK_BATCHES), so this hands over one batch a chunk;
    several processes can drain one job side by side (each claim takes different batches)."""
    pending = ImportBatch.objects.filter(job_id=job_id, status=ImportBatch.Status.QUEUED).order_by(
        "batch_number"
    )
    for _ in range(tries):  # each claim uses an attempt: this bounds the loop
        batch_id = pending.values_list("pk", flat=True).first()
        if batch_id is None:
            return
        tasks.batch_standardize(str(batch_id))


def _drain_in_child(job_id: str, tries: int) -> None:
    try:
        _drain(job_id, tries)
    finally:
        connections.close_all()


class Command(BaseCommand):
    help = (
        "Import lead files (CSV, XLSX, XLS) through the full pipeline. By default runs in this process "
        "with a progress bar; --queue hands the files to the task workers instead."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="*", type=Path, help="lead files to import")
        parser.add_argument("--queue", action="store_true", help="enqueue for the workers, print job ids")
        parser.add_argument("--retry-failed", metavar="JOB_ID", help="re-run the failed batches of an import")
        parser.add_argument("--cancel", metavar="JOB_ID", help="cancel a running import")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        parser.add_argument(
            "--mapping",
            type=Path,
            metavar="FILE.json",
            help='column roles to use: {"Header": "email", …} or {"Sheet": {"Header": "email"}}',
        )
        parser.add_argument(
            "--review", action="store_true", help="print what the import would do, and import nothing"
        )

    def handle(self, *args, **options) -> None:
        self.show_progress = not options["no_progress"] and sys.stderr.isatty()
        if options["verbosity"] < 2:
            # The per-batch JSON log lines are for the workers' logs, not for this terminal.
            logging.getLogger("easycrm").setLevel(logging.WARNING)
        if options["cancel"]:
            return self._cancel(options["cancel"])
        if options["retry_failed"]:
            return self._retry(options["retry_failed"], queue=options["queue"])
        if not options["files"]:
            raise CommandError("Name at least one file, or use --retry-failed / --cancel.")
        mapping = self._mapping(options["mapping"]) if options["mapping"] else None
        if options["review"]:
            return self._review(options["files"], mapping)
        failures = 0
        for path in options["files"]:
            job = self._start(path, queue=options["queue"], mapping=mapping)
            if options["queue"]:
                self.stdout.write(f"{job.pk}  {path}  {job.get_status_display()}")
                failures += job.status == ImportJob.Status.FAILED
                continue
            # The workers' path, with this process as the worker: the split task's service, then the
            # batch task for each batch it would have queued.
            batch_ids = services.import_split(job_id=job.pk, enqueue=False)
            if batch_ids:
                self._run(job, batch_ids)
            job.refresh_from_db()
            failures += self._summary(job, path)
        if failures:
            raise CommandError(
                f"{failures} of {len(options['files'])} file(s) did not complete.", returncode=1
            )

    def _start(
        self, path: Path, *, queue: bool, mapping: dict | None = None, review_mode: str = ""
    ) -> ImportJob:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        # A mapping is applied when the file is split, so the job must not be queued before it is set.
        enqueue = queue and not mapping
        with path.open("rb") as handle:
            job = services.import_start(
                file=File(handle, name=path.name),
                filename=path.name,
                enqueue=enqueue,
                review_mode=review_mode or ImportJob.Review.NEVER,
            )
        if mapping and job.status == ImportJob.Status.UPLOADED:
            review.mapping_apply(job, mapping)
            if queue:
                services.split_enqueue(job.pk)
        return job

    def _mapping(self, path: Path) -> dict:
        try:
            return review.mapping_from_file(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from exc

    def _review(self, paths: list[Path], mapping: dict | None) -> None:
        """The review screen as text: sheets, columns with their roles and why, the first rows before →
        after, and what the import would do to the database. The jobs are discarded afterwards."""
        for path in paths:
            job = self._start(path, queue=False, mapping=mapping, review_mode=ImportJob.Review.ALWAYS)
            services.import_split(job_id=job.pk, enqueue=False)
            job.refresh_from_db()
            if job.status != ImportJob.Status.REVIEW:
                self.stdout.write(f"{path}: {job.get_status_display()}. {job.error_message}".rstrip())
                services.file_delete(job)
                job.delete()
                continue
            self.stdout.write(review.review_text(job, path.name))
            review.review_discard(job=job)

    def _run(self, job: ImportJob, batch_ids: list) -> None:
        tries = len(batch_ids) * services.MAX_BATCH_ATTEMPTS
        processes = min(settings.IMPORT_PROCESSES, -(-len(batch_ids) // settings.STORE_CHUNK_BATCHES))
        if not client.is_configured() and processes > 1:
            # The offline standardizer is CPU-bound: threads would only contend for the GIL, processes
            # use every core. Forked after closing our connections; each child opens its own.
            connections.close_all()
            context = multiprocessing.get_context("fork")
            with context.Pool(processes) as pool:
                done = pool.starmap_async(_drain_in_child, [(str(job.pk), tries)] * processes)
                while not done.ready():
                    self._progress(job)
                    done.wait(0.5)
                done.get()  # re-raise a crash instead of hiding it
        elif not client.is_configured():
            _drain(str(job.pk), tries)
        else:
            # Threads wait on the model; the LLM permits, not the pool size, bound the calls in flight.
            close_old_connections()
            with ThreadPoolExecutor(
                max_workers=settings.DEEPSEEK_CONCURRENCY, thread_name_prefix="batch"
            ) as pool:
                futures = [pool.submit(_run_batch, str(batch_id)) for batch_id in batch_ids]
                while not all(future.done() for future in futures):
                    self._progress(job)
                    time.sleep(0.5)
                for future in futures:
                    future.result()  # re-raise a crash instead of hiding it
        self._progress(job, final=True)

    def _progress(self, job: ImportJob, final: bool = False) -> None:
        if not self.show_progress:
            return
        job.refresh_from_db()
        width = 30
        filled = int(width * job.progress_percent / 100)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if final else ""
        sys.stderr.write(
            f"\r{job.original_filename[:30]:30} [{bar}] {job.progress_percent:3d}% "
            f"{job.finished_batches}/{job.total_batches} batches{end}"
        )
        sys.stderr.flush()

    def _summary(self, job: ImportJob, path: Path) -> int:
        if job.status == ImportJob.Status.FAILED and not job.total_batches:
            self.stderr.write(f"{path}: failed: {job.error_message}")
            return 1
        self.stdout.write(
            f"{path}: {job.get_status_display().lower()}: {job.total_rows} rows, {job.leads_created} created, "
            f"{job.leads_updated} updated, {job.rows_unchanged} unchanged, {job.rows_skipped} skipped, {job.failed_batches} failed batches, "
            f"{job.llm_calls} LLM calls, {job.prompt_tokens + job.completion_tokens} tokens (job {job.pk})"
        )
        for warning in job.warnings:
            self.stderr.write(f"{path}: warning: {warning}")
        if job.status != ImportJob.Status.COMPLETED:
            reason = (
                job.error_message
                or f"{job.failed_batches} batch(es) failed; re-run with --retry-failed {job.pk}"
            )
            self.stderr.write(f"{path}: {reason}")
            return 1
        return 0

    def _job(self, job_id: str) -> ImportJob:
        try:
            return ImportJob.objects.get(pk=job_id)
        except (ImportJob.DoesNotExist, ValidationError) as exc:
            raise CommandError(f"No import with id {job_id}.") from exc

    def _cancel(self, job_id: str) -> None:
        job = self._job(job_id)
        if not services.import_cancel(job=job):
            raise CommandError(f"Import {job.pk} has already ended ({job.get_status_display()}).")
        self.stdout.write(f"{job.pk} cancelled")

    def _retry(self, job_id: str, *, queue: bool) -> None:
        job = self._job(job_id)
        batch_ids = services.import_retry_failed(job=job, enqueue=queue)
        if not batch_ids:
            raise CommandError(
                f"Import {job.pk} has no failed batches to retry ({job.get_status_display()})."
            )
        self.stdout.write(f"{job.pk}: retrying {len(batch_ids)} failed batch(es)")
        if not queue:
            self._run(job, batch_ids)
            job.refresh_from_db()
            if self._summary(job, Path(job.original_filename)):
                raise CommandError("Some batches failed again.", returncode=1)
