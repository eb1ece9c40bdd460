"""An import's problem rows: the skipped and failed rows as a CSV download, with their reasons."""

from __future__ import annotations

from collections.abc import Iterator

from leads.services import csv_lines

from .models import ImportBatch, ImportJob
from .parsing import SourceRow

PROBLEM_OUTCOMES = ("skipped", "failed")


def import_problems_lines(*, job: ImportJob) -> Iterator[str]:
    """The import's skipped and failed rows as CSV lines (BOM first): worksheet, row, outcome,
    reason, then the source columns of those rows in first-seen order.

    Reads the batches twice (once for the header) rather than holding the rows in memory.
    """
    headers: dict[str, None] = {}
    for row, _result in _problem_rows(job):
        headers.update(dict.fromkeys(row.cells))
    described = ("worksheet", "row", "outcome", "reason")
    lines = (
        [result["worksheet"], result["row"], result["outcome"], result["reason"]]
        + [row.cells.get(name, "") for name in headers]
        for row, result in _problem_rows(job)
    )
    return csv_lines([*described, *headers], lines)


def _problem_rows(job: ImportJob) -> Iterator[tuple[SourceRow, dict]]:
    batches = ImportBatch.objects.filter(job=job).order_by("batch_number").only("rows", "results")
    for batch in batches.iterator(chunk_size=100):
        # A queued batch has no results yet; a finished one has one per row, in order.
        for row, result in zip(batch.source_rows, batch.results, strict=False):
            if result["outcome"] in PROBLEM_OUTCOMES:
                yield row, result
