"""Keyset paging of the default sort: the table's Next/Previous links carry a cursor (`after=`,
`before=`), so a deep page costs what page 2 does, and shows what the same page by number shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from easycrm.testing.http import HTMX
from leads.filters import LeadQuery, PageCursor, leads_page
from leads.models import Lead

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")


@pytest.fixture
def seventy_leads() -> None:
    """Seventy leads, some sharing an updated_at (ties are ordered by id)."""
    Lead.objects.bulk_create(Lead(first_name=f"lead{i:02}") for i in range(70))
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for index, pk in enumerate(Lead.objects.order_by("pk").values_list("pk", flat=True)):
        Lead.objects.filter(pk=pk).update(
            updated_at=start + timedelta(seconds=index // 3, microseconds=index % 2)
        )


def names(leads) -> list[str]:
    return [lead.first_name for lead in leads]


def link(html: str, rel: str) -> str:
    return unescape(re.search(rf'<a href="([^"]*)"[^>]*rel="{rel}"', html).group(1))


@pytest.mark.parametrize("sort", ["-updated", "updated"])
def test_next_and_previous_cursors_give_the_pages_offset_gives(seventy_leads, sort):
    first = leads_page(LeadQuery(sort=sort))
    second = leads_page(LeadQuery(sort=sort, page=2), first.cursor("after"))
    third = leads_page(LeadQuery(sort=sort, page=3), second.cursor("after"))
    back = leads_page(LeadQuery(sort=sort, page=2), third.cursor("before"))

    by_offset = [leads_page(LeadQuery(sort=sort, page=page)) for page in (2, 3)]
    assert names(second.leads) == names(by_offset[0].leads) == names(back.leads)
    assert names(third.leads) == names(by_offset[1].leads)
    assert second.has_next and not third.has_next and back.has_next
    assert (third.start, third.end, third.total) == (51, 70, 70)
    assert second.read_from is not None and by_offset[0].read_from is None


def test_a_cursor_page_is_read_without_offset(seventy_leads):
    cursor = leads_page(LeadQuery()).cursor("after")

    with CaptureQueriesContext(connection) as queries:
        leads_page(LeadQuery(page=2), cursor)

    assert "OFFSET" not in queries.captured_queries[0]["sql"].upper()


def test_cursor_round_trips_through_the_url():
    cursor = PageCursor("after", datetime(2025, 6, 1, 9, 30, 0, 123456, tzinfo=UTC), 42)

    assert PageCursor.parse("after", cursor.to_param()) == cursor


@pytest.mark.parametrize("raw", ["", "abc", "1.x", "-5.3", "1.2.3", "99999999999999999999999.1", "١٢.3"])
def test_a_malformed_cursor_is_ignored(raw):
    assert PageCursor.parse("after", raw) is None


@pytest.mark.parametrize("sort", ["source", "first_name"])
def test_sorts_without_a_fitting_cursor_ignore_it(seventy_leads, sort):
    """The source sort has no keyset; a text sort cannot use a cursor holding a time."""
    page = leads_page(LeadQuery(sort=sort, page=2), PageCursor("after", datetime.now(UTC), 1))

    assert (leads_page(LeadQuery(sort=sort)).cursor("after") is None) == (sort == "source")
    assert names(page.leads) == [f"lead{i:02}" for i in range(25, 50)]
    assert page.read_from is None


def test_a_stale_previous_cursor_falls_back_to_the_page_number(seventy_leads):
    newest = Lead.objects.order_by("-updated_at", "-id")[:3]
    cursor = PageCursor.of("before", newest[2])  # only two leads before it: no whole page

    page = leads_page(LeadQuery(page=2), cursor)

    assert names(page.leads) == names(leads_page(LeadQuery(page=2)).leads)
    assert page.read_from is None


def test_next_and_previous_links_carry_the_cursor_and_other_links_do_not(viewer_client, seventy_leads):
    page_two = viewer_client.get(link(viewer_client.get(LIST).content.decode(), "next")).content.decode()
    page_three_url = link(page_two, "next")
    page_three = viewer_client.get(page_three_url).content.decode()

    assert re.fullmatch(rf"{LIST}\?page=3&after=\d+\.\d+", page_three_url)
    assert "Showing 51–70 of 70" in page_three
    assert re.fullmatch(rf"{LIST}\?page=2&before=\d+\.\d+", link(page_three, "prev"))
    assert link(page_two, "prev") == LIST  # page 1 needs no cursor
    assert f'href="{LIST}?sort=first_name"' in page_three  # a sort header starts again at page 1


def test_the_pushed_url_keeps_the_cursor(viewer_client, seventy_leads):
    next_url = link(viewer_client.get(LIST).content.decode(), "next")

    response = viewer_client.get(next_url, **HTMX)

    assert response["HX-Push-Url"] == next_url


def test_a_page_link_without_a_cursor_still_works(viewer_client, seventy_leads):
    html = viewer_client.get(LIST, {"page": "2", "after": "garbage"}).content.decode()

    assert "Showing 26–50 of 70" in html
