"""Turn an uploaded lead file (CSV, XLSX, XLS) into a stream of raw rows.

Every cell is read as text, so phone numbers such as "+49 30 1234567" and values with leading
zeros reach the standardizer unchanged. Each row carries the worksheet it came from and the row
number a user sees when opening the file in Excel, so problems can be reported back precisely.

CSV is read with the standard library's `csv` reader (C code, streaming, about as fast as pandas'
C engine once rows become Python objects). pandas cannot keep the extra cells of a row that is
longer than the header: its C engine raises and even the Python engine's `on_bad_lines` callable
drops them. Excel files are read with python-calamine, the fastest reader measured here (see
DESIGN.md).

The file is read in a child process (processing.reader) with bounded memory and CPU time, because
calamine aborts the whole process when a workbook makes it allocate more than the machine has.
What one row may carry is capped (RowLimits) so no stored batch is too big to handle.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import os
import re
import statistics
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import python_calamine

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".csv", ".xlsx", ".xls")


def accepted_types() -> str:
    """ ".csv, .xlsx or .xls", for messages."""
    return ", ".join(SUPPORTED_EXTENSIONS[:-1]) + f" or {SUPPORTED_EXTENSIONS[-1]}"


# How many non-blank rows at the top of a sheet are searched for the header row.
HEADER_SEARCH_ROWS = 20

_SAMPLE_BYTES = 64 * 1024
_SCAN_CHUNK_BYTES = 1024 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_EXCEL_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF87a", "an image"),
    (b"GIF89a", "an image"),
    (b"II*\x00", "an image"),
    (b"MM\x00*", "an image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook with the wrong name"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Excel 97-2003 workbook or another Office file with the wrong name",
    ),
    (b"\x1f\x8b", "a compressed archive"),
    (b"Rar!", "a compressed archive"),
    (b"7z\xbc\xaf\x27\x1c", "a compressed archive"),
)
_NUMBER_LIKE = re.compile(r"[\d\s.,:/+\-()%#'xXT]*\d[\d\s.,:/+\-()%#'xXT]*")
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SEP_LINE = re.compile(r'"?sep=(.)"?', re.IGNORECASE)
# A float with a whole value below 2**53 is an exact integer; beyond that Excel shows 15 digits.
_EXACT_INTEGER_LIMIT = 2**53
# A physical CSV line may be this many times a row's byte limit (delimiters, quotes, padding).
_RAW_LINE_FACTOR = 2
# How many renamed headers or extra columns a warning names before "and N more".
_NAMES_IN_WARNING = 10
# Reading an xlsx sheet's XML to count its rows, this much at a time.
_XML_CHUNK_BYTES = 1024 * 1024
_ROW_END = re.compile(rb"</(?:[\w.-]{1,40}:)?row\s*>")
_DIMENSION = re.compile(rb'<(?:[\w.-]{1,40}:)?dimension\s+ref="([A-Z]{1,3})?(\d+)?(?::([A-Z]{1,3})(\d+))?"')

# Windows-1252 leaves five bytes undefined; decode just those as Latin-1 instead of failing.
_CP1252_ERRORS = "easycrm-latin1-fallback"


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(_CP1252_ERRORS, _latin1_fallback)


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row of an uploaded file, as every later step sees it.

    `cells` maps the file's own column headers (unique within the sheet) to non-empty cell texts, in
    column order; any header is just a header, whatever it starts with. `row` is the 1-based row
    number as Excel shows it; `seq` is the row's position within its import (1, 2, … across every
    sheet), set when the row is put into a batch; 0 until then.
    """

    worksheet: str
    row: int
    cells: dict[str, str]
    seq: int = 0

    def to_json(self) -> dict:
        # Cells as [header, value] pairs: a JSON object's key order does not survive PostgreSQL's jsonb.
        return {
            "worksheet": self.worksheet,
            "row": self.row,
            "seq": self.seq,
            "cells": list(self.cells.items()),
        }

    @classmethod
    def from_json(cls, data: dict) -> SourceRow:
        return cls(
            worksheet=data["worksheet"],
            row=data["row"],
            seq=data["seq"],
            cells={header: value for header, value in data["cells"]},
        )


class FileRejected(Exception):
    """The whole file cannot be imported.

    str(exc) is a message a salesperson understands: no jargon, no stack trace.
    """


@dataclass(frozen=True)
class RowLimits:
    """What one row of a file may carry; a row beyond any of them makes the file rejected.

    Refusing beats cutting: a cut cell or a dropped column would lose data without anyone
    noticing in a 50,000-row import, and a real lead list is far inside these limits.
    """

    max_cells: int  # columns up to the last non-empty cell, header rows included
    max_cell_chars: int
    max_row_bytes: int  # the row's cell texts, UTF-8 encoded

    @classmethod
    def from_settings(cls) -> RowLimits:
        from django.conf import settings  # not at the top: the reader's child process has no Django

        return cls(
            max_cells=settings.MAX_CELLS_PER_ROW,
            max_cell_chars=settings.MAX_CELL_CHARS,
            max_row_bytes=settings.MAX_ROW_BYTES,
        )


@dataclass
class _Sheet:
    name: str  # the worksheet of its rows
    label: str  # how warnings name it; "" for a CSV file, which has a single sheet
    rows: Iterator[tuple[int, list[str]]]  # (row number as Excel shows it, stripped cell texts)
    first_column: int = 1  # 1-based column of the first cell, for "Column N" names

    def where(self, number: int) -> str:
        """ "Row 7" / "Sheet 'Leads', row 7", to start a message with."""
        return f"{self.label[:-2]}, row {number:,}" if self.label else f"Row {number:,}"


def iter_rows(
    path: str | os.PathLike,
    filename: str,
    *,
    max_rows: int,
    warnings: list[str],
    limits: RowLimits | None = None,
    header_rows: Mapping[str, int] | None = None,
    sheets: list[dict] | None = None,
) -> Iterator[SourceRow]:
    """Yield one SourceRow per data row, across every worksheet in workbook order.

    Cell keys are the file's own column headers (stripped, empty ones named "Column N", repeats
    suffixed " (2)"); the worksheet is the sheet name (for CSV the file name without extension).

    `filename` (the original upload name) decides the type by its extension; `path` is the
    local file. Problems with the file type, its encoding or a damaged workbook raise
    FileRejected before this returns; having no data rows or more than `max_rows` of them, a row
    beyond `limits` (default: the settings) or a file too big to read within the reader's memory
    and time raise it during iteration (rows already yielded are then to be discarded). Problems
    that do not stop the import are appended to `warnings` as the sheet that has them is read.

    `header_rows` names the header row of a sheet (its row number) instead of the one found, as the
    import review lets a person choose; `sheets`, when given, receives one SHEET_HEAD dict per
    worksheet as it is read (see _sheet_head).

    The file is parsed in a child process (processing.reader), so a parser that runs out of
    memory ends that process, not this one.
    """
    from django.conf import settings

    from . import reader  # it imports this module to run parse_rows in the child

    return reader.read_in_child(
        path,
        filename,
        max_rows=max_rows,
        warnings=warnings,
        limits=limits or RowLimits.from_settings(),
        memory_mb=settings.READER_MEMORY_MB,
        cpu_seconds=settings.READER_CPU_SECONDS,
        header_rows=header_rows,
        sheets=sheets,
    )


def parse_rows(
    path: str | os.PathLike,
    filename: str,
    *,
    max_rows: int,
    warnings: list[str],
    limits: RowLimits,
    header_rows: Mapping[str, int] | None = None,
    sheets: list[dict] | None = None,
) -> Iterator[SourceRow]:
    """iter_rows in this process, without its memory bound: for processing.reader's child."""
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        kind = f"Files of type {extension}" if extension else "Files without an extension like .csv"
        raise FileRejected(f"{kind} are not supported. Upload a {accepted_types()} file.")
    if os.path.getsize(path) == 0:
        raise FileRejected("This file is empty.")
    with open(path, "rb") as file:
        head = file.read(_SAMPLE_BYTES)
    if extension == ".csv":
        opened: Iterator[_Sheet | None] = iter([_open_csv(path, filename, head, limits)])
    else:
        workbook = _open_workbook(path, extension, head, max_rows=max_rows, limits=limits)
        opened = _excel_sheets(workbook, warnings)
    return _data_rows(
        opened,
        max_rows=max_rows,
        warnings=warnings,
        limits=limits,
        header_rows=header_rows or {},
        heads=sheets,
    )


def too_many_rows(max_rows: int) -> str:
    return (
        f"This file has more than {max_rows:,} rows, the most one import can take. "
        "Split it into smaller files."
    )


def _data_rows(
    sheets: Iterator[_Sheet | None],
    *,
    max_rows: int,
    warnings: list[str],
    limits: RowLimits,
    header_rows: Mapping[str, int],
    heads: list[dict] | None,
) -> Iterator[SourceRow]:
    total = 0
    saw_header = False
    unreadable = 0
    for sheet in sheets:
        if sheet is None:
            unreadable += 1
            continue
        records = _sheet_records(sheet, warnings, limits, header_rows.get(sheet.name), heads)
        if records is None:
            continue
        saw_header = True
        for record in records:
            total += 1
            if total > max_rows:
                raise FileRejected(too_many_rows(max_rows))
            yield record
    if total:
        return
    if unreadable:
        raise FileRejected(
            "No leads could be read from this workbook: its sheets are damaged or saved in a format "
            "that cannot be read. Open it in Excel, save it again and upload the new file."
        )
    if saw_header:
        raise FileRejected("This file has a header row but no leads under it.")
    raise FileRejected("This file is empty.")


def _sheet_records(
    sheet: _Sheet,
    warnings: list[str],
    limits: RowLimits,
    header_row: int | None = None,
    heads: list[dict] | None = None,
) -> Iterator[SourceRow] | None:
    """The sheet's data rows, or None when the sheet has no non-blank row at all. `header_row` (a row
    number among the first HEADER_SEARCH_ROWS non-blank rows) is taken as the header when given."""
    sheet.rows = _checked_rows(sheet, sheet.rows, limits, warnings)
    window: list[tuple[int, list[str]]] = []
    for number, cells in sheet.rows:
        window.append((number, cells))
        if len(window) == HEADER_SEARCH_ROWS:
            break
    chosen = next((index for index, (number, _) in enumerate(window) if number == header_row), None)
    header_index = chosen if chosen is not None else _find_header([cells for _, cells in window])
    header_cells = window[header_index or 0][1] if window else []
    no_header = chosen is None and (
        header_index is None or any(_EMAIL_LIKE.fullmatch(cell) for cell in header_cells)
    )
    if not window:
        if heads is not None:
            heads.append(_sheet_head(sheet, window, None, []))
        return None
    if no_header:
        # No row looks like column names, or the best candidate holds an email address: the
        # sheet has no header row, and taking its first lead for one would silently lose it.
        data_start = header_index or 0
        widest = max(len(cells) for _, cells in window[data_start:])
        headers = _HeaderNames([""] * widest, sheet.first_column)
        numbered = ", ".join(f"'{name}'" for name in headers.names[:2])
        _warn(
            warnings,
            sheet.label,
            f"the first row holds a lead, not column names, so the columns were named {numbered} and so on.",
        )
    else:
        # Excel pads every row to the sheet's width; cells right of the last named column are
        # extra cells, not unnamed columns.
        while header_cells and not header_cells[-1]:
            header_cells = header_cells[:-1]
        headers = _HeaderNames(header_cells, sheet.first_column)
        data_start = header_index + 1
        if headers.renamed:
            renamed = _name_list(headers.renamed)
            _warn(
                warnings,
                sheet.label,
                f"some column names appear more than once; the repeats were renamed {renamed}.",
            )
    if heads is not None:
        heads.append(
            _sheet_head(sheet, window, None if no_header else window[header_index][0], headers.names)
        )
    return _records(sheet, headers, window[data_start:], warnings)


# How much of a sheet's top the import review shows for choosing another header row.
HEAD_ROWS = 10
HEAD_CELLS = 12
HEAD_CELL_CHARS = 60


def _sheet_head(
    sheet: _Sheet, window: list[tuple[int, list[str]]], header_row: int | None, headers: list[str]
) -> dict:
    """What the import review shows of a sheet before its rows: its name, the header row taken (None:
    the sheet has none, or no row at all), the column names as the rows carry them and its first
    non-blank rows, cut to a readable size."""
    return {
        "sheet": sheet.name,
        "header_row": header_row,
        "headers": list(headers),
        "empty": not window,
        "head": [
            [number, [cell[:HEAD_CELL_CHARS] for cell in cells[:HEAD_CELLS]]]
            for number, cells in window[:HEAD_ROWS]
        ],
    }


def _records(
    sheet: _Sheet, headers: _HeaderNames, buffered: list[tuple[int, list[str]]], warnings: list[str]
) -> Iterator[SourceRow]:
    width = len(headers.names)
    long_rows = 0
    extra_columns: set[int] = set()
    for rows in (buffered, sheet.rows):
        for number, cells in rows:
            if len(cells) > width and any(cells[width:]):
                long_rows += 1
                extra_columns.update(index for index in range(width, len(cells)) if cells[index])
            yield SourceRow(
                worksheet=sheet.name,
                row=number,
                cells={headers.name_at(index): cell for index, cell in enumerate(cells) if cell},
            )

    if long_rows:
        extra = _name_list([headers.name_at(index) for index in sorted(extra_columns)])
        rows_text = "1 row" if long_rows == 1 else f"{long_rows:,} rows"
        _warn(
            warnings,
            sheet.label,
            f"{rows_text} had more cells than the header; the extra cells were kept as {extra}.",
        )


def _checked_rows(
    sheet: _Sheet, rows: Iterator[tuple[int, list[str]]], limits: RowLimits, warnings: list[str]
) -> Iterator[tuple[int, list[str]]]:
    """The sheet's non-blank rows, refused when one is beyond `limits`, NUL characters removed.

    PostgreSQL cannot store a NUL character in text, so NULs are removed (with a warning) on every
    database alike; they come from padded fields of old exports and `_x0000_` in Excel XML.
    """
    nul_rows: list[int] = []
    for number, cells in rows:
        width = len(cells)
        while width and not cells[width - 1]:
            width -= 1
        if not width:
            continue
        if width > limits.max_cells:
            raise FileRejected(
                f"{sheet.where(number)} has {width:,} cells; a row may have at most {limits.max_cells:,}. "
                "Delete the columns that are not needed and upload the file again."
            )
        longest = max(map(len, cells))
        if longest > limits.max_cell_chars:
            raise FileRejected(
                f"{sheet.where(number)} has a cell of {longest:,} characters; a cell may hold at most "
                f"{limits.max_cell_chars:,}. Shorten that cell and upload the file again."
            )
        chars = sum(map(len, cells))
        # UTF-8 takes 1 to 4 bytes a character: encode only when the character count cannot decide.
        if chars * 4 > limits.max_row_bytes:
            size = chars if chars > limits.max_row_bytes else sum(len(cell.encode()) for cell in cells)
            if size > limits.max_row_bytes:
                raise FileRejected(
                    f"{sheet.where(number)} holds {_kilobytes(size)} of text; a row may hold at most "
                    f"{_kilobytes(limits.max_row_bytes)}. Shorten that row and upload the file again."
                )
        if "\x00" in "\x1f".join(cells):
            nul_rows.append(number)
            cells = [cell.replace("\x00", "").strip() for cell in cells]
            if not any(cells):
                continue
        yield number, cells
    if nul_rows:
        rows_text = (
            f"row {nul_rows[0]:,}"
            if len(nul_rows) == 1
            else f"{len(nul_rows):,} rows (first: row {nul_rows[0]:,})"
        )
        _warn(
            warnings,
            sheet.label,
            f"{rows_text} held NUL characters (invisible zero bytes, a sign of a damaged export); "
            "they were removed.",
        )


def _kilobytes(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    return f"{size / 1024:,.0f} KB" if size < 10 * 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"


def _name_list(names: list[str]) -> str:
    quoted = ", ".join(f"'{name}'" for name in names[:_NAMES_IN_WARNING])
    more = len(names) - _NAMES_IN_WARNING
    return f"{quoted} and {more:,} more" if more > 0 else quoted


def _find_header(rows: list[list[str]]) -> int | None:
    """Index of the header among the first non-blank rows of a sheet; None when none looks like one.

    The header is the first row that is mostly text (not numbers, dates or email addresses) and
    about as wide as the typical row below it: at most a quarter (at least one) of the cells of
    the median row below may be missing, and a header has two cells unless the data has one
    column. Title lines above a header ("Export from old CRM") are much narrower than the rows
    below them. The median rather than the maximum keeps a few rows with stray extra cells from
    pushing the header onto a data row.
    """
    filled = [sum(1 for cell in cells if cell) for cells in rows]
    for index, cells in enumerate(rows):
        below = filled[index + 1 :]
        typical = statistics.median(below) if below else 0
        needed = max(min(2, typical), typical - max(1, typical / 4))
        if filled[index] >= needed and _mostly_text(cells):
            return index
    return None


def _mostly_text(cells: list[str]) -> bool:
    values = [cell for cell in cells if cell]
    data_like = sum(1 for cell in values if _NUMBER_LIKE.fullmatch(cell) or _EMAIL_LIKE.fullmatch(cell))
    return data_like * 2 < len(values)


class _HeaderNames:
    """Unique column names for a sheet, extended on demand for cells beyond the header.

    Linear in the number of columns: each name remembers the next suffix to try, so 16,000
    repeats of one name do not each count up from " (2)".
    """

    def __init__(self, cells: list[str], first_column: int) -> None:
        self.first_column = first_column
        self.names: list[str] = []
        self.renamed: list[str] = []
        self._taken: set[str] = set()
        self._next_suffix: dict[str, int] = {}
        for cell in cells:
            name = self._add(cell)
            if cell and name != cell:
                self.renamed.append(name)

    def name_at(self, index: int) -> str:
        while index >= len(self.names):
            self._add("")
        return self.names[index]

    def _add(self, cell: str) -> str:
        base = cell or f"Column {self.first_column + len(self.names)}"
        name = base
        if name in self._taken:
            suffix = self._next_suffix.get(base, 2)
            name = f"{base} ({suffix})"
            while name in self._taken:
                suffix += 1
                name = f"{base} ({suffix})"
            self._next_suffix[base] = suffix + 1
        self._taken.add(name)
        self.names.append(name)
        return name


def _warn(warnings: list[str], label: str, text: str) -> None:
    warnings.append(f"{label}{text}" if label else text[:1].upper() + text[1:])


# --- CSV ---------------------------------------------------------------------------------------


def _open_csv(path: str | os.PathLike, filename: str, head: bytes, limits: RowLimits) -> _Sheet:
    for signature, looks_like in _BINARY_SIGNATURES:
        if head.startswith(signature):
            raise FileRejected(_not_text_message(looks_like))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise FileRejected(_not_text_message("an image"))
    encoding, errors = _detect_encoding(path, head)

    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    whole_file = len(head) < _SAMPLE_BYTES
    sample = decoder.decode(head, final=whole_file)
    if _control_characters(sample) > 0.05 * len(sample):
        raise FileRejected(_not_text_message(None))
    if sample.lstrip("\ufeff \t\r\n")[:14].lower().startswith(("<!doctype html", "<html")):
        raise FileRejected(_not_text_message("a web page"))
    if not whole_file:
        # The last line of a partial sample may be cut short and would skew the delimiter count.
        sample = sample[: sample.rfind("\n") + 1] or sample

    first_line = sample.lstrip("\ufeff").split("\n", 1)[0].strip()
    sep_line = _SEP_LINE.fullmatch(first_line)
    # Excel writes "sep=;" as a first line to name the delimiter, and hides that line.
    delimiter = sep_line.group(1) if sep_line else _sniff_delimiter(sample)
    rows = _csv_rows(path, encoding, errors, delimiter, skip_first=bool(sep_line), limits=limits)
    return _Sheet(name=Path(filename).stem, label="", rows=rows)


def _not_text_message(looks_like: str | None) -> str:
    detail = f" (it looks like {looks_like})" if looks_like else ""
    return f"This file is not a spreadsheet or CSV text file{detail}."


def _detect_encoding(path: str | os.PathLike, head: bytes) -> tuple[str, str]:
    """(encoding, error handler) for a CSV file, decided from its raw bytes.

    charset-normalizer is not used: it read a Windows-1252 file as cp775 here. A file that
    decodes as UTF-8 all the way through is UTF-8; anything else is taken as Windows-1252, the
    encoding Excel uses for "CSV" on Western European Windows.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "replace"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "replace"
    bomless_utf16 = _bomless_utf16(head)
    if bomless_utf16:
        return bomless_utf16, "replace"
    if b"\x00" in head:
        raise FileRejected(_not_text_message(None))
    if _is_utf8(path):
        return "utf-8", "strict"
    return "cp1252", _CP1252_ERRORS


def _bomless_utf16(head: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when mostly-ASCII text shows the zero byte of each UTF-16 unit."""
    pairs = head[: 2048 - 2048 % 2]
    if len(pairs) < 4:
        return None
    even_zeros = pairs[0::2].count(0)
    odd_zeros = pairs[1::2].count(0)
    units = len(pairs) // 2
    if odd_zeros > 0.3 * units and even_zeros < 0.1 * odd_zeros:
        return "utf-16-le"
    if even_zeros > 0.3 * units and odd_zeros < 0.1 * even_zeros:
        return "utf-16-be"
    return None


def _is_utf8(path: str | os.PathLike) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as file:
        try:
            while chunk := file.read(_SCAN_CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _control_characters(text: str) -> int:
    return sum(1 for char in text if (char < " " and char not in "\t\n\r\f\v") or char == "\x7f")


def _sniff_delimiter(sample: str) -> str:
    """The candidate delimiter that splits the most sample rows into the same number of cells.

    csv.Sniffer is not used: it gave up on a semicolon file with a title line above the header.
    """
    best = (0, 0, 0)
    chosen = _DELIMITERS[0]
    for preference, delimiter in enumerate(reversed(_DELIMITERS)):
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, skipinitialspace=True)
        try:
            widths = [len(row) for row in reader if any(cell.strip() for cell in row)]
        except csv.Error:
            continue
        split = [width for width in widths if width > 1]
        if not split:
            continue
        common = statistics.mode(split)
        score = (split.count(common), common, preference)
        if score > best:
            best, chosen = score, delimiter
    return chosen


class _CsvLines:
    """The lines of a CSV file for csv.reader, refusing a row whose text is far beyond the limit
    before the reader builds it (a 10 MB line is one string here, not 10 MB of parsed cells).

    csv.reader takes exactly the lines of one row before it returns that row, so the lines taken
    since the last row (`row_done`) are the current row's.
    """

    def __init__(self, file: io.TextIOBase, max_chars: int, max_cell_chars: int) -> None:
        self.file = file
        self.max_chars = max_chars
        self.max_cell_chars = max_cell_chars
        self.line_number = 0  # of the last line handed out
        self.row_start = 1  # line on which the current row starts
        self.row_chars = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.file:
            self.line_number += 1
            self.row_chars += len(line)
            if self.row_chars > self.max_chars:
                raise FileRejected(self.too_long())
            yield line

    def row_done(self) -> None:
        self.row_start = self.line_number + 1
        self.row_chars = 0

    def too_long(self, field_limit: int | None = None) -> str:
        lines = self.line_number - self.row_start + 1
        if lines > 1:
            return (
                f"Line {self.row_start:,} of this file starts a cell that does not end within {lines:,} "
                'lines: a quotation mark (") is probably never closed. Fix that line and upload the file again.'
            )
        if field_limit:
            return (
                f"Line {self.row_start:,} of this file has a cell longer than {field_limit:,} characters; "
                f"a cell may hold at most {self.max_cell_chars:,}. Shorten that cell and upload the file again."
            )
        return (
            f"Line {self.row_start:,} of this file is longer than {_kilobytes(self.max_chars)}; a row may hold "
            f"at most {_kilobytes(self.max_chars // _RAW_LINE_FACTOR)} of text. Shorten that line and upload "
            "the file again."
        )


def _csv_rows(
    path: str | os.PathLike,
    encoding: str,
    errors: str,
    delimiter: str,
    *,
    skip_first: bool,
    limits: RowLimits,
) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding=encoding, errors=errors, newline="") as file:
        lines = _CsvLines(file, limits.max_row_bytes * _RAW_LINE_FACTOR, limits.max_cell_chars)
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
        number = -1 if skip_first else 0
        try:
            for cells in reader:
                lines.row_done()
                number += 1
                if number > 0:
                    yield number, [cell.strip() for cell in cells]
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise FileRejected(lines.too_long(field_limit=csv.field_size_limit())) from exc
            raise FileRejected(
                f'Line {reader.line_num:,} of this file could not be read; a quotation mark (") is '
                "probably never closed. Fix that line and upload the file again."
            ) from exc


# --- Excel -------------------------------------------------------------------------------------


def _open_workbook(
    path: str | os.PathLike, extension: str, head: bytes, *, max_rows: int, limits: RowLimits
) -> python_calamine.CalamineWorkbook:
    not_excel = (
        f"This does not look like an Excel workbook ({extension}): "
        "the file may be damaged or saved in another format."
    )
    if not head.startswith(_EXCEL_SIGNATURES):
        for signature, looks_like in _BINARY_SIGNATURES:
            if head.startswith(signature):
                raise FileRejected(_not_text_message(looks_like))
        raise FileRejected(not_excel)
    if head.startswith(b"PK"):
        _check_xlsx_size(path, max_rows=max_rows, limits=limits)
    try:
        # Reading from a file object makes calamine tell .xls from .xlsx by content, so a workbook
        # saved under the other extension (or stored under a temporary name) still opens.
        with open(path, "rb") as file:
            return python_calamine.CalamineWorkbook.from_filelike(file)
    except python_calamine.PasswordError as exc:
        raise FileRejected(
            "This workbook is protected with a password. Remove the password in Excel and upload it again."
        ) from exc
    except Exception as exc:  # a native parser fed untrusted bytes: any failure means "not readable"
        logger.info("calamine could not open %s: %r", path, exc)
        raise FileRejected(not_excel) from exc


def _check_xlsx_size(path: str | os.PathLike, *, max_rows: int, limits: RowLimits) -> None:
    """Refuse a workbook whose sheets declare too many columns or hold too many rows, before
    calamine loads a sheet: it builds the whole sheet as one table in memory (a 1.5 MB zip of 2M
    rows took 810 MB) and aborts the process when that cannot be allocated.

    Streams each XML part of the zip: its `<dimension ref="A1:XFD1048576">`, and a count of its
    rows — first a cheap upper bound, and only when that is over the limit, the rows that hold a
    value. A dimension can lie and a zip can be damaged; the reader's memory limit is the backstop.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # calamine gives the damaged-workbook message
    with archive:
        parts = [info for info in archive.infolist() if info.filename.lower().endswith(".xml")]
        # Title lines and the header row of every sheet are not leads.
        allowed = max_rows + HEADER_SEARCH_ROWS * len(parts)
        if _count_rows(archive, parts, _row_tags_upper_bound, limits, allowed) <= allowed:
            return
        if _count_rows(archive, parts, _rows_with_values, limits, allowed) > allowed:
            raise FileRejected(too_many_rows(max_rows))


def _count_rows(
    archive: zipfile.ZipFile,
    parts: list[zipfile.ZipInfo],
    counter: Callable[..., int],
    limits: RowLimits,
    allowed: int,
) -> int:
    rows = 0
    for info in parts:
        try:
            with archive.open(info) as part:
                rows += counter(part, limits=limits, stop_after=allowed - rows)
        except (
            zipfile.BadZipFile,
            zlib.error,
            OSError,
            ValueError,
            EOFError,
            NotImplementedError,
            RuntimeError,
        ):
            continue  # a damaged or encrypted part: calamine decides (it warns or refuses)
        if rows > allowed:
            break
    return rows


def _row_tags_upper_bound(part: io.BufferedIOBase, *, limits: RowLimits, stop_after: int) -> int:
    """At least the number of rows in one XML part (C-speed counting); refuses a declared
    dimension wider than a row may be.

    Every row has at most two "row>": in `<row>` and `</row>` (also `<x:row>` with a namespace
    prefix); a row with attributes has one, a row without cells (`<row r="9"/>`) none.
    """
    count = 0
    carry = b""
    first = True
    while chunk := part.read(_XML_CHUNK_BYTES):
        data = carry + chunk
        if first:
            first = False
            dimension = _DIMENSION.search(data)
            if dimension:
                _check_dimension(dimension, limits)
        count += data.count(b"row>")
        # Three bytes cannot hold a whole "row>", so one cut by the boundary is counted next time, once.
        carry = data[-3:]
        if count > stop_after:
            break
    return count


def _rows_with_values(part: io.BufferedIOBase, *, limits: RowLimits, stop_after: int) -> int:
    """Rows holding a value in one XML part, counted up to just beyond `stop_after`.

    A row holds a value when a `<v>` or `<is>` element (a value or an inline string) comes before its
    `</row>`: rows of formatted empty cells are not leads, and parsing skips them too.
    """
    rows = 0
    carry = b""
    open_row_has_value = False
    while chunk := part.read(_XML_CHUNK_BYTES):
        data = carry + chunk
        # A tag cut by the chunk boundary starts at the last "<"; it is looked at with the next chunk.
        cut = data.rfind(b"<", max(0, len(data) - 64))
        if cut < 0:
            cut = len(data)
        *finished, unfinished = _ROW_END.split(data[:cut])
        for segment in finished:
            if open_row_has_value or _holds_value(segment):
                rows += 1
            open_row_has_value = False
        open_row_has_value = open_row_has_value or _holds_value(unfinished)
        carry = data[cut:]
        if rows > stop_after:
            return rows
    if _ROW_END.search(carry) and (open_row_has_value or _holds_value(carry)):
        rows += 1
    return rows


def _holds_value(xml: bytes) -> bool:
    # "v>" is in <v>, </v> and <x:v>; "is>" in <is> and </is>.
    return b"v>" in xml or b"is>" in xml


def _check_dimension(match: re.Match[bytes], limits: RowLimits) -> None:
    first_column, _, last_column, last_row = (group.decode() if group else "" for group in match.groups())
    if not last_column:
        return  # a single cell
    width = _column_number(last_column) - _column_number(first_column or "A") + 1
    if width > limits.max_cells:
        raise FileRejected(
            f"A worksheet in this workbook reaches column {last_column} (cell {last_column}{last_row}): "
            f"{width:,} columns, and a row may have at most {limits.max_cells:,} cells. Delete the columns "
            "that are not needed and upload the file again."
        )


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _excel_sheets(workbook: python_calamine.CalamineWorkbook, warnings: list[str]) -> Iterator[_Sheet | None]:
    """Every worksheet in workbook order; None for one that could not be read."""
    with workbook:
        for metadata in workbook.sheets_metadata:
            if metadata.typ != python_calamine.SheetTypeEnum.WorkSheet:
                continue  # chart and macro sheets hold no rows
            try:
                sheet = workbook.get_sheet_by_name(metadata.name)
            except Exception as exc:  # see _open_workbook
                logger.info("calamine could not read sheet %r: %r", metadata.name, exc)
                warnings.append(
                    f"Sheet '{metadata.name}' could not be read and was skipped: it is damaged or "
                    "saved in a format that cannot be read."
                )
                yield None
                continue
            first_column = sheet.start[1] + 1 if sheet.start else 1
            yield _Sheet(
                name=metadata.name,
                label=f"Sheet '{metadata.name}': ",
                rows=_excel_rows(sheet),
                first_column=first_column,
            )


def _excel_rows(sheet: python_calamine.CalamineSheet) -> Iterator[tuple[int, list[str]]]:
    # iter_rows starts at row 1 (leading empty rows included) but at the first used column.
    for number, cells in enumerate(sheet.iter_rows(), start=1):
        yield number, [_cell_text(value) for value in cells]


def _cell_text(value: object) -> str:
    """Excel cell value as the text a user expects to see for it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _EXACT_INTEGER_LIMIT:
            return str(int(value))
        # Excel keeps 15 significant digits; more would show binary noise (0.30000000000000004).
        return f"{value:.15g}"
    if isinstance(value, dt.datetime):
        value = (value + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign = "-" if seconds < 0 else ""
        hours, rest = divmod(abs(seconds), 3600)
        return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value).strip()
