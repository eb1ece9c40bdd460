"""Several files in one upload: each its own import and status panel, a refused one failing alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from easycrm.testing.files import HEADER, people, write_csv
from easycrm.testing.http import HTMX
from leads.models import Lead
from processing.models import ImportJob

pytestmark = pytest.mark.django_db

UPLOAD = reverse("processing:upload")


@pytest.fixture
def three_csvs(tmp_path) -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(f"part{n}.csv", write_csv(tmp_path / f"p{n}.csv", HEADER, rows).read_bytes())
        for n, rows in enumerate((people(3), people(2, domain="b.example"), people(4, domain="c.example")))
    ]


def stored_files(settings) -> list:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_anonymous_is_sent_to_login(client, three_csvs):
    response = client.post(UPLOAD, {"file": three_csvs})

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not ImportJob.objects.exists()


def test_viewer_may_not_upload_several_files(viewer_client, three_csvs):
    assert viewer_client.post(UPLOAD, {"file": three_csvs}).status_code == 403
    assert not ImportJob.objects.exists()


def test_upload_refuses_get(importer_client):
    assert importer_client.get(UPLOAD).status_code == 405


def test_picker_allows_several_files_and_states_the_cap(importer_client, settings):
    settings.MAX_UPLOAD_FILES = 7

    html = importer_client.get(reverse("processing:list")).content.decode()

    assert 'name="file" id="upload-file"' in html and " multiple required" in html
    assert "Up to 7 files at once" in html and 'data-max-files="7"' in html
    assert "data-direct-upload" not in html  # S3 off: the form posts the files itself


def test_htmx_upload_of_three_files_gives_three_panels_and_a_fresh_card(
    importer_client, importer, three_csvs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(UPLOAD, {"file": three_csvs}, **HTMX)

    html = response.content.decode()
    jobs = list(ImportJob.objects.order_by("created_at"))
    assert response.status_code == 200 and "<html" not in html
    assert [job.original_filename for job in jobs] == ["part0.csv", "part1.csv", "part2.csv"]
    assert all(job.status == ImportJob.Status.COMPLETED and job.uploaded_by == importer for job in jobs)
    positions = [html.index(f'id="import-{job.pk}"') for job in jobs]
    assert positions == sorted(positions) and positions[-1] < html.index('id="upload-card"')
    assert html.count('hx-swap-oob="outerHTML"') == 1
    assert Lead.objects.count() == 9 == sum(job.leads_created for job in jobs)
    # Answered before the imports ran (the tasks run on commit): they poll, the lead table waits.
    assert html.count('hx-trigger="every 2s"') == 3
    assert response["HX-Trigger"] == '{"imports-changed": {}}'


def test_one_refused_among_three_accepted_fails_alone_with_its_reason(
    importer_client, three_csvs, settings, django_capture_on_commit_callbacks
):
    files = [*three_csvs[:2], SimpleUploadedFile("notes.txt", b"hello"), three_csvs[2]]

    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(UPLOAD, {"file": files}, **HTMX)

    html = response.content.decode()
    refused = ImportJob.objects.get(original_filename="notes.txt")
    accepted = ImportJob.objects.exclude(pk=refused.pk)
    assert refused.status == ImportJob.Status.FAILED and not refused.file
    assert "Files of type .txt are not supported" in refused.error_message
    assert accepted.count() == 3 and {job.status for job in accepted} == {ImportJob.Status.COMPLETED}
    assert f'id="import-{refused.pk}"' in html and "Files of type .txt are not supported" in html
    assert all(f'id="import-{job.pk}"' in html for job in accepted)
    assert not any(path.suffix == ".txt" for path in stored_files(settings))


def test_plain_post_redirects_with_one_message_naming_the_files(
    importer_client, three_csvs, django_capture_on_commit_callbacks
):
    files = [*three_csvs, SimpleUploadedFile("empty.csv", b"")]

    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(UPLOAD, {"file": files})

    assert response.status_code == 302 and response["Location"] == reverse("leads:list")
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert shown[0] == (
        "3 files are being imported: “part0.csv”, “part1.csv”, “part2.csv”. Their progress is shown below."
    )
    assert shown[1] == "Not imported: “empty.csv”: This file is empty."
    assert ImportJob.objects.count() == 4


def test_more_files_than_the_cap_are_refused_and_nothing_is_stored(importer_client, three_csvs, settings):
    settings.MAX_UPLOAD_FILES = 2

    response = importer_client.post(UPLOAD, {"file": three_csvs}, **HTMX)

    html = response.content.decode()
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#upload-card", "outerHTML")
    assert "Choose at most 2 files at once; you chose 3." in html and 'aria-invalid="true"' in html
    assert not ImportJob.objects.exists() and stored_files(settings) == []


def test_when_every_file_is_refused_the_card_lists_each_reason(importer_client, settings):
    settings.MAX_UPLOAD_MB = 1
    files = [SimpleUploadedFile("notes.txt", b"x"), SimpleUploadedFile("big.csv", b"x" * (1024 * 1024 + 1))]

    response = importer_client.post(UPLOAD, {"file": files})

    html = response.content.decode()
    assert response.status_code == 400 and "<html" in html
    assert "notes.txt: Files of type .txt are not supported" in html
    assert "big.csv: This file is 1.0 MB; the limit is 1 MB." in html
    assert not ImportJob.objects.exists() and stored_files(settings) == []


def test_no_file_at_all_asks_for_one(importer_client):
    response = importer_client.post(UPLOAD, {}, **HTMX)

    assert "Choose a CSV or Excel file to upload." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_request_limit_is_per_file_times_the_file_cap(importer_client, settings):
    """Three 40 MB files pass with 50 MB per file; a body over 50 MB × MAX_UPLOAD_FILES does not."""
    settings.MAX_UPLOAD_MB = 50
    settings.MAX_UPLOAD_REQUEST_MB = settings.MAX_UPLOAD_MB * 3

    def declared(megabytes: int):
        return importer_client.generic(
            "POST", UPLOAD, data=b"", CONTENT_LENGTH=str(megabytes * 1024 * 1024), **HTMX
        )

    assert declared(151).status_code == 413
    assert "larger than the 150 MB limit of one request" in declared(151).content.decode()
    assert declared(120).status_code != 413
