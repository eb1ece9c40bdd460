"""The import review: the split stops, a person corrects the mapping, the import runs with it; saved
mappings; the "what will happen" counts against the database; the DeepSeek preview; import_leads."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from easycrm.testing.files import write_csv
from leads.models import Lead
from processing import review, services
from processing.models import ImportBatch, ImportJob, SavedMapping

pytestmark = pytest.mark.django_db

# "fld_3" holds emails (found by content: unsure); "Contact" is a full name; "Notiz" goes to remarks.
HEADER = ["Contact", "Firma", "fld_3", "Telefon", "Notiz"]
ROWS = [
    ["Ana Lima", "Acme GmbH", "ana@acme.example", "+49 30 1234567", "met at fair"],
    ["Bo Chen", "Beta Ltd", "not-an-email", "+44 20 7946 0958", ""],
    ["Cy Diaz", "Gamma SA", "cy@gamma.example", "", "call back"],
]


@pytest.fixture
def ana(django_user_model):
    return django_user_model.objects.create_user("ana", password="pw")


def _upload(path: Path, captured, *, mode=ImportJob.Review.ALWAYS, user=None) -> ImportJob:
    with path.open("rb") as handle, captured(execute=True):
        job = services.import_start(
            file=File(handle, name=path.name), filename=path.name, user=user, review_mode=mode
        )
    job.refresh_from_db()
    return job


def _confirm(job: ImportJob, captured, user=None) -> ImportJob:
    with captured(execute=True):
        review.review_confirm(job=job, user=user)
    job.refresh_from_db()
    return job


@pytest.fixture
def leads_file(tmp_path) -> Path:
    return write_csv(tmp_path / "fair.csv", HEADER, ROWS)


def test_split_stops_for_review_and_nothing_is_written(leads_file, django_capture_on_commit_callbacks):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    assert job.status == ImportJob.Status.REVIEW
    assert job.total_rows == 3
    assert Lead.objects.count() == 0
    assert set(job.batches.values_list("status", flat=True)) == {ImportBatch.Status.QUEUED}
    [sheet] = review.review_sheets(job)
    assert sheet.name == "fair" and sheet.rows == 3 and sheet.header_row == 1
    columns = {column.header: column for column in sheet.columns}
    assert columns["fld_3"].role == "email" and columns["fld_3"].reason == "content"
    assert columns["fld_3"].samples == ["ana@acme.example", "not-an-email", "cy@gamma.example"]
    assert columns["Notiz"].role == "remarks"
    first, second, _third = sheet.preview
    assert not [cell for cell in first.cells if cell.moved]  # each value where its column says
    assert first.after["email"] == "ana@acme.example" and first.after["first_name"] == "Ana"
    moved = [cell for cell in second.cells if cell.moved]
    assert [(cell.header, cell.value, cell.goes_to) for cell in moved] == [
        ("fld_3", "not-an-email", "Remarks")
    ]


def test_confirm_imports_with_the_chosen_mapping(leads_file, django_capture_on_commit_callbacks, ana):
    job = _upload(leads_file, django_capture_on_commit_callbacks, user=ana)
    job = review.review_set_role(job=job, sheet="fair", header="Firma", role="title")
    job = review.review_set_role(job=job, sheet="fair", header="Notiz", role="ignore")
    [sheet] = review.review_sheets(job)
    assert sheet.preview[0].after["title"] == "Acme GmbH"
    job = _confirm(job, django_capture_on_commit_callbacks, ana)
    assert job.status == ImportJob.Status.COMPLETED
    lead = Lead.objects.get(email="ana@acme.example")
    assert (lead.title, lead.company) == ("Acme GmbH", "")
    assert "met at fair" not in lead.remarks  # the ignored column
    assert job.leads_created == 3


def test_confirmed_mapping_is_remembered_for_the_same_headers(
    leads_file, tmp_path, django_capture_on_commit_callbacks, ana
):
    job = _upload(leads_file, django_capture_on_commit_callbacks, user=ana)
    review.review_set_role(job=job, sheet="fair", header="Firma", role="title")
    _confirm(job, django_capture_on_commit_callbacks, ana)
    mapping = SavedMapping.objects.get()
    assert mapping.confirmed_by == ana and mapping.roles["Firma"] == "title"

    # Same headers in another order and case: the saved mapping applies.
    again = write_csv(
        tmp_path / "fair2.csv", [h.upper() for h in reversed(HEADER)], [list(reversed(r)) for r in ROWS]
    )
    second = _upload(again, django_capture_on_commit_callbacks, mode=ImportJob.Review.WHEN_UNSURE)
    assert second.status == ImportJob.Status.COMPLETED
    assert Lead.objects.get(email="ana@acme.example").title == "Acme GmbH"

    same = write_csv(tmp_path / "fair3.csv", HEADER, [["Dee Egan", "Delta AG", "dee@delta.example", "", ""]])
    third = _upload(same, django_capture_on_commit_callbacks, mode=ImportJob.Review.WHEN_UNSURE)
    assert third.status == ImportJob.Status.COMPLETED  # remembered: no review needed
    assert third.review["remembered"]["fair3"]["by"] == "ana"
    assert Lead.objects.get(email="dee@delta.example").title == "Delta AG"
    mapping.refresh_from_db()
    assert mapping.times_used == 0  # used without a review: counted only on confirm

    other = write_csv(tmp_path / "other.csv", [*HEADER, "Extra"], [[*ROWS[0], "x"]])
    fourth = _upload(other, django_capture_on_commit_callbacks, mode=ImportJob.Review.WHEN_UNSURE)
    assert fourth.status == ImportJob.Status.REVIEW  # other headers: not remembered, fld_3 unsure
    assert not fourth.review["remembered"]


def test_when_unsure_goes_straight_through_a_clean_file(tmp_path, django_capture_on_commit_callbacks):
    clean = write_csv(
        tmp_path / "clean.csv", ["First Name", "Last Name", "Email"], [["Ana", "Lima", "a@x.example"]]
    )
    job = _upload(clean, django_capture_on_commit_callbacks, mode=ImportJob.Review.WHEN_UNSURE)
    assert job.status == ImportJob.Status.COMPLETED


def test_counts_are_computed_against_the_database(leads_file, django_capture_on_commit_callbacks):
    Lead.objects.create(email="ana@acme.example", first_name="Ana", last_name="Lima", company="Old name")
    Lead.objects.create(
        email="cy@gamma.example",
        first_name="Cy",
        last_name="Diaz",
        company="Gamma SA",
        phone="",
        remarks="Notiz: call back",
    )
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    counts = review.review_counts(job)
    assert (counts.created, counts.updated, counts.unchanged, counts.skipped) == (1, 1, 1, 0)
    assert not counts.partial
    [(label, changes)] = counts.update_samples
    assert label == "Ana Lima"
    assert ("company", "Old name", "Acme GmbH") in [(f.lower(), b, a) for f, b, a in changes]
    # Rolled back: nothing written.
    assert Lead.objects.count() == 2
    assert Lead.objects.get(email="ana@acme.example").company == "Old name"


def test_skipped_sheet_rows_are_skipped_with_the_reason(leads_file, django_capture_on_commit_callbacks):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    job = review.review_set_sheet(job=job, sheet="fair", include=False)
    assert review.review_counts(job).skipped == 3
    job = _confirm(job, django_capture_on_commit_callbacks)
    assert job.rows_skipped == 3 and Lead.objects.count() == 0
    reasons = {r["reason"] for b in job.batches.all() for r in b.results}
    assert reasons == {review.SHEET_SKIPPED.format(sheet="fair")}


def test_choosing_another_header_row_reads_the_file_again(tmp_path, django_capture_on_commit_callbacks):
    path = tmp_path / "titled.csv"
    path.write_text("Export,,\nName,Mail,Company\nAna Lima,ana@x.example,Acme\n", encoding="utf-8")
    job = _upload(path, django_capture_on_commit_callbacks)
    [sheet] = review.review_sheets(job)
    assert sheet.header_row == 2
    with django_capture_on_commit_callbacks(execute=True):
        review.review_set_header_row(job=job, sheet="titled", row=1)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REVIEW
    [sheet] = review.review_sheets(job)
    assert sheet.header_row == 1 and sheet.rows == 2
    with pytest.raises(review.ReviewRefused):
        review.review_set_header_row(job=job, sheet="titled", row=99)


def test_changes_are_refused_once_the_review_is_over(leads_file, django_capture_on_commit_callbacks):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    _confirm(job, django_capture_on_commit_callbacks)
    with pytest.raises(review.ReviewRefused):
        review.review_set_role(job=job, sheet="fair", header="Firma", role="title")
    with pytest.raises(review.ReviewRefused):
        review.review_confirm(job=job, user=None)
    assert review.review_discard(job=job) is False


def test_bad_choices_are_refused(leads_file, django_capture_on_commit_callbacks):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    for sheet, header, role in (
        ("fair", "Firma", "boss"),
        ("fair", "Nope", "title"),
        ("nope", "Firma", "title"),
    ):
        with pytest.raises(review.ReviewRefused):
            review.review_set_role(job=job, sheet=sheet, header=header, role=role)


def test_discard_deletes_the_file_and_the_job(leads_file, django_capture_on_commit_callbacks):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    stored = Path(job.file.path)
    assert stored.exists()
    assert review.review_discard(job=job)
    assert not stored.exists()
    assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert not ImportBatch.objects.exists()


def test_import_leads_review_prints_and_imports_nothing(leads_file):
    out = StringIO()
    call_command("import_leads", str(leads_file), "--review", stdout=out)
    text = out.getvalue()
    assert "fair.csv: 3 rows in 1 sheet(s)" in text
    assert "'fld_3'" in text and "Email" in text and "(content)" in text
    assert "What will happen: 3 new, 0 updated, 0 unchanged, 0 skipped" in text
    assert Lead.objects.count() == 0 and not ImportJob.objects.exists()


def test_import_leads_mapping_file(leads_file, tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"Firma": "title", "Notiz": "ignore"}), encoding="utf-8")
    call_command(
        "import_leads", str(leads_file), "--mapping", str(mapping), "--no-progress", stdout=StringIO()
    )
    lead = Lead.objects.get(email="ana@acme.example")
    assert (lead.title, lead.company) == ("Acme GmbH", "")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Firma": "boss"}), encoding="utf-8")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="'boss' is not one of"):
        call_command("import_leads", str(leads_file), "--mapping", str(bad), stdout=StringIO())


# --- the pages ------------------------------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}
POSTS = {
    "processing:review_column": {"sheet": "fair", "header": "Firma", "role": "title"},
    "processing:review_sheet": {"sheet": "fair", "include": "0"},
    "processing:review_header": {"sheet": "fair", "row": "1"},
    "processing:review_confirm": {},
    "processing:review_discard": {},
}


@pytest.fixture
def waiting(leads_file, django_capture_on_commit_callbacks, importer) -> ImportJob:
    return _upload(leads_file, django_capture_on_commit_callbacks, user=importer)


def _url(name: str, job: ImportJob) -> str:
    return reverse(name, args=[job.pk])


@pytest.mark.parametrize("name", ["processing:review", "processing:review_counts", *POSTS])
def test_review_pages_need_login_and_the_importer_role(name, waiting, viewer_client):
    method = "get" if name in ("processing:review", "processing:review_counts") else "post"
    response = getattr(Client(), method)(_url(name, waiting), POSTS.get(name, {}))
    assert response.status_code == 302 and "/login" in response["Location"]
    assert getattr(viewer_client, method)(_url(name, waiting), POSTS.get(name, {})).status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == ImportJob.Status.REVIEW


@pytest.mark.parametrize("name", list(POSTS))
def test_review_actions_are_post_only(name, waiting, importer_client):
    assert importer_client.get(_url(name, waiting)).status_code == 405


def test_review_page_shows_columns_preview_and_counts(waiting, importer_client):
    page = importer_client.get(_url("processing:review", waiting))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Review: fair.csv" in html and "3 rows in 1 sheet" in html
    assert 'aria-label="Import column fld_3 as"' in html
    assert "not-an-email <strong>→ Remarks</strong>" in html
    assert "Import 3 rows" in html
    assert "Counting against the database" in html  # loaded by htmx
    counts = importer_client.get(_url("processing:review_counts", waiting), **HTMX)
    assert b"<strong>3</strong> new leads" in counts.content
    full = importer_client.get(_url("processing:review_counts", waiting))  # without JS: the page with counts
    assert b"<strong>3</strong> new leads" in full.content and b"Review: fair.csv" in full.content


def test_the_import_button_counts_only_the_sheets_that_will_be_read(waiting, importer_client):
    assert "Import 3 rows" in importer_client.get(_url("processing:review", waiting)).content.decode()
    review.review_set_sheet(job=waiting, sheet="fair", include=False)
    html = importer_client.get(_url("processing:review", waiting)).content.decode()
    assert "Import 0 rows" in html and "Skipped by you." in html


def test_a_column_change_rerenders_and_is_escaped(waiting, importer_client, tmp_path):
    response = importer_client.post(
        _url("processing:review_column", waiting), POSTS["processing:review_column"], **HTMX
    )
    assert response.status_code == 200
    assert "review-changed" in response["HX-Trigger"]
    assert '<option value="title" selected>' in response.content.decode()
    plain = importer_client.post(
        _url("processing:review_column", waiting), {"sheet": "fair", "header": "Firma", "role": "x"}
    )
    assert plain.status_code == 302  # back to the review with the message
    bad = importer_client.post(
        _url("processing:review_column", waiting), {"sheet": "fair", "header": "Firma", "role": "x"}, **HTMX
    )
    assert bad.status_code == 400 and b"Choose one of the listed fields." in bad.content


def test_headers_and_values_are_escaped(
    tmp_path, django_capture_on_commit_callbacks, importer, importer_client
):
    path = write_csv(
        tmp_path / "x.csv", ["<b>Name</b>", "Email"], [["<script>alert(1)</script>", "a@x.example"]]
    )
    job = _upload(path, django_capture_on_commit_callbacks, user=importer)
    html = importer_client.get(_url("processing:review", job)).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Name</b>" not in html


def test_bad_input_is_refused(waiting, importer_client):
    assert (
        importer_client.post(
            _url("processing:review_sheet", waiting), {"sheet": "fair", "include": "x"}
        ).status_code
        == 400
    )
    assert (
        importer_client.post(
            _url("processing:review_header", waiting), {"sheet": "fair", "row": "x"}
        ).status_code
        == 400
    )
    response = importer_client.post(
        _url("processing:review_header", waiting), {"sheet": "fair", "row": "50"}, **HTMX
    )
    assert response.status_code == 400 and b"Choose one of the rows shown." in response.content


def test_confirm_from_the_page_and_the_panel(waiting, importer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(_url("processing:review_confirm", waiting), {"remember": "1"}, **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == waiting.get_absolute_url()
    waiting.refresh_from_db()
    assert waiting.status == ImportJob.Status.COMPLETED and Lead.objects.count() == 3
    # Once imported, the review page leads to the import's page.
    assert importer_client.get(_url("processing:review", waiting))["Location"] == waiting.get_absolute_url()
    assert SavedMapping.objects.count() == 1


def test_panel_of_a_waiting_import_offers_review_and_discard(waiting, importer_client):
    status = importer_client.get(reverse("processing:status", args=[waiting.pk]), **HTMX)
    assert status.status_code == 286  # no polling while waiting for a person
    html = status.content.decode()
    assert "Review and import" in html and "Discard" in html and "Import now" not in html
    response = importer_client.post(_url("processing:review_discard", waiting), {"panel": "1"}, **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not ImportJob.objects.filter(pk=waiting.pk).exists()


def test_one_click_import_with_a_saved_mapping(
    waiting, tmp_path, importer, importer_client, django_capture_on_commit_callbacks
):
    _confirm(waiting, django_capture_on_commit_callbacks, importer)
    again = _upload(
        write_csv(tmp_path / "fair.csv", HEADER, ROWS[:1]), django_capture_on_commit_callbacks, user=importer
    )
    status = importer_client.get(reverse("processing:status", args=[again.pk]), **HTMX).content.decode()
    today = again.created_at.date().isoformat()
    assert (
        f"Using the mapping confirmed on {today} by {importer.get_username()}" in status
        and "Import now" in status
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(_url("processing:review_confirm", again), {"panel": "1"}, **HTMX)
    assert response.status_code == 200 and b"is being imported" in response.content
    again.refresh_from_db()
    assert again.status == ImportJob.Status.COMPLETED


def test_upload_stops_for_review_with_the_setting(
    settings, importer_client, django_capture_on_commit_callbacks, tmp_path
):
    settings.IMPORT_REVIEW = "always"
    content = write_csv(tmp_path / "u.csv", HEADER, ROWS).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        response = importer_client.post(
            reverse("processing:upload"), {"file": SimpleUploadedFile("u.csv", content)}, **HTMX
        )
    assert response.status_code == 200
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.REVIEW and job.review_mode == "always"
    panel = importer_client.get(reverse("processing:status", args=[job.pk]), **HTMX)
    assert b"Review and import" in panel.content


def test_deepseek_preview_is_the_models_answer_in_one_call(
    leads_file, fake_deepseek, django_capture_on_commit_callbacks
):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    assert job.standardizer == "deepseek" and job.llm_calls == 0
    [sheet] = review.review_sheets(job)
    assert sheet.by_model and sheet.preview[0].after["email"] == "ana@acme.example"
    job.refresh_from_db()
    assert job.llm_calls == 1 and job.prompt_tokens > 0
    review.review_sheets(job)  # the same mapping again: the answer is reused
    job.refresh_from_db()
    assert job.llm_calls == 1
    assert len(fake_deepseek.requests) == 1
    job = review.review_set_role(job=job, sheet="fair", header="Firma", role="title")
    [sheet] = review.review_sheets(job)
    assert sheet.preview[0].after["title"] == "Acme GmbH"
    job.refresh_from_db()
    assert job.llm_calls == 2
    # The confirmed roles go to the model as hints (asserted on the preview's request); the first
    # batch is the preview's rows, so the import reuses that answer instead of asking again.
    assert '"Firma":"title"' in fake_deepseek.requests[-1]["messages"][-1]["content"].replace(" ", "")
    job = _confirm(job, django_capture_on_commit_callbacks)
    assert len(fake_deepseek.requests) == 2 and job.llm_calls == 2
    assert Lead.objects.get(email="ana@acme.example").title == "Acme GmbH"


def test_deepseek_batches_get_the_confirmed_roles_as_hints(
    tmp_path, fake_deepseek, django_capture_on_commit_callbacks
):
    path = write_csv(
        tmp_path / "big.csv", HEADER, [[f"P{i} Q", f"Co {i}", f"p{i}@x.example", "", ""] for i in range(25)]
    )
    job = _upload(path, django_capture_on_commit_callbacks)
    review.review_set_role(job=job, sheet="big", header="Firma", role="title")
    job = _confirm(job, django_capture_on_commit_callbacks)
    assert job.status == ImportJob.Status.COMPLETED and len(fake_deepseek.requests) == 3
    for request in fake_deepseek.requests:
        assert '"Firma":"title"' in request["messages"][-1]["content"].replace(" ", "")
    assert Lead.objects.get(email="p20@x.example").title == "Co 20"


def test_column_mode_keeps_the_persons_choice(
    leads_file, fake_deepseek, settings, django_capture_on_commit_callbacks
):
    settings.DEEPSEEK_MODE = "columns"
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    review.review_set_role(job=job, sheet="fair", header="Firma", role="title")
    _confirm(job, django_capture_on_commit_callbacks)
    # The model (the fake answers with the offline rules) says Firma is the company; the person said title.
    assert Lead.objects.get(email="ana@acme.example").title == "Acme GmbH"


def test_saved_mappings_are_listed_and_deleted_in_the_admin(
    leads_file, django_capture_on_commit_callbacks, admin_client
):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    _confirm(job, django_capture_on_commit_callbacks)
    mapping = SavedMapping.objects.get()
    listing = admin_client.get(reverse("admin:processing_savedmapping_changelist"))
    assert listing.status_code == 200 and b"Contact, Firma, fld_3, Telefon" in listing.content
    response = admin_client.post(
        reverse("admin:processing_savedmapping_delete", args=[mapping.pk]), {"post": "yes"}
    )
    assert response.status_code == 302 and not SavedMapping.objects.exists()


def test_an_import_cancelled_while_waiting_for_review_cannot_be_resumed(
    leads_file, django_capture_on_commit_callbacks
):
    job = _upload(leads_file, django_capture_on_commit_callbacks)
    assert services.import_cancel(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED and job.review_pending and not job.can_resume
    assert services.import_resume(job=job) == []
    assert Lead.objects.count() == 0


def test_a_panel_polled_on_its_own_page_does_not_link_to_it(
    leads_file, importer_client, importer, tmp_path, django_capture_on_commit_callbacks
):
    job = _upload(leads_file, django_capture_on_commit_callbacks, user=importer, mode=ImportJob.Review.NEVER)
    url = reverse("processing:status", args=[job.pk])
    detail = f"http://testserver{job.get_absolute_url()}"
    on_page = importer_client.get(url, HTTP_HX_CURRENT_URL=detail, **HTMX).content.decode()
    elsewhere = importer_client.get(url, HTTP_HX_CURRENT_URL="http://testserver/", **HTMX).content.decode()
    assert "Import details" not in on_page and "Import details" in elsewhere


def test_the_review_page_waits_while_the_file_is_read_again(waiting, importer_client, tmp_path, importer):
    importer_client.post(_url("processing:review_header", waiting), {"sheet": "fair", "row": "1"}, **HTMX)
    waiting.refresh_from_db()
    assert waiting.status == ImportJob.Status.UPLOADED  # the split task is queued, not yet run
    page = importer_client.get(_url("processing:review", waiting))
    assert page.status_code == 200 and b"Reading your file again" in page.content
    # An import that never stopped for a review has no review page to wait for.
    path = write_csv(tmp_path / "direct.csv", HEADER, ROWS)
    with path.open("rb") as handle:
        direct = services.import_start(file=File(handle), filename="direct.csv", user=importer, enqueue=False)
    assert importer_client.get(_url("processing:review", direct))["Location"] == direct.get_absolute_url()
