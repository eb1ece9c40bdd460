"""The lead export as it was written before the chunked writer (issue 13): model instances, one
neutralized line per row. The test proves the chunked export writes exactly these bytes; the table
benchmark measures it as the baseline."""

from __future__ import annotations

from collections.abc import Iterator


def export_lines_reference(queryset) -> Iterator[str]:
    from leads.services import EXPORT_HEADER, csv_lines

    def row(lead):
        return (
            lead.pk,
            lead.first_name,
            lead.last_name,
            lead.title,
            lead.company,
            lead.email,
            lead.phone,
            lead.remarks,
            lead.source_file,
            lead.worksheet,
            lead.source_row if lead.source_row is not None else "",
            lead.created_at.isoformat(),
            lead.updated_at.isoformat(),
        )

    return csv_lines(EXPORT_HEADER, map(row, queryset.iterator(chunk_size=2000)))
