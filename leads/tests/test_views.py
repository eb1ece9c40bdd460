"""The lead table page (and its HTMX fragment), the lead page and the CSV export."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from easycrm.testing.http import HTMX
from leads import filters
from leads.models import Lead
from processing.models import ImportJob

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")
EXPORT = reverse("leads:export")
EXPORT_HEADER = "lead_id,first_name,last_name,title,company,email,phone,remarks,source_file,worksheet,source_row,created_at,updated_at"


def detail_url(lead: Lead) -> str:
    return reverse("leads:detail", args=[lead.pk])


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.fixture
def lead() -> Lead:
    return Lead.objects.create(
        first_name="Ada", last_name="Lovelace", company="Engines", email="ada@example.com"
    )


@pytest.fixture
def sixty_leads() -> None:
    Lead.objects.bulk_create(Lead(first_name=f"lead{i:02}", company="Acme") for i in range(60))


# --- Access, for every view ------------------------------------------------------------------


@pytest.fixture(params=["list", "detail", "export"])
def any_url(request, lead) -> str:
    return {"list": LIST, "detail": detail_url(lead), "export": EXPORT}[request.param]


def test_anonymous_user_is_sent_to_login(client, any_url):
    response = client.get(any_url)

    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_anonymous_htmx_request_gets_401_with_a_login_redirect(client, any_url):
    response = client.get(any_url, HTTP_HX_CURRENT_URL="http://testserver/?company=acme", **HTMX)

    assert response.status_code == 401
    assert response["HX-Redirect"] == f"{reverse('login')}?next=%2F%3Fcompany%3Dacme"


def test_user_without_the_lead_permission_is_forbidden(outsider_client, any_url):
    assert outsider_client.get(any_url).status_code == 403


def test_post_is_not_allowed(viewer_client, any_url):
    assert viewer_client.post(any_url).status_code == 405


# --- The table page --------------------------------------------------------------------------


def test_table_shows_leads_with_links(viewer_client, lead):
    response = viewer_client.get(LIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Leads · Easy CRM</title>" in html
    assert f'href="{detail_url(lead)}"' in html
    assert 'href="mailto:ada@example.com"' in html
    assert "Showing 1–1 of 1" in html
    assert f'href="{EXPORT}"' in html


def test_lead_data_is_escaped(viewer_client):
    bad = Lead.objects.create(
        first_name="<script>alert(1)</script>", company='"><img src=x onerror=alert(2)>'
    )

    for url in (LIST, detail_url(bad)):
        html = viewer_client.get(url).content.decode()
        assert "<script>alert(1)" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_htmx_request_gets_only_the_table_with_a_clean_url_to_push(viewer_client, lead):
    response = viewer_client.get(LIST, {"company": "eng", "q": "", "first_name": ""}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="lead-table"' in html
    assert "Lovelace" in html
    assert response["HX-Push-Url"] == f"{LIST}?company=eng"
    assert "HX-Request" in response["Vary"]


def test_table_refreshes_itself_on_leads_changed_keeping_the_query(viewer_client, lead):
    html = viewer_client.get(LIST, {"company": "eng", "sort": "-company", "page": "1"}).content.decode()

    container = re.search(r'<div id="lead-table"[^>]*>', html).group(0)
    assert 'hx-trigger="leads-changed from:body"' in container
    assert f'hx-get="{LIST}?company=eng&amp;sort=-company"' in container


def test_the_self_refresh_does_not_add_a_history_entry(viewer_client, lead):
    response = viewer_client.get(LIST, {"company": "eng"}, HTTP_HX_TRIGGER="lead-table", **HTMX)

    assert 'id="lead-table"' in response.content.decode()
    assert "HX-Push-Url" not in response


def test_history_restore_gets_the_full_page(viewer_client, lead):
    response = viewer_client.get(LIST, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)

    assert "<html" in response.content.decode()


def test_filter_form_and_links_work_without_javascript(viewer_client, sixty_leads):
    html = viewer_client.get(LIST, {"company": "acme"}).content.decode()

    form = re.search(r"<form id=\"lead-filters\"[^>]*>", html, re.S).group(0)
    assert 'method="get"' in form and f'action="{LIST}"' in form and f'hx-get="{LIST}"' in form
    # Typing in a box of this form reloads the table; the row checkboxes belong to the bulk form (told
    # apart by static/js/leads.js, which sends "filter-input": a trigger filter would need eval).
    assert 'hx-trigger="filter-input changed delay:300ms, search, submit"' in form
    assert 'hx-push-url="true"' in form
    for anchor in re.findall(r"<a [^>]*hx-get=[^>]*>", html):
        href = re.search(r'href="([^"]*)"', anchor).group(1)
        assert f'hx-get="{href}"' in anchor
    assert 'class="htmx-indicator' in html


def test_pagination_text_and_links(viewer_client, sixty_leads):
    html = viewer_client.get(LIST, {"page": "2", "sort": "first_name"}).content.decode()

    assert "Showing 26–50 of 60" in html
    assert "lead25" in html and "lead50" not in html
    assert f'href="{LIST}?sort=first_name&amp;page=3"' in html  # next
    assert f'href="{LIST}?sort=first_name"' in html  # first / previous


@pytest.mark.parametrize(("per_page", "rows"), [("25", 25), ("50", 50), ("100", 60)])
def test_page_size_choices(viewer_client, sixty_leads, per_page, rows):
    html = viewer_client.get(LIST, {"per_page": per_page}).content.decode()

    assert len(re.findall(r'href="/leads/\d+/', html)) == rows
    assert f'<option value="{per_page}" selected>' in html


def test_invalid_parameters_are_coerced_and_explained(viewer_client, sixty_leads):
    response = viewer_client.get(
        LIST, {"sort": "password", "page": "999", "per_page": "9999", "updated_from": "yesterday"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Showing 51–60 of 60" in html
    assert "Cannot sort by “password”" in html
    assert "Ignored “yesterday” for Updated from" in html


def test_sort_header_links_toggle_the_direction(viewer_client, sixty_leads):
    html = viewer_client.get(LIST, {"sort": "company", "q": "acme"}).content.decode()

    assert f'href="{LIST}?q=acme&amp;sort=-company"' in html
    assert 'aria-sort="ascending"' in html
    assert f'href="{LIST}?q=acme&amp;sort=last_name"' in html


def test_capped_count_shows_a_plus(viewer_client, sixty_leads, monkeypatch):
    monkeypatch.setattr(filters, "COUNT_CAP", 40)

    html = viewer_client.get(LIST).content.decode()

    assert "Showing 1–25 of 40+" in html
    assert "Page 1<" in html and "Last »" not in html


def test_export_link_carries_the_filters_and_sort(viewer_client, sixty_leads):
    html = viewer_client.get(LIST, {"company": "acme", "sort": "-first_name", "page": "2"}).content.decode()

    assert f'href="{EXPORT}?company=acme&amp;sort=-first_name"' in html


def test_empty_table_tells_an_importer_to_upload(importer_client):
    html = importer_client.get(LIST).content.decode()

    assert "No leads yet — upload a file above." in html
    assert 'id="upload-card"' in html and 'id="active-imports"' in html


def test_upload_card_on_the_lead_page_states_the_types_and_the_size_limit(importer_client, settings):
    settings.MAX_UPLOAD_MB = 7
    lead_page = importer_client.get(LIST).content.decode()
    imports_page = importer_client.get(reverse("processing:list")).content.decode()

    rules = "CSV, XLSX, XLS, up to 7 MB. Every worksheet is imported."
    assert rules in lead_page and rules in imports_page
    assert 'accept=".csv,.xlsx,.xls"' in lead_page


def test_viewer_sees_no_upload_card(viewer_client):
    html = viewer_client.get(LIST).content.decode()

    assert "No leads yet" in html
    assert 'id="upload-card"' not in html


def test_filtered_to_nothing_offers_to_clear_the_filters(viewer_client, lead):
    html = viewer_client.get(LIST, {"company": "nobody", "sort": "company"}).content.decode()

    assert "No leads match these filters" in html
    assert f'<a href="{LIST}?sort=company">clear filters</a>' in html


# --- The lead page ---------------------------------------------------------------------------


def test_lead_page_shows_every_field_and_the_source_row(viewer_client):
    job = ImportJob.objects.create(original_filename="fair.xlsx")
    lead = Lead.objects.create(
        first_name="José",
        last_name="Müller",
        title="CTO",
        company="Acme",
        email="jose@example.com",
        phone="+4930123456",
        remarks="first line\nsecond <b>line</b>",
        source_file="fair.xlsx",
        worksheet="Visitors",
        source_row=7,
        raw={"Name": "José Müller", "items": "a column called items"},
        import_job=job,
    )

    response = viewer_client.get(detail_url(lead))

    html = response.content.decode()
    assert "<title>José Müller · Easy CRM</title>" in html
    for text in ("CTO", "Acme", "jose@example.com", "+4930123456", "fair.xlsx", "Visitors", ">7<"):
        assert text in html
    assert "first line<br>second &lt;b&gt;line&lt;/b&gt;" in html
    assert '<th scope="row">items</th><td>a column called items</td>' in html
    assert f'href="{reverse("processing:detail", args=[job.pk])}"' in html


def test_lead_page_links_the_import_only_for_users_who_may_see_imports(client, django_user_model):
    job = ImportJob.objects.create(original_filename="fair.xlsx")
    lead = Lead.objects.create(first_name="Ada", import_job=job)
    reader = django_user_model.objects.create_user("reader")
    reader.user_permissions.add(Permission.objects.get(codename="view_lead"))
    client.force_login(reader)

    html = client.get(detail_url(lead)).content.decode()

    assert "fair.xlsx" in html
    assert reverse("processing:detail", args=[job.pk]) not in html


def test_lead_page_back_link_returns_to_the_same_table(viewer_client, lead):
    html = viewer_client.get(detail_url(lead), {"company": "eng", "page": "2", "bogus": "x"}).content.decode()

    assert f'href="{LIST}?company=eng&amp;page=2"' in html


def test_lead_page_htmx_request_gets_only_the_fragment(viewer_client, lead):
    html = viewer_client.get(detail_url(lead), **HTMX).content.decode()

    assert "<html" not in html and "Lovelace" in html


def test_missing_lead_is_404(viewer_client):
    assert viewer_client.get(reverse("leads:detail", args=[999999])).status_code == 404


# --- CSV export ------------------------------------------------------------------------------


def test_export_is_a_utf8_csv_download_with_bom(viewer_client, lead):
    response = viewer_client.get(EXPORT)

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="leads_\d{8}_\d{6}\.csv"', response["Content-Disposition"])
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    assert body.decode("utf-8").removeprefix("\ufeff").splitlines()[0] == EXPORT_HEADER


def test_export_keeps_accents_and_neutralizes_formulas(viewer_client):
    Lead.objects.create(first_name="José", last_name="Müller", company="=SUM(A1)", title="+1 boss")

    header, row = csv_rows(viewer_client.get(EXPORT))

    assert row[1:5] == ["José", "Müller", "'+1 boss", "'=SUM(A1)"]


def test_export_keeps_phones_and_numbers_as_data(viewer_client):
    Lead.objects.create(
        first_name="Ann", phone="+13128465155", title="-5", company="@acme", remarks="+49 (0)30 1234-56"
    )

    header, row = csv_rows(viewer_client.get(EXPORT))

    assert (row[6], row[3], row[4], row[7]) == ("+13128465155", "-5", "'@acme", "+49 (0)30 1234-56")


def test_exported_leads_import_back_with_zero_changes(
    viewer_client, django_capture_on_commit_callbacks, tmp_path
):
    from django.core.files import File

    from processing import services

    for i in range(3):
        Lead.objects.create(
            first_name=f"N{i}", last_name="Lee", email=f"n{i}@x.example", phone=f"+1312846515{i}"
        )
    path = tmp_path / "export.csv"
    path.write_bytes(b"".join(viewer_client.get(EXPORT).streaming_content))
    before = list(Lead.objects.order_by("pk").values())

    with path.open("rb") as handle, django_capture_on_commit_callbacks(execute=True):
        job = services.import_start(file=File(handle), filename="export.csv")
    job.refresh_from_db()

    assert (job.total_rows, job.rows_unchanged, job.leads_created, job.leads_updated) == (3, 3, 0, 0)
    assert list(Lead.objects.order_by("pk").values()) == before


def test_export_has_exactly_the_filtered_and_sorted_leads(viewer_client):
    for first_name, company in [("b", "Beta Acme"), ("none", ""), ("a", "alpha acme"), ("other", "Globex")]:
        Lead.objects.create(first_name=first_name, company=company)

    rows = csv_rows(viewer_client.get(EXPORT, {"company": "ACME", "sort": "-company", "per_page": "25"}))

    assert [row[1] for row in rows[1:]] == ["b", "a"]


def test_export_of_nothing_is_just_the_header(viewer_client, lead):
    rows = csv_rows(viewer_client.get(EXPORT, {"company": "nobody"}))

    assert rows == [EXPORT_HEADER.split(",")]
