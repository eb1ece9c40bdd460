"""Imports in a real browser (headless Chromium through Playwright) against the app as it runs in
production: gunicorn and both task clusters as subprocesses, DeepSeek faked with latency
(easycrm/testing/app_server.py). A dropped workbook shows its progress and refreshes the lead
table in place; a running import can be cancelled; a finished one undone from its page."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from easycrm.testing.app_server import pipeline_idle, screenshot
from easycrm.testing.files import HEADER, people, write_csv
from leads.models import Lead
from processing.models import ImportBatch, ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Every state the first import panel shows ("aria-valuenow|stage|badge"), in order, as the DOM changes.
RECORD_PROGRESS = """() => {
  window.__progress = [];
  const record = () => {
    const panel = document.querySelector("#active-imports .import-status");
    if (!panel) return;
    const stage = panel.querySelector(".import-stage");
    const state = [
      panel.querySelector("[role=progressbar]").getAttribute("aria-valuenow"),
      stage ? stage.textContent.trim() : "",
      panel.querySelector(".badge").textContent.trim(),
    ].join("|");
    if (window.__progress[window.__progress.length - 1] !== state) window.__progress.push(state);
  };
  new MutationObserver(record).observe(document.body, {childList: true, subtree: true, attributes: true});
}"""

# A real drop as the browser delivers it: dragenter, dragover, drop, carrying a File built here.
DROP_FILE = """([name, type, payload]) => {
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type}));
  const target = document.querySelector("[data-dropzone] label");
  const fire = (kind) => target.dispatchEvent(
    new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  fire("dragenter");
  const acceptedDragover = !fire("dragover");
  const highlighted = target.closest("[data-dropzone]").classList.contains("dragover");
  const acceptedDrop = !fire("drop");
  return {acceptedDragover, highlighted, acceptedDrop};
}"""


def drop_file(page: Page, path: Path, content_type: str) -> None:
    payload = base64.b64encode(path.read_bytes()).decode()
    result = page.evaluate(DROP_FILE, [path.name, content_type, payload])
    # Handled (default prevented), so the browser neither opens the file nor navigates away.
    assert result == {"acceptedDragover": True, "highlighted": True, "acceptedDrop": True}


def upload_with_picker(page: Page, path: Path) -> None:
    page.locator("#upload-file").set_input_files(path)
    page.get_by_role("button", name="Upload and import").click()


def accept_dialogs(page: Page) -> list[str]:
    """Say OK to every confirm (hx-confirm); returns the list their messages are appended to."""
    messages: list[str] = []

    def accept(dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return messages


def first_panel(page: Page):
    return page.locator("#active-imports .import-status").first


def test_dropped_workbook_shows_progress_and_refreshes_the_table_without_reload(
    open_page, role_user, import_pipeline, samples
):
    # 3 batches, two at a time: two rounds of 2 s, so at least one 2 s status poll lands mid-way.
    import_pipeline.latency = 2.0
    page = open_page(role_user("imogen", "importer"))
    page.goto("/")
    expect(page.locator("#lead-table tbody")).to_contain_text("No leads yet — upload a file above.")
    page.evaluate("window.__marker = 1")
    page.evaluate(RECORD_PROGRESS)

    drop_file(page, samples / "multi_sheet.xlsx", XLSX_TYPE)

    panel = first_panel(page)
    expect(panel.get_by_role("heading")).to_have_text("multi_sheet.xlsx")
    expect(panel.locator(".import-summary")).to_be_visible(timeout=30_000)
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.COMPLETED, (job.status, job.error_message)
    assert job.standardizer == "deepseek"
    created = Lead.objects.count()
    assert created == job.leads_created > 0
    # The table refreshed itself on the terminal status ("leads-changed"), not by a page load.
    expect(page.locator("#lead-table .lead-summary")).to_contain_text(f"Showing 1–25 of {created}")
    tbody = page.locator("#lead-table tbody")
    expect(tbody).to_contain_text("Conference")  # both worksheets of the workbook
    expect(tbody).to_contain_text("Referrals")
    assert page.evaluate("window.__marker") == 1

    # The panel moved: waiting, then standardizing, then done — each state a swap of the poll.
    seen = page.evaluate("window.__progress")
    assert seen[0] == "0|Waiting for a worker…|Uploaded", seen
    running = re.compile(r"\d+\|Standardizing batch [123] of 3…\|Processing")
    assert any(running.fullmatch(state) for state in seen), seen
    assert seen[-1] == "100||Completed", seen
    # The final panel has no polling trigger left (the server answered 286).
    assert panel.get_attribute("hx-trigger") is None
    expect(panel.locator(".import-summary")).to_contain_text(f"{created} leads created")
    screenshot(page, "lead-list")


def test_cancelling_a_running_import_marks_it_cancelled_and_stops_polling(
    open_page, role_user, import_pipeline, tmp_path
):
    import_pipeline.latency = 1.0  # 12 batches, two at a time: about 6 s, so it is still running
    leads_csv = write_csv(tmp_path / "many.csv", HEADER, people(120))
    calls_before = import_pipeline.call_count
    page = open_page(role_user("imogen", "importer"))
    dialogs = accept_dialogs(page)
    page.goto("/")
    upload_with_picker(page, leads_csv)
    panel = first_panel(page)
    expect(panel.locator(".import-stage")).to_contain_text(re.compile(r"Standardizing batch \d+ of 12"))
    status_polls: list[float] = []
    page.on("request", lambda request: "/status/" in request.url and status_polls.append(time.monotonic()))

    panel.get_by_role("button", name="Cancel import").click()

    expect(panel.locator(".badge")).to_have_text("Cancelled")
    expect(panel).to_contain_text("Import cancelled. Leads stored before that are kept.")
    assert dialogs == ["Cancel this import?"]
    assert panel.get_attribute("hx-trigger") is None

    # The batches running at the cancel finish and are counted; no queued one reaches the model.
    pipeline_idle()
    job = ImportJob.objects.get()
    # The panel refreshes until they are counted (ImportJob.settling), then stops polling.
    expect(panel.locator(".import-summary")).to_contain_text(f"{job.leads_created} leads created")
    expect(panel.locator('[hx-trigger="load delay:2s"]')).to_have_count(0)
    settled = time.monotonic()
    page.wait_for_timeout(2_500)  # longer than the 2 s polling interval
    assert not [at for at in status_polls if at > settled], "the cancelled panel kept polling"
    expect(panel.locator(".badge")).to_have_text("Cancelled")
    expect(panel.get_by_role("button", name="Resume import")).to_be_visible()
    assert job.status == ImportJob.Status.CANCELLED
    batches = ImportBatch.objects.filter(job=job)
    assert batches.filter(status=ImportBatch.Status.SKIPPED).count() == job.skipped_batches > 0
    assert job.completed_batches + job.skipped_batches == job.total_batches == 12
    assert import_pipeline.call_count - calls_before == job.completed_batches
    assert Lead.objects.count() == job.leads_created == 10 * job.completed_batches


def test_undoing_a_finished_import_from_its_page_removes_its_leads(
    open_page, role_user, import_pipeline, samples
):
    import_pipeline.latency = 0
    page = open_page(role_user("imogen", "importer"))
    dialogs = accept_dialogs(page)
    page.goto("/")
    upload_with_picker(page, samples / "simple_leads.csv")
    panel = first_panel(page)
    expect(panel.locator(".import-summary")).to_be_visible(timeout=30_000)
    created = ImportJob.objects.get().leads_created
    assert created > 0
    expect(page.locator("#lead-table .lead-summary")).to_contain_text(f"of {created}")

    panel.get_by_role("link", name="Import details").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import: simple_leads.csv")
    screenshot(page, "import-detail")
    page.get_by_role("button", name="Undo import").click()

    assert dialogs and dialogs[0].startswith("Undo this import?")
    status = page.locator(".import-status")
    expect(status.locator(".badge.undone")).to_have_text("Undone")
    expect(status).to_contain_text(f"Import undone: {created} created leads removed, 0 updates reverted.")
    # The actions refreshed on "imports-changed": no second undo offered.
    expect(page.get_by_role("button", name="Undo import")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Leads").click()
    expect(page.locator("#lead-table tbody")).to_contain_text("No leads yet")
    assert Lead.objects.count() == 0
