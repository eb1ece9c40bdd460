"""The lead table at 1280 px does not scroll sideways, however long the values are; dates are shown
in one format with the time zone on every page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from easycrm.testing.app_server import screenshot
from leads.models import Lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = "Senior Vice President of Global Strategic Partnerships and Channel Enablement EMEA"


def test_long_values_do_not_make_the_table_scroll_sideways(open_page, role_user):
    for index in range(15):
        Lead.objects.create(
            first_name=f"Maximiliana-Alexandra{index}",
            last_name="Wolfeschlegelsteinhausenbergerdorff",
            title=LONG,
            company="Internationale Handelsgesellschaft für Maschinenbau und Anlagentechnik mbH & Co. KG",
            email=f"maximiliana.alexandra.wolfeschlegelsteinhausen{index}@internationale-handelsgesellschaft.example",
            phone="+49 30 1234567 ext. 12345",
        )
    page = open_page(role_user("imogen", "importer"))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    expect(page.locator("#lead-table tbody tr")).to_have_count(15)
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('#lead-table .table-wrap, html')]
            .map((el) => el.scrollWidth - el.clientWidth)"""
    )
    screenshot(page, "lead-table-long-values-1280")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > 1280)
            .slice(0, 8).map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))"""
    )
    assert max(overflow) <= 0, (overflow, wide)
    # The full value is still there for whoever hovers or reads it aloud.
    title_cell = page.locator("#lead-table tbody td.c-title").first
    assert title_cell.get_attribute("title") == LONG


def test_dates_have_one_format_with_the_time_zone(open_page, role_user, import_pipeline, tmp_path):
    from easycrm.testing.files import HEADER, people, write_csv

    import_pipeline.latency = 0
    page = open_page(role_user("imogen", "importer"))
    page.goto("/")
    page.locator("#upload-file").set_input_files(write_csv(tmp_path / "dates.csv", HEADER, people(2)))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#active-imports .import-summary")).to_be_visible(timeout=30_000)
    page.goto("/imports/")
    shown = page.locator("table time").first.inner_text()
    assert shown.endswith(" UTC") and len(shown) == len("2026-12-01 13:00 UTC"), shown
