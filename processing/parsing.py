"""Turn an uploaded lead file (CSV, XLSX, XLS) into a stream of raw rows.

Every cell is read as text, so phone numbers such as "+49 30 1234567" and values with leading
zeros reach the standardizer unchanged. Each row carries the worksheet it came from and the row
number a user sees when opening the file in Excel, so problems can be reported back precisely.

CSV is read with the standard library's `csv` reader (C code, streaming, about as fast as pandas'
C engine once rows become Python objects). pandas cannot keep the extra cells of a row that is
longer than the header: its C engine raises and even the Python engine's `on_bad_lines` callable
drops them. Excel files are read with python-calamine, the fastest reader measured here (see
DESIGN.md).
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
from collections.abc import Iterator
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


@dataclass
class _Sheet:
    name: str  # the worksheet of its rows
    label: str  # how warnings name it; "" for a CSV file, which has a single sheet
    rows: Iterator[tuple[int, list[str]]]  # (row number as Excel shows it, stripped cell texts)
    first_column: int = 1  # 1-based column of the first cell, for "Column N" names


def iter_rows(
    path: str | os.PathLike, filename: str, *, max_rows: int, warnings: list[str]
) -> Iterator[SourceRow]:
    """Yield one SourceRow per data row, across every worksheet in workbook order.

    Cell keys are the file's own column headers (stripped, empty ones named "Column N", repeats
    suffixed " (2)"); the worksheet is the sheet name (for CSV the file name without extension).

    `filename` (the original upload name) decides the type by its extension; `path` is the
    local file. Problems with the file type, its encoding or a damaged workbook raise
    FileRejected before this returns; having no data rows or more than `max_rows` of them
    raises it during iteration (rows already yielded are then to be discarded). Problems that
    do not stop the import are appended to `warnings` as the sheet that has them is read.
    """
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        kind = f"Files of type {extension}" if extension else "Files without an extension like .csv"
        raise FileRejected(f"{kind} are not supported. Upload a {accepted_types()} file.")
    if os.path.getsize(path) == 0:
        raise FileRejected("This file is empty.")
    with open(path, "rb") as file:
        head = file.read(_SAMPLE_BYTES)
    if extension == ".csv":
        sheets: Iterator[_Sheet | None] = iter([_open_csv(path, filename, head)])
    else:
        sheets = _excel_sheets(_open_workbook(path, extension, head), warnings)
    return _data_rows(sheets, max_rows=max_rows, warnings=warnings)


def _data_rows(sheets: Iterator[_Sheet | None], *, max_rows: int, warnings: list[str]) -> Iterator[SourceRow]:
    total = 0
    saw_header = False
    unreadable = 0
    for sheet in sheets:
        if sheet is None:
            unreadable += 1
            continue
        records = _sheet_records(sheet, warnings)
        if records is None:
            continue
        saw_header = True
        for record in records:
            total += 1
            if total > max_rows:
                raise FileRejected(
                    f"This file has more than {max_rows:,} rows, the most one import can take. "
                    "Split it into smaller files."
                )
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


def _sheet_records(sheet: _Sheet, warnings: list[str]) -> Iterator[SourceRow] | None:
    """The sheet's data rows, or None when the sheet has no non-blank row at all."""
    window: list[tuple[int, list[str]]] = []
    for number, cells in sheet.rows:
        if any(cells):
            window.append((number, cells))
            if len(window) == HEADER_SEARCH_ROWS:
                break
    if not window:
        return None

    header_index = _find_header([cells for _, cells in window])
    header_cells = window[header_index or 0][1]
    if header_index is None or any(_EMAIL_LIKE.fullmatch(cell) for cell in header_cells):
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
            renamed = ", ".join(f"'{name}'" for name in headers.renamed)
            _warn(
                warnings,
                sheet.label,
                f"some column names appear more than once; the repeats were renamed {renamed}.",
            )
    return _records(sheet, headers, window[data_start:], warnings)


def _records(
    sheet: _Sheet, headers: _HeaderNames, buffered: list[tuple[int, list[str]]], warnings: list[str]
) -> Iterator[SourceRow]:
    width = len(headers.names)
    long_rows = 0
    extra_columns: set[int] = set()
    rest = ((number, cells) for number, cells in sheet.rows if any(cells))
    for rows in (buffered, rest):
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
        extra = ", ".join(f"'{headers.name_at(index)}'" for index in sorted(extra_columns))
        rows_text = "1 row" if long_rows == 1 else f"{long_rows:,} rows"
        _warn(
            warnings,
            sheet.label,
            f"{rows_text} had more cells than the header; the extra cells were kept as {extra}.",
        )


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
    """Unique column names for a sheet, extended on demand for cells beyond the header."""

    def __init__(self, cells: list[str], first_column: int) -> None:
        self.first_column = first_column
        self.names: list[str] = []
        self.renamed: list[str] = []
        self._taken: set[str] = set()
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
        suffix = 2
        while name in self._taken:
            name = f"{base} ({suffix})"
            suffix += 1
        self._taken.add(name)
        self.names.append(name)
        return name


def _warn(warnings: list[str], label: str, text: str) -> None:
    warnings.append(f"{label}{text}" if label else text[:1].upper() + text[1:])


# --- CSV ---------------------------------------------------------------------------------------


def _open_csv(path: str | os.PathLike, filename: str, head: bytes) -> _Sheet:
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
    rows = _csv_rows(path, encoding, errors, delimiter, skip_first=bool(sep_line))
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


def _csv_rows(
    path: str | os.PathLike, encoding: str, errors: str, delimiter: str, *, skip_first: bool
) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding=encoding, errors=errors, newline="") as file:
        reader = csv.reader(file, delimiter=delimiter, skipinitialspace=True)
        number = -1 if skip_first else 0
        try:
            for cells in reader:
                number += 1
                if number > 0:
                    yield number, [cell.strip() for cell in cells]
        except csv.Error as exc:
            raise FileRejected(
                f'Line {reader.line_num:,} of this file could not be read; a quotation mark (") is '
                "probably never closed. Fix that line and upload the file again."
            ) from exc


# --- Excel -------------------------------------------------------------------------------------


def _open_workbook(path: str | os.PathLike, extension: str, head: bytes) -> python_calamine.CalamineWorkbook:
    not_excel = (
        f"This does not look like an Excel workbook ({extension}): "
        "the file may be damaged or saved in another format."
    )
    if not head.startswith(_EXCEL_SIGNATURES):
        for signature, looks_like in _BINARY_SIGNATURES:
            if head.startswith(signature):
                raise FileRejected(_not_text_message(looks_like))
        raise FileRejected(not_excel)
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
