"""Undoing an import: remove the leads it created and give the leads it updated their previous values
(from the LeadRevision rows the upsert wrote)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from leads.models import Lead, LeadRevision
from leads.services import leads_restore

from .models import ImportBatch, ImportJob
from .services import file_delete

logger = logging.getLogger("easycrm.pipeline")

# Revision times equal the lead's updated_at as written; the tolerance only absorbs database rounding.
UNDO_CLOCK_TOLERANCE = timedelta(seconds=1)
_UNDO_CHUNK = 500


class UndoRefused(Exception):
    """The import cannot be undone; str() says why, for the user."""


@dataclass(frozen=True)
class UndoResult:
    """What an undo did, said with the import summary's numbers (`created`, `updated`: its rows)
    and, where they differ, the leads actually removed and restored."""

    deleted: int  # leads removed: those the import created that still existed
    restored: int  # leads given their previous values: those it updated that existed before it
    created: int = 0  # ImportJob.leads_created
    updated: int = 0  # ImportJob.leads_updated

    def __str__(self) -> str:
        created, updated = max(self.created, self.deleted), max(self.updated, self.restored)
        text = (
            f"Import undone: {created:,} created lead{_s(created)} removed, "
            f"{updated:,} update{_s(updated)} reverted."
        )
        if created > self.deleted:
            text += f" {created - self.deleted:,} of the created leads had been deleted already."
        if updated > self.restored:
            # The other updated rows were of leads this import created (gone with them) or kept later rows.
            text += f" {self.restored:,} lead{_s(self.restored)} got {_their(self.restored)} previous values back."
        return text


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _their(count: int) -> str:
    return "its" if count == 1 else "their"


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
        leads_restore(revision_ids=chunk)
    ImportJob.objects.filter(pk=job.pk).update(undone_at=timezone.now(), undone_by=user)
    # An undone import is never retried: nothing will read its file again.
    transaction.on_commit(lambda: file_delete(job))
    logger.info(
        "import undone: %s leads removed, %s restored",
        len(created),
        len(restored_revisions),
        extra={"job_id": job.pk},
    )
    return UndoResult(
        deleted=len(created),
        restored=len(restored_revisions),
        created=job.leads_created,
        updated=job.leads_updated,
    )


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


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), _UNDO_CHUNK):
        yield items[start : start + _UNDO_CHUNK]
