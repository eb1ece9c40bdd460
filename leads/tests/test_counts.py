"""The lead table's total per filter is reused for LEAD_TOTAL_CACHE_SECONDS and counted again after a
change people are shown (leads.counts)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from easycrm.testing.http import HTMX
from leads.models import Lead
from processing.models import ImportJob

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")


@pytest.fixture
def acme_leads() -> None:
    Lead.objects.bulk_create(Lead(first_name=f"lead{i:02}", company="Acme") for i in range(40))
    Lead.objects.bulk_create(Lead(first_name=f"other{i:02}", company="Globex") for i in range(5))


def _table(client, query: str) -> tuple[str, int]:
    """The table fragment and how many times it counted leads."""
    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"{LIST}?{query}", **HTMX).content.decode()
    return html, sum(
        1
        for query in queries
        if query["sql"].startswith("SELECT COUNT(*)") and '"leads_lead"' in query["sql"]
    )


def test_sort_and_next_page_of_a_filter_reuse_its_total(viewer_client, acme_leads):
    html, counts = _table(viewer_client, "company=acme")
    assert "Showing 1–25 of 40" in html and counts == 1

    html, counts = _table(viewer_client, "company=acme&sort=first_name")
    assert "Showing 1–25 of 40" in html and counts == 0
    html, counts = _table(viewer_client, "company=acme&sort=first_name&page=2")
    assert "Showing 26–40 of 40" in html and counts == 0  # the last page counts its own rows

    html, counts = _table(viewer_client, "")  # another filter: its own total
    assert "Showing 1–25 of 45" in html and counts == 1


def test_a_bulk_action_makes_every_table_count_again(viewer_client, acme_leads, viewer):
    _table(viewer_client, "company=acme")
    doomed = list(Lead.objects.filter(company="Acme").values_list("pk", flat=True)[:3])
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="leads", codename="delete_lead")
    )
    response = viewer_client.post(
        reverse("leads:bulk"), {"action": "delete", "ids": doomed, "confirmed": "1"}, **HTMX
    )
    assert response.status_code == 200

    html, counts = _table(viewer_client, "company=acme")
    assert "Showing 1–25 of 37" in html and counts == 1


def test_an_import_ending_makes_the_refreshed_table_count_again(importer_client, acme_leads, importer):
    _table(importer_client, "company=acme")
    job = ImportJob.objects.create(original_filename="more.csv", uploaded_by=importer, status="processing")
    Lead.objects.bulk_create(Lead(first_name=f"new{i:02}", company="Acme", import_job=job) for i in range(4))
    html, counts = _table(importer_client, "company=acme")
    assert "of 40" in html and counts == 0  # still the remembered total while the import runs

    ImportJob.objects.filter(pk=job.pk).update(status="completed")
    status = importer_client.get(reverse("processing:status", args=[job.pk]), **HTMX)
    assert status.status_code == 286 and "leads-changed" in status["HX-Trigger"]

    html, counts = _table(importer_client, "company=acme")
    assert "Showing 1–25 of 44" in html and counts == 1


def test_zero_seconds_counts_every_time(viewer_client, acme_leads, settings):
    settings.LEAD_TOTAL_CACHE_SECONDS = 0
    assert _table(viewer_client, "company=acme")[1] == 1
    Lead.objects.create(first_name="late", company="Acme")
    html, counts = _table(viewer_client, "company=acme&sort=first_name")
    assert "of 41" in html and counts == 1
