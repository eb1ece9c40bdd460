"""The processing tests' upload helper (sample files and CSV writers: easycrm.testing.files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files import File

from processing import services
from processing.models import ImportJob


@pytest.fixture
def import_file(django_capture_on_commit_callbacks):
    """Upload a file the way the web upload does and let the (synchronous) task queue run it."""

    def run(path: Path, *, name: str | None = None, user=None) -> ImportJob:
        with path.open("rb") as handle, django_capture_on_commit_callbacks(execute=True):
            job = services.import_start(
                file=File(handle, name=path.name), filename=name or path.name, user=user
            )
        job.refresh_from_db()
        return job

    return run
