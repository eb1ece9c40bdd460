"""The chunked CSV export writes exactly the bytes of the line-by-line writer it replaced."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from easycrm.testing.export import export_lines_reference
from leads import services
from leads.models import Lead
from leads.services import EXPORT_HEADER, leads_export_lines, leads_export_write

pytestmark = pytest.mark.django_db


def lines_before(queryset) -> str:
    return "".join(export_lines_reference(queryset))


@pytest.fixture
def tricky_leads() -> None:
    cells = [
        {"first_name": "José", "last_name": "Müller", "company": "=SUM(A1)", "title": "+1 boss"},
        {"first_name": "Ann", "phone": "+13128465155", "title": "-5", "company": "@acme"},
        {"remarks": "+49 (0)30 1234-56", "worksheet": "\tTab", "source_file": "\rcr.csv"},
        {
            "first_name": 'Say "hi"',
            "last_name": "a,b",
            "remarks": "two\nlines\r\nhere",
            "email": "x@y.example",
        },
        {"title": "-@", "company": "+", "phone": "=1+2", "remarks": ""},
        {"first_name": "日本", "last_name": "😀", "source_row": 7},
        {"source_row": 0},
    ]
    times = [
        datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
        datetime(2025, 6, 1, 9, 30, 0, 120000, tzinfo=UTC),
        datetime(2025, 6, 1, 9, 30, 0, 1, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    for index, values in enumerate(cells):
        lead = Lead.objects.create(**values)
        Lead.objects.filter(pk=lead.pk).update(
            created_at=times[index % len(times)], updated_at=times[(index + 2) % len(times)]
        )
    Lead.objects.create(first_name="Now", source_row=3)  # the database's own datetimes


def test_export_has_the_bytes_of_the_line_by_line_writer(tricky_leads, monkeypatch):
    monkeypatch.setattr(services, "EXPORT_CHUNK_ROWS", 3)  # several chunks, the last one short
    queryset = Lead.objects.order_by("id")

    assert "".join(leads_export_lines(queryset)) == lines_before(queryset)


def test_export_of_the_sorted_table_has_the_same_bytes(tricky_leads):
    queryset = Lead.objects.all()  # newest first, as the table

    exported = "".join(leads_export_lines(queryset))

    assert exported == lines_before(queryset)
    assert "'=SUM(A1)" in exported and "+13128465155" in exported and "0999-01-02T03:04:05+00:00" in exported


def test_export_yields_many_rows_per_chunk(monkeypatch):
    Lead.objects.bulk_create(Lead(first_name=f"lead{i}") for i in range(7))
    monkeypatch.setattr(services, "EXPORT_CHUNK_ROWS", 3)

    chunks = list(leads_export_lines())

    assert chunks[0] == "\ufeff" and chunks[1] == ",".join(EXPORT_HEADER) + "\r\n"
    assert [chunk.count("\r\n") for chunk in chunks[2:]] == [3, 3, 1]


def test_export_without_bom_starts_with_the_header():
    assert list(leads_export_lines(bom=False)) == [",".join(EXPORT_HEADER) + "\r\n"]


def test_export_write_counts_the_leads_and_writes_the_same_bytes(tricky_leads, monkeypatch):
    monkeypatch.setattr(services, "EXPORT_CHUNK_ROWS", 4)
    out = io.StringIO()

    count = leads_export_write(out, Lead.objects.order_by("id"))

    assert count == Lead.objects.count() == 8
    assert out.getvalue() == lines_before(Lead.objects.order_by("id"))
