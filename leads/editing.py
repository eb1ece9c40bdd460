"""People working on leads: edits on the lead page, notes, bulk actions, and the record of who
changed what, which the import upsert consults so it never silently overwrites a person's edit.

    lead_update(lead=lead, user=user, values=form.cleaned_data)   # records one LeadChange per field
    leads_bulk_update(leads=selected_queryset, user=user, status="qualified")
    leads_edited_fields([1, 2, 3])  # -> {1: {"email"}, 3: {"phone", "title"}}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import LEAD_FIELDS, Lead, LeadChange, LeadNote

# A bulk action touches at most this many leads at once: beyond, narrow the filter first.
BULK_LIMIT = 50_000
# Rows per UPDATE/DELETE/INSERT of a bulk action (SQLite allows at most 32,766 parameters per query).
CHANGE_BATCH_SIZE = 2_000


def _shown(field: str, value: object) -> str:
    """A field's value as the history shows it: the owner's username, "" for nothing."""
    if field == "owner":
        return value.get_username() if value is not None else ""
    return "" if value is None else str(value)


@transaction.atomic
def lead_update(*, lead: Lead, user: AbstractBaseUser, values: Mapping[str, object]) -> list[LeadChange]:
    """Set the given fields (EDITABLE_FIELDS, cleaned by LeadForm) and record each one that changed."""
    now = timezone.now()
    changes = []
    for field, new in values.items():
        old = getattr(lead, field)
        if old == new:
            continue
        changes.append(
            LeadChange(
                lead=lead,
                user=user,
                field=field,
                before=_shown(field, old),
                after=_shown(field, new),
                created_at=now,
            )
        )
        setattr(lead, field, new)
    if changes:
        lead.save(update_fields=[change.field for change in changes] + ["updated_at"])
        LeadChange.objects.bulk_create(changes)
    return changes


def lead_note_add(*, lead: Lead, user: AbstractBaseUser, text: str) -> LeadNote:
    return LeadNote.objects.create(lead=lead, author=user, text=text)


@transaction.atomic
def leads_bulk_update(
    *, leads: QuerySet[Lead], user: AbstractBaseUser, status: str | None = None, owner=None, unassign=False
) -> int:
    """Set the status or the owner (or clear it, `unassign`) of the selected leads; one LeadChange
    per lead whose value changes. Returns how many leads changed."""
    if status is not None:
        field, new_value, shown_new = "status", status, status
    else:
        field, new_value = "owner", (None if unassign else owner)
        shown_new = _shown("owner", new_value)
    # Locked (PostgreSQL; of=self, the owner join is nullable) so two bulk actions on the same leads
    # record a consistent before → after.
    selected = leads.order_by().select_for_update(of=("self",))
    if field == "owner":
        selected = (
            selected.exclude(owner__isnull=True) if new_value is None else selected.exclude(owner=new_value)
        )
        rows = list(selected.values_list("pk", "owner__username"))
    else:
        rows = list(selected.exclude(status=new_value).values_list("pk", "status"))
    now = timezone.now()
    for start in range(0, len(rows), CHANGE_BATCH_SIZE):
        chunk = [pk for pk, _ in rows[start : start + CHANGE_BATCH_SIZE]]
        Lead.objects.filter(pk__in=chunk).update(**{field: new_value, "updated_at": now})
    LeadChange.objects.bulk_create(
        (
            LeadChange(
                lead_id=pk, user=user, field=field, before=before or "", after=shown_new, created_at=now
            )
            for pk, before in rows
        ),
        batch_size=CHANGE_BATCH_SIZE,
    )
    return len(rows)


@transaction.atomic
def leads_bulk_delete(*, leads: QuerySet[Lead]) -> int:
    """Delete the selected leads (their history and notes go with them); returns how many."""
    lead_ids = list(leads.order_by().values_list("pk", flat=True))
    deleted = 0
    for start in range(0, len(lead_ids), CHANGE_BATCH_SIZE):
        _, per_model = Lead.objects.filter(pk__in=lead_ids[start : start + CHANGE_BATCH_SIZE]).delete()
        deleted += per_model.get(Lead._meta.label, 0)
    return deleted


def leads_edited_fields(lead_ids: Iterable[int]) -> dict[int, set[str]]:
    """For each lead, the standardized fields (LEAD_FIELDS) a person has changed; leads nobody
    edited are absent. One indexed query (leadchange_lead_field_idx), for a batch of leads."""
    edited: dict[int, set[str]] = defaultdict(set)
    rows = (
        LeadChange.objects.filter(lead_id__in=list(lead_ids), field__in=LEAD_FIELDS)
        .values_list("lead_id", "field")
        .distinct()
    )
    for lead_id, field in rows:
        edited[lead_id].add(field)
    return dict(edited)
