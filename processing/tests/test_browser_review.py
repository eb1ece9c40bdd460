"""The import review in a real browser: three files dropped at once wait for review, one column is fixed
on the review screen (the preview follows at once), all three are imported; the same template is then
imported in one click with its saved mapping. The web server runs with IMPORT_REVIEW=always."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from easycrm.testing.app_server import AppServer, app_env, screenshot
from easycrm.testing.files import write_csv
from leads.models import Lead
from processing.models import ImportJob, SavedMapping

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP_FILES = """(files) => {
  const transfer = new DataTransfer();
  for (const [name, payload] of files) {
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type: "text/csv"}));
  }
  const target = document.querySelector("[data-dropzone] label");
  for (const kind of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  }
}"""

FAIR = (
    ["Contact", "Firma", "fld_3", "Telefon"],
    [
        ["Ana Lima", "Acme GmbH", "ana@acme.example", "+49 30 1234567"],
        ["Bo Chen", "Beta Ltd", "bo@beta.example", "+44 20 7946 0958"],
    ],
)
CRM = (["First Name", "Last Name", "Email", "Company"], [["Cy", "Diaz", "cy@gamma.example", "Gamma SA"]])
EXPO = (
    ["Name", "E-mail", "Organisation"],
    [["Dee Egan", "dee@delta.example", "Delta AG"], ["Eve Fox", "eve@epsilon.example", "Epsilon Inc"]],
)


@pytest.fixture(scope="module")
def app_server(django_db_setup, collected_static, app_media, tmp_path_factory) -> Iterator[AppServer]:
    """The web server of this module stops every upload for a review (the product's default)."""
    server = AppServer(
        tmp_path_factory.mktemp("gunicorn"), app_env(MEDIA_ROOT=str(app_media), IMPORT_REVIEW="always")
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _panel(page: Page, name: str):
    return page.locator("#active-imports .import-status").filter(has=page.get_by_role("heading", name=name))


def _drop(page: Page, paths: list[Path]) -> None:
    page.evaluate(DROP_FILES, [[path.name, base64.b64encode(path.read_bytes()).decode()] for path in paths])


def _review_and_import(page: Page, name: str, rows: int) -> None:
    _panel(page, name).get_by_role("link", name="Review and import").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Review: {name}")
    expect(page.locator("#review-counts")).to_contain_text(f"{rows} new lead")
    page.get_by_role("button", name=f"Import {rows} row").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Import: {name}")
    expect(page.locator(".import-status .badge").first).to_have_text("Completed", timeout=30_000)


def test_three_files_reviewed_one_column_fixed_all_imported(open_page, role_user, import_pipeline, tmp_path):
    import_pipeline.latency = 0
    files = [
        write_csv(tmp_path / f"{name}.csv", *content)
        for name, content in (("fair", FAIR), ("crm", CRM), ("expo", EXPO))
    ]
    user = role_user("imogen", "importer")
    page = open_page(user)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    _drop(page, files)
    for path in files:
        expect(_panel(page, path.name)).to_contain_text(
            "Nothing is imported until you confirm.", timeout=20_000
        )
    assert Lead.objects.count() == 0

    _panel(page, "fair.csv").get_by_role("link", name="Review and import").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review: fair.csv")
    expect(page.locator("#review-counts")).to_contain_text("2 new leads")
    preview = page.locator(".review-preview")
    expect(preview).to_contain_text("Acme GmbH")
    screenshot(page, "review-1280")
    page.get_by_label("Import column Firma as").focus()
    page.get_by_label("Import column Firma as").select_option("title")
    # Swapped in place: the preview shows the company as the title, the counts reload.
    expect(preview.locator(".review-lead").first).to_contain_text("TitleAcme GmbH")
    expect(page.get_by_label("Import column Firma as")).to_have_value("title")
    expect(page.get_by_label("Import column Firma as")).to_be_focused()  # the swap keeps the keyboard's place
    expect(page.locator("#review-counts")).to_contain_text("2 new leads")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "review-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import: fair.csv")
    expect(page.locator(".import-status .badge").first).to_have_text("Completed", timeout=30_000)
    assert Lead.objects.get(email="ana@acme.example").title == "Acme GmbH"

    page.goto("/")
    _review_and_import(page, "crm.csv", 1)
    page.goto("/")
    _review_and_import(page, "expo.csv", 2)
    jobs = ImportJob.objects.all()
    assert {job.status for job in jobs} == {ImportJob.Status.COMPLETED}
    assert Lead.objects.count() == 5
    assert SavedMapping.objects.count() == 3


def test_the_same_template_imports_in_one_click(open_page, role_user, import_pipeline, tmp_path):
    import_pipeline.latency = 0
    user = role_user("imogen", "importer")
    page = open_page(user)
    page.goto("/")
    first = write_csv(tmp_path / "fair.csv", *FAIR)
    page.locator("#upload-file").set_input_files(first)
    page.get_by_role("button", name="Upload and import").click()
    _review_and_import(page, "fair.csv", 2)

    page.goto("/")
    again = write_csv(
        tmp_path / "fair-december.csv", FAIR[0], [["Gus Hill", "Eta GmbH", "gus@eta.example", ""]]
    )
    page.locator("#upload-file").set_input_files(again)
    page.get_by_role("button", name="Upload and import").click()
    panel = _panel(page, "fair-december.csv")
    expect(panel).to_contain_text("Using the mapping confirmed on", timeout=20_000)
    expect(panel).to_contain_text("by imogen")
    screenshot(page, "review-one-click")
    panel.get_by_role("button", name="Import now").click()
    expect(panel.locator(".badge")).to_have_text("Completed", timeout=30_000)
    assert Lead.objects.get(email="gus@eta.example").company == "Eta GmbH"
