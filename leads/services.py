"""Writing and exporting leads: the upsert every import path uses, the restore that undoes it, and the
one CSV writer."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from .editing import leads_edited_fields
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
    outcome: str  # created | updated | unchanged | skipped | failed
    reason: str = ""
    lead_id: int | None = None
    kept_edits: bool = False  # the row would have overwritten a value a person edited: it was kept


def leads_by_email(emails: list[str]) -> dict[str, Lead]:
    """The existing leads for these (normalized) emails, locked for the rest of the transaction.

    One query per chunk of rows; locked in email order, the one global order every writer uses, so two
    imports that share emails wait for each other instead of deadlocking.
    """
    wanted = sorted({email for email in emails if email})
    if not wanted:
        return {}
    found: dict[str, Lead] = {}
    # exclude(email="") repeats the partial unique index's condition: without it SQLite scans the
    # whole table (measured: imports slowed from 413 to 61 leads/s at 30k leads). Chunks of 500 stay
    # under every database's parameter limit.
    for start in range(0, len(wanted), 500):
        queryset = Lead.objects.select_for_update().filter(email__in=wanted[start : start + 500])
        found.update((lead.email, lead) for lead in queryset.exclude(email="").order_by("email"))
    return found


LATER_ROW_KEPT = "A later row with the same email was kept."
LATER_UPLOAD_KEPT = "A row of a later upload with the same email was kept."


def leads_upsert(*, rows: list[LeadInput], job: ImportJob | None, source_file: str) -> list[RowOutcome]:
    """Upsert rows (in file order) with set-based SQL; one outcome per row, same order.

    A row creates a lead, or updates the lead with its email: only with its non-empty values, and only
    when it comes later — later upload (ImportJob.created_at), then later row (LeadInput.seq) — than the
    row that last wrote the lead; an earlier row is reported as updated with the reason. A row that
    changes nothing is `unchanged`: the lead, its updated_at and its provenance stay as they were, and
    no revision is written. Rows without an email always create.

    One locked lookup, one bulk insert of the new leads (in email order), one bulk update of the changed
    ones and one bulk insert of their revisions (what undo needs). If another transaction inserts one of
    the new emails meanwhile, the whole upsert runs again in a fresh savepoint and finds it.
    """
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _leads_upsert(rows, job, source_file)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Target:
    lead: Lead
    created: bool
    before: dict | None = None  # snapshot of an existing lead before this upsert changed it
    changed: set[str] | None = None


MATCHED_BY_PHONE = "No email: matched by phone."
MATCHED_BY_NAME = "No email: matched by first name, last name and company."


def _leads_upsert(rows: list[LeadInput], job: ImportJob | None, source_file: str) -> list[RowOutcome]:
    prepared = [_lead_values(row, job, source_file) for row in rows]
    existing = leads_by_email([values["email"] for values, _ in prepared])
    loose = _leads_by_loose_keys([values for values, _ in prepared if not values["email"]])
    written_by = _jobs_created_at(
        {lead.import_job_id for lead in (*existing.values(), *loose.values())} - {None}
    )
    edited = leads_edited_fields({lead.pk for lead in (*existing.values(), *loose.values())})
    job_order = job.created_at if job is not None else None
    targets: dict[str, _Target] = {}  # match key (see _match_keys) → the lead it names in this upsert
    by_lead: dict[int, _Target] = {}  # existing lead id → its target: one per lead, however matched
    fresh: list[_Target] = []
    outcomes: list[tuple[str, str, _Target, bool]] = []
    for values, provenance in prepared:
        keys = _match_keys(values)
        key, target = next(((k, targets[k]) for k in keys if k in targets), (None, None))
        if target is None:
            key, lead = _existing_lead(keys, existing, loose)
            if lead is not None:
                target = by_lead.setdefault(lead.pk, _Target(lead, created=False))
        if target is None:
            target = _Target(Lead(**values, **provenance), created=True)
            fresh.append(target)
            targets.update(dict.fromkeys(keys, target))
            outcomes.append(("created", "", target, False))
            continue
        targets.update((k, target) for k in keys if k not in targets)
        matched = {"p": MATCHED_BY_PHONE, "n": MATCHED_BY_NAME}.get(key[0], "") if key else ""
        lead = target.lead
        untouched = not target.created and target.before is None
        if untouched and _written_later(lead, written_by, job, job_order, provenance["source_sequence"]):
            same_job = job is not None and lead.import_job_id == job.pk
            outcomes.append(("updated", LATER_ROW_KEPT if same_job else LATER_UPLOAD_KEPT, target, False))
            continue
        changed = [name for name, value in values.items() if value and getattr(lead, name) != value]
        kept = [name for name in changed if name in edited.get(lead.pk, ())] if not target.created else []
        if kept:
            changed = [name for name in changed if name not in kept]
            labels = ", ".join(Lead._meta.get_field(name).verbose_name for name in kept)
            matched = " ".join(filter(None, [matched, f"Kept what a person edited: {labels}."]))
        if not changed:
            outcomes.append(("unchanged", matched, target, bool(kept)))
            continue
        if not target.created and target.before is None:
            target.before = _lead_snapshot(lead)
            target.changed = set()
        for name in changed:
            setattr(lead, name, values[name])
        for name, value in provenance.items():
            setattr(lead, name, value)
        if target.changed is not None:
            target.changed.update(changed)
        outcomes.append(("updated", matched, target, bool(kept)))

    if fresh:
        # Email order, like the lookup: concurrent inserts of the same emails wait instead of deadlocking.
        _insert_rows(sorted((t.lead for t in fresh), key=lambda lead: lead.email))
    updated = [t for t in by_lead.values() if t.before is not None]
    now = timezone.now()
    if updated:
        fields = {"updated_at", "import_job", *PROVENANCE_FIELDS}
        for target in updated:
            target.lead.updated_at = now
            fields |= target.changed
        _leads_update_rows([t.lead for t in updated], sorted(fields))
    if job is not None:
        # created_at = the lead's new updated_at, so "changed since this write" is a plain comparison.
        revisions = [
            LeadRevision(
                lead=t.lead, job=job, action=LeadRevision.Action.CREATED, created_at=t.lead.updated_at
            )
            for t in fresh
        ] + [
            LeadRevision(
                lead=t.lead, job=job, action=LeadRevision.Action.UPDATED, before=t.before, created_at=now
            )
            for t in updated
        ]
        _insert_rows(revisions)
    return [RowOutcome(outcome, reason, target.lead.pk, kept) for outcome, reason, target, kept in outcomes]


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


def _insert_rows(objs: list) -> None:
    """INSERT model instances of one model with executemany, their ids allocated first (a sequence
    range on PostgreSQL; on SQLite, past the AUTOINCREMENT high-water mark, under the write lock every
    transaction takes at BEGIN IMMEDIATE). QuerySet.bulk_create's per-object compile work is about
    half the cost of storing a lead; this sends the same rows with the database driver's own loop."""
    if not objs:
        return
    meta = type(objs[0])._meta
    quote = connection.ops.quote_name
    table = meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, meta.pk.column, len(objs)],
            )
            ids = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute(f"SELECT COALESCE(MAX({quote(meta.pk.column)}), 0) FROM {quote(table)}")  # noqa: S608
            highest = cursor.fetchone()[0]
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            start = max(highest, row[0] if row else 0) + 1
            ids = range(start, start + len(objs))
        for obj, pk in zip(objs, ids, strict=True):
            obj.pk = pk
            obj._state.adding = False
        fields = meta.concrete_fields
        columns = ", ".join(quote(field.column) for field in fields)
        marks = ", ".join(["%s"] * len(fields))
        readers = [_column_value(field) for field in fields]
        params = [[read(obj) for read in readers] for obj in objs]
        cursor.executemany(f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks})", params)  # noqa: S608


# Field types whose Python value (a str, an int, a bool or None) is already what the driver takes.
_PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)


def _column_value(field):
    """A function giving an instance's database value for one column, skipping Django's per-value
    preparation where it would only return the value unchanged (the insert's main cost otherwise)."""
    attname = field.attname
    auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    if isinstance(field, _PLAIN_FIELDS) and not field.is_relation and not auto:
        return lambda obj: getattr(obj, attname)
    return lambda obj: field.get_db_prep_save(field.pre_save(obj, add=True), connection)


def _leads_update_rows(leads: list[Lead], field_names: list[str]) -> None:
    """One `UPDATE … WHERE id = %s` per lead, sent with executemany: a fraction of the cost of
    QuerySet.bulk_update's CASE WHEN per field (measured: 0.95 ms a lead with it)."""
    fields = [Lead._meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Names from the model's own _meta, quoted; values are parameters.
    sql = f"UPDATE {quote(Lead._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
    params = [
        [field.get_db_prep_save(getattr(lead, field.attname), connection) for field in fields] + [lead.pk]
        for lead in leads
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _existing_lead(keys: list[str], by_email: dict[str, Lead], loose: dict[str, Lead]):
    """(the key that matched, the existing lead) for a row's keys, in their order; (None, None)."""
    for key in keys:
        lead = by_email.get(key[2:]) if key.startswith("e:") else loose.get(key)
        if lead is not None:
            return key, lead
    return None, None


def _match_keys(values: dict) -> list[str]:
    """The keys a row names its lead by: its email; without one (and DEDUPE_WITHOUT_EMAIL on) its
    phone, then first + last name + company — each prefixed with its kind (e:, p:, n:)."""
    if values["email"]:
        return ["e:" + values["email"]]
    if not settings.DEDUPE_WITHOUT_EMAIL:
        return []
    keys = ["p:" + values["phone"]] if values["phone"] else []
    if values["first_name"] and values["last_name"] and values["company"]:
        keys.append(
            "n:" + "|".join(values[name].casefold() for name in ("first_name", "last_name", "company"))
        )
    return keys


def _leads_by_loose_keys(rows: list[dict]) -> dict[str, Lead]:
    """Existing leads named by the phone or the name + company of rows without an email, by match key,
    locked (after the email lookup's locks, in id order); the most recently updated lead wins a key."""
    phones = sorted({row["phone"] for row in rows if row["phone"]})
    names = {key[2:] for row in rows for key in _match_keys(row) if key.startswith("n:")}
    found: dict[str, Lead] = {}
    if not settings.DEDUPE_WITHOUT_EMAIL or not (phones or names):
        return found
    candidates: list[Lead] = []
    # Two queries, not one OR: each uses its own index (lead_phone_idx, lead_last_name_lower_idx).
    if phones:
        candidates += Lead.objects.select_for_update().filter(phone__in=phones).exclude(phone="")
    if names:
        parts = [name.split("|") for name in names]
        named = Lead.objects.select_for_update().alias(
            first=Lower("first_name"), last=Lower("last_name"), org=Lower("company")
        )
        candidates += named.filter(
            last__in=sorted({last for _, last, _ in parts}),
            first__in=sorted({first for first, _, _ in parts}),
            org__in=sorted({org for _, _, org in parts}),
        )
    candidates.sort(key=lambda lead: (lead.updated_at, lead.pk), reverse=True)
    for lead in candidates:
        for key in _match_keys({**{name: getattr(lead, name) for name in LEAD_FIELDS}, "email": ""}):
            if (key.startswith("p:") and key[2:] in phones) or (key.startswith("n:") and key[2:] in names):
                found.setdefault(key, lead)
    return found


def _jobs_created_at(job_ids: set) -> dict:
    if not job_ids:
        return {}
    jobs = Lead.import_job.field.related_model.objects.filter(pk__in=job_ids)
    return dict(jobs.values_list("pk", "created_at"))


def _written_later(lead: Lead, written_by: dict, job, job_order, sequence: int | None) -> bool:
    """Did a later row than this one write the lead: a later upload, or a later row of this upload?"""
    if job is None or lead.import_job_id is None:
        return False
    if lead.import_job_id == job.pk:
        return sequence is not None and (lead.source_sequence or 0) > sequence
    other = written_by.get(lead.import_job_id)
    return other is not None and job_order is not None and other > job_order


# What an import may change on a lead, and so what undoing it puts back (see LeadRevision.before).
PROVENANCE_FIELDS = ("source_file", "worksheet", "source_row", "source_sequence", "raw")
SNAPSHOT_FIELDS = (*LEAD_FIELDS, *PROVENANCE_FIELDS)


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


# A number or a phone as written ("+13128465155", "-5", "+49 (0)30 1234-56"): data, not a formula. With
# no letters, no "!" and no quotes it cannot call a function or another application, so it stays as is.
_PLAIN_NUMBER_RE = re.compile(r"[+-]?\d[\d .()\-/]*")


def neutralize_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): one starting with
    = + - @ tab or CR gets a leading apostrophe, unless it is a plain number or phone, so exported
    phones and amounts read back unchanged."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER_RE.fullmatch(text):
        return "'" + text
    return text


class _IsoformatText(models.Func):
    """A UTC datetime column as the text datetime.isoformat() gives for it ("2025-06-01T09:30:00+00:00",
    with ".ffffff" only when there are microseconds), made by the database: parsing a million datetimes
    into Python objects just to print them again was half of the export's time. For the two databases
    the project runs on, whose connections Django keeps in UTC (no TIME_ZONE in DATABASES)."""

    output_field = models.TextField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        utc = f"({column} AT TIME ZONE 'UTC')"
        sql = (
            f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
            f" || CASE WHEN date_trunc('second', {utc}) = {utc} THEN '' ELSE to_char({utc}, '.US') END"
            " || '+00:00'"
        )
        return sql, [*params, *params, *params, *params]

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores a UTC datetime as str(naive datetime): "2025-06-01 09:30:00[.ffffff]".
        column, params = compiler.compile(self.source_expressions[0])
        return f"replace({column}, ' ', 'T') || '+00:00'", params


# The datetimes as their text, then the exported columns as read from the database (EXPORT_HEADER's
# order).
_EXPORT_ANNOTATIONS = {f"export_{name}": _IsoformatText(name) for name in ("created_at", "updated_at")}
_EXPORT_COLUMNS = ("pk", *EXPORT_HEADER[1:-2], *_EXPORT_ANNOTATIONS)
# The text columns, which can start with a formula prefix; the others are ids, numbers (None for no
# source row: csv.writer writes it as "", as the lines before did) and the datetimes' text.
_EXPORT_TEXT = tuple(EXPORT_HEADER.index(name) for name in EXPORT_HEADER[1:10])
# Rows per yielded chunk: one string per thousand rows instead of one per row, yet a chunk stays a
# few hundred kilobytes, so memory does not grow with the export.
EXPORT_CHUNK_ROWS = 1000


def _export_row(values: tuple) -> tuple | list:
    """One row of _EXPORT_COLUMNS with every text cell neutralized (see neutralize_cell)."""
    row = values
    for index in _EXPORT_TEXT:
        # neutralize_cell returns a cell without a formula prefix unchanged: most cells skip the call,
        # and most rows the copy (phones such as "+13128465155" start with one, and stay as they are).
        if values[index].startswith(FORMULA_PREFIXES):
            if row is values:
                row = list(values)
            row[index] = neutralize_cell(values[index])
    return row


def _export_chunks(queryset: QuerySet[Lead]) -> Iterator[tuple[str, int]]:
    """The export's data rows as (CSV text, number of rows), EXPORT_CHUNK_ROWS rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = queryset.annotate(**_EXPORT_ANNOTATIONS).values_list(*_EXPORT_COLUMNS).iterator(chunk_size=2000)
    while chunk := list(islice(rows, EXPORT_CHUNK_ROWS)):
        writer.writerows(map(_export_row, chunk))
        yield buffer.getvalue(), len(chunk)
        buffer.seek(0)
        buffer.truncate()


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
    """Yield the export CSV: the BOM, the header line, then the rows a thousand at a time, read from
    the database in chunks (constant memory). The same bytes as csv_lines over the leads' cells."""
    queryset = Lead.objects.all() if queryset is None else queryset
    yield from csv_lines(EXPORT_HEADER, (), bom=bom)
    for text, _ in _export_chunks(queryset):
        yield text


def leads_export_write(out, queryset: QuerySet[Lead] | None = None) -> int:
    """Write the export CSV to a text stream; returns the number of leads written."""
    queryset = Lead.objects.all() if queryset is None else queryset
    out.write("".join(csv_lines(EXPORT_HEADER, ())))  # BOM and header
    count = 0
    for text, rows in _export_chunks(queryset):
        out.write(text)
        count += rows
    return count
