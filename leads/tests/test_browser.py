"""The lead pages in a real browser (headless Chromium through Playwright), served by gunicorn with
DEBUG off (easycrm/testing/app_server.py): log in, filter and sort without a page load, open a
lead, export CSV, markup shown as text, and what a viewer is not offered."""

from __future__ import annotations

import codecs
import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from easycrm.testing.app_server import screenshot
from leads.models import Lead
from leads.services import EXPORT_HEADER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__xss=1</script>"


def table_column(page: Page, number: int) -> list[str]:
    """The cells of one column of the lead table (1-based), top to bottom."""
    return page.locator(f"#lead-table tbody tr td:nth-child({number})").all_inner_texts()


def test_logging_in_through_the_form_opens_the_lead_list(open_page, role_user, app_server):
    role_user("victor", "viewer", password="correct horse battery staple")
    page = open_page()

    page.goto("/")
    expect(page).to_have_url(f"{app_server.url}/accounts/login/?next=/")
    screenshot(page, "login")
    page.get_by_label("Username").fill("victor")
    page.get_by_label("Password").fill("wrong horse")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"{app_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Leads")
    expect(page.locator(".topbar")).to_contain_text("victor")


def test_typing_in_a_column_filter_narrows_the_table_and_updates_the_url(open_page, role_user):
    for first_name, company in [("Ada", "Globex"), ("Bob", "Globex Europe"), ("Cid", "Initech")]:
        Lead.objects.create(first_name=first_name, company=company)
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")
    summary = page.locator("#lead-table .lead-summary")
    expect(summary).to_contain_text("Showing 1–3 of 3")
    page.evaluate("window.__marker = 1")

    page.get_by_label("Filter by company").press_sequentially("globex")

    expect(page).to_have_url(re.compile(r"/\?company=globex$"))
    expect(summary).to_contain_text("Showing 1–2 of 2")
    assert sorted(table_column(page, 1)) == ["Ada", "Bob"]
    # The box kept what was typed across the swap, and the page was never reloaded.
    expect(page.get_by_label("Filter by company")).to_have_value("globex")
    assert page.evaluate("window.__marker") == 1

    page.get_by_label("Filter by company").fill("")
    expect(summary).to_contain_text("Showing 1–3 of 3")
    expect(page).to_have_url(re.compile(r"/$"))


def test_clicking_a_header_sorts_and_keeps_empty_values_last(open_page, role_user):
    for first_name, company in [("Ann", "globex"), ("Ben", ""), ("Cat", "Acme"), ("Dan", "Initech")]:
        Lead.objects.create(first_name=first_name, company=company)
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")
    header = page.get_by_role("columnheader", name="Company")
    page.evaluate("window.__marker = 1")

    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page).to_have_url(re.compile(r"/\?sort=company$"))
    assert table_column(page, 4) == ["Acme", "globex", "Initech", "—"]

    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(r"/\?sort=-company$"))
    assert table_column(page, 4) == ["Initech", "globex", "Acme", "—"]
    assert page.evaluate("window.__marker") == 1


def test_opening_a_lead_shows_its_fields_and_the_source_row(open_page, role_user):
    Lead.objects.create(
        first_name="Piero",
        last_name="Chechi",
        title="Buyer",
        company="Contoso",
        email="pchechi@contoso.com",
        phone="+39 055 123456",
        remarks="Met at the fair",
        source_file="fair.xlsx",
        worksheet="Visitors",
        source_row=7,
        raw={"Nome": "Piero", "Cognome": "Chechi", "Posta": "pchechi@contoso.com"},
    )
    page = open_page(role_user("victor", "viewer"))
    page.goto("/?company=contoso")

    page.get_by_role("link", name="Piero").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Piero Chechi")
    contact = page.locator("section", has=page.get_by_role("heading", name="Contact"))
    for text in ("Buyer", "Contoso", "pchechi@contoso.com", "+39 055 123456", "Met at the fair"):
        expect(contact).to_contain_text(text)
    origin = page.locator("section", has=page.get_by_role("heading", name="Where it came from"))
    for text in ("fair.xlsx", "Visitors", "7"):
        expect(origin).to_contain_text(text)
    raw_row = page.locator("table.raw-row tbody")
    expect(raw_row.locator("th")).to_have_text(["Nome", "Cognome", "Posta"])
    expect(raw_row.locator("td")).to_have_text(["Piero", "Chechi", "pchechi@contoso.com"])
    screenshot(page, "lead-detail")
    # "Back" returns to the table as it was left (filtered).
    page.get_by_role("link", name="← Back to leads").click()
    expect(page).to_have_url(re.compile(r"/\?company=contoso$"))


def test_export_downloads_the_table_as_excel_safe_utf8_csv(open_page, role_user, tmp_path):
    Lead.objects.create(first_name="José", last_name="Müller", company="Café Zoë", email="jose@example.com")
    Lead.objects.create(first_name="Eve", company="=SUM(A1)")
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()

    download = download_info.value
    assert re.fullmatch(r"leads_\d{8}_\d{6}\.csv", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(EXPORT_HEADER)
    by_first_name = {row[1]: row for row in rows[1:]}
    assert set(by_first_name) == {"José", "Eve"}
    assert by_first_name["José"][2:5] == ["Müller", "", "Café Zoë"]
    assert by_first_name["Eve"][4] == "'=SUM(A1)"


def test_markup_in_lead_data_is_shown_as_text(open_page, role_user):
    Lead.objects.create(first_name=XSS, company='<img src=x onerror="window.__xss=2">')
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")

    expect(page.locator("#lead-table tbody")).to_contain_text(XSS)
    # Also in a fragment swapped in by htmx, and on the lead's page.
    page.get_by_label("Filter by first name").press_sequentially("script")
    expect(page).to_have_url(re.compile(r"first_name=script"))
    expect(page.locator("#lead-table tbody td").nth(3)).to_have_text('<img src=x onerror="window.__xss=2">')
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.get_by_role("link", name=XSS).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_viewer_is_not_offered_the_upload(open_page, role_user):
    page = open_page(role_user("victor", "viewer"))

    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Leads")
    expect(page.locator("#lead-table tbody")).to_contain_text("once someone with import rights uploads")
    expect(page.locator("#upload-card")).to_have_count(0)
    expect(page.locator("[data-dropzone]")).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
    expect(page.locator("#upload-card")).to_have_count(0)
    expect(page.locator("#import-history")).to_contain_text("No imports yet.")
