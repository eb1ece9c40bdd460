"""The DeepSeek standardizer over the real LLM client, against a real local HTTP server: wire format,
retries, timeouts, errors, logs. (The permit that caps concurrent calls: llm/tests/test_permit.py.)"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from llm import client
from llm.client import DeepSeekConfigError, DeepSeekUnavailable, InvalidReply, chat_json
from llm.fake_server import FakeDeepSeek
from processing.parsing import SourceRow
from processing.standardize import SYSTEM_PROMPT
from processing.standardize import deepseek_standardize as standardize_rows

# Every call holds an LLM permit, a database row.
pytestmark = pytest.mark.django_db

ROWS = [
    SourceRow("Fair 2025", 2, {"Name": "Ann Lee", "E-mail": "ann@example.com"}, seq=1),
    SourceRow("Fair 2025", 3, {"Nom complet": "Jörg Müller", "Société": "東京商事"}, seq=2),
]


def echo_responder(rows: list[dict]) -> list[dict]:
    """Keeps these tests independent of the offline standardizer's evolving rules."""
    leads = []
    for row in rows:
        cells = row["cells"]
        first, _, last = str(next(iter(cells.values()))).partition(" ")
        leads.append(
            {
                "firstName": first,
                "lastName": last,
                "title": "",
                "company": "",
                "email": cells.get("E-mail", ""),
                "phone": "",
                "remarks": "",
            }
        )
    return leads


@pytest.fixture
def fake(fake_deepseek: FakeDeepSeek) -> FakeDeepSeek:
    fake_deepseek.responder = echo_responder
    return fake_deepseek


@pytest.fixture
def deepseek_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # at_level(logger=...) also attaches caplog to "easycrm.deepseek", which does not propagate to root.
    with caplog.at_level(logging.DEBUG, logger="easycrm.deepseek"):
        yield caplog


def test_request_body_follows_the_wire_contract(fake: FakeDeepSeek, settings) -> None:
    standardize_rows(ROWS)

    body = fake.requests[0]
    assert body["model"] == settings.DEEPSEEK_MODEL == "deepseek-flash"
    assert body["thinking"] == {"type": "disabled"}
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0
    assert body["stream"] is False
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "json" in SYSTEM_PROMPT
    assert user["role"] == "user"
    # "Name" alone could be a first, last or full name: the hint says which. The email column is
    # standardized here, so it is not sent; empty cells are "", trailing ones cut.
    expected = {
        "sheets": [
            {
                "roles": {"Name": "fullName"},
                "columns": ["Name", "Nom complet", "Société"],
                "rows": [["Ann Lee"], ["", "Jörg Müller", "東京商事"]],
            }
        ]
    }
    assert user["content"] == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert '"row"' not in user["content"] and '"seq"' not in user["content"]
    assert "Fair 2025" not in user["content"]


def test_columns_named_like_metadata_are_sent_as_cells(fake: FakeDeepSeek) -> None:
    cells = {"_worksheet": "not the sheet", "_row": "7", "__keys__": "k", "Name": "Ann Lee"}

    standardize_rows([SourceRow("Fair", 2, cells, seq=1)])

    sent = json.loads(fake.requests[0]["messages"][1]["content"])
    assert sent["sheets"][0]["columns"] == list(cells)
    assert sent["sheets"][0]["rows"] == [list(cells.values())]


def test_success_returns_leads_and_usage(fake: FakeDeepSeek) -> None:
    leads, completion = standardize_rows(ROWS)

    assert [lead["firstName"] for lead in leads] == ["Ann", "Jörg"]
    assert leads[0]["email"] == "ann@example.com"
    assert completion.attempts == 1
    user = fake.requests[0]["messages"][1]["content"]
    assert completion.prompt_chars == len(SYSTEM_PROMPT) + len(user)
    assert completion.prompt_tokens == completion.prompt_chars // 4
    assert completion.completion_tokens > 0


@pytest.mark.parametrize(
    "kind", ["500", "502", "503", "disconnect", "blank", "bad_json", "not_object", "wrong_count"]
)
def test_transient_failure_is_retried_then_succeeds(fake: FakeDeepSeek, kind: str) -> None:
    fake.fail_next(kind)

    leads, completion = standardize_rows(ROWS)

    assert len(leads) == 2
    assert completion.attempts == 2
    assert fake.call_count == 2


def test_usage_is_summed_over_attempts_that_reported_it(fake: FakeDeepSeek) -> None:
    fake.fail_next("wrong_count")

    _, completion = standardize_rows(ROWS)

    assert completion.prompt_tokens == 2 * (completion.prompt_chars // 4)


def test_rate_limit_honours_retry_after(fake: FakeDeepSeek) -> None:
    fake.fail_next("429", retry_after=0.2)

    started = time.monotonic()
    _, completion = standardize_rows(ROWS)

    assert time.monotonic() - started >= 0.2
    assert completion.attempts == 2


def test_read_timeout_is_retried(fake: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_READ_TIMEOUT = 0.3
    fake.fail_next("timeout")

    started = time.monotonic()
    _, completion = standardize_rows(ROWS)

    assert completion.attempts == 2
    assert 0.3 <= time.monotonic() - started < 2


def test_exhausted_attempts_raise_unavailable(fake: FakeDeepSeek) -> None:
    fake.fail_next("503", times=3)

    with pytest.raises(DeepSeekUnavailable) as caught:
        standardize_rows(ROWS)

    assert caught.value.attempts == 3
    assert fake.call_count == 3
    assert caught.value.user_message == "DeepSeek is having server problems (503, 3 attempts)."


def test_repeated_timeouts_say_deepseek_did_not_answer(fake: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_READ_TIMEOUT = 0.2
    fake.fail_next("timeout", times=3)

    with pytest.raises(DeepSeekUnavailable) as caught:
        standardize_rows(ROWS)

    assert str(caught.value) == "DeepSeek did not answer in time (3 attempts)."
    assert caught.value.reason == "timeout"


def test_wrong_lead_count_every_time_explains_the_mismatch(fake: FakeDeepSeek) -> None:
    fake.fail_next("wrong_count", times=3)

    with pytest.raises(DeepSeekUnavailable) as caught:
        standardize_rows(ROWS)

    assert "expected 2 leads, got 1" in caught.value.user_message


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("401", "DeepSeek rejected the API key. Ask an administrator to check DEEPSEEK_API_KEY."),
        ("402", "The DeepSeek account has run out of credit (402 Insufficient Balance)."),
        ("400", "DeepSeek rejected the request (400): Invalid request: messages must not be empty"),
        (
            "422",
            "DeepSeek rejected the request (422): Invalid parameters: temperature must be between 0 and 2",
        ),
    ],
)
def test_configuration_errors_are_not_retried(fake: FakeDeepSeek, kind: str, message: str) -> None:
    fake.fail_next(kind)

    with pytest.raises(DeepSeekConfigError) as caught:
        standardize_rows(ROWS)

    assert caught.value.user_message == message
    assert caught.value.attempts == 1
    assert caught.value.status_code == int(kind)
    assert fake.call_count == 1


def test_wrong_api_key_is_a_configuration_error(fake: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_API_KEY = "sk-wrong"

    with pytest.raises(DeepSeekConfigError, match="rejected the API key"):
        standardize_rows(ROWS)

    assert fake.call_count == 1


def test_missing_api_key_fails_without_a_call(fake: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_API_KEY = ""

    assert not client.is_configured()
    with pytest.raises(DeepSeekConfigError) as caught:
        standardize_rows(ROWS)

    assert caught.value.attempts == 0
    assert fake.call_count == 0


def test_chat_json_validate_can_reject_a_reply(fake: FakeDeepSeek) -> None:
    rejections = []

    def validate(data: dict) -> None:
        if not rejections:
            rejections.append(data)
            raise InvalidReply("first answer is never good enough")

    completion = chat_json(system="Reply in json.", user=json.dumps({"leads": []}), validate=validate)

    assert completion.data == {"leads": []}
    assert completion.attempts == 2
    assert completion.prompt_chars == len("Reply in json.") + len('{"leads": []}')


def test_max_attempts_overrides_the_setting(fake: FakeDeepSeek) -> None:
    fake.fail_next("500", times=5)

    with pytest.raises(DeepSeekUnavailable) as caught:
        chat_json(system="json", user='{"leads": []}', max_attempts=1)

    assert caught.value.attempts == 1
    assert str(caught.value) == "DeepSeek is having server problems (500, 1 attempt)."


def test_retry_after_accepts_an_http_date() -> None:
    in_thirty_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert 25 < client._retry_after_seconds(in_thirty_seconds) <= 30
    assert client._retry_after_seconds("2") == 2
    assert client._retry_after_seconds("soon") is None


def test_logs_carry_correlation_ids_but_never_the_key_or_lead_content(
    fake: FakeDeepSeek, settings, deepseek_logs: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-do-not-log-0123456789"
    fake.api_key = settings.DEEPSEEK_API_KEY = secret
    fake.fail_next("503")
    standardize_rows(ROWS, log_extra={"job_id": 7, "batch_id": 42})
    fake.fail_next("401")
    with pytest.raises(DeepSeekConfigError):
        standardize_rows(ROWS, log_extra={"job_id": 7, "batch_id": 43})

    records = [record for record in deepseek_logs.records if record.name == "easycrm.deepseek"]
    assert len(records) == 3
    assert all(record.job_id == 7 and record.attempt >= 1 for record in records)
    assert [record.status_code for record in records] == [503, 200, 401]
    everything_logged = deepseek_logs.text + "".join(str(vars(record)) for record in deepseek_logs.records)
    assert secret not in everything_logged
    assert "ann@example.com" not in everything_logged
    assert "Müller" not in everything_logged


def test_fake_answers_with_the_offline_standardizer_by_default(fake_deepseek: FakeDeepSeek) -> None:
    leads, _ = standardize_rows(ROWS)

    assert len(leads) == 2
    assert all(isinstance(lead, dict) for lead in leads)
