from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files import File

from processing import services
from processing.models import ImportJob

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"sample files not found at {SAMPLES}")
    return SAMPLES


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


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def people(count: int, *, domain: str = "example.com") -> list[list[str]]:
    return [
        [f"First{i}", f"Last{i}", f"Company {i % 7}", f"person{i}@{domain}", f"+1 415 555 {i % 10000:04d}"]
        for i in range(count)
    ]


HEADER = ["First Name", "Last Name", "Company", "Email", "Phone"]
