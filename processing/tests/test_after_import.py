"""After an import: the panel and the detail page agree on every number (during and after a cancel),
a cancelled import resumes with every row counted once, the detail page lists what changed, and
undo says the summary's numbers."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files import File
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from easycrm.testing.files import HEADER, people, write_csv
from easycrm.testing.http import HTMX
from leads.models import Lead, LeadChange
from processing import changes, services, undo
from processing.models import ImportBatch, ImportJob

pytestmark = pytest.mark.django_db

NOT_A_LEAD = ["", "", "", "=2+3", ""]  # no name, email, phone or company: skipped when read
STAT = re.compile(
    r"<strong>([\d,]+)</strong> (created|updated|unchanged|skipped|failed|not run \(cancelled\))<"
)
TAB = re.compile(r'\?show=(\w+)"[^>]*>[^<]+<span class="muted">([\d,]+)</span>')
COUNTERS = ("leads_created", "leads_updated", "rows_unchanged", "rows_skipped", "rows_failed")


@pytest.fixture(autouse=True)
def one_batch_per_task(settings):
    """One batch per claim, as in DeepSeek mode, so an import can be stopped between batches."""
    settings.STORE_CHUNK_BATCHES = 1


def split_job(tmp_path, rows: list[list[str]], *, user=None, name: str = "leads.csv") -> ImportJob:
    """An import whose file is read and whose batches wait for a worker."""
    path = write_csv(tmp_path / name, HEADER, rows)
    with path.open("rb") as handle:
        job = services.import_start(file=File(handle), filename=name, user=user, enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    job.refresh_from_db()
    return job


def run_batches(job: ImportJob, count: int | None = None) -> None:
    queued = job.batches.filter(status=ImportBatch.Status.QUEUED).order_by("batch_number")
    for batch in list(queued)[:count]:
        services.batch_standardize(batch_id=batch.pk)
    job.refresh_from_db()


def panel_numbers(html: str) -> dict[str, int]:
    """The status panel's row counts by kind ("not run (cancelled)" is "cancelled")."""
    found = {label: int(n.replace(",", "")) for n, label in STAT.findall(html)}
    if "not run (cancelled)" in found:
        found["cancelled"] = found.pop("not run (cancelled)")
    return found


def tab_numbers(html: str) -> dict[str, int]:
    return {kind: int(n.replace(",", "")) for kind, n in TAB.findall(html)}


def outcomes_per_row(job: ImportJob) -> list[tuple[int, str]]:
    return sorted(
        (result["row"], result["outcome"]) for batch in job.batches.all() for result in batch.results
    )


def status_panel(client, job: ImportJob) -> str:
    return client.get(reverse("processing:status", args=[job.pk]), **HTMX).content.decode()


def detail_page(client, job: ImportJob, query: str = "") -> str:
    return client.get(reverse("processing:detail", args=[job.pk]) + query).content.decode()


# --- Counts that agree -------------------------------------------------------------------------


def test_a_cancelled_import_shows_how_far_it_got_and_the_same_numbers_everywhere(
    tmp_path, importer_client, importer
):
    job = split_job(tmp_path, [*people(12), NOT_A_LEAD, *people(22, domain="b.example")], user=importer)
    run_batches(job, 2)

    assert services.import_cancel(job=job)

    job.refresh_from_db()
    assert (job.batches_run, job.skipped_batches, job.total_batches) == (2, 2, 4)
    assert job.progress_percent == 50  # not the full bar the skipped batches used to give
    assert (job.rows_cancelled, job.rows_skipped, job.rows_skipped_not_leads) == (15, 16, 1)
    assert job.rows_processed == 20 and job.rows_not_imported == 16
    panel, detail = status_panel(importer_client, job), detail_page(importer_client, job)
    expected = {"created": 19, "updated": 0, "skipped": 1, "failed": 0, "cancelled": 15}
    assert panel_numbers(panel) == expected
    assert panel_numbers(detail) == expected
    assert tab_numbers(detail) == {"created": 19, "skipped": 1, "cancelled": 15}
    assert "50% · 2 of 4 batches · 2 not run (cancelled)" in panel
    assert "20</strong> of 35 rows" in panel and "20</strong> of 35 rows" in detail
    assert "16 rows not imported (15 not run because of the cancel)" in panel
    assert "Download the 16 rows not imported (CSV)" in detail
    problems = importer_client.get(reverse("processing:problems", args=[job.pk]))
    assert b"".join(problems.streaming_content).decode().count("The import was cancelled.") == 15


def test_panel_keeps_refreshing_until_the_batch_running_at_the_cancel_is_counted(
    tmp_path, importer_client, importer
):
    job = split_job(tmp_path, people(25), user=importer)
    run_batches(job, 1)
    in_flight = job.batches.get(batch_number=2)
    assert ImportBatch.objects.claim(in_flight.pk, token=uuid.uuid4(), max_attempts=3)

    response = importer_client.post(reverse("processing:cancel", args=[job.pk]), **HTMX)

    job.refresh_from_db()
    assert job.settling and not job.can_resume
    assert 'hx-trigger="load delay:2s"' in response.content.decode()
    assert "Resume import</button>" not in response.content.decode()
    assert services.import_resume(job=job) == []
    # Its worker died: the sweeper skips the batch of the cancelled import once its lease is over.
    ImportBatch.objects.filter(pk=in_flight.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    services.imports_sweep()

    job.refresh_from_db()
    assert not job.settling and job.can_resume
    panel = status_panel(importer_client, job)
    assert "load delay:2s" not in panel and "Resume import</button>" in panel
    assert panel_numbers(panel)["cancelled"] == job.rows_cancelled == 15


# --- Resume -------------------------------------------------------------------------------------


def test_resume_runs_the_skipped_rows_and_every_row_ends_with_one_outcome(
    tmp_path, importer_client, importer, django_capture_on_commit_callbacks
):
    rows = [*people(12), NOT_A_LEAD, *people(22, domain="b.example")]
    straight = split_job(tmp_path, rows, name="straight.csv")
    run_batches(straight)
    Lead.objects.all().delete()  # the same file again, as if for the first time
    job = split_job(tmp_path, rows, user=importer)
    run_batches(job, 1)
    services.import_cancel(job=job)
    for batch in job.batches.all():  # their tasks still arrive: nothing to claim
        services.batch_standardize(batch_id=batch.pk)

    with django_capture_on_commit_callbacks() as callbacks:
        resumed = services.import_resume(job=job)
        again = services.import_resume(job=job)  # a second click

    assert len(resumed) == 3 and again == [] and len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == ImportJob.Status.PROCESSING
    assert (job.skipped_batches, job.rows_skipped, job.leads_created) == (0, 0, 10)
    callbacks[0]()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED
    assert [getattr(job, name) for name in COUNTERS] == [getattr(straight, name) for name in COUNTERS]
    assert (job.completed_batches, job.skipped_batches, job.rows_cancelled) == (4, 0, 0)
    assert outcomes_per_row(job) == outcomes_per_row(straight)
    assert len(outcomes_per_row(job)) == job.total_rows == 35
    assert Lead.objects.count() == 34
    detail = detail_page(importer_client, job)
    assert panel_numbers(detail) == {"created": 34, "updated": 0, "skipped": 1, "failed": 0}
    assert tab_numbers(detail) == {"created": 34, "skipped": 1}


def test_resume_view_queues_the_skipped_batches_plain_and_htmx(
    tmp_path, importer_client, importer, django_capture_on_commit_callbacks
):
    plain = split_job(tmp_path, people(25), user=importer, name="plain.csv")
    htmx = split_job(tmp_path, people(25, domain="b.example"), user=importer, name="htmx.csv")
    for job in (plain, htmx):
        run_batches(job, 1)
        services.import_cancel(job=job)

    with django_capture_on_commit_callbacks(execute=True):
        first = importer_client.post(reverse("processing:resume", args=[plain.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        second = importer_client.post(reverse("processing:resume", args=[htmx.pk]), **HTMX)

    assert first.status_code == 302 and first["Location"] == reverse("processing:detail", args=[plain.pk])
    assert "Import resumed: 2 batches queued again." in str(list(get_messages(first.wsgi_request))[0])
    html = second.content.decode()
    assert second.status_code == 200 and "<html" not in html and "imports-changed" in second["HX-Trigger"]
    assert "Import resumed: 2 batches queued again." in html and 'hx-trigger="every 2s"' in html
    for job in (plain, htmx):
        job.refresh_from_db()
        assert job.status == ImportJob.Status.COMPLETED and job.leads_created == 25


def test_resume_of_a_job_that_was_not_cancelled_or_was_undone_is_refused(tmp_path, importer_client, importer):
    running = split_job(tmp_path, people(15), user=importer, name="running.csv")
    done = split_job(tmp_path, people(5, domain="b.example"), user=importer, name="done.csv")
    run_batches(done)
    undone = split_job(tmp_path, people(15, domain="c.example"), user=importer, name="undone.csv")
    run_batches(undone, 1)
    services.import_cancel(job=undone)
    undo.import_undo(job=undone)

    path = write_csv(tmp_path / "unsplit.csv", HEADER, people(5))
    with path.open("rb") as handle:
        unsplit = services.import_start(file=File(handle), filename="unsplit.csv", enqueue=False)
    services.import_cancel(job=unsplit)  # before its split: no batches to resume

    for job in (running, done, undone, unsplit):
        response = importer_client.post(reverse("processing:resume", args=[job.pk]), **HTMX)
        assert "Only a cancelled import, not undone" in response.content.decode()
        assert "message error" in response.content.decode()
    plain = importer_client.post(reverse("processing:resume", args=[done.pk]), follow=True)
    assert "Only a cancelled import" in plain.content.decode()
    running.refresh_from_db()
    undone.refresh_from_db()
    assert running.status == ImportJob.Status.PROCESSING
    assert undone.status == ImportJob.Status.CANCELLED and undone.skipped_batches == 1
    assert not undone.can_resume


def test_resume_needs_login_the_importer_role_and_post(viewer_client, tmp_path, importer):
    job = split_job(tmp_path, people(15), user=importer)
    services.import_cancel(job=job)
    url = reverse("processing:resume", args=[job.pk])

    anonymous = Client().post(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    assert viewer_client.post(url).status_code == 403
    assert viewer_client.post(reverse("processing:resume", args=[uuid.uuid4()])).status_code == 403
    assert "Resume import</button>" not in detail_page(viewer_client, job)
    viewer_client.force_login(importer)
    assert viewer_client.get(url).status_code == 405
    assert viewer_client.post(reverse("processing:resume", args=[uuid.uuid4()])).status_code == 404
    assert "Resume import</button>" in detail_page(viewer_client, job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED


# --- What changed -------------------------------------------------------------------------------


@pytest.fixture
def mixed_import(tmp_path, importer, fake_deepseek, django_capture_on_commit_callbacks) -> ImportJob:
    """An import whose rows were created, updated, left unchanged, skipped and failed."""

    def upload(name: str, rows: list[list[str]]) -> ImportJob:
        path = write_csv(tmp_path / name, HEADER, rows)
        with path.open("rb") as handle, django_capture_on_commit_callbacks(execute=True):
            job = services.import_start(file=File(handle), filename=name, user=importer)
        job.refresh_from_db()
        return job

    upload("first.csv", people(3))
    fake_deepseek.fail_next("503", times=3)  # the first batch fails on every attempt
    rows = [
        *people(10, domain="failed.example"),
        ["First0", "Last0", "Northwind <Traders>", "person0@example.com", "+1 415 555 0000"],
        people(3)[1],
        ["Nia", "New", "Contoso", "nia@example.com", ""],
        NOT_A_LEAD,
    ]
    return upload("second.csv", rows)


def test_detail_lists_created_updated_unchanged_skipped_and_failed_rows(importer_client, mixed_import):
    job = mixed_import
    assert job.status == ImportJob.Status.COMPLETED_WITH_ERRORS
    counts = changes.kind_counts(job)
    assert counts == {"created": 1, "updated": 1, "unchanged": 1, "skipped": 1, "failed": 10, "cancelled": 0}

    updated = changes.import_changes(job=job, kind="updated")
    [row] = updated.rows
    assert (row.row, row.lead.email) == (12, "person0@example.com")
    assert [(c.label, c.before, c.after) for c in row.fields] == [
        ("Company", "Company 0", "Northwind <Traders>")
    ]

    page = detail_page(importer_client, job)
    assert tab_numbers(page) == {"created": 1, "updated": 1, "unchanged": 1, "skipped": 1, "failed": 10}
    assert panel_numbers(page) == {"created": 1, "updated": 1, "unchanged": 1, "skipped": 1, "failed": 10}
    assert "nia@example.com" in page  # the first tab with rows: created
    html = detail_page(importer_client, job, "?show=updated")
    assert "<del>Company 0</del> → <ins>Northwind &lt;Traders&gt;</ins>" in html
    assert "Northwind <Traders>" not in html
    unchanged = detail_page(importer_client, job, "?show=unchanged")
    assert "First1 Last1" in unchanged and "Every value was already on the lead." in unchanged
    skipped = detail_page(importer_client, job, "?show=skipped")
    assert "No name, email, phone or company in this row." in skipped and "=2+3" in skipped
    failed = changes.import_changes(job=job, kind="failed")
    assert [row.row for row in failed.rows] == list(range(2, 12))
    assert all(row.reason and row.cells for row in failed.rows)


def test_updated_rows_show_this_imports_values_after_later_imports_and_edits(
    importer_client, mixed_import, tmp_path, django_capture_on_commit_callbacks
):
    lead = Lead.objects.get(email="person0@example.com")
    later = write_csv(
        tmp_path / "later.csv", HEADER, [["First0", "Last0", "Later Co", "person0@example.com", ""]]
    )
    with later.open("rb") as handle, django_capture_on_commit_callbacks(execute=True):
        services.import_start(file=File(handle), filename="later.csv")
    Lead.objects.filter(pk=lead.pk).update(title="Buyer")
    LeadChange.objects.create(lead=lead, field="title", before="", after="Buyer")

    [row] = changes.import_changes(job=mixed_import, kind="updated").rows

    assert [(c.label, c.before, c.after) for c in row.fields] == [
        ("Company", "Company 0", "Northwind <Traders>")
    ]


def test_changes_section_is_paginated_and_swapped_on_its_own(tmp_path, importer_client, importer):
    job = split_job(tmp_path, people(120), user=importer)
    run_batches(job)
    url = reverse("processing:detail", args=[job.pk])

    last = importer_client.get(url + "?show=created&rows=3", HTTP_HX_TARGET="import-changes", **HTMX)
    beyond = changes.import_changes(job=job, kind="created", page="99")
    junk = changes.import_changes(job=job, kind="<script>", page="x")

    html = last.content.decode()
    assert 'id="import-changes"' in html and "<html" not in html and "import-batches-title" not in html
    assert "Page 3 of 3 · 120 rows" in html and "rows=2" in html and "rows=4" not in html
    assert html.count("example.com</td>") == 20
    assert beyond.number == 3 and len(beyond.rows) == 20
    assert junk.kind == "created" and junk.number == 1 and len(junk.rows) == changes.PAGE_SIZE
    summary = importer_client.get(url, **HTMX).content.decode()
    assert 'id="import-summary"' in summary and 'id="import-changes"' not in summary


def test_detail_of_an_undone_import_says_the_leads_were_removed(importer_client, mixed_import):
    result = undo.import_undo(job=mixed_import)

    assert str(result) == "Import undone: 1 created lead removed, 1 update reverted."
    created = detail_page(importer_client, mixed_import, "?show=created")
    updated = changes.import_changes(job=mixed_import, kind="updated")
    assert "Removed by the undo" in created
    assert updated.rows[0].note == "Reverted by the undo of this import." and not updated.rows[0].fields


# --- Undo's message ------------------------------------------------------------------------------


def test_undo_message_uses_the_summarys_numbers(tmp_path, importer_client, importer):
    rows = [
        *people(2),
        ["Ann", "Other", "X", "person0@example.com", ""],
        ["Dup", "Again", "Acme", "person1@example.com", ""],
    ]
    job = split_job(tmp_path, rows, user=importer)
    run_batches(job)
    assert (job.leads_created, job.leads_updated) == (2, 2)
    summary = status_panel(importer_client, job)
    assert "2 leads created, 2 updated" in summary

    response = importer_client.post(reverse("processing:undo", args=[job.pk]), **HTMX)

    assert (
        "Import undone: 2 created leads removed, 2 updates reverted. 0 leads got their previous values back."
        in (response.content.decode())
    )
    assert str(undo.UndoResult(deleted=1, restored=1, created=3, updated=1)) == (
        "Import undone: 3 created leads removed, 1 update reverted. 2 of the created leads had been deleted already."
    )


# --- In the browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_cancelled_import_is_resumed_from_its_page_and_its_numbers_agree(
    open_page, role_user, import_pipeline, tmp_path
):
    from playwright.sync_api import expect

    from easycrm.testing.app_server import pipeline_idle, screenshot

    import_pipeline.latency = 1.0  # 12 batches, two at a time: about 6 s, so it is still running
    page = open_page(role_user("imogen", "importer"))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    page.locator("#upload-file").set_input_files(write_csv(tmp_path / "many.csv", HEADER, people(120)))
    page.get_by_role("button", name="Upload and import").click()
    page.locator("#active-imports .import-status").first.get_by_role("link", name="many.csv").click()
    job = ImportJob.objects.get()
    panel = page.locator(f"#import-{job.pk}")
    expect(panel.locator(".import-stage")).to_contain_text(re.compile(r"Standardizing batch \d+ of 12"))

    panel.get_by_role("button", name="Cancel import").click()

    expect(panel.locator(".badge")).to_have_text("Cancelled")
    pipeline_idle()
    job.refresh_from_db()
    assert 0 < job.rows_cancelled < 120 and job.rows_cancelled == 10 * job.skipped_batches
    tabs = page.locator("#import-changes nav.view-tabs")
    expect(tabs).to_contain_text(f"Created {job.leads_created}")
    expect(tabs).to_contain_text(f"Not run (cancelled) {job.rows_cancelled}")
    expect(panel.locator(".stats")).to_contain_text(f"{job.rows_cancelled} not run (cancelled)")
    expect(panel.locator(".progress")).to_have_attribute("aria-valuenow", str(job.progress_percent))
    assert job.progress_percent < 100
    screenshot(page, "import-cancelled")

    panel.get_by_role("button", name="Resume import").click()

    expect(panel.locator(".import-summary")).to_contain_text("120 leads created", timeout=30_000)
    expect(tabs).to_contain_text("Created 120")
    expect(tabs).not_to_contain_text("Not run")
    screenshot(page, "import-resumed")
    pipeline_idle()
    assert Lead.objects.count() == 120
    assert len(outcomes_per_row(ImportJob.objects.get())) == 120
