"""Several files at once in a real browser (processing/tests/test_browser.py's setup): three files
chosen in the picker, and two dropped on the page, each become an import with its own panel."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from easycrm.testing.files import HEADER, people, write_csv
from leads.models import Lead
from processing.models import ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A real drop of several files: dragenter, dragover, drop, carrying the Files built here.
DROP_FILES = """(files) => {
  const transfer = new DataTransfer();
  for (const [name, payload] of files) {
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type: "text/csv"}));
  }
  const target = document.querySelector("#lead-table") || document.body;
  const fire = (kind) => target.dispatchEvent(
    new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  fire("dragenter");
  const acceptedDragover = !fire("dragover");
  return {acceptedDragover, acceptedDrop: !fire("drop")};
}"""


def csp_violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda message: found.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return found


def csvs(tmp_path: Path, count: int) -> list[Path]:
    return [
        write_csv(tmp_path / f"part{n}.csv", HEADER, people(3 + n, domain=f"d{n}.example"))
        for n in range(count)
    ]


def expect_panels_completed(page: Page, paths: list[Path]) -> list[ImportJob]:
    panels = page.locator("#active-imports .import-status")
    expect(panels).to_have_count(len(paths))
    for path in paths:
        panel = panels.filter(has=page.get_by_role("heading", name=path.name))
        expect(panel.locator(".badge")).to_have_text("Completed", timeout=30_000)
    jobs = list(ImportJob.objects.order_by("created_at"))
    assert [job.original_filename for job in jobs] == [path.name for path in paths]
    assert all(job.status == ImportJob.Status.COMPLETED for job in jobs), [j.error_message for j in jobs]
    return jobs


def test_three_files_chosen_in_the_picker_become_three_imports(
    open_page, role_user, import_pipeline, tmp_path
):
    import_pipeline.latency = 0
    page = open_page(role_user("imogen", "importer"))
    violations = csp_violations(page)
    page.goto("/imports/")
    paths = csvs(tmp_path, 3)

    page.locator("#upload-file").set_input_files(paths)
    page.get_by_role("button", name="Upload and import").click()

    jobs = expect_panels_completed(page, paths)
    assert Lead.objects.count() == sum(job.leads_created for job in jobs) == 3 + 4 + 5
    # The used card was replaced by a fresh one: no file left selected.
    assert page.locator("#upload-file").evaluate("(input) => input.files.length") == 0
    assert violations == []


def test_several_files_dropped_on_the_lead_page_become_one_import_each(
    open_page, role_user, import_pipeline, tmp_path
):
    import_pipeline.latency = 0
    page = open_page(role_user("imogen", "importer"))
    page.goto("/")
    paths = csvs(tmp_path, 2)
    files = [[path.name, base64.b64encode(path.read_bytes()).decode()] for path in paths]

    result = page.evaluate(DROP_FILES, files)

    assert result == {"acceptedDragover": True, "acceptedDrop": True}
    expect_panels_completed(page, paths)
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("of 7")
