"""The lead: one standardized person from an uploaded list, deduplicated by email."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Lower, NullIf
from django.utils import timezone

from easycrm.fields import OrderedJSONField

# The fields a standardizer fills, in the order of the wire contract (camelCase there).
LEAD_FIELDS = ("first_name", "last_name", "title", "company", "email", "phone", "remarks")
# What a person may change on the lead page: the standardized fields plus how the lead is worked.
EDITABLE_FIELDS = (*LEAD_FIELDS, "status", "owner")
# The text columns the lead table sorts by one at a time (leads.filters.TEXT_KEYSET_FIELDS).
TEXT_SORT_COLUMNS = ("first_name", "last_name", "title", "company", "email", "phone", "worksheet")


def lead_statuses() -> list[str]:
    """The statuses of settings.LEAD_STATUSES, in order (a setting, so no migration per change)."""
    return list(settings.LEAD_STATUSES)


def default_status() -> str:
    return lead_statuses()[0]


class Lead(models.Model):
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=300, blank=True)
    company = models.CharField(max_length=300, blank=True)
    # Stored trimmed and lower-cased (services.normalize_email); "" when the row had none.
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=100, blank=True)
    remarks = models.TextField(blank=True)

    source_file = models.CharField(max_length=255, blank=True)
    worksheet = models.CharField(max_length=255, blank=True)
    source_row = models.PositiveIntegerField(null=True, blank=True)
    # Position of the row within its import, so out-of-order batches still let the later row win.
    source_sequence = models.PositiveIntegerField(null=True, blank=True)
    raw = OrderedJSONField(default=dict, blank=True)
    import_job = models.ForeignKey(
        "processing.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        help_text="The import that last wrote this lead.",
    )

    # How the lead is being worked: set by people (lead page, bulk actions), never by an import.
    # db_default too, for rows inserted by raw SQL (benchmarks, data fixes): the usual first status.
    status = models.CharField(max_length=40, default=default_status, db_default="new")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_leads"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email"], condition=~Q(email=""), name="lead_unique_nonempty_email"
            ),
        ]
        indexes = [
            models.Index(fields=["-updated_at", "-id"], name="lead_updated_idx"),
            models.Index(fields=["created_at"], name="lead_created_idx"),
            # Rows without an email find their lead by name + company (leads.services): all three, so
            # the lookup reads only the leads it matches, not every lead with a common last name.
            models.Index(
                Lower("last_name"), Lower("first_name"), Lower("company"), name="lead_name_lower_idx"
            ),
            # The table's text sorts, in both directions and by keyset (leads.filters.text_sort_value).
            *(
                models.Index(NullIf(Lower(name), Value("")), "id", name=f"lead_{name}_sort_idx")
                for name in TEXT_SORT_COLUMNS
            ),
            models.Index(fields=["source_file"], name="lead_source_file_idx"),
            # Rows without an email find their lead by phone (leads.services, DEDUPE_WITHOUT_EMAIL).
            models.Index(fields=["phone"], name="lead_phone_idx"),
            models.Index(fields=["worksheet"], name="lead_worksheet_idx"),
            models.Index(fields=["status", "-updated_at", "-id"], name="lead_status_updated_idx"),
            models.Index(fields=["owner", "-updated_at", "-id"], name="lead_owner_updated_idx"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.company or f"Lead {self.pk}"

    @property
    def source_label(self) -> str:
        """Worksheet and file as the table shows them: a CSV's only "worksheet" is its own name, so it
        is not repeated ("leads.csv", not "leads / leads.csv")."""
        stem = self.source_file.rsplit(".", 1)[0]
        if not self.worksheet or self.worksheet in (self.source_file, stem):
            return self.source_file
        if not self.source_file:
            return self.worksheet
        return f"{self.worksheet} · {self.source_file}"


class LeadRevision(models.Model):
    """One write of a lead by an import, with what the lead held before: what undoing an import needs.

    Written by leads.services.lead_upsert in the transaction that writes the lead.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"

    # Undo deletes the leads an import created; their revisions go with them.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="revisions")
    job = models.ForeignKey(
        "processing.ImportJob", on_delete=models.CASCADE, related_name="lead_revisions", db_index=False
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    # LEAD_FIELDS and provenance as they were before an update (JSON-ready); empty for a creation.
    before = OrderedJSONField(default=dict, blank=True)
    # Equal to the lead's updated_at right after this write, so a later change shows as a later time.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "created_at"], name="leadrevision_job_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} lead {self.lead_id} by import {self.job_id}"


class LeadChange(models.Model):
    """One field of a lead changed by a person (lead page or bulk action): who, when, before → after.

    The import upsert asks leads.editing.leads_edited_fields which fields people changed, so it does
    not silently overwrite them.
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="changes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=40)
    # As shown to people: the owner's username, not the id; "" for empty.
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["lead", "field"], name="leadchange_lead_field_idx")]

    def __str__(self) -> str:
        return f"{self.field} of lead {self.lead_id}: {self.before!r} → {self.after!r}"


class LeadNote(models.Model):
    """A dated note on a lead, by a user: the lead's timeline."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "-created_at"], name="leadnote_lead_idx")]

    def __str__(self) -> str:
        return f"Note on lead {self.lead_id} by {self.author_id}"


class SavedView(models.Model):
    """A named set of table filters and sort of one user ("My new leads"), shown as a tab."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=60)
    # LeadQuery.querystring() without the page: what the tab links to.
    querystring = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="savedview_unique_name")]

    def __str__(self) -> str:
        return self.name
