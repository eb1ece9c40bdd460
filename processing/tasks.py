"""django-q2 task entry points: thin wrappers that take an id and call one service."""

from __future__ import annotations

from . import services
from .models import ImportJob


def split_import(job_id: str) -> None:
    job = ImportJob.objects.get(pk=job_id)
    if services.import_split(job=job):
        services.import_enqueue(job=job)


def standardize_batch(batch_id: str) -> str:
    return services.batch_standardize(batch_id=batch_id)


def requeue_stale_batches() -> int:
    return services.batches_requeue_stale()
