"""Writing and exporting leads: the upsert every import path uses, the restore that undoes it, and the
one CSV writer."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from easycrm.fields import PAIRS_KEY, dumps

from .editing import leads_edited_fields
from .models import LEAD_FIELDS, Lead, LeadChange, LeadRevision

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


# What an import may change on a lead, and so what undoing it puts back (see LeadRevision.before).
PROVENANCE_FIELDS = ("source_file", "worksheet", "source_row", "source_sequence", "raw")
SNAPSHOT_FIELDS = (*LEAD_FIELDS, *PROVENANCE_FIELDS)

_EMAIL = LEAD_FIELDS.index("email")
_PHONE = LEAD_FIELDS.index("phone")
_NAME_PARTS = tuple(LEAD_FIELDS.index(name) for name in ("first_name", "last_name", "company"))
# Provenance as the upsert holds it (raw apart, as its JSON text).
_PROVENANCE = PROVENANCE_FIELDS[:-1]
_NOTHING_BEFORE = dumps({})  # LeadRevision.before of a creation


class _Record:
    """A lead as the upsert sees it: database values as the driver gives them — fields in LEAD_FIELDS
    order, provenance in _PROVENANCE order, raw as its stored JSON text, the import job's id undecoded,
    updated_at as its isoformat() text made by the database. Building a Lead per row and reading it
    back field by field was most of the cost of storing a chunk; decoding raw and parsing datetimes
    most of the rest."""

    __slots__ = (
        "pk",
        "values",
        "provenance",
        "raw",
        "job_id",
        "updated_at",
        "edited",
        "created",
        "before",
        "changed",
    )

    def __init__(self, pk, values: list, provenance: tuple, raw: str, job_id, updated_at, edited: bool):
        self.pk = pk
        self.values = values
        self.provenance = provenance
        self.raw = raw
        self.job_id = job_id  # the database's value (a hex string on SQLite, a UUID on PostgreSQL)
        self.updated_at = updated_at  # isoformat() text; None for a lead this upsert creates
        self.edited = edited  # a person changed one of its LEAD_FIELDS (leads.LeadChange)
        self.created = updated_at is None
        self.before: _Record | None = None  # an existing lead as it was before this upsert changed it
        self.changed: set[int] | None = None  # indexes into LEAD_FIELDS this upsert changed

    @classmethod
    def read(cls, where: str, params: list, order: str = "") -> list[_Record]:
        """The leads matching `where`, locked (FOR UPDATE where the database has it; SQLite's write
        lock is the transaction's). Plain SQL: the ORM's per-value lookup preparation and per-row
        converters were half the lookup's cost."""
        quote = connection.ops.quote_name
        meta = Lead._meta
        raw = quote("raw") + ("::text" if connection.vendor == "postgresql" else "")
        table = quote(meta.db_table)
        edited = (
            f"EXISTS (SELECT 1 FROM {quote(LeadChange._meta.db_table)} c "  # noqa: S608
            f"WHERE c.{quote('lead_id')} = {table}.{quote('id')} AND c.{quote('field')} IN ({_marks(LEAD_FIELDS)}))"
        )
        columns = [quote(meta.get_field(name).column) for name in _READ_FIELDS]
        columns.append(_updated_at_sql(connection.vendor))
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        # Names from the model's own _meta, quoted; values are parameters.
        sql = (
            f"SELECT {', '.join(columns)}, {raw}, {edited} FROM {table} "  # noqa: S608
            f"WHERE {where}{order}{lock}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*LEAD_FIELDS, *params])
            rows = cursor.fetchall()
        return [cls(r[0], list(r[1:8]), r[8:12], r[14], r[12], r[13], bool(r[15])) for r in rows]

    def copy(self) -> _Record:
        return _Record(
            self.pk, list(self.values), self.provenance, self.raw, self.job_id, self.updated_at, self.edited
        )

    def snapshot(self) -> str:
        """LeadRevision.before for this lead: its importable fields and provenance as OrderedJSONField
        stores them, raw spliced in as the text it was stored as."""
        head = json.dumps(list(zip(_SNAPSHOT_HEAD, (*self.values, *self.provenance), strict=True)))
        job_id = _job_text(self.job_id) if self.job_id else None
        tail = json.dumps([["import_job_id", job_id], ["updated_at", self.updated_at]])
        return f'{{"{PAIRS_KEY}": {head[:-1]}, ["raw", {self.raw}], {tail[1:]}}}'


_SNAPSHOT_HEAD = (*LEAD_FIELDS, *_PROVENANCE)


@functools.lru_cache(maxsize=256)
def _job_text(job_id) -> str:
    """An import's id as the snapshot holds it (the UUID's text), from the database's value."""
    return str(uuid.UUID(str(job_id)))


# What _Record.read selects before raw and the edited flag, in this order.
_READ_FIELDS = ("id", *LEAD_FIELDS, *_PROVENANCE, "import_job")


@functools.cache
def _updated_at_sql(vendor: str) -> str:
    """updated_at as the text datetime.isoformat() gives for it, made by the database (_IsoformatText,
    the export's): a snapshot's updated_at, and an order for the loose-key lookup's candidates."""
    query = Lead.objects.annotate(iso=_IsoformatText("updated_at")).query
    sql, params = query.get_compiler(connection=connection).compile(query.annotations["iso"])
    if params:
        raise ValueError("_IsoformatText takes no parameters")
    return sql


def _marks(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def leads_by_email(emails: list[str]) -> dict[str, _Record]:
    """The existing leads for these (normalized) emails, locked for the rest of the transaction.

    One query per chunk of rows; locked in email order, the one global order every writer uses, so two
    imports that share emails wait for each other instead of deadlocking.
    """
    wanted = sorted({email for email in emails if email})
    found: dict[str, _Record] = {}
    email = connection.ops.quote_name("email")
    # NOT (email = '') repeats the partial unique index's condition: without it SQLite scans the whole
    # table (measured: imports slowed from 413 to 61 leads/s at 30k leads). Chunks of 500 stay under
    # every database's parameter limit.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        where = f"{email} IN ({_marks(chunk)}) AND NOT ({email} = '')"
        found.update((r.values[_EMAIL], r) for r in _Record.read(where, chunk, f" ORDER BY {email}"))
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

    One locked lookup, one insert of the new leads (in email order), executemany updates of the changed
    ones and one insert of their revisions (what undo needs), all from plain tuples. If another
    transaction inserts one of the new emails meanwhile, the whole upsert runs again in a fresh
    savepoint and finds it — as often as it takes while each run finds more of its emails than the
    one before (every lost race is a lead another writer committed, so this ends within the number of
    new emails however many writers overlap); a run that finds nothing new raises the IntegrityError.
    """
    by_email: list[int] = []  # how many leads each run's lookup found by email
    while True:
        try:
            with transaction.atomic():
                return _leads_upsert(rows, job, source_file, by_email)
        except IntegrityError:
            if len(by_email) > 1 and by_email[-1] <= by_email[-2]:
                raise


MATCHED_BY_PHONE = "No email: matched by phone."
MATCHED_BY_NAME = "No email: matched by first name, last name and company."
_MATCHED = {"p": MATCHED_BY_PHONE, "n": MATCHED_BY_NAME}


RESTORED_IN_FILE = "A later row of this file gives the lead the values it already had."


def _leads_upsert(
    rows: list[LeadInput], job: ImportJob | None, source_file: str, by_email: list[int]
) -> list[RowOutcome]:
    worksheet_max = _WORKSHEET_MAX_LENGTH
    prepared = [
        (
            _lead_values(row),
            (source_file, row.worksheet[:worksheet_max], row.row, row.seq),
            row.cells,
        )
        for row in rows
    ]
    existing = leads_by_email([values[_EMAIL] for values, _, _ in prepared])
    by_email.append(len(existing))
    without_email = [values for values, _, _ in prepared if not values[_EMAIL]]
    loose = _leads_by_loose_keys(without_email) if without_email else {}
    found = (*existing.values(), *loose.values())
    written_by = _jobs_created_at({record.job_id for record in found} - {None})
    edited = leads_edited_fields({record.pk for record in found if record.edited})
    job_id = _job_value(job.pk) if job is not None else None
    job_order = job.created_at if job is not None else None
    targets: dict[str, _Record] = {}  # match key (see _match_keys) → the lead it names in this upsert
    by_lead: dict[int, _Record] = {}  # existing lead id → its record: one per lead, however matched
    fresh: list[_Record] = []
    outcomes: list[tuple[str, str, _Record, bool]] = []
    for values, provenance, cells in prepared:
        keys = _match_keys(values)
        key = target = None
        # Key by key, in their order: a lead this upsert already wrote is newer than any the lookup read.
        for k in keys:
            if k in targets:
                key, target = k, targets[k]
                break
            lead = _existing_lead([k], existing, loose)[1]
            if lead is not None:
                key, target = k, by_lead.setdefault(lead.pk, lead)
                break
        if target is None:
            target = _Record(None, list(values), provenance, dumps(cells), job_id, None, edited=False)
            fresh.append(target)
            targets.update(dict.fromkeys(keys, target))
            # A later row without an email finds this lead by its phone or name + company, as it
            # would in the next chunk (where the lookup reads it from the table).
            targets.update(dict.fromkeys(_loose_keys(target.values), target))
            outcomes.append(("created", "", target, False))
            continue
        targets.update((k, target) for k in keys if k not in targets)
        matched = _MATCHED.get(key[0], "") if key else ""
        current = target.values
        untouched = not target.created and target.before is None
        if untouched and _written_later(target, written_by, job_id, job_order, provenance[3]):
            same_job = job is not None and target.job_id == job_id
            outcomes.append(("updated", LATER_ROW_KEPT if same_job else LATER_UPLOAD_KEPT, target, False))
            continue
        changed = [index for index, value in enumerate(values) if value and current[index] != value]
        people_edited = edited.get(target.pk) if target.edited else None
        kept = [index for index in changed if LEAD_FIELDS[index] in people_edited] if people_edited else []
        if kept:
            changed = [index for index in changed if index not in kept]
            labels = ", ".join(Lead._meta.get_field(LEAD_FIELDS[index]).verbose_name for index in kept)
            matched = " ".join(filter(None, [matched, f"Kept what a person edited: {labels}."]))
        if not changed:
            outcomes.append(("unchanged", matched, target, bool(kept)))
            continue
        if untouched:
            target.before = target.copy()
            target.changed = set()
        for index in changed:
            current[index] = values[index]
        target.provenance, target.raw, target.job_id = provenance, dumps(cells), job_id
        if target.changed is not None:
            target.changed.update(changed)
        # Now the most recently updated lead: it wins its phone and name keys, as in the lookup.
        targets.update(dict.fromkeys(_loose_keys(current), target))
        outcomes.append(("updated", matched, target, bool(kept)))

    # Rows of one file that change a lead and then change it back (the same email twice, with the
    # original values last) leave it as it was: nothing is written and their rows are unchanged.
    restored = set()
    for record in by_lead.values():
        before = record.before
        if before is not None and record.values == before.values:
            record.provenance, record.raw, record.job_id = before.provenance, before.raw, before.job_id
            record.before = record.changed = None
            restored.add(id(record))
    if restored:
        outcomes = [
            ("unchanged", RESTORED_IN_FILE, target, kept)
            if id(target) in restored
            and outcome == "updated"
            and reason not in (LATER_ROW_KEPT, LATER_UPLOAD_KEPT)
            else (outcome, reason, target, kept)
            for outcome, reason, target, kept in outcomes
        ]
    now = timezone.now()
    _leads_insert(fresh, job_id, now)
    updated = [record for record in by_lead.values() if record.before is not None]
    _leads_update_rows(updated, now)
    if job is not None:
        _revisions_insert(fresh, updated, job_id, now)
    return [RowOutcome(outcome, reason, target.pk, kept) for outcome, reason, target, kept in outcomes]


_WORKSHEET_MAX_LENGTH = Lead._meta.get_field("worksheet").max_length


def _lead_values(row: LeadInput) -> tuple[str, ...]:
    """A row's lead fields in LEAD_FIELDS order, email normalized."""
    fields = row.fields
    values = [fields.get(name, "") for name in LEAD_FIELDS]
    values[_EMAIL] = normalize_email(values[_EMAIL])
    return tuple(values)


def _db_value(model: type[models.Model], name: str, value) -> object:
    """A field's database value, computed once for every row of a chunk that shares it."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def _leads_insert(fresh: list[_Record], job_id, now: datetime) -> None:
    """Insert the new leads in email order — the order of the lookup, so concurrent inserts of the same
    emails wait instead of deadlocking — with ids allocated first (they name the rows' outcomes)."""
    if not fresh:
        return
    fresh.sort(key=lambda record: record.values[_EMAIL])
    for record, pk in zip(fresh, _allocate_ids(Lead, len(fresh)), strict=True):
        record.pk = pk
    stamp = _db_value(Lead, "updated_at", now)
    rows_insert(
        Lead,
        ("id", *LEAD_FIELDS, *_PROVENANCE, "raw", "import_job", "created_at", "updated_at"),
        [(r.pk, *r.values, *r.provenance, r.raw, job_id, stamp, stamp) for r in fresh],
    )


def _revisions_insert(fresh: list[_Record], updated: list[_Record], job_id, now: datetime) -> None:
    """One LeadRevision per lead written, created_at = the lead's new updated_at, so "changed since this
    write" is a plain comparison."""
    created_at = _db_value(LeadRevision, "created_at", now)
    created, updated_action = LeadRevision.Action.CREATED.value, LeadRevision.Action.UPDATED.value
    rows_insert(
        LeadRevision,
        ("lead", "job", "action", "before", "created_at"),
        [(r.pk, job_id, created, _NOTHING_BEFORE, created_at) for r in fresh]
        + [(r.pk, job_id, updated_action, r.before.snapshot(), created_at) for r in updated],
    )


def _allocate_ids(model: type[models.Model], count: int) -> Iterable[int]:
    """`count` unused ids for the model's table: a sequence range on PostgreSQL; on SQLite, past the
    AUTOINCREMENT high-water mark, under the write lock every transaction takes at BEGIN IMMEDIATE."""
    meta = model._meta
    quote = connection.ops.quote_name
    table = meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, meta.pk.column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX({quote(meta.pk.column)}), 0) FROM {quote(table)}")  # noqa: S608
        highest = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        start = max(highest, row[0] if row else 0) + 1
        return range(start, start + count)


def rows_insert(model: type[models.Model], names: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT rows of database values (one per field in `names`): COPY on PostgreSQL, executemany on
    SQLite. Every other column gets its field's default, computed once; the primary key, unless named,
    its database's next id. QuerySet.bulk_create's per-object work (instances, pre_save, per-value
    preparation) was about half the cost of storing a lead (and of writing an import's batches); this
    sends the same rows with the database driver's own loop."""
    if not rows:
        return
    meta = model._meta
    named = {meta.get_field(name) for name in names}
    defaults = [
        field
        for field in meta.concrete_fields
        if field not in named
        and not field.primary_key
        and (field.has_default() or not field.has_db_default())
    ]
    if defaults:
        extra = tuple(field.get_db_prep_save(field.get_default(), connection) for field in defaults)
        rows = [(*row, *extra) for row in rows]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in names) + "".join(
        f", {quote(field.column)}" for field in defaults
    )
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: a tenth of executemany's client CPU per row; a unique violation raises IntegrityError
            # as an INSERT would (leads_upsert retries).
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * (len(names) + len(defaults)))
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def _leads_update_rows(updated: list[_Record], now: datetime) -> None:
    """One `UPDATE … WHERE id = %s` per lead with executemany — a fraction of the cost of
    QuerySet.bulk_update's CASE WHEN per field (measured: 0.95 ms a lead with it) — setting only what
    changed on that lead (a column left out of SET also leaves its indexes alone), grouped by the
    columns set."""
    if not updated:
        return
    stamp = _db_value(Lead, "updated_at", now)
    groups: dict[tuple[str, ...], list[list]] = {}
    for record in updated:
        before = record.before
        fields = sorted(record.changed)
        names = [LEAD_FIELDS[index] for index in fields]
        params = [record.values[index] for index in fields]
        for name, value, old in zip(_PROVENANCE, record.provenance, before.provenance, strict=True):
            if value != old:
                names.append(name)
                params.append(value)
        names.append("raw")
        params.append(record.raw)
        if record.job_id != before.job_id:
            names.append("import_job")
            params.append(record.job_id)
        params += [stamp, record.pk]
        groups.setdefault(tuple(names), []).append(params)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for names, params in groups.items():
            if connection.vendor == "postgresql":
                _leads_update_from_json(cursor, names, params)
                continue
            columns = [Lead._meta.get_field(name).column for name in (*names, "updated_at")]
            assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
            # Names from the model's own _meta, quoted; values are parameters.
            sql = f"UPDATE {quote(Lead._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
            cursor.executemany(sql, params)


def _leads_update_from_json(cursor, names: tuple[str, ...], rows: list[list]) -> None:
    """PostgreSQL: one group's updates as one `UPDATE … FROM jsonb_to_recordset(%s)`, the rows (values
    of `names`, updated_at, id) sent as one JSON text: executemany's statement per lead cost ~18 µs of
    client CPU, and arrays as parameters more (the client quotes every element)."""
    meta = Lead._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [*(meta.get_field(name) for name in names), meta.pk]
    columns = [quote(field.column) for field in fields]
    types = [field.db_type(connection) for field in fields]
    # raw travels as its JSON text (a string in the record) and is made jsonb again in SET.
    record_type = ", ".join(
        f"{column} {'text' if kind == 'jsonb' else kind}" for column, kind in zip(columns, types, strict=True)
    )
    sets = ", ".join(
        f"{column} = v.{column}{'::jsonb' if kind == 'jsonb' else ''}"
        for column, kind in zip(columns[:-1], types[:-1], strict=True)
    )
    keys = [field.column for field in fields]
    records = json.dumps([dict(zip(keys, (*row[:-2], row[-1]), strict=True)) for row in rows], default=str)
    key = columns[-1]
    # Names and types from the model's own _meta, quoted; values are parameters.
    sql = (
        f"UPDATE {table} SET {sets}, {quote('updated_at')} = %s "  # noqa: S608
        f"FROM jsonb_to_recordset(%s::jsonb) AS v({record_type}) WHERE {table}.{key} = v.{key}"
    )
    cursor.execute(sql, [rows[0][-2], records])


def _existing_lead(keys: list[str], by_email: dict[str, _Record], loose: dict[str, _Record]):
    """(the key that matched, the existing lead) for a row's keys, in their order; (None, None)."""
    for key in keys:
        lead = by_email.get(key[2:]) if key.startswith("e:") else loose.get(key)
        if lead is not None:
            return key, lead
    return None, None


def _match_keys(values: tuple[str, ...] | list[str]) -> list[str]:
    """The keys a row names its lead by: its email; without one (and DEDUPE_WITHOUT_EMAIL on) its
    phone, then first + last name + company — each prefixed with its kind (e:, p:, n:)."""
    if values[_EMAIL]:
        return ["e:" + values[_EMAIL]]
    return _loose_keys(values)


def _loose_keys(values: tuple[str, ...] | list[str]) -> list[str]:
    if not settings.DEDUPE_WITHOUT_EMAIL:
        return []
    keys = ["p:" + values[_PHONE]] if values[_PHONE] else []
    parts = [values[index] for index in _NAME_PARTS]
    if all(parts):
        keys.append("n:" + "|".join(part.casefold() for part in parts))
    return keys


def _leads_by_loose_keys(rows: list[tuple[str, ...]]) -> dict[str, _Record]:
    """Existing leads named by the phone or the name + company of rows without an email, by match key,
    locked (after the email lookup's locks); the most recently updated lead wins a key."""
    found: dict[str, _Record] = {}
    if not settings.DEDUPE_WITHOUT_EMAIL:
        return found
    phones = sorted({row[_PHONE] for row in rows if row[_PHONE]})
    names = {key[2:] for row in rows for key in _loose_keys(row) if key.startswith("n:")}
    candidates: list[_Record] = []
    quote = connection.ops.quote_name
    # Two queries, not one OR: each uses its own index (lead_phone_idx, lead_name_lower_idx).
    if phones:
        phone = quote("phone")
        candidates += _Record.read(f"{phone} IN ({_marks(phones)}) AND NOT ({phone} = '')", phones)
    if names:
        parts = [name.split("|") for name in names]
        columns = [sorted({part[index] for part in parts}) for index in (1, 0, 2)]
        where = " AND ".join(
            f"LOWER({quote(name)}) IN ({_marks(values)})"
            for name, values in zip(("last_name", "first_name", "company"), columns, strict=True)
        )
        candidates += _Record.read(where, [value for values in columns for value in values])
    candidates.sort(key=lambda record: (record.updated_at, record.pk), reverse=True)
    for record in candidates:
        for key in _loose_keys(record.values):
            if (key.startswith("p:") and key[2:] in phones) or (key.startswith("n:") and key[2:] in names):
                found.setdefault(key, record)
    return found


def _job_value(pk) -> object:
    """An import's id as the database gives lead.import_job_id back (what _Record holds)."""
    return Lead._meta.get_field("import_job").get_db_prep_value(pk, connection)


def _jobs_created_at(job_ids: set) -> dict:
    """created_at of these imports, by their id as the database gives it."""
    if not job_ids:
        return {}
    jobs = Lead.import_job.field.related_model.objects.filter(pk__in=job_ids)
    return {_job_value(pk): created_at for pk, created_at in jobs.values_list("pk", "created_at")}


def _written_later(lead: _Record, written_by: dict, job_id, job_order, sequence: int | None) -> bool:
    """Did a later row than this one write the lead: a later upload, or a later row of this upload?"""
    if job_id is None or lead.job_id is None:
        return False
    if lead.job_id == job_id:
        return sequence is not None and (lead.provenance[3] or 0) > sequence
    other = written_by.get(lead.job_id)
    return other is not None and job_order is not None and other > job_order


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
