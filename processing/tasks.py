"""django-q2 task entry points: thin wrappers that take an id and call the service of the same name."""

from __future__ import annotations

from . import review, services


def import_split(job_id: str) -> int:
    return len(services.import_split(job_id=job_id))


def batch_standardize(batch_id: str) -> str:
    return services.batch_standardize(batch_id=batch_id)


def imports_sweep() -> int:
    review.reviews_expire()
    return services.imports_sweep()
