"""The lead pages in a real browser (headless Chromium through Playwright), served by gunicorn with
DEBUG off (easycrm/testing/app_server.py): log in, filter and sort without a page load, open a
lead, export CSV, markup shown as text, and what a viewer is not offered."""

from __future__ import annotations

import codecs
import csv
import importlib
import io
import re

import pytest
from playwright.sync_api import Page, expect

from easycrm.testing.app_server import SCREENSHOTS, screenshot
from leads.models import Lead
from leads.services import EXPORT_HEADER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__xss=1</script>"


def table_column(page: Page, number: int) -> list[str]:
    """The cells of one column of the lead table (1-based, after the row checkbox), top to bottom."""
    return page.locator(f"#lead-table tbody tr td:nth-child({number + 1})").all_inner_texts()


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
    expect(page.locator("#lead-table tbody td.c-company")).to_have_text(
        '<img src=x onerror="window.__xss=2">'
    )
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


# --- The lead workspace: layout, editing, bulk actions, chips, saved views, insights -----------


def editing_importer(role_user, username: str = "imogen"):
    """An importer with the rights migration 0007 adds (role_user builds groups from 0002 only)."""
    from django.contrib.auth.models import Permission

    extras = importlib.import_module("leads.migrations.0007_importer_edits_leads").IMPORTER_EXTRA
    user = role_user(username, "importer")
    for app_label, codename in extras:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def test_the_table_is_the_page_at_1280_and_cards_at_phone_width(open_page, role_user):
    from processing.models import ImportJob

    user = editing_importer(role_user)
    Lead.objects.bulk_create(
        Lead(
            first_name=f"Lead{i:02}",
            last_name="Person",
            company="Acme",
            title="CTO",
            email=f"someone.with.a.very.long.address{i}@example-company.com",
            phone="+4930123456",
            worksheet="Visitors",
            source_file="fair.xlsx",
        )
        for i in range(40)
    )
    ImportJob.objects.create(
        original_filename="march.xlsx",
        uploaded_by=user,
        status="processing",
        total_batches=30,
        completed_batches=12,
        total_rows=300,
        stage="Standardizing batch 13 of 30…",
    )
    page = open_page(user)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    expect(page.locator("#active-imports .import-status")).to_have_count(1)

    visible = page.evaluate(
        """() => [...document.querySelectorAll('#lead-table tbody tr')]
             .filter(row => row.getBoundingClientRect().bottom <= window.innerHeight).length"""
    )
    assert visible >= 12, visible
    page.screenshot(path=SCREENSHOTS / "workspace-1280.png")
    # Upload is a button opening the card; the chat is a drawer over the table, not above it.
    expect(page.locator("#upload-card")).to_be_hidden()
    page.locator("summary", has_text="Upload leads").click()
    expect(page.locator("#upload-card")).to_be_visible()
    table_top = page.locator("#lead-table").bounding_box()["y"]
    page.locator("summary", has_text="Ask about your leads").click()
    expect(page.get_by_label("Your question")).to_be_focused()
    assert page.locator("#lead-table").bounding_box()["y"] == table_top
    page.keyboard.press("Escape")
    expect(page.get_by_label("Your question")).to_be_hidden()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    first_card = page.locator("#lead-table tbody tr").first
    expect(first_card.locator("td.c-phone a")).to_have_attribute("href", "tel:+4930123456")
    assert first_card.bounding_box()["y"] + first_card.bounding_box()["height"] <= 844
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=SCREENSHOTS / "workspace-390.png")


def test_editing_a_lead_shows_errors_next_to_the_field_and_records_the_change(open_page, role_user):
    Lead.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    Lead.objects.create(first_name="Bob", email="bob@example.com")
    page = open_page(editing_importer(role_user))
    page.goto("/")
    page.get_by_role("link", name="Ada", exact=True).click()
    page.evaluate("window.__marker = 1")

    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_label("Title").fill("Countess")
    page.get_by_role("button", name="Save changes").click()
    email_field = page.locator(".field-email")
    expect(email_field).to_contain_text("Another lead (Bob) already has this email.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Email").fill("ada@lovelace.org")
    page.get_by_label("Status").select_option("contacted")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text(
        "Saved: title, email, status."
    )
    history = page.locator("section", has=page.get_by_role("heading", name="History"))
    expect(history).to_contain_text("imogen changed email: ada@example.com → ada@lovelace.org")
    expect(history).to_contain_text("imogen changed status: new → contacted")

    page.get_by_label("Add a note").fill("Called, will call back on Monday.")
    page.get_by_role("button", name="Add note").click()
    notes = page.locator("section", has=page.get_by_role("heading", name="Notes"))
    expect(notes).to_contain_text("Called, will call back on Monday.")
    assert page.evaluate("window.__marker") == 1  # swapped in by htmx, no page load
    screenshot(page, "lead-edit")
    lead = Lead.objects.get(first_name="Ada")
    assert (lead.email, lead.title, lead.status) == ("ada@lovelace.org", "Countess", "contacted")


def test_bulk_assigning_30_leads_with_select_all_matching(open_page, role_user, tmp_path):
    user = editing_importer(role_user)
    role_user("olaf", "viewer")
    Lead.objects.bulk_create(Lead(first_name=f"Lead{i:02}", company="Acme") for i in range(30))
    Lead.objects.create(first_name="Other", company="Globex")
    page = open_page(user)
    page.goto("/?company=acme")
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–25 of 30")
    expect(page.get_by_role("button", name="Assign")).to_be_hidden()  # nothing selected yet
    page.evaluate("window.__marker = 1")

    # Keyboard only: tick "All 30 matching", choose the owner, assign, confirm.
    page.get_by_label("All 30 matching").focus()
    page.keyboard.press("Space")
    page.get_by_label("Owner to assign").select_option(label="olaf")
    page.get_by_role("button", name="Assign").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#bulk-dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Assign 30 leads to olaf?")
    confirm = dialog.get_by_role("button", name="Yes, change 30 leads")
    expect(confirm).to_be_focused()
    screenshot(page, "bulk-confirm")
    page.keyboard.press("Enter")

    expect(dialog.get_by_role("status")).to_contain_text("Assigned 30 leads to olaf.")
    # The table refreshed itself ("leads-changed"); the page was never reloaded.
    expect(page.locator("#lead-table tbody td.c-owner").first).to_have_text("olaf")
    expect(page).to_have_url(re.compile(r"/\?company=acme$"))
    assert page.evaluate("window.__marker") == 1
    assert Lead.objects.filter(owner__username="olaf").count() == 30
    assert Lead.objects.get(first_name="Other").owner is None

    # "Export selected" downloads the checked rows (the browser posts it, not htmx).
    page.locator("#lead-table tbody input[name=ids]").first.check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export selected").click()
    path = tmp_path / "selected.csv"
    download_info.value.save_as(path)
    assert len(path.read_text(encoding="utf-8-sig").splitlines()) == 2


def test_bulk_delete_without_javascript_asks_on_a_page_of_its_own(chromium, app_server, role_user):
    from django.test import Client

    Lead.objects.bulk_create(Lead(first_name=f"Lead{i:02}", company="Acme") for i in range(3))
    client = Client()
    client.force_login(editing_importer(role_user))
    context = chromium.new_context(base_url=app_server.url, java_script_enabled=False)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": app_server.url}]
    )
    page = context.new_page()
    try:
        page.goto("/")
        page.get_by_label("All 3 matching").check()
        page.get_by_role("button", name="Delete").click()
        expect(page.get_by_role("heading", name="Delete 3 leads?")).to_be_visible()
        page.get_by_role("button", name="Delete 3 leads").click()
        expect(page.get_by_role("status").first).to_contain_text("Deleted 3 leads.")
        assert Lead.objects.count() == 0
    finally:
        context.close()


def test_chat_show_in_table_conditions_are_chips_that_can_be_removed(open_page, role_user):
    for first_name, company in [("Ada", "Globex"), ("Bob", "Globex Europe"), ("Cid", "Initech")]:
        Lead.objects.create(first_name=first_name, company=company, email=f"{first_name}@globex.com")
    page = open_page(role_user("victor", "viewer"))
    # The URL a chat answer's "Show in table" opens.
    page.goto("/?c=company:equals:Globex&q=ada")
    chips = page.get_by_role("list", name="Active filters")
    expect(chips).to_contain_text("Company equals 'Globex'")
    expect(chips).to_contain_text("Search “ada”")
    screenshot(page, "filter-chips")

    page.get_by_role("link", name="Remove filter: Search “ada”").click()
    expect(page).to_have_url(re.compile(r"/\?c=company%3Aequals%3AGlobex$"))
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–1 of 1")
    page.get_by_role("link", name="Clear all").click()
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–3 of 3")
    expect(page.get_by_role("list", name="Active filters")).to_have_count(0)


def test_sorting_with_the_keyboard_keeps_the_focus_on_the_header(open_page, role_user):
    for first_name in ("Cid", "Ada", "Bob"):
        Lead.objects.create(first_name=first_name)
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")
    page.locator('a.sort[data-sort="first_name"]').focus()

    page.keyboard.press("Enter")

    expect(page.get_by_role("columnheader", name="First name")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator('a.sort[data-sort="first_name"]')).to_be_focused()
    expect(page.locator("#announcer")).to_have_text("Showing 1–3 of 3")


def test_saving_a_view_shows_it_as_a_tab(open_page, role_user):
    Lead.objects.create(first_name="Ada", company="Globex")
    Lead.objects.create(first_name="Bob", company="Initech")
    page = open_page(role_user("victor", "viewer"))
    page.goto("/?company=globex")

    page.locator("summary", has_text="Save view").click()
    page.get_by_label("Name of this view").fill("Globex people")
    page.get_by_role("button", name="Save view").click()

    tab = page.get_by_role("navigation", name="Saved views").get_by_role("link", name="Globex people")
    expect(tab).to_have_attribute("aria-current", "page")
    page.get_by_role("navigation", name="Saved views").get_by_role("link", name="All leads").click()
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–2 of 2")
    tab.click()
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–1 of 1")


def test_a_chart_bar_opens_the_table_filtered_to_it(open_page, role_user):
    for first_name, company in [("Ada", "Globex"), ("Bob", "Globex"), ("Cid", "Initech")]:
        Lead.objects.create(first_name=first_name, company=company)
    page = open_page(role_user("victor", "viewer"))
    page.goto("/insights/")
    companies = page.locator("figure", has=page.get_by_text("Top companies"))
    screenshot(page, "insights")

    companies.get_by_role("link", name=re.compile("Globex")).click()

    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–2 of 2")
    expect(page.get_by_role("list", name="Active filters")).to_contain_text("Company equals 'Globex'")


def test_a_finished_import_panel_can_be_dismissed_into_the_recent_imports_line(open_page, role_user):
    from django.utils import timezone

    from processing.models import ImportJob

    user = role_user("imogen", "importer")
    job = ImportJob.objects.create(
        original_filename="march.xlsx", uploaded_by=user, status="processing", total_batches=3, total_rows=30
    )
    page = open_page(user)
    page.goto("/")
    panel = page.locator(f"#import-{job.pk}")
    expect(panel.get_by_role("button", name="Cancel import")).to_be_visible()
    expect(page.locator("#recent-imports")).to_be_hidden()

    ImportJob.objects.filter(pk=job.pk).update(
        status="completed", completed_batches=3, leads_created=30, finished_at=timezone.now()
    )
    dismiss = panel.get_by_role("button", name="Dismiss the panel of march.xlsx")
    expect(dismiss).to_be_visible(timeout=10_000)  # the next 2 s poll brings the final state
    dismiss.click()

    expect(panel).to_have_count(0)
    expect(page.locator("#recent-imports")).to_contain_text("Recent imports: march.xlsx (completed)")
    expect(page.locator("#announcer")).to_have_text("Import panel dismissed.")
    page.reload()  # finished imports of the last day stay in that one line
    expect(page.locator("#recent-imports")).to_contain_text("march.xlsx (completed)")
    expect(page.locator("#active-imports .import-status")).to_have_count(0)


def test_a_chat_answers_show_in_table_appears_as_chips(open_page, role_user):
    for first_name, company, phone in [
        ("Ada", "Globex", "+15550100"),
        ("Bob", "Globex", ""),
        ("Cid", "Initech", ""),
    ]:
        Lead.objects.create(first_name=first_name, company=company, phone=phone)
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")
    page.locator("summary", has_text="Ask about your leads").click()
    box = page.get_by_label("Your question")
    box.fill("How many leads from Globex have a phone?")
    box.press("Enter")
    answer = page.locator("#chat-messages .chat-message").nth(1)
    expect(answer).to_contain_text("There is 1 matching lead.")

    answer.get_by_role("link", name="Show in table").click()

    chips = page.get_by_role("list", name="Active filters")
    # Whatever condition the plan used for "from Globex" (the chatbot's choice), it is a chip.
    expect(chips.locator(".chip")).to_have_count(2)
    expect(chips).to_contain_text(re.compile("globex", re.IGNORECASE))
    expect(chips).to_contain_text(re.compile("phone", re.IGNORECASE))
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–1 of 1")
    # The drawer is closed on the new page: the table is not covered.
    expect(page.get_by_label("Your question")).to_be_hidden()


# --- The Content-Security-Policy (easycrm/settings.py SECURE_CSP) --------------------------------


def is_csp_violation(text: str) -> bool:
    """Chromium reports each blocked inline script, style attribute, eval or load on the console."""
    return "Content Security Policy" in text or "Content-Security-Policy" in text


def collect_console(page: Page) -> tuple[list[str], list[str]]:
    """The CSP violations and the other console errors (e.g. htmx:evalDisallowedError) of a page."""
    violations: list[str] = []
    errors: list[str] = []

    def collect(message) -> None:
        if is_csp_violation(message.text):
            violations.append(f"{page.url}: {message.text}")
        elif message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", collect)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return violations, errors


def test_the_login_page_and_the_admin_run_under_the_content_security_policy(
    open_page, django_user_model, app_server
):
    Lead.objects.create(first_name="Ada", email="ada@example.com")
    admin = django_user_model.objects.create_superuser("ada", password="correct horse battery staple")
    page = open_page()
    violations, errors = collect_console(page)
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Leads")
    page.goto("/admin/")
    page.goto("/admin/leads/lead/")
    page.get_by_role("link", name=re.compile("Ada")).first.click()
    expect(page.locator("#content h1")).to_be_visible()
    page.goto(f"/admin/auth/user/{admin.pk}/change/")
    expect(page.locator("#content h1")).to_be_visible()

    assert violations == []
    # The admin's pages link no icon: the browser's own /favicon.ico request is the one 404.
    assert {url.removeprefix(app_server.url) for url in missing} <= {"/favicon.ico"}
    assert [error for error in errors if "404" not in error] == []


def test_the_main_pages_run_under_the_content_security_policy_without_a_violation(open_page, role_user):
    from processing.models import ImportJob

    for first_name, company in [("Ada", "Globex"), ("Bob", "Globex"), ("Cid", "Initech")]:
        Lead.objects.create(first_name=first_name, company=company, email=f"{first_name.lower()}@example.com")
    user = editing_importer(role_user)
    job = ImportJob.objects.create(
        original_filename="march.xlsx",
        uploaded_by=user,
        status="processing",
        total_batches=4,
        completed_batches=1,
        total_rows=40,
        stage="Standardizing batch 2 of 4…",
    )
    page = open_page(user)
    violations, errors = collect_console(page)

    # The lead list: a running import's progress bar (an SVG width, polled), the filter form's trigger.
    page.goto("/")
    expect(page.locator("#active-imports .import-status .progress rect")).to_have_attribute("width", "25%")
    summary = page.locator("#lead-table .lead-summary")
    page.get_by_label("Filter by company").press_sequentially("globex")
    expect(summary).to_contain_text("Showing 1–2 of 2")
    # A row checkbox sits in the filter form but belongs to the bulk form: ticking it reloads nothing.
    page.evaluate("window.__marker = 1")
    box = page.get_by_label("Select Ada")
    box.check()
    page.wait_for_timeout(600)  # longer than the filter form's 300 ms delay
    expect(box).to_be_checked()
    expect(page).to_have_url(re.compile(r"/\?company=globex$"))
    # The "could not load" line, shown and hidden from static/js/leads.js (no hx-on).
    assert errors == []
    page.context.set_offline(True)
    page.get_by_label("Filter by company").press_sequentially("x")
    expect(page.locator("#lead-error")).to_be_visible()
    page.context.set_offline(False)
    page.get_by_label("Filter by company").press("Backspace")
    expect(page.locator("#lead-error")).to_be_hidden()
    expect(summary).to_contain_text("Showing 1–2 of 2")
    assert page.evaluate("window.__marker") == 1
    errors.clear()  # htmx logged the requests refused while offline

    # The drawer's chat: an answer with a bar chart (SVG widths) swapped in by htmx.
    page.locator("summary", has_text="Ask about your leads").click()
    page.get_by_label("Your question").fill("Which companies have the most leads?")
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#chat-messages figure.bar-chart rect").first).to_have_attribute("width", "100%")

    page.keyboard.press("Escape")
    page.get_by_role("link", name="Ada", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada")

    page.goto("/imports/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto(f"/imports/{job.pk}/")
    expect(page.locator(".import-status .progress rect")).to_have_attribute("width", "25%")

    page.goto("/chat/")
    page.get_by_label("Your question").fill("How many leads from Globex?")
    page.get_by_label("Your question").press("Enter")
    # The drawer's conversation continues here.
    expect(page.locator("#chat-messages .chat-message").last).to_contain_text("There are 2 matching leads.")

    page.goto("/insights/")
    expect(page.locator("figure.bar-chart rect").first).to_have_attribute("width", "100%")

    assert violations == []
    assert errors == []

    # The policy is enforced, and the collector sees it: an inline style attribute is refused.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_timeout(200)  # the console message arrives asynchronously
    assert any("style" in violation for violation in violations), violations
