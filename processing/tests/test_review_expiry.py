"""An import left waiting for its review expires: the sweeper discards it with its stored file after
IMPORT_REVIEW_EXPIRE_HOURS (processing.review.reviews_expire)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files import File
from django.utils import timezone

from easycrm.testing.files import write_csv
from processing import review, services, tasks
from processing.models import ImportBatch, ImportJob

pytestmark = pytest.mark.django_db

HEADER = ["Contact", "Firma", "fld_3"]
ROWS = [["Ana Lima", "Acme GmbH", "ana@acme.example"], ["Bo Chen", "Beta Ltd", "bo@beta.example"]]


def _waiting(tmp_path: Path, name: str, captured, *, age: timedelta) -> ImportJob:
    path = write_csv(tmp_path / name, HEADER, ROWS)
    with path.open("rb") as handle, captured(execute=True):
        job = services.import_start(
            file=File(handle, name=path.name), filename=path.name, user=None, review_mode="always"
        )
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - age)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REVIEW
    return job


def test_the_sweeper_discards_a_review_left_longer_than_the_setting_with_its_file(
    tmp_path, django_capture_on_commit_callbacks, settings
):
    settings.IMPORT_REVIEW_EXPIRE_HOURS = 48
    old = _waiting(tmp_path, "old.csv", django_capture_on_commit_callbacks, age=timedelta(hours=49))
    recent = _waiting(tmp_path, "recent.csv", django_capture_on_commit_callbacks, age=timedelta(hours=47))
    old_file, recent_file = Path(old.file.path), Path(recent.file.path)
    assert old_file.exists() and ImportBatch.objects.filter(job=old).exists()

    tasks.imports_sweep()  # the scheduled task

    assert not ImportJob.objects.filter(pk=old.pk).exists()
    assert not old_file.exists()
    assert not ImportBatch.objects.filter(job_id=old.pk).exists()
    recent.refresh_from_db()
    assert recent.status == ImportJob.Status.REVIEW and recent_file.exists()


def test_only_imports_waiting_for_review_expire(tmp_path, django_capture_on_commit_callbacks, settings):
    settings.IMPORT_REVIEW_EXPIRE_HOURS = 1
    confirmed = _waiting(tmp_path, "confirmed.csv", django_capture_on_commit_callbacks, age=timedelta(0))
    with django_capture_on_commit_callbacks(execute=True):
        review.review_confirm(job=confirmed, user=None)
    ImportJob.objects.filter(pk=confirmed.pk).update(created_at=timezone.now() - timedelta(days=30))
    cancelled = _waiting(
        tmp_path, "cancelled.csv", django_capture_on_commit_callbacks, age=timedelta(days=30)
    )
    services.import_cancel(job=cancelled)

    assert review.reviews_expire() == 0
    statuses = dict(ImportJob.objects.values_list("pk", "status"))
    assert statuses == {confirmed.pk: ImportJob.Status.COMPLETED, cancelled.pk: ImportJob.Status.CANCELLED}


def test_the_default_keeps_a_review_for_a_week(settings):
    assert settings.IMPORT_REVIEW_EXPIRE_HOURS == 7 * 24
