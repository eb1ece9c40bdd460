"""DEEPSEEK_MODE=columns against the fake DeepSeek server: one column-role call per sheet, the rows
standardized here with those roles, only doubtful rows sent — and the same leads as the rows mode."""

from __future__ import annotations

import json
import threading

import pytest
from django.core.files import File
from django.db import connection

from easycrm.testing.files import write_csv
from leads.models import Lead
from llm.fake_server import FakeDeepSeek
from processing import services
from processing.column_mode import ROLES_SYSTEM_PROMPT
from processing.models import ImportJob
from processing.parsing import SourceRow
from processing.standardize import (
    apply_transform,
    batch_column_roles,
    row_is_doubtful,
    standardize_here,
    validate_lead,
)

pytestmark = pytest.mark.django_db

HEADER = ["Contact", "Company", "E-mail", "Mobile", "Comments", "Ref"]


def _sheet_rows(count: int) -> list[list[str]]:
    rows = []
    for number in range(count):
        name = f"Ann Lee{number}"
        email = f"ann{number}@lee.example"
        phone = f"+1 415 555 {number:04d}"
        comment = "met at the fair"
        if number % 10 == 3:
            email = "ann at lee dot example"  # the row seems to hold an email: doubtful
        if number % 10 == 7:
            name = "Madonna"  # a full name that does not split: doubtful
        if number % 20 == 9:
            comment = "+1 415 555 9999"  # a second phone, in the comments
        rows.append([name, "Lee Holdings Ltd", email, phone, comment, f"R-{number}"])
    return rows


def _requests(fake: FakeDeepSeek) -> tuple[list[dict], list[dict]]:
    bodies = [body for body in fake.requests if isinstance(body, dict)]
    roles = [b for b in bodies if b["messages"][0]["content"] == ROLES_SYSTEM_PROMPT]
    rows = [b for b in bodies if b["messages"][0]["content"] != ROLES_SYSTEM_PROMPT]
    return roles, rows


def _leads() -> list[tuple]:
    fields = ("first_name", "last_name", "title", "company", "email", "phone", "remarks", "source_row")
    return list(Lead.objects.order_by("source_row").values_list(*fields))


def test_column_mode_asks_once_per_sheet_sends_only_doubtful_rows_and_matches_the_rows_mode(
    import_file, tmp_path, fake_deepseek, settings
) -> None:
    path = write_csv(tmp_path / "sheet.csv", HEADER, _sheet_rows(100))
    settings.DEEPSEEK_MODE = "rows"
    import_file(path)
    by_rows = _leads()
    Lead.objects.all().delete()
    fake_deepseek.requests.clear()
    settings.DEEPSEEK_MODE = "columns"

    job = import_file(path)

    assert job.status == ImportJob.Status.COMPLETED, job.error_message
    roles_calls, row_calls = _requests(fake_deepseek)
    assert len(roles_calls) == 1
    asked = json.loads(roles_calls[0]["messages"][1]["content"])
    assert asked["columns"] == HEADER and len(asked["samples"]) == 20
    sent = sum(
        len(part["rows"]) for b in row_calls for part in json.loads(b["messages"][1]["content"])["sheets"]
    )
    # Rows 3, 7 of every ten, and 9 of every twenty (a second phone in the comments).
    assert sent == 25
    assert job.model_column_roles["sheet"]["roles"]["E-mail"] == "email"
    assert _leads() == by_rows
    assert job.llm_calls == 1 + len(row_calls)


@pytest.mark.django_db(transaction=True)
def test_batches_of_a_sheet_running_at_once_ask_for_its_roles_once(tmp_path, fake_deepseek, settings) -> None:
    settings.DEEPSEEK_MODE = "columns"
    fake_deepseek.latency = 0.2
    path = write_csv(tmp_path / "many.csv", HEADER, _sheet_rows(60))
    with path.open("rb") as handle:
        job = services.import_start(file=File(handle), filename=path.name, enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    ids = list(job.batches.values_list("id", flat=True))

    def worker(batch_ids):
        try:
            for batch_id in batch_ids:
                services.batch_standardize(batch_id=batch_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(ids[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED
    roles_calls, _rows = _requests(fake_deepseek)
    assert len(roles_calls) == 1


def _answer(said: dict[str, str], transforms: dict | None = None):
    def respond(request: dict) -> dict:
        return {
            "roles": [said.get(header, "") for header in request["columns"]],
            "transforms": transforms or {},
        }

    return respond


def test_model_roles_and_transforms_are_applied(import_file, tmp_path, fake_deepseek, settings) -> None:
    settings.DEEPSEEK_MODE = "columns"
    said = {"Contact": "fullName", "Company": "company", "E-mail": "email", "Ref": "title"}
    fake_deepseek.roles_responder = _answer(
        said, {"Contact": "lastFirst", "Ref": "shout", "Nope": "titleCase"}
    )
    path = write_csv(tmp_path / "model.csv", HEADER, [["Lee Ann", "X Ltd", "ann@lee.example", "", "", "CEO"]])

    job = import_file(path)

    lead = Lead.objects.get()
    assert (lead.first_name, lead.last_name, lead.title) == ("Ann", "Lee", "CEO")
    assert job.model_column_roles["model"]["transforms"] == {"Contact": "lastFirst"}


def test_an_answer_with_the_wrong_number_of_roles_is_retried(import_file, tmp_path, fake_deepseek, settings):
    settings.DEEPSEEK_MODE = "columns"
    answers = iter([{"roles": ["email"]}])
    good = _answer({"Contact": "fullName", "E-mail": "email"})
    fake_deepseek.roles_responder = lambda request: next(answers, None) or good(request)
    path = write_csv(tmp_path / "retry.csv", HEADER, [["Ann Lee", "X Ltd", "ann@lee.example", "", "", "1"]])

    job = import_file(path)

    assert job.status == ImportJob.Status.COMPLETED
    assert job.llm_calls == 2
    assert Lead.objects.get().first_name == "Ann"


def test_doubtful_rows() -> None:
    rows = [
        SourceRow("S", 2, {"Full Name": "Ann Lee", "Email": "ann@lee.example"}),
        SourceRow("S", 3, {"Full Name": "Cher", "Email": "cher@x.example"}),
        SourceRow("S", 4, {"Full Name": "Bo Li", "Email": "bo at li"}),
        SourceRow("S", 5, {"Full Name": "Cy Dee", "Email": "cy@dee.example, cy@home.example"}),
        SourceRow("S", 6, {"Full Name": "Di Ek", "Email": "di@ek.example", "Info": "+1 415 555 0100"}),
        SourceRow("S", 7, {"Full Name": "Ed Fu", "Email": "ed@fu.example", "Info": "fair"}),
        SourceRow("S", 8, {"Full Name": "Flo Gu", "Email": "flo@gu.example", "Info": "fair"}),
    ]
    roles = batch_column_roles(rows)["S"]

    doubtful = [
        row_is_doubtful(row, roles, validate_lead(row.cells, standardize_here(row, roles, {})))
        for row in rows
    ]

    assert doubtful == [False, True, True, True, True, False, False]


def test_transforms() -> None:
    assert apply_transform("Lee Ann", "lastFirst") == "Lee, Ann"
    assert apply_transform("Lee, Ann", "lastFirst") == "Lee, Ann"
    assert apply_transform("ANN LEE", "titleCase") == "Ann Lee"
    assert apply_transform("McKay", "titleCase") == "McKay"
