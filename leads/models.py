"""The lead: one standardized person from an uploaded list, deduplicated by email."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from easycrm.fields import OrderedJSONField

# The fields a standardizer fills, in the order of the wire contract (camelCase there).
LEAD_FIELDS = ("first_name", "last_name", "title", "company", "email", "phone", "remarks")


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
            models.Index(Lower("last_name"), name="lead_last_name_lower_idx"),
            models.Index(Lower("first_name"), name="lead_first_name_lower_idx"),
            models.Index(Lower("company"), name="lead_company_lower_idx"),
            models.Index(Lower("title"), name="lead_title_lower_idx"),
            models.Index(fields=["source_file"], name="lead_source_file_idx"),
            models.Index(fields=["worksheet"], name="lead_worksheet_idx"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.company or f"Lead {self.pk}"


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
