"""Keyset paging of the text sorts: a cursor over (NULLIF(LOWER(column), ''), id), so a deep page
sorted by company or email costs what page 2 does, in both directions, with empty values last."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leads.filters import LeadPage, LeadQuery, PageCursor, leads_filter, leads_page
from leads.models import Lead

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")
# Case variants that compare equal (ties by id), an accent, digits, and a run of empty values long
# enough to fill pages of its own.
COMPANIES = ["Acme", "acme", "ACME", "Émile & Co", "zeta", "Beta", "beta ltd", "10x", "", "Zeta"]


@pytest.fixture
def leads() -> list[int]:
    """Ninety leads; every third company and every fifth email empty."""
    Lead.objects.bulk_create(
        Lead(
            first_name=f"lead{i:02}",
            company="" if i % 3 == 0 else COMPANIES[i % len(COMPANIES)],
            email="" if i % 5 == 0 else f"p{(i * 37) % 90:02}@example.com",
        )
        for i in range(90)
    )
    return list(Lead.objects.values_list("pk", flat=True))


def ids(page: LeadPage) -> list[int]:
    return [lead.pk for lead in page.leads]


def walk_forward(query: LeadQuery) -> list[LeadPage]:
    pages = [leads_page(query)]
    while pages[-1].has_next:
        previous = pages[-1]
        pages.append(leads_page(query.replace(page=previous.number + 1), previous.cursor("after")))
    return pages


@pytest.mark.parametrize("sort", ["company", "-company", "email", "-email"])
def test_next_links_return_every_lead_once_in_the_sort_order(leads, sort):
    query = LeadQuery(sort=sort)

    pages = walk_forward(query)

    assert all(page.read_from is not None for page in pages[1:])
    seen = [pk for page in pages for pk in ids(page)]
    assert seen == list(leads_filter(query).values_list("pk", flat=True))
    assert sorted(seen) == sorted(leads)
    column = sort.removeprefix("-")
    values = [getattr(lead, column) for page in pages for lead in page.leads]
    empty_from = values.index("")
    assert set(values[empty_from:]) == {""} and "" not in values[:empty_from]  # empty last both ways


@pytest.mark.parametrize("sort", ["company", "-company", "email", "-email"])
def test_previous_links_give_back_the_same_pages(leads, sort):
    forward = walk_forward(LeadQuery(sort=sort))

    page = forward[-1]
    backward = [page]
    while page.number > 1:
        page = leads_page(page.query.replace(page=page.number - 1), page.cursor("before"))
        backward.append(page)

    assert [ids(page) for page in backward[::-1]] == [ids(page) for page in forward]
    assert all(page.read_from is not None for page in backward[1:-1])


@pytest.mark.parametrize("sort", ["company", "-company"])
def test_pages_by_number_match_pages_by_cursor(leads, sort):
    """Also a page straddling the last value and the first empty one, and pages of empty values only."""
    forward = walk_forward(LeadQuery(sort=sort, per_page=25))
    by_number = [leads_page(LeadQuery(sort=sort, page=number)) for number in range(1, len(forward) + 1)]

    assert [ids(page) for page in by_number] == [ids(page) for page in forward]
    assert [page.has_next for page in by_number] == [page.has_next for page in forward]
    assert by_number[-1].total == 90


def test_a_filter_keeps_the_keyset_order(leads):
    query = LeadQuery(company="e", sort="-email")

    pages = walk_forward(query)

    seen = [pk for page in pages for pk in ids(page)]
    assert seen == list(leads_filter(query).values_list("pk", flat=True))
    assert len(seen) == Lead.objects.filter(company__icontains="e").count() > 25


@pytest.mark.parametrize("window", [1, 4, 30])
@pytest.mark.parametrize("sort", ["company", "-email"])
def test_a_filtered_page_past_the_index_window_keeps_the_order(leads, monkeypatch, sort, window):
    """The bounded index walk (SORT_WINDOW leads, then the remaining matches sorted) gives the same
    pages forwards and backwards."""
    monkeypatch.setattr("leads.filters.SORT_WINDOW", window)
    query = LeadQuery(company="e", sort=sort)

    forward = walk_forward(query)
    page, backward = forward[-1], [forward[-1]]
    while page.number > 1:
        page = leads_page(page.query.replace(page=page.number - 1), page.cursor("before"))
        backward.append(page)

    seen = [pk for page in forward for pk in ids(page)]
    assert seen == list(leads_filter(query).values_list("pk", flat=True))
    assert [ids(page) for page in backward[::-1]] == [ids(page) for page in forward]


def test_a_text_cursor_page_is_read_without_offset(leads):
    cursor = leads_page(LeadQuery(sort="company")).cursor("after")

    with CaptureQueriesContext(connection) as queries:
        leads_page(LeadQuery(sort="company", page=2), cursor)

    assert queries.captured_queries
    assert not any("OFFSET" in query["sql"].upper() for query in queries.captured_queries)


@pytest.mark.parametrize("value", ["émile & co", "a~b.c/d?e=f", "ＡＣＭＥ", "x" * 300, None])
def test_text_cursor_round_trips_through_the_url(value):
    cursor = PageCursor("before", value, 42)

    param = cursor.to_param()

    assert re.fullmatch(r"42~[A-Za-z0-9_-]*", param)  # URL-safe as it is
    assert PageCursor.parse("before", param) == cursor


@pytest.mark.parametrize("raw", ["x~YQ", "1~Y", "1~YQ==", "1~YQ=", "1~AA", "1~/w", "1~" + "Q" * 2001, "١~YQ"])
def test_a_malformed_text_cursor_is_ignored(raw):
    """Not an id, bad or non-canonical base64, NUL, not UTF-8, too long."""
    assert PageCursor.parse("after", raw) is None


def test_a_text_cursor_does_not_fit_the_updated_sort(leads):
    page = leads_page(LeadQuery(page=2), PageCursor("after", "acme", leads[0]))

    assert page.read_from is None
    assert ids(page) == ids(leads_page(LeadQuery(page=2)))


def test_next_and_previous_links_of_a_text_sort_carry_the_cursor(viewer_client, leads):
    def link(html: str, rel: str) -> str:
        return unescape(re.search(rf'<a href="([^"]*)"[^>]*rel="{rel}"', html).group(1))

    page_two_url = link(viewer_client.get(LIST, {"sort": "-company"}).content.decode(), "next")
    page_three_url = link(viewer_client.get(page_two_url).content.decode(), "next")
    page_three = viewer_client.get(page_three_url).content.decode()

    assert re.fullmatch(rf"{LIST}\?sort=-company&page=3&after=\d+~[A-Za-z0-9_-]*", page_three_url)
    assert "Showing 51–75 of " in page_three
    assert re.fullmatch(rf"{LIST}\?sort=-company&page=2&before=\d+~[A-Za-z0-9_-]*", link(page_three, "prev"))


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
@pytest.mark.parametrize("sort", ["email", "-email", "company", "-company", "last_name", "-title"])
def test_postgresql_reads_text_sort_pages_from_the_sort_index(leads, sort):
    """With sorting and table scans priced out, every page query of page 1, a Next page and a
    Previous page is still an index scan on lead_<column>_sort_idx: the index matches the expression
    exactly (the capped count may use any index)."""
    first = leads_page(LeadQuery(sort=sort))
    second = leads_page(LeadQuery(sort=sort, page=2), first.cursor("after"))
    with CaptureQueriesContext(connection) as queries:
        leads_page(LeadQuery(sort=sort))
        leads_page(LeadQuery(sort=sort, page=2), first.cursor("after"))
        leads_page(LeadQuery(sort=sort, page=3), second.cursor("after"))
        leads_page(LeadQuery(sort=sort, page=1), second.cursor("before"))
    index = f"lead_{sort.removeprefix('-')}_sort_idx"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        for query in [query for query in queries.captured_queries if "ORDER BY" in query["sql"]]:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert index in plan and "Sort" not in plan, plan
