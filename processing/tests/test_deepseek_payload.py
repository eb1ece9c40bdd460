"""What the DeepSeek standardizer sends per batch and how it merges the answer (README, "DeepSeek wire
contract"): arrays under one header list per sheet, hints identical for every batch of a sheet, the
columns the model would only copy kept back, and validation's guarantees whatever the model says."""

from __future__ import annotations

import json

import pytest

from easycrm.testing.files import HEADER, people, write_csv
from leads.models import Lead
from llm.fake_server import FakeDeepSeek, wire_rows
from processing.models import ImportJob
from processing.parsing import SourceRow
from processing.standardize import (
    SYSTEM_PROMPT,
    batch_column_roles,
    column_roles_record,
    deepseek_request,
    deepseek_standardize,
    standardize_as_sent,
    validate_lead,
)

pytestmark = pytest.mark.django_db

SHEET = "Messe"
COLUMNS = ["Vorname", "Name", "Firma", "fld_7", "Telefon", "Notizen"]


def _rows(count: int, *, start: int = 0, sheet: str = SHEET) -> list[SourceRow]:
    rows = []
    for number in range(start, start + count):
        cells = {
            "Vorname": f"Anna{number}",
            "Name": f"Berg{number}",
            "Firma": "Nordwind GmbH" if number % 3 else "",
            "fld_7": f"anna{number}@nordwind.example",
            "Telefon": f"+49 30 {1234500 + number}",
            "Notizen": "Messe 2026",
        }
        rows.append(SourceRow(sheet, number + 2, {h: v for h, v in cells.items() if v}, seq=number + 1))
    return rows


def _record(rows: list[SourceRow]) -> list[dict]:
    headers = {row.worksheet: dict.fromkeys(COLUMNS) for row in rows}
    samples = {sheet: [row.cells for row in rows if row.worksheet == sheet] for sheet in headers}
    return column_roles_record(headers, samples)


def _user(rows: list[SourceRow], record: list[dict] | None = None) -> dict:
    from processing.standardize import column_roles_from_record

    roles = batch_column_roles(rows, column_roles_from_record(record) if record else None)
    user, _positions = deepseek_request(rows, roles)
    return json.loads(user)


def test_rows_are_arrays_under_one_header_list_with_only_the_columns_the_model_judges() -> None:
    sent = _user(_rows(3))

    (part,) = sent["sheets"]
    # fld_7 is an email column by content, Telefon a phone column, Notizen notes: kept back.
    assert part["columns"] == ["Vorname", "Name", "Firma"]
    assert part["rows"] == [
        ["Anna0", "Berg0"],
        ["Anna1", "Berg1", "Nordwind GmbH"],
        ["Anna2", "Berg2", "Nordwind GmbH"],
    ]
    # "Name" next to "Vorname" is the surname, which its header alone does not say.
    assert part["roles"] == {"Name": "lastName"}


def test_every_batch_of_a_sheet_starts_with_the_same_bytes(fake_deepseek: FakeDeepSeek) -> None:
    rows = _rows(30)
    record = _record(rows)
    for start in range(0, 30, 10):
        deepseek_standardize(rows[start : start + 10], column_roles=record)

    systems = {body["messages"][0]["content"] for body in fake_deepseek.requests}
    users = [body["messages"][1]["content"] for body in fake_deepseek.requests]
    assert systems == {SYSTEM_PROMPT}
    prefix = users[0][: users[0].index('"rows"')]
    assert all(user.startswith(prefix) for user in users)
    assert '"roles":{"Name":"lastName"}' in prefix


def test_a_batch_spanning_two_sheets_sends_one_part_per_sheet(fake_deepseek: FakeDeepSeek) -> None:
    rows = _rows(4) + [SourceRow("Kunden", 2, {"Full Name": "Ann Lee", "Email": "ann@lee.example"}, seq=5)]

    leads, completion = deepseek_standardize(rows)

    sent = json.loads(fake_deepseek.requests[0]["messages"][1]["content"])
    assert [part["columns"] for part in sent["sheets"]] == [["Vorname", "Name", "Firma"], ["Full Name"]]
    assert completion.attempts == 1
    assert [lead["lastName"] for lead in leads] == ["Berg0", "Berg1", "Berg2", "Berg3", "Lee"]
    assert leads[4]["email"] == "ann@lee.example"


def test_kept_back_columns_are_standardized_here_and_merged(fake_deepseek: FakeDeepSeek) -> None:
    leads, _ = deepseek_standardize(_rows(2))

    user = fake_deepseek.requests[0]["messages"][1]["content"]
    assert "@" not in user and "+49" not in user and "Messe 2026" not in user
    assert leads[1]["firstName"] == "Anna1" and leads[1]["company"] == "Nordwind GmbH"
    assert leads[1]["email"] == "anna1@nordwind.example"
    assert leads[1]["phone"] == "+49 30 1234501"
    assert leads[1]["remarks"] == "Notizen: Messe 2026"


def test_rows_with_nothing_to_judge_need_no_call(fake_deepseek: FakeDeepSeek) -> None:
    rows = [SourceRow("S", 2, {"Email": "a@b.example", "Phone": "+1 415 555 0100"}, seq=1)]

    leads, completion = deepseek_standardize(rows)

    assert fake_deepseek.call_count == 0 and completion.attempts == 0
    assert leads[0]["email"] == "a@b.example"


def test_only_the_rows_with_something_to_send_are_counted(fake_deepseek: FakeDeepSeek) -> None:
    rows = [
        SourceRow("S", 2, {"Email": "a@b.example"}, seq=1),
        SourceRow("S", 3, {"Email": "c@d.example", "Full Name": "Cy Dee"}, seq=2),
    ]
    fake_deepseek.fail_next("wrong_count")

    leads, completion = deepseek_standardize(rows)

    assert completion.attempts == 2
    assert [lead.get("firstName", "") for lead in leads] == ["", "Cy"]
    assert len(json.loads(fake_deepseek.requests[1]["messages"][1]["content"])["sheets"][0]["rows"]) == 1


def test_an_invented_email_never_survives_and_a_second_real_one_goes_to_remarks(
    fake_deepseek: FakeDeepSeek,
) -> None:
    rows = [
        SourceRow(
            "S", number, {"Full Name": f"Bo Li{number}", "Email": f"bo{number}@li.example", "Info": "fair"}
        )
        for number in range(2, 5)
    ]
    info = "wrote from ann.private@lee.example"
    rows.append(SourceRow("S", 5, {"Full Name": "Ann Lee", "Email": "ann@lee.example", "Info": info}))
    answers = [{"firstName": "Bo", "email": "boss@attacker.example"}] * 3
    answers.append({"firstName": "Ann", "email": "ann.private@lee.example"})
    fake_deepseek.responder = lambda rows: answers

    leads, _ = deepseek_standardize(rows)
    cleaned = [validate_lead(row.cells, lead) for row, lead in zip(rows, leads, strict=True)]

    assert cleaned[0].fields["email"] == "bo2@li.example"
    assert "attacker" not in json.dumps([lead.fields for lead in cleaned])
    assert cleaned[3].fields["email"] == "ann@lee.example"
    assert "Email: ann.private@lee.example" in cleaned[3].fields["remarks"]


def test_fake_server_answers_the_rows_as_sent_with_their_hints() -> None:
    rows = _rows(3)
    roles = batch_column_roles(rows)
    user, _ = deepseek_request(rows, roles)

    received = wire_rows(json.loads(user))

    assert [row["cells"] for row in received][0] == {"Vorname": "Anna0", "Name": "Berg0"}
    assert standardize_as_sent(received[0]["cells"], received[0]["roles"])["lastName"] == "Berg0"


def test_import_in_deepseek_mode_keeps_every_guarantee(import_file, tmp_path, fake_deepseek) -> None:
    path = write_csv(tmp_path / "ten.csv", HEADER, people(10))

    job = import_file(path)

    assert job.status == ImportJob.Status.COMPLETED
    assert job.llm_calls == 1 and job.leads_created == 10
    lead = Lead.objects.get(email="person3@example.com")
    assert (lead.first_name, lead.last_name, lead.company, lead.phone) == (
        "First3",
        "Last3",
        "Company 3",
        "+14155550003",
    )


def test_a_typical_batch_costs_under_100_prompt_characters_per_lead() -> None:
    header = ["First Name", "Last Name", "Job Title", "Company", "Email", "Phone", "Notes"]
    # A row like the benchmark's average (95 characters of values, 50 of them email, phone, notes).
    person = ["Daniel", "Gómez", "Sales Manager", "Harbor Foods Ltd"]
    rows = [
        SourceRow(
            "leads",
            number + 2,
            dict(
                zip(
                    header,
                    [*person, f"d.gomez{number}@harbor.example", "+49 30 1234567", "Budget approved"],
                    strict=True,
                )
            ),
        )
        for number in range(10)
    ]
    user, positions = deepseek_request(rows, batch_column_roles(rows))

    assert len(positions) == 10
    assert (len(SYSTEM_PROMPT) + len(user)) / 10 <= 100
