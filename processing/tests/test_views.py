"""Import pages: upload, live status, history, detail, problem rows, cancel, retry and undo."""

from __future__ import annotations

import csv
import io
import uuid
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from easycrm.testing.files import HEADER, people, write_csv
from leads.models import Lead
from processing import services
from processing.models import ImportBatch, ImportJob

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
READ_URLS = ["processing:detail", "processing:status", "processing:problems"]
ACTION_URLS = ["processing:cancel", "processing:retry", "processing:undo"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def finished_job(import_file, tmp_path, importer) -> ImportJob:
    rows = [*people(3), ["", "", "", "=2+3", ""]]
    return import_file(write_csv(tmp_path / "leads.csv", HEADER, rows), user=importer)


@pytest.fixture
def running_job(tmp_path, importer) -> ImportJob:
    """An import whose file is read and whose batches wait for a worker."""
    path = write_csv(tmp_path / "running.csv", HEADER, people(25))
    with path.open("rb") as handle:
        job = services.import_start(file=File(handle), filename="running.csv", user=importer, enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    job.refresh_from_db()
    return job


def upload(client, name: str, content: bytes, *, htmx: bool = False, capture=None):
    file = SimpleUploadedFile(name, content)
    headers = HTMX if htmx else {}
    if capture is None:
        return client.post(reverse("processing:upload"), {"file": file}, **headers)
    with capture(execute=True):
        return client.post(reverse("processing:upload"), {"file": file}, **headers)


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


# --- Access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["processing:list", *READ_URLS])
def test_import_pages_send_anonymous_users_to_login(client, finished_job, name):
    args = [] if name == "processing:list" else [finished_job.pk]

    response = client.get(reverse(name, args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_htmx_poll_after_logout_gets_401_with_login_redirect(client, running_job):
    response = client.get(
        reverse("processing:status", args=[running_job.pk]), HTTP_HX_CURRENT_URL="http://testserver/", **HTMX
    )

    assert response.status_code == 401
    assert response["HX-Redirect"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["processing:list", *READ_URLS])
def test_user_without_a_role_cannot_see_imports(outsider_client, finished_job, name):
    client = outsider_client
    args = [] if name == "processing:list" else [finished_job.pk]

    assert client.get(reverse(name, args=args)).status_code == 403


@pytest.mark.parametrize("name", ACTION_URLS)
def test_viewer_cannot_cancel_retry_or_undo(viewer_client, running_job, name):
    response = viewer_client.post(reverse(name, args=[running_job.pk]))

    assert response.status_code == 403
    running_job.refresh_from_db()
    assert running_job.status == ImportJob.Status.PROCESSING


def test_viewer_cannot_upload(viewer_client, samples):
    response = upload(viewer_client, "simple_leads.csv", (samples / "simple_leads.csv").read_bytes())

    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_viewer_sees_every_import_but_no_action_buttons(viewer_client, finished_job, running_job):
    history = viewer_client.get(reverse("processing:list")).content.decode()
    detail = viewer_client.get(reverse("processing:detail", args=[running_job.pk])).content.decode()

    assert "leads.csv" in history and "running.csv" in history
    assert 'id="upload-card"' not in history
    assert "Cancel import" not in detail and "Undo import" not in detail


@pytest.mark.parametrize("name", ["processing:upload", *ACTION_URLS])
def test_actions_refuse_get(importer_client, finished_job, name):
    args = [] if name == "processing:upload" else [finished_job.pk]

    assert importer_client.get(reverse(name, args=args)).status_code == 405


@pytest.mark.parametrize("name", READ_URLS)
def test_read_only_pages_refuse_post(importer_client, finished_job, name):
    assert importer_client.post(reverse(name, args=[finished_job.pk])).status_code == 405


@pytest.mark.parametrize("name", [*READ_URLS, *ACTION_URLS])
def test_unknown_import_is_404(importer_client, name):
    method = importer_client.post if name in ACTION_URLS else importer_client.get

    assert method(reverse(name, args=[uuid.uuid4()])).status_code == 404


# --- Upload ------------------------------------------------------------------------------------


def test_upload_of_workbook_imports_every_sheet_and_returns_to_leads(
    importer_client, importer, samples, django_capture_on_commit_callbacks
):
    content = (samples / "multi_sheet.xlsx").read_bytes()

    response = upload(
        importer_client, "multi_sheet.xlsx", content, capture=django_capture_on_commit_callbacks
    )

    assert response.status_code == 302 and response["Location"] == reverse("leads:list")
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.COMPLETED and job.uploaded_by == importer
    assert Lead.objects.count() == job.leads_created > 0
    assert len(set(Lead.objects.values_list("worksheet", flat=True))) >= 2
    assert "multi_sheet.xlsx" in str(list(get_messages(response.wsgi_request))[0])


def test_htmx_upload_returns_the_new_status_panel_and_a_fresh_card(importer_client, samples):
    content = (samples / "simple_leads.csv").read_bytes()

    response = upload(importer_client, "simple_leads.csv", content, htmx=True)

    job = ImportJob.objects.get()
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.index(f'id="import-{job.pk}"') < html.index('id="upload-card"')
    assert 'hx-trigger="every 2s"' in html
    assert 'hx-swap-oob="outerHTML"' in html and "<script" not in html
    assert "imports-changed" in response["HX-Trigger"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (None, b"", "Choose a CSV or Excel file"),
        ("notes.txt", b"First Name\nAnn\n", "Files of type .txt are not supported"),
        ("empty.csv", b"", "This file is empty"),
        ("big.csv", b"x" * (1024 * 1024 + 1), "the limit is 1 MB"),
    ],
)
def test_htmx_upload_error_is_shown_in_the_card_and_nothing_is_stored(
    importer_client, settings, media_root, name, content, message
):
    settings.MAX_UPLOAD_MB = 1
    data = {} if name is None else {"file": SimpleUploadedFile(name, content)}

    response = importer_client.post(reverse("processing:upload"), data, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#upload-card", "outerHTML")
    assert message in html and 'aria-invalid="true"' in html and "<html" not in html
    assert not ImportJob.objects.exists() and stored_files(media_root) == []


def test_upload_error_without_htmx_renders_the_page_with_the_error(importer_client, media_root):
    response = upload(importer_client, "notes.txt", b"hello")

    assert response.status_code == 400
    assert "<html" in response.content.decode() and "are not supported" in response.content.decode()
    assert not ImportJob.objects.exists() and stored_files(media_root) == []


# --- Status ------------------------------------------------------------------------------------


def test_status_of_a_running_import_keeps_polling(importer_client, running_job):
    response = importer_client.get(reverse("processing:status", args=[running_job.pk]), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'hx-trigger="every 2s"' in html
    assert "Standardizing batch 1 of 3…" in html
    assert 'role="progressbar"' in html and 'aria-valuenow="0"' in html
    assert "25 rows" in html and "Cancel import" in html and 'hx-confirm="Cancel this import?"' in html


def test_status_of_a_finished_import_stops_polling_and_refreshes_the_leads(importer_client, finished_job):
    response = importer_client.get(reverse("processing:status", args=[finished_job.pk]), **HTMX)

    html = response.content.decode()
    assert response.status_code == 286
    assert "hx-trigger" not in html and "Cancel import" not in html
    assert "leads-changed" in response["HX-Trigger"]
    assert reverse("processing:detail", args=[finished_job.pk]) in html
    assert "3 leads created" in html and "1 row not imported" in html


def test_a_status_poll_reads_its_permissions_and_the_worker_heartbeats_once_each(
    importer_client, running_job, settings
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}  # the warning is shown when none beats
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "easycrm_cache"}
    }
    with CaptureQueriesContext(connection) as queries:
        response = importer_client.get(reverse("processing:status", args=[running_job.pk]), **HTMX)

    assert "Imports are waiting: no worker is running." in response.content.decode()
    statements = [query["sql"] for query in queries]
    assert sum(1 for sql in statements if '"auth_permission"' in sql) == 1
    assert sum(1 for sql in statements if "easycrm_cache" in sql) == 1


def test_status_without_htmx_redirects_to_the_detail_page(importer_client, running_job):
    response = importer_client.get(reverse("processing:status", args=[running_job.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("processing:detail", args=[running_job.pk])


# --- History and detail ------------------------------------------------------------------------


def test_history_lists_imports_newest_first_fifty_per_page(importer_client, importer):
    ImportJob.objects.bulk_create(
        ImportJob(original_filename=f"file{i:02}.csv", uploaded_by=importer, status="completed")
        for i in range(51)
    )
    ImportJob.objects.filter(original_filename="file50.csv").update(created_at="2000-01-01T00:00:00Z")

    first = importer_client.get(reverse("processing:list")).content.decode()
    second = importer_client.get(reverse("processing:list") + "?page=2", **HTMX).content.decode()

    assert first.count("badge completed") == 50 and "file50.csv" not in first
    assert "Page 1 of 2" in first and "imogen" in first
    assert "file50.csv" in second and second.lstrip().startswith('<section id="import-history"')


def test_detail_shows_batches_actions_and_a_live_status(importer_client, finished_job):
    response = importer_client.get(reverse("processing:detail", args=[finished_job.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="import-{finished_job.pk}"' in html and "Batch" in html
    assert reverse("processing:problems", args=[finished_job.pk]) in html
    assert "Undo import" in html and "Retry failed batches" not in html


def test_detail_htmx_refresh_returns_only_the_summary(importer_client, finished_job):
    response = importer_client.get(reverse("processing:detail", args=[finished_job.pk]), **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="import-summary"') and "<html" not in html


def test_problem_rows_download_lists_skipped_rows_with_raw_columns(importer_client, finished_job, tmp_path):
    response = importer_client.get(reverse("processing:problems", args=[finished_job.pk]))

    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert 'filename="leads-problems.csv"' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    # Blank cells are not kept in the raw rows, so only the columns the problem rows filled appear.
    assert rows[0] == ["worksheet", "row", "outcome", "reason", "Email"]
    assert len(rows) == 2
    assert rows[1][1:3] == ["5", "skipped"] and rows[1][3] and rows[1][4] == "'=2+3"


# --- Cancel, retry, undo -----------------------------------------------------------------------


def test_cancel_stops_a_running_import(importer_client, running_job):
    response = importer_client.post(reverse("processing:cancel", args=[running_job.pk]))

    assert response["Location"] == reverse("processing:detail", args=[running_job.pk])
    running_job.refresh_from_db()
    assert running_job.status == ImportJob.Status.CANCELLED
    assert not running_job.batches.filter(status=ImportBatch.Status.QUEUED).exists()
    assert "cancelled" in str(list(get_messages(response.wsgi_request))[0])


def test_htmx_cancel_returns_the_final_panel_and_cancelling_again_is_refused(importer_client, running_job):
    url = reverse("processing:cancel", args=[running_job.pk])

    first = importer_client.post(url, **HTMX)
    again = importer_client.post(url, **HTMX)

    assert first.status_code == 200 and "leads-changed" in first["HX-Trigger"]
    assert "Import cancelled" in first.content.decode() and "hx-trigger" not in first.content.decode()
    assert "already ended" in again.content.decode() and "message error" in again.content.decode()


def test_retry_reruns_failed_batches_until_the_import_completes(
    importer_client, import_file, tmp_path, importer, fake_deepseek, django_capture_on_commit_callbacks
):
    fake_deepseek.fail_next("503", times=3)
    job = import_file(write_csv(tmp_path / "twenty.csv", HEADER, people(20)), user=importer)
    assert job.status == ImportJob.Status.COMPLETED_WITH_ERRORS
    detail = importer_client.get(reverse("processing:detail", args=[job.pk])).content.decode()
    problems = importer_client.get(reverse("processing:problems", args=[job.pk]))
    assert "Retry failed batches" in detail
    assert b"".join(problems.streaming_content).decode().count(",failed,") == 10

    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(reverse("processing:retry", args=[job.pk]), **HTMX)

    assert "Retrying 1 failed batch." in response.content.decode()
    assert 'hx-trigger="every 2s"' in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED and job.leads_created == 20


def test_retry_without_failed_batches_is_refused(importer_client, finished_job):
    response = importer_client.post(reverse("processing:retry", args=[finished_job.pk]), follow=True)

    assert "Only a finished import with failed batches" in response.content.decode()


def test_undo_removes_the_import_and_hides_the_button(importer_client, finished_job, importer):
    response = importer_client.post(reverse("processing:undo", args=[finished_job.pk]), follow=True)

    html = response.content.decode()
    assert "Import undone: 3 created leads removed, 0 updates reverted." in html
    assert "Undo import" not in html and "badge undone" in html
    assert not Lead.objects.exists()
    finished_job.refresh_from_db()
    assert finished_job.undone_by == importer


def test_htmx_undo_refusal_is_shown_in_the_panel(importer_client, import_file, tmp_path, finished_job):
    import_file(write_csv(tmp_path / "later.csv", HEADER, [["New", "Name", "", "person0@example.com", ""]]))

    response = importer_client.post(reverse("processing:undo", args=[finished_job.pk]), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "1 lead was changed by a later import since; undo is not possible." in html
    assert Lead.objects.count() == 3


def test_retry_of_an_undone_import_is_refused(importer_client, finished_job):
    ImportJob.objects.filter(pk=finished_job.pk).update(
        status=ImportJob.Status.COMPLETED_WITH_ERRORS, failed_batches=1, undone_at=finished_job.created_at
    )

    response = importer_client.post(reverse("processing:retry", args=[finished_job.pk]), **HTMX)

    assert "not undone, can be retried" in response.content.decode()
    finished_job.refresh_from_db()
    assert finished_job.status == ImportJob.Status.COMPLETED_WITH_ERRORS


def test_status_says_when_batches_of_a_stopped_worker_are_being_resumed(importer_client, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    with (tmp_path / "r.csv").open("w") as handle:
        handle.write("First Name,Email\n" + "".join(f"P{i},p{i}@x.example\n" for i in range(20)))
    with (tmp_path / "r.csv").open("rb") as handle:
        job = services.import_start(file=File(handle), filename="r.csv", enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    url = reverse("processing:status", args=[job.pk])
    assert "being resumed" not in importer_client.get(url, **HTMX).content.decode()

    batch = job.batches.first()
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.RUNNING, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    with mock.patch.object(services, "import_enqueue"):  # the worker that takes it over comes later
        services.imports_sweep()

    assert (
        "A worker stopped; its batches are being resumed."
        in importer_client.get(url, **HTMX).content.decode()
    )
