"""The chat panel in a real browser (headless Chromium, the app under gunicorn with DEBUG off: see
easycrm/testing/app_server.py): Enter sends and Shift+Enter adds a line, the answer arrives without
a page load, markup in a question stays text, the server's length check shows, and "Show in table"
opens the lead table with the same leads."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from easycrm.testing.app_server import screenshot
from leads.models import Lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_asking_in_the_panel_and_opening_the_answer_in_the_table(open_page, role_user):
    for first_name, company, phone in [
        ("Ada", "Globex", "+15550100"),
        ("Bob", "Globex", ""),
        ("Cid", "Initech", ""),
    ]:
        Lead.objects.create(first_name=first_name, company=company, phone=phone)
    page = open_page(role_user("victor", "viewer"))
    page.goto("/")
    page.get_by_text("Ask about your leads").click()
    box = page.get_by_label("Your question")
    messages = page.locator("#chat-messages .chat-message")

    box.fill("How many leads")
    box.press("Shift+Enter")
    box.press_sequentially(" from Globex?")
    expect(box).to_have_value("How many leads\n from Globex?")
    expect(page.locator("#chat-count")).to_have_text("28 / 500")
    expect(messages).to_have_count(0)

    box.fill("How many leads from Globex?")
    box.press("Enter")
    expect(messages.nth(1)).to_contain_text("There are 2 matching leads.")
    expect(messages.nth(1)).to_contain_text("count · company or email domain contains 'globex'")
    expect(messages.nth(0)).to_contain_text("How many leads from Globex?")
    expect(box).to_have_value("")

    page.evaluate("window.__chatMarker = 1")  # gone if anything reloads the page
    box.fill("<script>window.__xss = 1</script> and how many of them have a phone?")
    box.press("Enter")
    expect(messages).to_have_count(4)
    expect(messages.nth(2)).to_contain_text("<script>window.__xss = 1</script>")
    assert page.evaluate("window.__xss") is None

    box.fill("and how many of them have a phone?")
    box.press("Enter")
    expect(messages.nth(5)).to_contain_text("There is 1 matching lead.")
    assert page.evaluate("window.__chatMarker") == 1
    screenshot(page, "chat-panel")

    messages.nth(5).get_by_role("link", name="Show in table").click()
    expect(page).to_have_url(re.compile(r"/\?has_phone=yes&c=company_or_domain%3Acontains%3Aglobex$"))
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–1 of 1")
    expect(page.locator("#lead-table tbody tr")).to_have_count(1)
    expect(page.locator("#lead-table tbody")).to_contain_text("Ada")


def test_titles_sheets_and_a_group_chart_lead_to_the_same_leads_in_the_table(open_page, role_user):
    for first_name, title, company, email, worksheet in [
        ("Ada", "CTO", "Globex", "ada@globex.com", "March"),
        ("Mia", "Chief Technology Officer", "", "mia@contoso.com", "March"),
        ("Hank", "Marketing Director", "Contoso", "hank@gmail.com", "April"),
        ("Noah", "VP Sales", "Contoso", "noah@contoso.com", "April"),
    ]:
        Lead.objects.create(
            first_name=first_name,
            title=title,
            company=company,
            email=email,
            worksheet=worksheet,
            source_file="Trade Show 2025.xlsx",
        )
    page = open_page(role_user("victor", "viewer"))
    page.goto("/chat/")
    box = page.get_by_label("Your question")
    messages = page.locator("#chat-messages .chat-message")

    box.fill("How many CTOs in the March sheet?")
    box.press("Enter")
    expect(messages.nth(1)).to_contain_text("There are 2 matching leads.")
    expect(messages.nth(1)).to_contain_text("worksheet contains 'March'")

    box.fill("Which companies have the most leads from Contoso?")
    box.press("Enter")
    chart = messages.nth(3).locator("figure.bar-chart")
    expect(chart.locator("figcaption")).to_have_text("Leads per company")
    expect(chart.locator(".bar-chart-item")).to_have_count(2)
    expect(chart.locator(".bar-chart-item").first).to_contain_text("Contoso")
    expect(chart.locator(".bar-chart-item").first).to_contain_text("2")
    screenshot(page, "chat-group-chart")

    chart.get_by_role("link", name=re.compile("^Contoso")).click()
    expect(page.locator("#lead-table .lead-summary")).to_contain_text("Showing 1–2 of 2")
    expect(page.locator(".condition-chips")).to_contain_text(
        "company or email domain contains 'contoso'", ignore_case=True
    )
    expect(page.locator(".condition-chips")).to_contain_text("equals 'Contoso'", ignore_case=True)

    page.goto("/chat/")
    page.get_by_label("Your question").fill("Show me the chief technology officers")
    page.get_by_label("Your question").press("Enter")
    answer = page.locator("#chat-messages .chat-message").nth(5)
    expect(answer).to_contain_text("There are 2 matching leads:")
    answer.get_by_role("link", name="Show in table").click()
    expect(page.locator(".condition-chips")).to_contain_text(
        "title has the word 'chief technology officer'", ignore_case=True
    )
    expect(page.locator("#lead-table tbody tr")).to_have_count(2)
    expect(page.locator("#lead-table tbody")).to_contain_text("Ada")
    expect(page.locator("#lead-table tbody")).to_contain_text("Mia")
    screenshot(page, "chat-title-chips")

    page.set_viewport_size({"width": 390, "height": 844})  # the chart in the lead page's drawer, on a phone
    page.goto("/")
    page.get_by_text("Ask about your leads").click()
    page.get_by_label("Your question").fill("How many leads per worksheet?")
    page.get_by_label("Your question").press("Enter")
    drawer_chart = page.locator("#chat-messages figure.bar-chart").last
    expect(drawer_chart.locator(".bar-chart-item")).to_have_count(2)
    box = drawer_chart.bounding_box()
    assert box is not None and box["width"] <= 390
    screenshot(page, "chat-drawer-chart-390")


def test_the_server_refuses_an_over_long_question_and_keeps_it_in_the_box(open_page, role_user):
    page = open_page(role_user("victor", "viewer"))
    page.goto("/chat/")
    box = page.get_by_label("Your question")

    box.fill("x" * 600)
    expect(box).to_have_value("x" * 500)  # the browser stops at maxlength
    # A script (or an old browser) can still send more; the server says why.
    page.evaluate(
        "const box = document.getElementById('chat-question'); box.removeAttribute('maxlength'); box.value = 'y'.repeat(501)"
    )
    box.press("Enter")

    expect(page.get_by_role("alert")).to_have_text(
        "A question can have at most 500 characters (this one has 501)."
    )
    expect(box).to_have_value("y" * 501)
    expect(page.locator("#chat-messages .chat-message")).to_have_count(0)
