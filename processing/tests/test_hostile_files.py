"""Files built to stall or kill the reader: absurd Excel dimensions, zip bombs, huge rows, NUL bytes.

The workbooks are written by hand (zipfile + XML), because a spreadsheet library would refuse to
write them. They are read for real, in the reader's child process; the pipeline tests run through
processing.services on the suite's database (SQLite, and PostgreSQL under `make test`).
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from easycrm.testing.files import HEADER, people, write_csv
from easycrm.testing.workers import Workers, subprocess_env
from leads.models import Lead
from processing.models import ImportBatch, ImportJob
from processing.parsing import FileRejected, SourceRow, iter_rows, too_many_rows
from processing.reader import ReaderFailed, too_big_message, too_slow_message

_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        "</Relationships>"
    ),
}


def cell(text: str, ref: str = "") -> str:
    position = f' r="{ref}"' if ref else ""
    return f'<c{position} t="inlineStr"><is><t>{text}</t></is></c>'


def write_workbook(path: Path, rows: Iterable[str], *, dimension: str | None = None) -> Path:
    """A one-sheet xlsx ("Leads") whose sheetData is `rows` (XML text, written as it comes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            )
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            sheet.write(b"<sheetData>")
            for chunk in rows:
                sheet.write(chunk.encode())
            sheet.write(b"</sheetData></worksheet>")
    return path


def far_corner_workbook(path: Path, *, dimension: str | None) -> Path:
    """Cells at A1 and XFD1048576 only: calamine would build a 16,384 × 1,048,576 table (512 GB)."""
    rows = [f'<row r="1">{cell("Name", "A1")}</row>', f'<row r="1048576">{cell("x", "XFD1048576")}</row>']
    return write_workbook(path, rows, dimension=dimension)


def zip_bomb(path: Path, rows: int) -> Path:
    """`rows` identical leads of four cells without positions: 2M rows deflate to about 1.5 MB."""
    lead = (
        "<row>"
        + "".join(cell(text) for text in ("Ann", "Lee", "ann@example.com", "+49 30 1234567"))
        + "</row>"
    )

    def chunks() -> Iterable[str]:
        yield "<row>" + "".join(cell(text) for text in ("First", "Last", "Email", "Phone")) + "</row>"
        for start in range(0, rows, 10_000):
            yield lead * min(10_000, rows - start)

    return write_workbook(path, chunks())


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.xlsx", 2_000_000)


def read(path: Path, *, max_rows: int = 1000) -> tuple[list[SourceRow], list[str]]:
    warnings: list[str] = []
    return list(iter_rows(path, path.name, max_rows=max_rows, warnings=warnings)), warnings


def rejection(path: Path, *, max_rows: int = 1000) -> str:
    with pytest.raises(FileRejected) as excinfo:
        read(path, max_rows=max_rows)
    return str(excinfo.value)


def reader_peak_rss_kb(caplog) -> int:
    [peak] = [record.reader_peak_rss_kb for record in caplog.records if hasattr(record, "reader_peak_rss_kb")]
    return peak


def readers_of_this_process() -> list[int]:
    """The reader child processes this process has (other tests may leave other children)."""
    readers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            # "pid (name) state ppid ...": the name may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"processing.reader" in command:
                readers.append(int(entry))
    return readers


# --- the reader ---------------------------------------------------------------------------------


def test_handwritten_workbook_is_read(tmp_path):
    path = write_workbook(
        tmp_path / "small.xlsx",
        [f"<row>{cell('Name')}{cell('Email')}</row>", f"<row>{cell('Ann')}{cell('ann@example.com')}</row>"],
    )

    assert read(path) == ([SourceRow("Leads", 2, {"Name": "Ann", "Email": "ann@example.com"})], [])


def test_declared_dimension_wider_than_a_row_may_be_is_refused_before_loading(tmp_path):
    path = far_corner_workbook(tmp_path / "far.xlsx", dimension="A1:XFD1048576")
    assert path.stat().st_size < 2000

    assert rejection(path) == (
        "A worksheet in this workbook reaches column XFD (cell XFD1048576): 16,384 columns, and a row may "
        "have at most 1,000 cells. Delete the columns that are not needed and upload the file again."
    )


def test_workbook_hiding_its_far_cell_from_the_dimension_ends_only_the_child(tmp_path, caplog):
    # The dimension says A1:B2, so only calamine finds the 512 GB table: it aborts its process,
    # which is the reader's child, not this one.
    path = far_corner_workbook(tmp_path / "far.xlsx", dimension="A1:B2")
    caplog.set_level(logging.INFO, logger="processing.reader")

    started = time.monotonic()
    message = rejection(path)

    assert message == too_big_message(2048)
    assert time.monotonic() - started < 5
    assert any("exited with -6" in record.getMessage() for record in caplog.records)
    assert readers_of_this_process() == []


def test_zip_bomb_is_refused_at_the_row_limit_with_little_memory(bomb, caplog):
    caplog.set_level(logging.INFO, logger="processing.reader")
    assert bomb.stat().st_size < 2_000_000

    started = time.monotonic()
    message = rejection(bomb, max_rows=200_000)

    assert message == too_many_rows(200_000)
    assert time.monotonic() - started < 5
    # Loading the sheet first took 810 MB (7.8 s); counting its rows in the zip stream takes a few MB
    # above the child's baseline of about 30 MB.
    assert reader_peak_rss_kb(caplog) < 100 * 1024


def test_sheet_needing_more_memory_than_the_reader_may_use_ends_only_the_child(tmp_path, settings):
    # Two cells, honestly declared as A1:Z200000: calamine builds a 26 × 200,000 table, about
    # 160 MB, which fits the machine but not the child's address space (RLIMIT_AS).
    settings.READER_MEMORY_MB = 60
    rows = [f'<row r="1">{cell("Name", "A1")}</row>', f'<row r="200000">{cell("x", "Z200000")}</row>']
    path = write_workbook(tmp_path / "sparse.xlsx", rows, dimension="A1:Z200000")

    assert rejection(path) == too_big_message(60)


@pytest.mark.slow
def test_zip_bomb_within_the_row_limit_is_stopped_by_the_memory_limit(bomb, settings):
    # With the row limit out of the way calamine loads the sheet until the child's address space
    # runs out (after about a second of parsing).
    settings.READER_MEMORY_MB = 100

    assert rejection(bomb, max_rows=3_000_000) == too_big_message(100)


@pytest.mark.slow
def test_reading_past_the_cpu_limit_is_refused(bomb, settings):
    settings.READER_CPU_SECONDS = 1

    assert rejection(bomb, max_rows=3_000_000) == too_slow_message(1)


def test_rows_of_formatted_empty_cells_do_not_count_towards_the_row_limit(tmp_path):
    # Formatting a range in Excel writes cells without values: 300 such rows under 5 leads.
    leads = [f"<row>{cell('Name')}</row>"] + [f"<row>{cell(f'Lead {n}')}</row>" for n in range(5)]
    formatted = ['<row><c s="1"/><c s="1"/></row>'] * 300 + ['<row s="1" customFormat="1"/>'] * 300
    path = write_workbook(tmp_path / "formatted.xlsx", leads + formatted)

    rows, _ = read(path, max_rows=10)

    assert [row.cells["Name"] for row in rows] == [f"Lead {n}" for n in range(5)]


def test_nul_in_an_excel_cell_is_removed_with_a_warning(tmp_path):
    path = write_workbook(
        tmp_path / "nul.xlsx",
        [
            f"<row>{cell('Name')}{cell('Notes')}</row>",
            f"<row>{cell('Ann')}{cell('met_x0000_ at the fair')}</row>",
        ],
    )

    assert read(path) == (
        [SourceRow("Leads", 2, {"Name": "Ann", "Notes": "met at the fair"})],
        [
            "Sheet 'Leads': row 2 held NUL characters (invisible zero bytes, a sign of a damaged export); "
            "they were removed."
        ],
    )


def test_a_caller_that_stops_early_ends_the_child(tmp_path):
    # More rows than the pipe holds: the child is still writing when the caller stops.
    lines = "".join(f"Lead {n},lead{n}@example.com\n" for n in range(20_000))
    path = tmp_path / "many.csv"
    path.write_text("Name,Email\n" + lines)

    rows = iter_rows(path, "many.csv", max_rows=100_000, warnings=[])
    assert next(rows) == SourceRow("many", 2, {"Name": "Lead 0", "Email": "lead0@example.com"})
    assert len(readers_of_this_process()) == 1
    rows.close()

    assert readers_of_this_process() == []


def test_a_bug_in_the_child_is_raised_as_such_not_as_a_rejected_file(tmp_path):
    # services.import_split logs an unexpected exception and fails the job with its generic message.
    with pytest.raises(ReaderFailed, match="FileNotFoundError"):
        read(tmp_path / "gone.csv")


# --- through the pipeline -------------------------------------------------------------------------


@pytest.mark.django_db
def test_nul_bytes_are_removed_with_a_warning_on_every_database(import_file, tmp_path):
    # PostgreSQL refuses "\x00" in text and jsonb; SQLite would store it. Both get the same leads.
    notes = "n" * 300
    filler = "".join(f"Lead {n},lead{n}@example.com,{notes}\n" for n in range(250))  # past the 64 KB sniffed
    path = tmp_path / "nul.csv"
    path.write_bytes(("Name,Email,Notes\n" + filler + "Nul\x00 Lee,nul\x00lee@example.com\n").encode())

    job = import_file(path)

    assert job.status == ImportJob.Status.COMPLETED, job.error_message
    assert job.warnings == [
        "Row 252 held NUL characters (invisible zero bytes, a sign of a damaged export); they were removed."
    ]
    lead = Lead.objects.get(email="nullee@example.com")
    assert lead.first_name == "Nul"
    assert lead.raw["Name"] == "Nul Lee"


@pytest.mark.django_db
def test_workbook_that_kills_its_reader_fails_the_import_with_a_clear_message(import_file, tmp_path):
    job = import_file(far_corner_workbook(tmp_path / "far.xlsx", dimension=None))

    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == too_big_message(2048)
    assert not ImportBatch.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_zip_bomb_fails_the_import_at_the_row_limit(import_file, bomb, settings):
    job = import_file(bomb)

    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == too_many_rows(settings.MAX_IMPORT_ROWS)
    assert not ImportBatch.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_ten_megabyte_line_fails_the_import_quickly(import_file, tmp_path):
    path = tmp_path / "oneline.csv"
    path.write_text("Name,Email," + "x" * 10_000_000 + "\n")

    started = time.monotonic()
    job = import_file(path)

    assert time.monotonic() - started < 5
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message.startswith("Line 1 of this file is longer than 256 KB;")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_survives_a_workbook_that_kills_its_reader(tmp_path):
    # Before, calamine's abort killed the qcluster worker: the import stayed `processing` until a
    # lease ran out. Now the split task fails the import at once and the same worker goes on.
    group = Workers(tmp_path, subprocess_env(MEDIA_ROOT=str(tmp_path / "media")))
    try:
        far_id = group.upload(far_corner_workbook(tmp_path / "far.xlsx", dimension=None))
        leads_id = group.upload(write_csv(tmp_path / "leads.csv", HEADER, people(20)))
        group.start()
        group.start("deepseek")

        deadline = time.monotonic() + 60
        while not all(ImportJob.objects.get(pk=pk).is_terminal for pk in (far_id, leads_id)):
            assert time.monotonic() < deadline, group.logs()
            time.sleep(0.2)
    finally:
        group.stop_all()

    far = ImportJob.objects.get(pk=far_id)
    assert (far.status, far.error_message) == (ImportJob.Status.FAILED, too_big_message(2048))
    assert ImportJob.objects.get(pk=leads_id).status == ImportJob.Status.COMPLETED
