"""Tests for processing.parsing: the sample files in tests/data plus files generated per test."""

from __future__ import annotations

import datetime as dt
import random
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlwt

from easycrm.testing.files import SAMPLES
from processing.parsing import (
    SUPPORTED_EXTENSIONS,
    FileRejected,
    RowLimits,
    SourceRow,
    _HeaderNames,
    iter_rows,
)

NOT_EXCEL = (
    "This does not look like an Excel workbook (.xlsx): the file may be damaged or saved in another format."
)
HEADER_ONLY = "This file has a header row but no leads under it."
EMPTY = "This file is empty."


def read(
    path: Path, filename: str | None = None, max_rows: int = 1000, limits: RowLimits | None = None
) -> tuple[list[SourceRow], list[str]]:
    warnings: list[str] = []
    rows = list(iter_rows(path, filename or path.name, max_rows=max_rows, warnings=warnings, limits=limits))
    return rows, warnings


def rejection(
    path: Path, filename: str | None = None, max_rows: int = 1000, limits: RowLimits | None = None
) -> str:
    with pytest.raises(FileRejected) as excinfo:
        read(path, filename, max_rows, limits)
    return str(excinfo.value)


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_text(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(tmp_path, name, text.encode(encoding))


def write_xlsx(tmp_path: Path, sheets: dict[str, list[list[object]]], name: str = "leads.xlsx") -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


# Headers that once named the parser's own "_worksheet"/"_row" keys; now they are ordinary columns.
UNDERSCORE_HEADERS = ["Name", "_Notes", "_row", "_seq", "_worksheet", "__keys__", "Email"]
UNDERSCORE_VALUES = ["Ann", "met at the fair", "7", "3", "Other sheet", "x", "ann@example.com"]


def break_sheet_xml(path: Path, member: str) -> None:
    """Cut one worksheet's XML in half inside an otherwise intact xlsx zip."""
    with zipfile.ZipFile(path) as source:
        contents = {info.filename: source.read(info) for info in source.infolist()}
    contents[member] = contents[member][: len(contents[member]) // 2]
    with zipfile.ZipFile(path, "w") as target:
        for filename, data in contents.items():
            target.writestr(filename, data)


# --- sample files -------------------------------------------------------------------------------


def test_simple_leads_sample_reads_every_row_as_text():
    rows, warnings = read(SAMPLES / "simple_leads.csv")

    assert warnings == []
    assert len(rows) == 25
    assert rows[0] == SourceRow(
        "simple_leads",
        2,
        {
            "First Name": "Brandon",
            "Last Name": "Foster",
            "Title": "Jewellery designer",
            "Company": "Nicholson Inc",
            "Email": "bfoster@fabrikam.net",
            "Phone": "01164960601",
        },
    )
    assert rows[1].cells["Company"] == "Green, Jackson and Walker"
    assert rows[1].cells["Phone"] == "+44117 496 0016"
    assert rows[6].cells["Title"] == "Teacher, English as a foreign language"
    assert rows[-1].row == 26
    assert rows[-1].cells["Phone"] == "001-780-584-1485x253"


def test_duplicates_sample_keeps_every_row_and_strips_cells():
    rows, warnings = read(SAMPLES / "duplicates.csv")

    assert warnings == []
    assert [row.row for row in rows] == [2, 3, 4]
    assert rows[1].cells["Email"] == "ANN.LEE@contoso.com"
    assert rows[1].cells["Title"] == "Head Buyer"
    assert rows[2] == SourceRow(
        "duplicates",
        4,
        {"First Name": "Bo", "Last Name": "Chen", "Company": "Fabrikam", "Title": "Engineer"},
    )


def test_latin1_semicolon_sample_finds_header_on_line_3():
    rows, warnings = read(SAMPLES / "latin1_semicolon.csv")

    assert warnings == []
    assert len(rows) == 10
    assert rows[0] == SourceRow(
        "latin1_semicolon",
        4,
        {
            "Nome": "Piero",
            "Cognome": "Chechi",
            "Azienda": "Evans, Marshall and Johnston",
            "Email": "pchechi@contoso.com",
            "Telefono": "03069990841",
        },
    )
    assert rows[-1].row == 13
    assert rows[-1].cells["Telefono"] == "+44118 496 0395"


def test_multi_sheet_sample_reads_data_sheets_in_order_and_skips_blank_and_template():
    rows, warnings = read(SAMPLES / "multi_sheet.xlsx")

    assert warnings == []
    assert [row.worksheet for row in rows] == ["Conference"] * 18 + ["Referrals"] * 12
    assert rows[0] == SourceRow(
        "Conference",
        2,
        {
            "Contact Name": "Linda Morrison",
            "Email Address": "lmorrison@contoso.com",
            "Cell": "587.750.0474",
            "Employer": "Lettiere, Ciani e Ricci Group",
            "Job Role": "Research officer, political party",
            "Comments": "call back in May",
        },
    )
    amy = rows[4].cells
    assert amy["Contact Name"] == "Amy Smith"
    assert amy["Cell"] == "09995289086"
    assert "Comments" not in amy
    assert rows[18] == SourceRow(
        "Referrals",
        2,
        {
            "surname": "Camicione",
            "given name": "Jayne",
            "mail": "jcamicione@contoso.com",
            "organization": "Segni e figli",
            "telephone": "+44113 496 0139",
        },
    )
    assert rows[-1].row == 13


# --- CSV encodings -----------------------------------------------------------------------------


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    path = write_text(tmp_path, "bom.csv", "Name,City\nJosé,Zürich\n", encoding="utf-8-sig")

    rows, _ = read(path)

    assert rows == [SourceRow("bom", 2, {"Name": "José", "City": "Zürich"})]


def test_broken_bytes_after_a_utf8_bom_are_replaced_not_fatal(tmp_path):
    path = write_bytes(tmp_path, "mixed.csv", "\ufeffName,City\nJosé,Köln\n".encode() + b"Ren\xe9,Paris\n")

    rows, _ = read(path)

    assert [row.cells["Name"] for row in rows] == ["José", "Ren\ufffd"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_tab_delimited_unicode_text_is_read(tmp_path, encoding):
    text = "Name\tCompany\tPhone\r\nJosé Müller\tGreen, Jackson and Walker\t+49 30 1234567\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # Python writes no BOM for the explicit big-endian codec
    path = write_bytes(tmp_path, "unicode.csv", data)

    rows, _ = read(path)

    assert rows == [
        SourceRow(
            "unicode",
            2,
            {"Name": "José Müller", "Company": "Green, Jackson and Walker", "Phone": "+49 30 1234567"},
        )
    ]


def test_utf16_without_bom_is_recognised(tmp_path):
    path = write_text(tmp_path, "nobom.csv", "Name\tEmail\nAnn\tann@example.com\n", encoding="utf-16-le")

    rows, _ = read(path)

    assert rows == [SourceRow("nobom", 2, {"Name": "Ann", "Email": "ann@example.com"})]


def test_cp1252_accents_and_euro_sign_are_decoded(tmp_path):
    path = write_text(tmp_path, "win.csv", "Name;Budget\nRené Müller;5 000 €\n", encoding="cp1252")

    rows, _ = read(path)

    assert rows == [SourceRow("win", 2, {"Name": "René Müller", "Budget": "5 000 €"})]


def test_cp1252_file_whose_first_accent_is_far_down_is_not_taken_for_utf8(tmp_path):
    lines = ["Name,Email"] + [f"Lead {n},lead{n}@example.com" for n in range(5000)] + ["Zoë,zoe@example.com"]
    path = write_text(tmp_path, "late.csv", "\n".join(lines) + "\n", encoding="cp1252")

    rows, _ = read(path, max_rows=10_000)

    assert len(rows) == 5001
    assert rows[-1] == SourceRow("late", 5002, {"Name": "Zoë", "Email": "zoe@example.com"})


def test_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path):
    path = write_bytes(tmp_path, "odd.csv", b"Name,Note\nAnn,caf\xe9 \x81\n")

    rows, _ = read(path)

    assert rows[0].cells["Note"] == "café \x81"


# --- CSV structure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "company"),
    [
        (",", '"Smith; Jones | Partners"'),
        (";", "Smith, Jones | Partners"),
        ("\t", "Smith, Jones; Partners"),
        ("|", "Smith, Jones; Partners"),
    ],
)
def test_each_delimiter_is_detected(tmp_path, delimiter, company):
    lines = [["Name", "Company", "Phone"], ["Ann", company, "00123"], ["Bo", "Acme", "+1 555"]]
    path = write_text(tmp_path, "d.csv", "\n".join(delimiter.join(line) for line in lines) + "\n")

    rows, _ = read(path)

    assert rows[0] == SourceRow("d", 2, {"Name": "Ann", "Company": company.strip('"'), "Phone": "00123"})
    assert rows[1].cells["Phone"] == "+1 555"


def test_excel_sep_line_chooses_the_delimiter_and_is_not_a_row(tmp_path):
    path = write_text(tmp_path, "sep.csv", "sep=;\nName;Company\nAnn;Smith, Jones\n")

    rows, _ = read(path)

    assert rows == [SourceRow("sep", 2, {"Name": "Ann", "Company": "Smith, Jones"})]


def test_quoted_fields_keep_embedded_delimiters_and_newlines(tmp_path):
    text = 'Name,Company,Notes\nAnn,"Green, Jackson and Walker","line one\nline two"\nBo,"Say ""hi""",x\n'
    path = write_text(tmp_path, "quoted.csv", text)

    rows, _ = read(path)

    assert rows[0].cells["Company"] == "Green, Jackson and Walker"
    assert rows[0].cells["Notes"] == "line one\nline two"
    # Excel shows a record with a line break inside a cell as one row.
    assert [row.row for row in rows] == [2, 3]
    assert rows[1].cells["Company"] == 'Say "hi"'


def test_title_lines_above_header_are_skipped(tmp_path):
    text = "Export from old CRM\nExported on,2024-03-05\n\nName,Email,Phone\nAnn,ann@example.com,00123\n"
    path = write_text(tmp_path, "titled.csv", text)

    rows, _ = read(path)

    assert rows == [SourceRow("titled", 5, {"Name": "Ann", "Email": "ann@example.com", "Phone": "00123"})]


def test_blank_lines_above_header_are_skipped(tmp_path):
    path = write_text(tmp_path, "blank_top.csv", "\n,,\n  \nName,Email\nAnn,ann@example.com\n")

    rows, _ = read(path)

    assert rows == [SourceRow("blank_top", 5, {"Name": "Ann", "Email": "ann@example.com"})]


def test_header_with_an_empty_cell_on_line_1_is_still_the_header(tmp_path):
    lines = ["Name,Email,,Phone"] + [f"Lead {n},l{n}@example.com,note {n},555{n}" for n in range(5)]
    path = write_text(tmp_path, "gap.csv", "\n".join(lines) + "\n")

    rows, warnings = read(path)

    assert warnings == []
    assert rows[0] == SourceRow(
        "gap", 2, {"Name": "Lead 0", "Email": "l0@example.com", "Column 3": "note 0", "Phone": "5550"}
    )


def test_file_without_header_row_keeps_its_first_lead(tmp_path):
    path = write_text(tmp_path, "raw.csv", "Ann,ann@example.com\nBo,bo@example.com\n")

    rows, warnings = read(path)

    assert rows[0] == SourceRow("raw", 1, {"Column 1": "Ann", "Column 2": "ann@example.com"})
    assert len(rows) == 2
    assert warnings == [
        "The first row holds a lead, not column names, so the columns were named "
        "'Column 1', 'Column 2' and so on."
    ]


def test_file_of_numbers_only_has_no_header_row(tmp_path):
    path = write_text(tmp_path, "phones.csv", "5551234,00123\n5555678,00456\n")

    rows, warnings = read(path)

    assert [row.row for row in rows] == [1, 2]
    assert rows[0] == SourceRow("phones", 1, {"Column 1": "5551234", "Column 2": "00123"})
    assert len(warnings) == 1


def test_blank_rows_in_the_middle_are_skipped_but_keep_row_numbers(tmp_path):
    path = write_text(tmp_path, "gaps.csv", "Name,Email\nAnn,a@example.com\n\n , \nBo,b@example.com\n\n")

    rows, _ = read(path)

    assert [(row.cells["Name"], row.row) for row in rows] == [("Ann", 2), ("Bo", 5)]


def test_short_rows_lose_only_missing_keys_and_long_rows_keep_extra_cells(tmp_path):
    text = "Name,Email,Phone\nAnn\nBo,b@example.com,1,extra,more\nCy,c@example.com,2,,again\nDi,d,3,,\n"
    path = write_text(tmp_path, "ragged.csv", text)

    rows, warnings = read(path)

    assert rows[0] == SourceRow("ragged", 2, {"Name": "Ann"})
    assert rows[1].cells["Column 4"] == "extra"
    assert rows[1].cells["Column 5"] == "more"
    assert rows[2].cells["Column 5"] == "again"
    assert "Column 4" not in rows[2].cells
    # Trailing empty cells (a common export quirk) are not worth a warning.
    assert warnings == [
        "2 rows had more cells than the header; the extra cells were kept as 'Column 4', 'Column 5'."
    ]


def test_duplicate_and_empty_headers_are_renamed_with_one_warning(tmp_path):
    text = "Email, ,Email,Name,Email,Name\na@example.com,x,b@example.com,Ann,c@example.com,Lee\n"
    path = write_text(tmp_path, "dups.csv", text)

    rows, warnings = read(path)

    assert rows == [
        SourceRow(
            "dups",
            2,
            {
                "Email": "a@example.com",
                "Column 2": "x",
                "Email (2)": "b@example.com",
                "Name": "Ann",
                "Email (3)": "c@example.com",
                "Name (2)": "Lee",
            },
        )
    ]
    assert warnings == [
        "Some column names appear more than once; the repeats were renamed 'Email (2)', 'Email (3)', 'Name (2)'."
    ]


def test_underscore_headers_are_ordinary_columns_in_csv(tmp_path):
    text = ",".join(UNDERSCORE_HEADERS) + "\n" + ",".join(UNDERSCORE_VALUES) + "\n"
    path = write_text(tmp_path, "under.csv", text)

    rows, warnings = read(path)

    assert warnings == []
    assert rows == [SourceRow("under", 2, dict(zip(UNDERSCORE_HEADERS, UNDERSCORE_VALUES, strict=True)))]
    # The cells neither rename the columns nor overwrite where the row came from.
    [row] = rows
    assert list(row.cells) == UNDERSCORE_HEADERS
    assert (row.worksheet, row.row, row.seq) == ("under", 2, 0)
    assert SourceRow.from_json(row.to_json()) == row


def test_leading_zeros_plus_signs_and_na_words_stay_text(tmp_path):
    text = (
        "Phone,Zip,Ext,Flag,Missing\n+49 30 1234567,00123,5551234,TRUE,NA\n0049 (0)30 1,1e5,1.50,NULL,N/A\n"
    )
    path = write_text(tmp_path, "numbers.csv", text)

    rows, _ = read(path)

    assert rows[0] == SourceRow(
        "numbers",
        2,
        {"Phone": "+49 30 1234567", "Zip": "00123", "Ext": "5551234", "Flag": "TRUE", "Missing": "NA"},
    )
    assert rows[1] == SourceRow(
        "numbers",
        3,
        {"Phone": "0049 (0)30 1", "Zip": "1e5", "Ext": "1.50", "Flag": "NULL", "Missing": "N/A"},
    )


def test_cells_are_stripped_but_keep_inner_spaces(tmp_path):
    path = write_text(tmp_path, "spaces.csv", " Name , Company \n  Ann  Lee , \t Acme  Inc \n")

    rows, _ = read(path)

    assert rows == [SourceRow("spaces", 2, {"Name": "Ann  Lee", "Company": "Acme  Inc"})]


def test_extension_is_case_insensitive(tmp_path):
    path = write_text(tmp_path, "upload.tmp", "Name\nAnn\n")

    rows, _ = read(path, "LEADS.CSV")

    assert rows == [SourceRow("LEADS", 2, {"Name": "Ann"})]


def test_large_csv_is_streamed(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as file:
        file.write("Name,Email,Phone,Company\n")
        for n in range(20_000):
            file.write(f'Lead {n},lead{n}@example.com,+49 30 {n:07d},"Firm {n}, Ltd"\n')

    tracemalloc.start()
    try:
        count = 0
        last = None
        for row in iter_rows(path, "big.csv", max_rows=200_000, warnings=[]):
            count += 1
            last = row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 20_000
    assert last == SourceRow(
        "big",
        20_001,
        {
            "Name": "Lead 19999",
            "Email": "lead19999@example.com",
            "Phone": "+49 30 0019999",
            "Company": "Firm 19999, Ltd",
        },
    )
    # The whole file as rows would take well over 10 MB; streaming keeps a few rows at a time.
    assert peak < 3_000_000


# --- Excel -------------------------------------------------------------------------------------


def test_xlsx_reads_every_sheet_and_skips_empty_and_header_only_ones(tmp_path):
    path = write_xlsx(
        tmp_path,
        {
            "Leads": [["Name", "Phone"], ["Ann", "+49 30 1234567"], [None, None], ["Bo", "00123"]],
            "Empty": [],
            "Header only": [["Name", "Phone"]],
            "More": [["Full name", "Email"], ["Cy", "cy@example.com"]],
        },
    )

    rows, warnings = read(path)

    assert warnings == []
    assert rows == [
        SourceRow("Leads", 2, {"Name": "Ann", "Phone": "+49 30 1234567"}),
        SourceRow("Leads", 4, {"Name": "Bo", "Phone": "00123"}),
        SourceRow("More", 2, {"Full name": "Cy", "Email": "cy@example.com"}),
    ]


def test_xlsx_dates_numbers_and_booleans_become_text(tmp_path):
    header = ["Date", "Meeting", "Created", "Phone", "Count", "Score", "Ratio", "Active", "Time"]
    values = [
        dt.date(2024, 3, 5),
        dt.datetime(2024, 3, 5, 14, 30),
        dt.datetime(2024, 3, 5, 0, 0),
        5551234.0,
        7,
        12.5,
        0.1 + 0.2,
        True,
        dt.time(9, 15),
    ]
    path = write_xlsx(
        tmp_path, {"Types": [header, values, [" padded  text ", None, None, None, None, None, None, False]]}
    )

    rows, _ = read(path)

    assert rows[0] == SourceRow(
        "Types",
        2,
        {
            "Date": "2024-03-05",
            "Meeting": "2024-03-05T14:30:00",
            "Created": "2024-03-05",
            "Phone": "5551234",
            "Count": "7",
            "Score": "12.5",
            "Ratio": "0.3",
            "Active": "TRUE",
            "Time": "09:15:00",
        },
    )
    assert rows[1] == SourceRow("Types", 3, {"Date": "padded  text", "Active": "FALSE"})


def test_xlsx_row_numbers_and_column_names_follow_excel_when_data_starts_lower_right(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Offset"
    sheet["B3"] = "Report of leads"
    sheet["B5"], sheet["C5"], sheet["E5"] = "Name", "Email", "Phone"
    sheet["B6"], sheet["C6"], sheet["D6"], sheet["E6"] = "Ann", "ann@example.com", "VIP", "00123"
    sheet["B8"], sheet["C8"], sheet["E8"] = "Bo", "bo@example.com", "555"
    path = tmp_path / "offset.xlsx"
    workbook.save(path)

    rows, _ = read(path)

    assert rows == [
        SourceRow(
            "Offset", 6, {"Name": "Ann", "Email": "ann@example.com", "Column 4": "VIP", "Phone": "00123"}
        ),
        SourceRow("Offset", 8, {"Name": "Bo", "Email": "bo@example.com", "Phone": "555"}),
    ]


def test_underscore_headers_are_ordinary_columns_in_xlsx(tmp_path):
    path = write_xlsx(tmp_path, {"Fair": [UNDERSCORE_HEADERS, UNDERSCORE_VALUES, ["Bo", None, "9"]]})

    rows, warnings = read(path)

    assert warnings == []
    assert rows == [
        SourceRow("Fair", 2, dict(zip(UNDERSCORE_HEADERS, UNDERSCORE_VALUES, strict=True))),
        SourceRow("Fair", 3, {"Name": "Bo", "_row": "9"}),
    ]
    assert list(rows[0].cells) == UNDERSCORE_HEADERS
    assert [(row.worksheet, row.row, row.seq) for row in rows] == [("Fair", 2, 0), ("Fair", 3, 0)]


def test_xlsx_long_rows_are_reported_per_sheet(tmp_path):
    path = write_xlsx(tmp_path, {"Fair": [["Name", "Email"], ["Ann", "a@example.com", "stray note"]]})

    rows, warnings = read(path)

    assert rows[0].cells["Column 3"] == "stray note"
    assert warnings == [
        "Sheet 'Fair': 1 row had more cells than the header; the extra cells were kept as 'Column 3'."
    ]


def test_xls_file_written_by_xlwt_is_read(tmp_path):
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Old CRM")
    for column, value in enumerate(["Name", "Phone", "Met", "Zip"]):
        sheet.write(0, column, value)
    sheet.write(1, 0, "Ann")
    sheet.write(1, 1, 5551234.0)
    sheet.write(1, 2, dt.datetime(2024, 3, 5, 14, 30), xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM"))
    sheet.write(1, 3, "00123")
    workbook.add_sheet("Empty")
    path = tmp_path / "old.xls"
    workbook.save(str(path))

    rows, warnings = read(path)

    assert warnings == []
    assert rows == [
        SourceRow(
            "Old CRM", 2, {"Name": "Ann", "Phone": "5551234", "Met": "2024-03-05T14:30:00", "Zip": "00123"}
        )
    ]


def test_workbook_saved_under_the_other_excel_extension_is_read(tmp_path):
    xlsx = write_xlsx(tmp_path, {"Leads": [["Name"], ["Ann"]]})
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Old")
    sheet.write(0, 0, "Name")
    sheet.write(1, 0, "Bo")
    xls = tmp_path / "old.xls"
    workbook.save(str(xls))

    assert read(xlsx, "renamed.xls")[0] == [SourceRow("Leads", 2, {"Name": "Ann"})]
    assert read(xls, "renamed.xlsx")[0] == [SourceRow("Old", 2, {"Name": "Bo"})]


def test_corrupt_sheet_is_skipped_with_a_warning_and_other_sheets_import(tmp_path):
    # calamine parses each sheet's XML only when that sheet is opened, so one broken sheet
    # does not take the workbook down with it.
    path = write_xlsx(
        tmp_path,
        {"Broken": [["Name"], ["Lost"]], "Good": [["Name", "Email"], ["Ann", "ann@example.com"]]},
    )
    break_sheet_xml(path, "xl/worksheets/sheet1.xml")

    rows, warnings = read(path)

    assert rows == [SourceRow("Good", 2, {"Name": "Ann", "Email": "ann@example.com"})]
    assert warnings == [
        "Sheet 'Broken' could not be read and was skipped: it is damaged or saved in a format that cannot be read."
    ]


def test_workbook_whose_only_sheet_is_corrupt_is_rejected(tmp_path):
    path = write_xlsx(tmp_path, {"Broken": [["Name"], ["Lost"]]})
    break_sheet_xml(path, "xl/worksheets/sheet1.xml")

    message = rejection(path)

    assert message.startswith("No leads could be read from this workbook")


# --- files that cannot be imported -------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.csv", "empty.xlsx", "empty.xls"])
def test_zero_byte_file_is_rejected_as_empty(tmp_path, name):
    assert rejection(write_bytes(tmp_path, name, b"")) == EMPTY


def test_whitespace_only_csv_is_rejected_as_empty(tmp_path):
    assert rejection(write_text(tmp_path, "blank.csv", "  \r\n\n\t\n , ,\n")) == EMPTY


@pytest.mark.parametrize("text", ["Name,Email\n", "Name,Email", "Leads export\n\nName,Email\n\n\n"])
def test_header_only_csv_is_rejected(tmp_path, text):
    assert rejection(write_text(tmp_path, "header.csv", text)) == HEADER_ONLY


def test_xlsx_with_only_empty_sheets_is_rejected_as_empty(tmp_path):
    path = write_xlsx(tmp_path, {"One": [], "Two": [[None, None]]})

    assert rejection(path) == EMPTY


def test_xlsx_with_only_header_rows_is_rejected(tmp_path):
    path = write_xlsx(tmp_path, {"One": [["Name", "Email"]], "Two": []})

    assert rejection(path) == HEADER_ONLY


def test_random_bytes_named_xlsx_are_rejected(tmp_path):
    data = random.Random(7).randbytes(4096)

    assert rejection(write_bytes(tmp_path, "leads.xlsx", data)) == NOT_EXCEL


def test_damaged_zip_named_xlsx_is_rejected(tmp_path):
    data = b"PK\x03\x04" + random.Random(8).randbytes(2000)

    assert rejection(write_bytes(tmp_path, "leads.xlsx", data)) == NOT_EXCEL


def test_csv_text_named_xls_is_rejected(tmp_path):
    message = rejection(write_text(tmp_path, "leads.xls", "Name,Email\nAnn,a@example.com\n"))

    assert message == (
        "This does not look like an Excel workbook (.xls): the file may be damaged or saved in another format."
    )


def test_image_named_xlsx_says_it_is_an_image(tmp_path):
    path = write_bytes(tmp_path, "leads.xlsx", b"\x89PNG\r\n\x1a\n" + bytes(200))

    assert rejection(path) == "This file is not a spreadsheet or CSV text file (it looks like an image)."


def _zip_bytes(tmp_path: Path) -> bytes:
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("leads.csv", "Name\nAnn\n")
    return archive.read_bytes()


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "an image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "an image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document"),
        ("zip", "a ZIP archive or an Excel workbook with the wrong name"),
    ],
)
def test_binary_files_named_csv_are_rejected(tmp_path, content, looks_like):
    data = _zip_bytes(tmp_path) if content == "zip" else content
    path = write_bytes(tmp_path, "leads.csv", data)

    assert rejection(path) == f"This file is not a spreadsheet or CSV text file (it looks like {looks_like})."


def test_web_page_named_csv_is_rejected(tmp_path):
    path = write_text(tmp_path, "leads.csv", "\n<!DOCTYPE html>\n<html><body><table></table></body></html>\n")

    assert rejection(path) == "This file is not a spreadsheet or CSV text file (it looks like a web page)."


def test_unknown_binary_named_csv_is_rejected(tmp_path):
    path = write_bytes(tmp_path, "leads.csv", random.Random(9).randbytes(4096))

    assert rejection(path) == "This file is not a spreadsheet or CSV text file."


def test_binary_without_nul_bytes_named_csv_is_rejected(tmp_path):
    path = write_bytes(tmp_path, "leads.csv", bytes(range(1, 32)) * 50)

    assert rejection(path) == "This file is not a spreadsheet or CSV text file."


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("leads.txt", "Files of type .txt are not supported. Upload a .csv, .xlsx or .xls file."),
        ("leads.PDF", "Files of type .pdf are not supported. Upload a .csv, .xlsx or .xls file."),
        (
            "leads",
            "Files without an extension like .csv are not supported. Upload a .csv, .xlsx or .xls file.",
        ),
    ],
)
def test_unsupported_extensions_are_rejected(tmp_path, filename, message):
    path = write_text(tmp_path, "upload", "Name\nAnn\n")

    assert rejection(path, filename) == message


def test_supported_extensions_are_csv_xlsx_and_xls():
    assert SUPPORTED_EXTENSIONS == (".csv", ".xlsx", ".xls")


def test_unclosed_quote_swallowing_the_file_is_rejected(tmp_path):
    text = 'Name,Notes\nAnn,"never closed\n' + "Bo,more text\n" * 15_000
    path = write_text(tmp_path, "quote.csv", text)

    message = rejection(path, max_rows=100_000)

    assert "quotation mark" in message
    assert message.startswith("Line ")


# --- row limit ---------------------------------------------------------------------------------


def test_more_rows_than_max_rows_is_rejected_after_the_limit(tmp_path):
    lines = ["Name"] + [f"Lead {n}" for n in range(11)]
    path = write_text(tmp_path, "eleven.csv", "\n".join(lines))
    yielded = []

    with pytest.raises(FileRejected) as excinfo:
        for row in iter_rows(path, "eleven.csv", max_rows=10, warnings=[]):
            yielded.append(row)

    assert len(yielded) == 10
    assert str(excinfo.value) == (
        "This file has more than 10 rows, the most one import can take. Split it into smaller files."
    )


def test_exactly_max_rows_is_accepted(tmp_path):
    lines = ["Name"] + [f"Lead {n}" for n in range(10)]
    path = write_text(tmp_path, "ten.csv", "\n".join(lines))

    rows, _ = read(path, max_rows=10)

    assert len(rows) == 10


def test_max_rows_counts_rows_across_all_sheets(tmp_path):
    path = write_xlsx(
        tmp_path,
        {
            "A": [["Name"]] + [[f"a{n}"] for n in range(150)],
            "B": [["Name"]] + [[f"b{n}"] for n in range(100)],
        },
    )

    message = rejection(path, max_rows=200)

    assert (
        message
        == "This file has more than 200 rows, the most one import can take. Split it into smaller files."
    )


# --- what one row may carry ---------------------------------------------------------------------

SMALL = RowLimits(max_cells=5, max_cell_chars=20, max_row_bytes=60)


def test_row_limits_default_to_the_settings(settings):
    settings.MAX_CELLS_PER_ROW, settings.MAX_CELL_CHARS, settings.MAX_ROW_BYTES = 7, 8, 9

    assert RowLimits.from_settings() == RowLimits(max_cells=7, max_cell_chars=8, max_row_bytes=9)


def test_rows_within_every_limit_are_read_whole(tmp_path):
    # Five cells, a 20-character cell, 60 bytes: each limit reached, none passed; trailing empty
    # cells do not count.
    path = write_text(
        tmp_path, "edge.csv", "A,B,C,D,E\n" + "x" * 20 + ",bbbbbbbbbb,cccccccccc,dddddddddd,eeeeeeeeee,,,\n"
    )

    rows, warnings = read(path, limits=SMALL)

    assert rows[0].cells["A"] == "x" * 20
    assert len(rows[0].cells) == 5
    assert warnings == []


def test_row_with_more_cells_than_allowed_is_refused(tmp_path):
    path = write_text(tmp_path, "wide.csv", "A,B,C\nAnn,x,y\nBo,1,2,3,4,5\n")

    assert rejection(path, limits=SMALL) == (
        "Row 3 has 6 cells; a row may have at most 5. Delete the columns that are not needed and upload the file again."
    )


def test_header_with_more_cells_than_allowed_is_refused(tmp_path):
    path = write_text(tmp_path, "wide.csv", "A,B,C,D,E,F\nAnn\n")

    assert rejection(path, limits=SMALL).startswith("Row 1 has 6 cells; a row may have at most 5.")


def test_cell_longer_than_allowed_is_refused_not_cut(tmp_path):
    path = write_text(tmp_path, "long.csv", "Name,Notes\nAnn,short\nBo," + "n" * 21 + "\n")

    assert rejection(path, limits=SMALL) == (
        "Row 3 has a cell of 21 characters; a cell may hold at most 20. Shorten that cell and upload the file again."
    )


def test_row_bytes_count_utf8_not_characters(tmp_path):
    # 4 cells of 8 characters = 32 characters, but "é" takes two bytes: 64 bytes > 60.
    path = write_text(tmp_path, "bytes.csv", "A,B,C,D\n" + ",".join(["éééééééé"] * 4) + "\n")

    message = rejection(path, limits=SMALL)

    assert message.startswith("Row 2 holds 64 bytes of text; a row may hold at most 60 bytes.")


def test_excel_row_limits_name_the_sheet(tmp_path):
    path = write_xlsx(tmp_path, {"Leads": [["Name", "Notes"], ["Ann", "n" * 21]]})

    assert rejection(path, limits=SMALL).startswith("Sheet 'Leads', row 2 has a cell of 21 characters;")


def test_ten_megabyte_line_is_refused_quickly_with_its_line_number(tmp_path):
    # 5M cells on one line: csv split it into one row of 5M cells, stored as one lead.
    path = write_text(
        tmp_path, "oneline.csv", "Name,Email,Notes\nAnn,a@example.com," + "x," * 5_000_000 + "\n"
    )

    started = time.monotonic()
    message = rejection(path)

    assert time.monotonic() - started < 3  # 5M cells in one line took 13 s and 731 MB
    assert message == (
        "Line 2 of this file is longer than 256 KB; a row may hold at most 128 KB of text. "
        "Shorten that line and upload the file again."
    )


def test_cell_over_the_csv_field_limit_says_so(tmp_path):
    # 140,000 characters: over csv.field_size_limit() (131,072) but within the raw line limit.
    path = write_text(tmp_path, "bigcell.csv", "Name,Notes\nAnn," + "y" * 140_000 + "\n")

    assert rejection(path) == (
        "Line 2 of this file has a cell longer than 131,072 characters; a cell may hold at most 32,767. "
        "Shorten that cell and upload the file again."
    )


def test_unclosed_quote_names_the_line_where_the_cell_starts(tmp_path):
    text = 'Name,Notes\nAnn,ok\nBo,"never closed\n' + "Cy,more text\n" * 15_000
    path = write_text(tmp_path, "quote.csv", text)

    assert rejection(path, max_rows=100_000) == (
        'Line 3 of this file starts a cell that does not end within 10,083 lines: a quotation mark (") is '
        "probably "
        "never closed. Fix that line and upload the file again."
    )


def test_nul_characters_past_the_sniffed_head_are_removed_with_a_warning(tmp_path):
    filler = "".join(f"Lead {n},lead{n}@example.com\n" for n in range(4000))  # > 64 KB
    text = "Name,Email\n" + filler + "Nul\x00Lee,lee@example.com\x00\n\x00,\x00\nLast,last@example.com\n"
    path = write_text(tmp_path, "nul.csv", text)

    rows, warnings = read(path, max_rows=10_000)

    assert rows[-2:] == [
        SourceRow("nul", 4002, {"Name": "NulLee", "Email": "lee@example.com"}),
        SourceRow("nul", 4004, {"Name": "Last", "Email": "last@example.com"}),
    ]
    assert warnings == [
        "2 rows (first: row 4,002) held NUL characters (invisible zero bytes, a sign of a damaged export); "
        "they were removed."
    ]


def test_nul_bytes_in_the_head_still_mean_not_a_text_file(tmp_path):
    path = write_bytes(tmp_path, "nul.csv", b"Name,Email\nAnn\x00,a@example.com\n")

    assert rejection(path) == "This file is not a spreadsheet or CSV text file."


# --- duplicate headers --------------------------------------------------------------------------


def test_sixteen_thousand_duplicate_headers_are_renamed_in_linear_time(tmp_path):
    count = 16_384
    path = write_text(
        tmp_path, "dups.csv", ",".join(["Email"] * count) + "\n" + ",".join(["x"] * count) + "\n"
    )
    limits = RowLimits(max_cells=count, max_cell_chars=100, max_row_bytes=1_000_000)

    started = time.monotonic()
    rows, warnings = read(path, limits=limits)
    elapsed = time.monotonic() - started

    assert elapsed < 1, f"{elapsed:.2f} s"  # quadratic renaming took 26 s
    assert list(rows[0].cells)[-1] == f"Email ({count})"
    assert len(rows[0].cells) == count
    assert warnings == [
        "Some column names appear more than once; the repeats were renamed 'Email (2)', 'Email (3)', "
        "'Email (4)', 'Email (5)', 'Email (6)', 'Email (7)', 'Email (8)', 'Email (9)', 'Email (10)', "
        "'Email (11)' and 16,373 more."
    ]


def test_renaming_skips_suffixes_the_file_already_uses():
    headers = _HeaderNames(["A", "A (2)", "A", "A", "A (3)", "", "Column 6"], first_column=1)

    assert headers.names == ["A", "A (2)", "A (3)", "A (4)", "A (3) (2)", "Column 6", "Column 6 (2)"]
    assert headers.name_at(8) == "Column 9"
