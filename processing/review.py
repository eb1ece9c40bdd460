"""The import review: between `uploaded` and `processing`, a person sees what an import will do — each
sheet, its header row, every column's role and why, the first rows as they will be stored, and the
created / updated / unchanged / skipped counts against the database — and corrects it before any lead
is written. A confirmed mapping is saved for its sheet's set of headers and used for the next such file.

The split (processing.services.import_split) stops here when `review_needed` says so. A person's choices
live in ImportJob.review and are applied on top of what the split judged (`apply_choices`); the batches
then run with them (`overrides`). See docs/importing.md, "Review before import".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leads.models import Lead, LeadRevision
from leads.services import leads_upsert
from llm import client

from .models import ImportBatch, ImportJob, SavedMapping
from .parsing import SourceRow
from .standardize import (
    ROLE_LABELS,
    SKIP_INSTRUCTIONS,
    CleanLead,
    ColumnRole,
    Role,
    deepseek_standardize,
    offline_standardize,
    validate_lead,
)

logger = logging.getLogger("easycrm.pipeline")

PREVIEW_ROWS = 10
SAMPLE_VALUES = 3
UPDATE_SAMPLES = 5
# The choices of the review's column dropdown, in its order: (value, label). "remarks" keeps each cell
# as a "Header: value" line, "ignore" drops the column.
CHOICES = (
    (Role.FIRST_NAME.value, "First name"),
    (Role.LAST_NAME.value, "Last name"),
    (Role.FULL_NAME.value, "Full name"),
    (Role.TITLE.value, "Title"),
    (Role.COMPANY.value, "Company"),
    (Role.EMAIL.value, "Email"),
    (Role.PHONE.value, "Phone"),
    ("remarks", "Remarks"),
    ("ignore", "Ignore (not imported)"),
)
CHOICE_VALUES = frozenset(value for value, _label in CHOICES)
CHOSEN = "chosen in review"
REMEMBERED = "saved mapping"
# Reasons behind a role that a person should look at before `when_unsure` lets an import through.
UNSURE_REASONS = frozenset({"content", "header keyword"})
SHEET_SKIPPED = "You chose to skip the sheet “{sheet}” in the review."


class ReviewRefused(Exception):
    """The review cannot take this change (the import is no longer waiting for one); str() is shown."""


# --- choices and their effect on the import --------------------------------------------------------


def _role_of_choice(value: str) -> Role | None:
    if value == "remarks":
        return Role.NOTES
    return Role(value) if value else None


def _choice_of_role(role: str) -> str:
    """The dropdown value that shows a recorded role ("" or notes → remarks)."""
    if role in ("", Role.NOTES.value):
        return "remarks"
    return role


def header_signature(headers: Iterable[str]) -> str:
    """The set of a sheet's headers (case and order do not matter) as a key for its saved mapping."""
    names = sorted({header.strip().casefold() for header in headers})
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()


def _column_json(header: str, role: str, reason: str) -> dict[str, str]:
    parsed = _role_of_choice(role) if role in CHOICE_VALUES else (Role(role) if role else None)
    return {
        "header": header,
        "role": parsed.value if parsed else "",
        "taken_as": ROLE_LABELS[parsed] if parsed else "Remarks",
        "reason": reason,
    }


def apply_choices(job: ImportJob) -> None:
    """Lay saved mappings, then the person's own choices, over the roles the split judged (in memory;
    the caller saves column_roles and review). Records which sheets a saved mapping set."""
    review = job.review
    chosen = review.get("roles") or {}
    remembered = {}
    signatures = {header_signature(c["header"] for c in s["columns"]): s for s in job.column_roles}
    saved = SavedMapping.objects.select_related("confirmed_by").filter(signature__in=signatures)
    for mapping in saved:
        sheet = signatures[mapping.signature]
        sheet["columns"] = [
            _column_json(c["header"], mapping.roles[c["header"]], REMEMBERED)
            if c["header"] in mapping.roles
            else c
            for c in sheet["columns"]
        ]
        remembered[sheet["sheet"]] = {
            "id": mapping.pk,
            "by": mapping.confirmed_by.get_username() if mapping.confirmed_by else "",
            "on": timezone.localdate(mapping.confirmed_at).isoformat(),
        }
    for sheet in job.column_roles:
        # "*": choices for every sheet (import_leads --mapping without sheet names).
        picks = {**(chosen.get("*") or {}), **(chosen.get(sheet["sheet"]) or {})}
        sheet["columns"] = [
            _column_json(c["header"], picks[c["header"]], CHOSEN) if c["header"] in picks else c
            for c in sheet["columns"]
        ]
    review["remembered"] = remembered


def review_needed(job: ImportJob) -> bool:
    """Does this import stop for a person? `always`: until confirmed; `when_unsure`: when a column's
    role is a guess from its values (or a sheet has no header row) and no saved mapping covers it."""
    if job.review.get("reviewed") or job.review_mode == ImportJob.Review.NEVER:
        return False
    if job.review_mode == ImportJob.Review.ALWAYS:
        return True
    remembered = job.review.get("remembered") or {}
    headless = {
        sheet["sheet"] for sheet in job.sheets if sheet.get("header_row") is None and not sheet.get("empty")
    }
    for sheet in job.column_roles:
        if sheet["sheet"] in remembered:
            continue
        if sheet["sheet"] in headless or any(c["reason"] in UNSURE_REASONS for c in sheet["columns"]):
            return True
    return False


def overrides(job: ImportJob) -> dict[str, dict[str, ColumnRole]]:
    """The roles a person chose or a saved mapping gave, per sheet: what the batches run with."""
    result: dict[str, dict[str, ColumnRole]] = {}
    for sheet in job.column_roles or ():
        for column in sheet["columns"]:
            if column.get("reason") in (CHOSEN, REMEMBERED):
                role = Role(column["role"]) if column["role"] else Role.NOTES
                result.setdefault(sheet["sheet"], {})[column["header"]] = ColumnRole(
                    column["header"], role, column["reason"]
                )
    return result


def validate_rows(job: ImportJob, rows: list[SourceRow], leads: list) -> list[CleanLead]:
    """validate_lead for each row, with the review's sheet choices: a skipped sheet's rows are skipped
    with the reason, an instructions sheet the person included is imported."""
    skipped = set(job.review.get("skip_sheets") or ())
    included = set(job.review.get("include_sheets") or ())
    cleaned = []
    for row, lead in zip(rows, leads, strict=True):
        if row.worksheet in included:
            if isinstance(lead, dict) and lead.get("skipReason") == SKIP_INSTRUCTIONS:
                lead = {key: value for key, value in lead.items() if key != "skipReason"}
            clean = validate_lead(row.cells, lead)
        else:
            clean = validate_lead(row.cells, lead, worksheet=row.worksheet)
        if row.worksheet in skipped:
            clean = CleanLead(fields=clean.fields, skip_reason=SHEET_SKIPPED.format(sheet=row.worksheet))
        cleaned.append(clean)
    return cleaned


# --- what the screen shows ----------------------------------------------------------------------------


@dataclass
class Column:
    header: str
    role: str  # the dropdown's value
    taken_as: str
    reason: str
    samples: list[str]
    detected_only: bool = False  # a role the dropdown does not offer (salutation, company flag, …)


@dataclass
class Cell:
    header: str
    value: str
    goes_to: str  # "Email", "Remarks", "Not imported", …
    expected: str  # what the column's role says it should be
    moved: bool  # the value did not land where its column's role says (invalid email → remarks)


@dataclass
class PreviewRow:
    row: int
    cells: list[Cell]
    after: dict[str, str]
    skip_reason: str


@dataclass
class Sheet:
    name: str
    rows: int
    header_row: int | None
    head: list
    skip_reason: str  # why the importer leaves the sheet out ("" = imported)
    skipped_by_person: bool
    can_include: bool
    columns: list[Column] = field(default_factory=list)
    preview: list[PreviewRow] = field(default_factory=list)
    remembered: dict | None = None
    by_model: bool = False


def _rows_of_sheet(job: ImportJob, sheet: Mapping, limit: int) -> list[SourceRow]:
    rows: list[SourceRow] = []
    first = sheet.get("first_batch")
    if not first:
        return rows
    batches = job.batches.filter(batch_number__gte=first).order_by("batch_number").only("rows")
    for batch in batches.iterator(chunk_size=20):
        for row in batch.source_rows:
            if row.worksheet == sheet["sheet"]:
                rows.append(row)
                if len(rows) == limit:
                    return rows
            elif rows:
                return rows
    return rows


_FIELD_LABELS = {
    "first_name": "Name",
    "last_name": "Name",
    "title": "Title",
    "company": "Company",
    "email": "Email",
    "phone": "Phone",
}


def _destination(value: str, after: Mapping[str, str]) -> str:
    """Where a source value ended in the stored lead, as the preview names it."""
    folded = " ".join(value.split()).casefold()
    if not folded:
        return "Not imported"
    for model, label in _FIELD_LABELS.items():
        if after.get(model) and after[model].casefold() == folded:
            return label
    email = after.get("email", "").casefold()
    if email and email in folded:
        return "Email"
    digits = "".join(ch for ch in value if ch.isdigit())
    stored_digits = "".join(ch for ch in after.get("phone", "") if ch.isdigit())
    if len(digits) >= 7 and stored_digits and digits[-7:] in stored_digits and "@" not in value:
        return "Phone"
    name_words = set(f"{after.get('first_name', '')} {after.get('last_name', '')}".casefold().split())
    words = set(folded.replace(",", " ").split())
    if name_words and words and (words <= name_words or name_words <= words):
        return "Name"
    for model in ("company", "title"):
        stored = after.get(model, "").casefold()
        if stored and len(folded) > 2 and (folded in stored or stored in folded):
            return _FIELD_LABELS[model]
    if folded in " ".join(after.get("remarks", "").split()).casefold():
        return "Remarks"
    return "Not imported"


_EXPECTED = {
    Role.FIRST_NAME: "Name",
    Role.LAST_NAME: "Name",
    Role.FULL_NAME: "Name",
    Role.TITLE: "Title",
    Role.COMPANY: "Company",
    Role.EMAIL: "Email",
    Role.PHONE: "Phone",
    Role.IGNORE: "Not imported",
}


def _preview_row(row: SourceRow, clean: CleanLead, roles: Mapping[str, Mapping]) -> PreviewRow:
    cells = []
    for header, value in row.cells.items():
        role_value = (roles.get(header) or {}).get("role", "")
        role = Role(role_value) if role_value else None
        expected = _EXPECTED.get(role, "Remarks") if role else "Remarks"
        goes_to = _destination(value, clean.fields)
        landed = goes_to == expected or (
            expected == "Name" and goes_to in ("First name", "Last name", "Name")
        )
        if expected == "Name" and goes_to == "Company":
            landed = True  # an organisation's name in a name column is its company
        cells.append(Cell(header, value, goes_to, expected, moved=not landed and not clean.skip_reason))
    return PreviewRow(row=row.row, cells=cells, after=clean.fields, skip_reason=clean.skip_reason)


def _standardize_preview(job: ImportJob, rows: list[SourceRow]) -> tuple[list, bool]:
    """The first rows as the import will standardize them: the model's real answer for the file's first
    batch when DeepSeek is configured (one call per mapping, its tokens counted on the job), else the
    built-in rules — in both cases with the person's choices."""
    if not rows:
        return [], False
    if client.is_configured() and settings.DEEPSEEK_MODE == "rows":
        cached = preview_answer(job, rows)
        if cached is not None:
            return cached, True
        key = _preview_key(job, rows)
        leads, completion = deepseek_standardize(
            rows, column_roles=job.column_roles, log_extra={"job_id": job.pk, "review": True}
        )
        job.review["preview"] = {"key": key, "leads": leads}
        ImportJob.objects.filter(pk=job.pk).update(
            review=job.review,
            llm_calls=F("llm_calls") + completion.attempts,
            prompt_tokens=F("prompt_tokens") + completion.prompt_tokens,
            completion_tokens=F("completion_tokens") + completion.completion_tokens,
        )
        return leads, True
    return offline_standardize(rows, overrides(job)), False


def _preview_key(job: ImportJob, rows: list[SourceRow]) -> str:
    # sort_keys: PostgreSQL's jsonb gives a dict's keys back in its own order.
    basis = json.dumps([job.column_roles, [row.seq for row in rows]], sort_keys=True)
    return hashlib.sha256(basis.encode()).hexdigest()


def preview_answer(job: ImportJob, rows: list[SourceRow]) -> list | None:
    """The model's answer the review got for exactly these rows with the import's current roles, if
    any: the first batch then needs no second call for the same answer."""
    cached = job.review.get("preview") or {}
    if cached.get("key") and cached["key"] == _preview_key(job, rows):
        return cached["leads"]
    return None


def review_sheets(job: ImportJob, *, preview: bool = True) -> list[Sheet]:
    """Every worksheet of the file with its columns and (with preview) its first rows, before → after."""
    roles_by_sheet = {sheet["sheet"]: sheet["columns"] for sheet in job.column_roles or ()}
    skipped = set(job.review.get("skip_sheets") or ())
    included = set(job.review.get("include_sheets") or ())
    remembered = job.review.get("remembered") or {}
    sheets = []
    model_rows_used = False
    for info in job.sheets:
        name = info["sheet"]
        instructions = bool(info.get("instructions")) and name not in included
        if info.get("empty"):
            reason = "Empty sheet."
        elif not info.get("rows"):
            reason = "Only a header row, no leads under it."
        elif instructions:
            reason = "Looks like instructions, not leads."
        elif name in skipped:
            reason = "Skipped by you."
        else:
            reason = ""
        sheet = Sheet(
            name=name,
            rows=info.get("rows", 0),
            header_row=info.get("header_row"),
            head=info.get("head") or [],
            skip_reason=reason,
            skipped_by_person=name in skipped,
            can_include=bool(info.get("rows")) and (name in skipped or instructions or name in included),
            remembered=remembered.get(name),
        )
        columns = roles_by_sheet.get(name) or []
        rows = _rows_of_sheet(job, info, PREVIEW_ROWS) if info.get("rows") else []
        for column in columns:
            samples = [r.cells[column["header"]] for r in rows if r.cells.get(column["header"])][
                :SAMPLE_VALUES
            ]
            choice = _choice_of_role(column["role"])
            sheet.columns.append(
                Column(
                    header=column["header"],
                    role=choice,
                    taken_as=column["taken_as"],
                    reason=column["reason"] or "no role: kept in remarks",
                    samples=samples,
                    detected_only=choice not in CHOICE_VALUES,
                )
            )
        if preview and rows:
            # Only the file's first batch goes to the model; later sheets are previewed with the rules.
            use_model = not model_rows_used and info.get("first_batch") == 1
            leads, sheet.by_model = (
                _standardize_preview(job, rows)
                if use_model
                else (
                    offline_standardize(rows, overrides(job)),
                    False,
                )
            )
            model_rows_used = model_rows_used or sheet.by_model
            by_header = {column["header"]: column for column in columns}
            sheet.preview = [
                _preview_row(row, clean, by_header)
                for row, clean in zip(rows, validate_rows(job, rows, leads), strict=True)
            ]
        sheets.append(sheet)
    return sheets


# --- "what will happen", against the database ----------------------------------------------------------


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rows_counted: int = 0
    total_rows: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    # [(lead label, [(field label, before, after)])]
    update_samples: list[tuple[str, list[tuple[str, str, str]]]] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return self.rows_counted < self.total_rows


def _job_rows(job: ImportJob, limit: int) -> Iterator[list[SourceRow]]:
    taken = 0
    for batch in job.batches.order_by("batch_number").only("rows").iterator(chunk_size=50):
        rows = batch.source_rows[: limit - taken]
        taken += len(rows)
        yield rows
        if taken >= limit:
            return


def review_counts(job: ImportJob) -> Counts:
    """Created / updated / unchanged / skipped for the import as reviewed, computed by running the real
    standardizer, validation and upsert over its rows (up to REVIEW_COUNT_ROWS) in a transaction that is
    rolled back: exactly what the import would do to the database as it is now. With DeepSeek set, the
    built-in rules stand in for the model here (the preview shows the model's answer)."""
    counts = Counts(total_rows=job.total_rows)
    chosen = overrides(job)
    from .services import _lead_input  # the same row → LeadInput mapping the store uses

    with transaction.atomic():
        pending: list = []

        def flush() -> None:
            if not pending:
                return
            outcomes = leads_upsert(rows=pending, job=job, source_file=job.original_filename)
            for outcome in outcomes:
                setattr(counts, outcome.outcome, getattr(counts, outcome.outcome) + 1)
            pending.clear()

        for rows in _job_rows(job, settings.REVIEW_COUNT_ROWS):
            cleaned = validate_rows(job, rows, offline_standardize(rows, chosen))
            for row, lead in zip(rows, cleaned, strict=True):
                counts.rows_counted += 1
                if lead.skip_reason:
                    counts.skipped += 1
                    counts.skip_reasons[lead.skip_reason] = counts.skip_reasons.get(lead.skip_reason, 0) + 1
                else:
                    pending.append(_lead_input(row, lead.fields))
            if len(pending) >= 500:
                flush()
        flush()
        counts.update_samples = _update_samples(job)
        transaction.set_rollback(True)
    return counts


def _update_samples(job: ImportJob) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """A few leads the (rolled-back) upsert updated: their fields before → after."""
    samples = []
    revisions = LeadRevision.objects.filter(job=job, action=LeadRevision.Action.UPDATED).select_related(
        "lead"
    )
    for revision in revisions.order_by("pk")[:UPDATE_SAMPLES]:
        lead = revision.lead
        before = revision.before or {}
        changes = [
            (
                Lead._meta.get_field(name).verbose_name,
                str(before.get(name) or ""),
                str(getattr(lead, name) or ""),
            )
            for name in ("first_name", "last_name", "title", "company", "email", "phone", "remarks")
            if name in before and str(before.get(name) or "") != str(getattr(lead, name) or "")
        ]
        label = " ".join(filter(None, [lead.first_name, lead.last_name])) or lead.email or lead.company
        samples.append((label, changes))
    return samples


# --- changes a person makes ------------------------------------------------------------------------------


def _waiting(job_id, *, for_update: bool = True) -> ImportJob:
    queryset = ImportJob.objects.select_for_update() if for_update else ImportJob.objects
    job = queryset.filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.REVIEW:
        raise ReviewRefused("This import is no longer waiting for a review.")
    return job


def _sheet_names(job: ImportJob) -> set[str]:
    return {sheet["sheet"] for sheet in job.sheets}


def review_set_role(*, job: ImportJob, sheet: str, header: str, role: str) -> ImportJob:
    """Take column `header` of `sheet` for `role` (a CHOICES value) from now on."""
    if role not in CHOICE_VALUES:
        raise ReviewRefused("Choose one of the listed fields.")
    with transaction.atomic():
        job = _waiting(job.pk)
        columns = next((s["columns"] for s in job.column_roles if s["sheet"] == sheet), None)
        if columns is None or not any(c["header"] == header for c in columns):
            raise ReviewRefused("This file has no such column.")
        job.review.setdefault("roles", {}).setdefault(sheet, {})[header] = role
        job.review.pop("preview", None)
        apply_choices(job)
        job.save(update_fields=["column_roles", "review"])
    return job


def review_set_sheet(*, job: ImportJob, sheet: str, include: bool) -> ImportJob:
    """Import or leave out a sheet (an instructions sheet can be included, any sheet skipped)."""
    with transaction.atomic():
        job = _waiting(job.pk)
        if sheet not in _sheet_names(job):
            raise ReviewRefused("This file has no such sheet.")
        skipped = set(job.review.get("skip_sheets") or ())
        included = set(job.review.get("include_sheets") or ())
        if include:
            skipped.discard(sheet)
            info = next(s for s in job.sheets if s["sheet"] == sheet)
            if info.get("instructions"):
                included.add(sheet)
        else:
            skipped.add(sheet)
            included.discard(sheet)
        job.review["skip_sheets"] = sorted(skipped)
        job.review["include_sheets"] = sorted(included)
        job.save(update_fields=["review"])
    return job


def review_set_header_row(*, job: ImportJob, sheet: str, row: int, enqueue: bool = True) -> ImportJob:
    """Read `sheet` again with row `row` as its header: the file is split anew (a task, as on upload)
    and the review is shown again when that is done; the person's other choices are kept."""
    from .services import split_enqueue

    with transaction.atomic():
        job = _waiting(job.pk)
        info = next((s for s in job.sheets if s["sheet"] == sheet), None)
        if info is None or not any(number == row for number, _cells in info.get("head") or ()):
            raise ReviewRefused("Choose one of the rows shown.")
        job.review.setdefault("header_rows", {})[sheet] = row
        job.review.pop("preview", None)
        job.batches.all().delete()
        job.status = ImportJob.Status.UPLOADED
        job.stage = "Reading your file again…"
        job.split_queued_at = timezone.now()
        job.total_rows = job.total_batches = 0
        job.save(
            update_fields=["review", "status", "stage", "split_queued_at", "total_rows", "total_batches"]
        )
        if enqueue:
            transaction.on_commit(lambda: split_enqueue(job.pk))
    return job


def review_confirm(*, job: ImportJob, user, remember: bool = True, enqueue: bool = True) -> list:
    """Import with the mapping as reviewed: queue every batch; save each sheet's mapping for its set of
    headers (remember). Returns the queued batch ids."""
    from .services import import_enqueue

    with transaction.atomic():
        job = _waiting(job.pk)
        job.review.update(
            reviewed=True,
            reviewed_by=user.get_username() if user is not None and user.is_authenticated else "",
            reviewed_at=timezone.now().isoformat(),
        )
        job.status = ImportJob.Status.PROCESSING
        job.stage = "Standardizing…"
        job.started_at = timezone.now()
        job.save(update_fields=["review", "status", "stage", "started_at"])
        if remember:
            _mappings_save(job, user)
        batch_ids = list(
            ImportBatch.objects.filter(job=job, status=ImportBatch.Status.QUEUED).values_list("id", flat=True)
        )
        if enqueue:
            transaction.on_commit(lambda: import_enqueue(batch_ids=batch_ids))
    logger.info("review confirmed", extra={"job_id": job.pk})
    return batch_ids


def _mappings_save(job: ImportJob, user) -> None:
    skipped = set(job.review.get("skip_sheets") or ())
    by = user if user is not None and user.is_authenticated else None
    for sheet in job.column_roles:
        if sheet["sheet"] in skipped or not sheet["columns"]:
            continue
        headers = [c["header"] for c in sheet["columns"]]
        roles = {
            c["header"]: _choice_of_role(c["role"])
            if c["role"] in CHOICE_VALUES or not c["role"]
            else c["role"]
            for c in sheet["columns"]
        }
        SavedMapping.objects.update_or_create(
            signature=header_signature(headers),
            defaults={"headers": headers, "roles": roles, "confirmed_by": by, "confirmed_at": timezone.now()},
        )
    used = [entry["id"] for entry in (job.review.get("remembered") or {}).values()]
    if used:
        SavedMapping.objects.filter(pk__in=used).update(times_used=F("times_used") + 1)


def review_discard(*, job: ImportJob) -> bool:
    """Drop an import under review: its stored file, its batches and the job itself."""
    from .services import file_delete

    with transaction.atomic():
        try:
            job = _waiting(job.pk)
        except ReviewRefused:
            return False
        file_delete(job)
        job.delete()
    logger.info("review discarded", extra={"job_id": job.pk})
    return True


def reviews_expire(*, now: datetime | None = None) -> int:
    """Discard (review_discard: the file, the batches, the job) every import still waiting for its
    review IMPORT_REVIEW_EXPIRE_HOURS after it was uploaded; returns how many. Run by the sweeper."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IMPORT_REVIEW_EXPIRE_HOURS)
    expired = ImportJob.objects.filter(status=ImportJob.Status.REVIEW, created_at__lt=cutoff)
    discarded = 0
    for job in expired.only("pk").iterator():
        # A person may confirm or discard it meanwhile: review_discard checks again under a lock.
        if review_discard(job=job):
            logger.info("review expired", extra={"job_id": job.pk})
            discarded += 1
    return discarded


def mapping_from_file(data: object) -> dict[str, dict[str, str]]:
    """`import_leads --mapping FILE.json`: {"Sheet": {"Header": "email", …}} or, for every sheet,
    {"Header": "email", …}; returns {sheet or "*": {header: choice}}. Raises ValueError when invalid."""
    if not isinstance(data, dict) or not data:
        raise ValueError("The mapping must be a JSON object of column → field.")
    if all(isinstance(value, str) for value in data.values()):
        data = {"*": data}
    result = {}
    for sheet, columns in data.items():
        if not isinstance(columns, dict):
            raise ValueError(f"Sheet {sheet!r}: expected an object of column → field.")
        for header, role in columns.items():
            if role not in CHOICE_VALUES:
                allowed = ", ".join(value for value, _label in CHOICES)
                raise ValueError(f"Column {header!r}: {role!r} is not one of {allowed}.")
        result[str(sheet)] = {str(header): role for header, role in columns.items()}
    return result


def mapping_apply(job: ImportJob, mapping: Mapping[str, Mapping[str, str]]) -> None:
    """The choices of a --mapping file, as if a person had made them; applied when the file is split."""
    job.review["roles"] = {sheet: dict(columns) for sheet, columns in mapping.items()}
    job.save(update_fields=["review"])


def review_text(job: ImportJob, name: str) -> str:
    """`import_leads --review`: the review screen as plain text."""
    lines = [f"{name}: {job.total_rows:,} rows in {len(job.sheets)} sheet(s)"]
    for warning in job.warnings:
        lines.append(f"  ! {warning}")
    for sheet in review_sheets(job):
        header = f"header row {sheet.header_row}" if sheet.header_row else "no header row"
        skipped = f" — not imported: {sheet.skip_reason}" if sheet.skip_reason else ""
        lines.append(f"\nSheet “{sheet.name}”: {sheet.rows:,} rows, {header}{skipped}")
        if sheet.remembered:
            lines.append(
                f"  Using the mapping confirmed on {sheet.remembered['on']} by {sheet.remembered['by']}"
            )
        for column in sheet.columns:
            samples = " | ".join(column.samples)
            lines.append(f"  {column.header!r:32} → {column.taken_as:20} ({column.reason})  {samples}")
        for row in sheet.preview:
            after = ", ".join(f"{k}={v!r}" for k, v in row.after.items() if v and k != "remarks")
            note = f"skipped: {row.skip_reason}" if row.skip_reason else after
            moved = "; ".join(f"{c.header}: {c.value!r} → {c.goes_to}" for c in row.cells if c.moved)
            lines.append(f"  row {row.row}: {note}{'  [' + moved + ']' if moved else ''}")
    counts = review_counts(job)
    scope = f" (first {counts.rows_counted:,} rows)" if counts.partial else ""
    lines.append(
        f"\nWhat will happen{scope}: {counts.created:,} new, {counts.updated:,} updated, "
        f"{counts.unchanged:,} unchanged, {counts.skipped:,} skipped"
    )
    for reason, number in counts.skip_reasons.items():
        lines.append(f"  skipped {number:,}: {reason}")
    for label, changes in counts.update_samples:
        shown = "; ".join(f"{field}: {before!r} → {after!r}" for field, before, after in changes)
        lines.append(f"  {label}: {shown}")
    return "\n".join(lines)
