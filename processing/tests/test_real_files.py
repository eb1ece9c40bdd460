"""The shapes real CRM, ERP and address-book exports take, each reproduced by a small fixture file.

Each file in data/real/ has a sidecar NAME.expected.json: per (sheet, row) the expected lead (model
field names, "" when left out) or {"skip": true}. The rows go through what an offline import runs —
the parser, the offline standardizer batch by batch, validate_lead — without the database; the
pipeline's own tests cover the rest. ``bench/quality.py`` scores the same files field by field.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from processing.parsing import SourceRow, iter_rows
from processing.standardize import PLACEHOLDERS, CleanLead, offline_standardize, validate_lead

DATA = Path(__file__).parent / "data" / "real"
FIXTURES = sorted(path for path in DATA.iterdir() if path.suffix in (".csv", ".xlsx"))
SCORED_FIELDS = ("first_name", "last_name", "title", "company", "email", "phone")


def imported(path: Path) -> list[tuple[SourceRow, CleanLead]]:
    rows = list(iter_rows(path, path.name, max_rows=10_000, warnings=[]))
    size = settings.LEAD_BATCH_SIZE
    result = []
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        leads = offline_standardize(batch)
        result += [(row, validate_lead(row.cells, lead)) for row, lead in zip(batch, leads, strict=True)]
    return result


def expected(path: Path) -> dict:
    return json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))


def fixtures_of(kind: str) -> list[Path]:
    found = [path for path in FIXTURES if expected(path)["class"] == kind]
    assert found, kind
    return found


def assert_as_expected(path: Path) -> None:
    by_key = {(row.worksheet, row.row): lead for row, lead in imported(path)}
    spec = expected(path)
    assert len(by_key) == len(spec["rows"]), "every row of the file has an expectation"
    for item in spec["rows"]:
        got = by_key[(item.get("sheet", path.stem), item["row"])]
        if item.get("skip"):
            assert got.skip_reason, (path.name, item["row"], got.fields)
            continue
        assert not got.skip_reason, (path.name, item["row"], got.skip_reason)
        # Remarks are compared too where the expectation spells them out (what a row must not repeat).
        names = SCORED_FIELDS + (("remarks",) if "remarks" in item["lead"] else ())
        want = {name: item["lead"].get(name, "") for name in names}
        assert {name: got.fields[name] for name in names} == want, (path.name, item["row"])


@pytest.mark.parametrize(
    "kind",
    [
        "technical column names",
        "several emails/phones",
        "composite names",
        "company records",
        "phones as written",
        "lists in cells",
        "rows that are not leads",
        "address-book exports",
        "headers in other languages",
        "form responses",
    ],
)
def test_each_class_of_real_file_gives_the_expected_leads(kind: str) -> None:
    for path in fixtures_of(kind):
        assert_as_expected(path)


def _tokens(text: str) -> set[str]:
    return {token for token in re.split(r"[\W_]+", text.casefold()) if token}


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text.replace("(0)", "")).lstrip("0")


def _kept(header: str, value: str, fields: dict[str, str]) -> bool:
    """Whether a source cell ended up somewhere in the lead: a field, or remarks as "Header: …"."""
    if any(line.startswith(f"{header}: ") for line in fields["remarks"].splitlines()):
        return True
    labelled = re.sub(r"\s*\([^\W\d_][^()]*\)$", "", value)
    if labelled != value:
        # "megan@dental.example (office)": the label in brackets is the value's wrapping too.
        return _kept(header, labelled, fields)
    if value.startswith("[{"):
        # A JSON list of labelled values: its values are the data, the labels their wrapping.
        return all(_kept(header, item["value"], fields) for item in json.loads(value))
    text = " ".join(value.split()).casefold()
    values = [fields[name].casefold() for name in SCORED_FIELDS if fields[name]]
    if text in values:
        return True
    # A Chinese or Korean name written without a space ("李娜"), split into family and given name.
    if text.replace(" ", "") == (fields["last_name"] + fields["first_name"]).casefold():
        return True
    # A full name split into first and last ("Müller, Hans"), a salutation dropped with a remark above,
    # a display name whose middle name is a remark of its own ("Additional Name: Luise").
    remarked = [line.partition(": ")[2].casefold() for line in fields["remarks"].splitlines()]
    if _tokens(text) and _tokens(text) <= _tokens(" ".join(values + remarked)):
        return True
    # A phone as written, now E.164 (perhaps with its extension).
    digits = _digits(value)
    return (
        bool(digits)
        and not re.search(r"[^\W\d_]", value.replace("ext", "").replace("x", ""))
        and (digits in _digits(fields["phone"]))
    )


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.name)
def test_no_cell_is_lost(path: Path) -> None:
    for row, lead in imported(path):
        if lead.skip_reason:
            continue  # the whole row is in the import's problem rows, with its reason
        for header, value in row.cells.items():
            if value.strip().lower() in PLACEHOLDERS - {"nil", "na", "nan"}:
                continue
            assert _kept(header, value, lead.fields), (path.name, row.row, header, value, lead.fields)


def test_the_primary_email_is_the_work_one_and_the_rest_are_labelled_in_remarks() -> None:
    rows = dict((row.row, lead) for row, lead in imported(DATA / "several_contacts.csv"))
    remarks = rows[2].fields["remarks"].splitlines()
    assert "Email (home): grace@home.example" in remarks
    assert "Email (other): gh@other.example" in remarks
    assert "Phone (mobile): (202) 555-0101" in remarks


def test_the_rest_of_a_list_cell_stays_in_remarks() -> None:
    rows = dict((row.row, lead) for row, lead in imported(DATA / "lists_in_cells.csv"))
    assert "emails: home: wanda@home.example" in rows[2].fields["remarks"].splitlines()
    assert "emails: uma.p@gmail.example" in rows[4].fields["remarks"].splitlines()
    assert "contact_numbers: +1 415 555 0193" in rows[4].fields["remarks"].splitlines()


def test_rows_that_are_not_leads_say_why() -> None:
    reasons = {
        (row.worksheet, row.row): lead.skip_reason for row, lead in imported(DATA / "numbers_and_sheets.xlsx")
    }
    assert reasons[("Contacts", 4)] == "A repeated header row, not a lead."
    assert reasons[("Contacts", 6)] == "A totals row, not a lead."
    assert reasons[("Instructions", 3)] == "An instructions or notes sheet, not leads."


@pytest.mark.django_db
def test_the_import_records_each_columns_role_and_its_page_shows_it(import_file, importer_client) -> None:
    job = import_file(DATA / "technical_headers.csv")

    [sheet] = job.column_roles
    columns = {column["header"]: (column["role"], column["reason"]) for column in sheet["columns"]}
    assert columns["n_given"] == ("firstName", "header and content")
    assert columns["fld_07"] == ("email", "content")
    assert columns["created_at"] == ("", "")
    html = importer_client.get(reverse("processing:detail", args=[job.pk])).content.decode()
    assert "fld_07" in html and "content" in html and "Remarks" in html


def _quality_bench():
    spec = importlib.util.spec_from_file_location("bench_quality", settings.BASE_DIR / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_the_quality_bench_imports_a_file_twice_through_the_pipeline_and_says_what_became_of_it(
    capsys,
) -> None:
    again = _quality_bench().report_file(DATA / "outlook_de_private_phone.csv")

    assert again.outcomes["unchanged"] == again.rows == 4
    out = capsys.readouterr().out
    assert "rows in 4 → created 4, updated 0, unchanged 0, skipped 0, failed 0" in out
    assert "again   4 → created 0, updated 0, unchanged 4, skipped 0, failed 0" in out
    assert "Telefon geschäftlich                     → phone      header and content (DE numbers)" in out
    assert "to remarks: " in out and "Mobiltelefon ×1" in out and "Telefon (privat) ×1" in out
