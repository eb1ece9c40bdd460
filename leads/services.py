"""Writing and exporting leads: the upsert every import path uses, the restore that undoes it, and the
one CSV writer."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from .models import LEAD_FIELDS, Lead, LeadRevision

if TYPE_CHECKING:
    from processing.models import ImportJob

EXPORT_HEADER = (
    "lead_id",
    "first_name",
    "last_name",
    "title",
    "company",
    "email",
    "phone",
    "remarks",
    "source_file",
    "worksheet",
    "source_row",
    "created_at",
    "updated_at",
)
# OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def normalize_email(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True)
class LeadInput:
    """One row to store: its standardized fields and where it came from."""

    fields: dict[str, str]  # model field names (LEAD_FIELDS); missing ones are empty
    cells: dict[str, str]  # the source row as read, kept on the lead as `raw`
    worksheet: str = ""
    row: int | None = None  # 1-based row number in its sheet
    seq: int | None = None  # position within its import: the later row wins


@dataclass(frozen=True)
class RowOutcome:
    outcome: str  # created | updated | skipped | failed
    reason: str = ""
    lead_id: int | None = None


def leads_by_email(emails: list[str]) -> dict[str, Lead]:
    """The existing leads for these (normalized) emails, locked for the rest of the transaction.

    One query per batch instead of one per row; locked in email order so two batches that share
    emails wait for each other instead of deadlocking.
    """
    wanted = sorted({email for email in emails if email})
    if not wanted:
        return {}
    # exclude(email="") repeats the partial unique index's condition: without it SQLite scans the
    # whole table (measured: imports slowed from 413 to 61 leads/s at 30k leads).
    queryset = Lead.objects.select_for_update().filter(email__in=wanted).exclude(email="").order_by("email")
    return {lead.email: lead for lead in queryset}


def leads_upsert(*, rows: list[LeadInput], job: ImportJob | None, source_file: str) -> list[RowOutcome]:
    """Upsert a batch of rows in file order; one outcome per row, same order.

    Rows with a new email (or none) are inserted with one bulk insert; rows whose email the database
    or an earlier row of the batch already has go through lead_upsert one by one, after it, so the
    later row still wins. If the bulk insert loses a race to another batch, every row takes the
    row-by-row path.
    """
    known = leads_by_email([normalize_email(row.fields.get("email", "")) for row in rows])
    outcomes: list[RowOutcome | None] = [None] * len(rows)
    fresh: list[tuple[int, Lead]] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        values, provenance = _lead_values(row, job, source_file)
        email = values["email"]
        if email and (email in known or email in seen):
            continue
        seen.add(email)
        fresh.append((index, Lead(**values, **provenance)))
    if fresh:
        try:
            with transaction.atomic():
                created = Lead.objects.bulk_create([lead for _, lead in fresh])
                if job is not None:
                    LeadRevision.objects.bulk_create(
                        LeadRevision(
                            lead=lead, job=job, action=LeadRevision.Action.CREATED, created_at=lead.updated_at
                        )
                        for lead in created
                    )
        except IntegrityError:
            fresh = []  # another batch inserted one of these emails meanwhile
        for index, lead in fresh:
            outcomes[index] = RowOutcome("created", lead_id=lead.pk)
            if lead.email:
                known[lead.email] = lead
    for index, row in enumerate(rows):
        if outcomes[index] is None:
            outcomes[index] = lead_upsert(row=row, job=job, source_file=source_file, known=known)
    return outcomes


_WORKSHEET_MAX_LENGTH = Lead._meta.get_field("worksheet").max_length


def _lead_values(row: LeadInput, job: ImportJob | None, source_file: str) -> tuple[dict, dict]:
    """A row's lead fields (email normalized) and its provenance, as Lead keyword arguments."""
    values = {name: row.fields.get(name, "") for name in LEAD_FIELDS}
    values["email"] = normalize_email(values["email"])
    provenance = {
        "source_file": source_file,
        "worksheet": row.worksheet[:_WORKSHEET_MAX_LENGTH],
        "source_row": row.row,
        "source_sequence": row.seq,
        "raw": dict(row.cells),
        "import_job": job,
    }
    return values, provenance


def lead_upsert(
    *,
    row: LeadInput,
    job: ImportJob | None,
    source_file: str,
    known: dict[str, Lead] | None = None,
) -> RowOutcome:
    """Create a lead, or update the one with the same email (the later row wins).

    A value that is empty in the new row does not erase what the lead already has. Rows without an
    email always create. Runs in a savepoint so a concurrent insert of the same email (caught by the
    unique constraint) is retried as an update instead of failing the batch. `known` (from
    leads_by_email, in this transaction) spares the lookup query and is kept up to date.
    """
    values, provenance = _lead_values(row, job, source_file)
    email = values["email"]
    if not email:
        with transaction.atomic():
            lead = Lead.objects.create(**values, **provenance)
            _revision_record(lead, job, LeadRevision.Action.CREATED)
        return RowOutcome("created", lead_id=lead.pk)
    for attempt in range(3):
        if known is not None and attempt == 0:
            existing = known.get(email)
        else:
            existing = leads_by_email([email]).get(email)
        if existing is not None:
            if known is not None:
                known[email] = existing
            return _lead_merge(existing, values, provenance, job)
        try:
            with transaction.atomic():
                lead = Lead.objects.create(**values, **provenance)
                _revision_record(lead, job, LeadRevision.Action.CREATED)
        except IntegrityError:
            continue  # another batch created this email a moment ago: update it instead
        if known is not None:
            known[email] = lead
        return RowOutcome("created", lead_id=lead.pk)
    raise IntegrityError(f"could not upsert lead after repeated conflicts (job {job and job.pk})")


def _lead_merge(lead: Lead, values: dict, provenance: dict, job: ImportJob | None) -> RowOutcome:
    sequence = provenance["source_sequence"]
    same_import = job is not None and lead.import_job_id == job.pk
    if same_import and sequence is not None and (lead.source_sequence or 0) > sequence:
        # A later row of this same file was stored first (batches run concurrently): it wins.
        return RowOutcome("updated", reason="A later row with the same email was kept.", lead_id=lead.pk)
    before = _lead_snapshot(lead)
    changed = [name for name, value in values.items() if value and getattr(lead, name) != value]
    for name in changed:
        setattr(lead, name, values[name])
    for name, value in provenance.items():
        setattr(lead, name, value)
    lead.save(update_fields=[*changed, *provenance.keys(), "updated_at"])
    _revision_record(lead, job, LeadRevision.Action.UPDATED, before)
    return RowOutcome("updated", lead_id=lead.pk)


# What an import may change on a lead, and so what undoing it puts back (see LeadRevision.before).
SNAPSHOT_FIELDS = (*LEAD_FIELDS, "source_file", "worksheet", "source_row", "source_sequence", "raw")


def _lead_snapshot(lead: Lead) -> dict:
    """The lead's importable fields and provenance as JSON-ready values."""
    snapshot = {name: getattr(lead, name) for name in SNAPSHOT_FIELDS}
    snapshot["import_job_id"] = str(lead.import_job_id) if lead.import_job_id else None
    snapshot["updated_at"] = lead.updated_at.isoformat()
    return snapshot


def leads_restore(*, revision_ids: list[int]) -> None:
    """Give each revision's lead the values it had before that revision (the undo of an update)."""
    revisions = list(LeadRevision.objects.filter(pk__in=revision_ids).only("lead_id", "before"))
    # The import that wrote a lead before may have been deleted since (the lead then says None).
    referenced = {revision.before["import_job_id"] for revision in revisions} - {None}
    jobs = Lead.import_job.field.related_model.objects.filter(pk__in=referenced)
    existing = {str(pk) for pk in jobs.values_list("pk", flat=True)}
    for revision in revisions:
        before = revision.before
        values = {name: before[name] for name in SNAPSHOT_FIELDS}
        values["import_job_id"] = before["import_job_id"] if before["import_job_id"] in existing else None
        # update() rather than save(): updated_at goes back too, so an older import stays undoable.
        values["updated_at"] = datetime.fromisoformat(before["updated_at"])
        Lead.objects.filter(pk=revision.lead_id).update(**values)


def _revision_record(lead: Lead, job: ImportJob | None, action: str, before: dict | None = None) -> None:
    if job is None:
        return  # not written by an import: nothing could undo it
    # created_at = the lead's new updated_at, so "changed since this write" is a plain comparison.
    LeadRevision.objects.create(
        lead=lead, job=job, action=action, before=before or {}, created_at=lead.updated_at
    )


def neutralize_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _export_row(lead: Lead) -> tuple:
    return (
        lead.pk,
        lead.first_name,
        lead.last_name,
        lead.title,
        lead.company,
        lead.email,
        lead.phone,
        lead.remarks,
        lead.source_file,
        lead.worksheet,
        lead.source_row if lead.source_row is not None else "",
        lead.created_at.isoformat(),
        lead.updated_at.isoformat(),
    )


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def csv_lines(
    header: Iterable[object], rows: Iterable[Iterable[object]], *, bom: bool = True
) -> Iterator[str]:
    """A CSV file as lines to stream (the lead export, an import's problem rows): UTF-8 BOM first so
    Excel reads the accents, every cell neutralized against formula injection."""
    writer = csv.writer(_Echo())
    if bom:
        yield "\ufeff"
    yield writer.writerow([neutralize_cell(cell) for cell in header])
    for row in rows:
        yield writer.writerow([neutralize_cell(cell) for cell in row])


def leads_export_lines(queryset: QuerySet[Lead] | None = None, *, bom: bool = True) -> Iterator[str]:
    """Yield the export CSV line by line, reading the database in chunks (constant memory)."""
    queryset = Lead.objects.all() if queryset is None else queryset
    return csv_lines(EXPORT_HEADER, map(_export_row, queryset.iterator(chunk_size=2000)), bom=bom)


def leads_export_write(out, queryset: QuerySet[Lead] | None = None) -> int:
    """Write the export CSV to a text stream; returns the number of leads written."""
    lines = leads_export_lines(queryset)
    out.write(next(lines) + next(lines))  # BOM and header
    count = 0
    for count, line in enumerate(lines, start=1):  # noqa: B007
        out.write(line)
    return count
