"""The one module that talks to DeepSeek (or any OpenAI-compatible chat completions server).

`chat_json` sends one system + user message in JSON mode and returns the parsed JSON object, retrying
what is worth retrying (429/5xx, timeouts, dropped connections, blank or unparseable replies, replies
the caller's `validate` rejects) and failing fast on configuration problems (400/401/402/403/404/422).
Every HTTP attempt holds one of DEEPSEEK_CONCURRENCY permits (`permit`), shared by every process, so
the standardizer's workers, the import command's threads and the chatbot together never exceed it.
The lead standardizer (processing.standardize) and the chatbot (chatbot.services) both call it; tests
fake the server, never this module (see `llm/fake_server.py`).

Logs go to "easycrm.deepseek" with correlation ids only: never the API key, the prompt or lead content.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from .models import LlmSlot

logger = logging.getLogger("easycrm.deepseek")

# A server asking us to wait longer than this would park a worker for minutes; better to give up and
# let the job layer reschedule the batch.
MAX_RETRY_AFTER_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 60.0
# 408 and 429 are "try again later"; every 5xx is the server's problem, not ours.
RETRYABLE_4XX = frozenset({408, 429})
SERVER_MESSAGE_MAX_CHARS = 200


class DeepSeekError(Exception):
    """Base class. `user_message` is a sentence a salesperson or admin understands; `attempts` counts
    the HTTP calls made; `status_code` is the last HTTP status seen (None when no response came)."""

    def __init__(self, user_message: str, *, attempts: int, status_code: int | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.attempts = attempts
        self.status_code = status_code


class DeepSeekConfigError(DeepSeekError):
    """The request can never succeed as configured (bad key, no credit, rejected request): not retried."""


class DeepSeekUnavailable(DeepSeekError):
    """Every attempt hit a transient problem. `reason` is a short code: "timeout", "connection",
    "rate_limited", "server_error", "bad_response", "blank", "bad_json", "not_object", "invalid_reply"."""

    def __init__(
        self, user_message: str, *, attempts: int, reason: str, status_code: int | None = None
    ) -> None:
        super().__init__(user_message, attempts=attempts, status_code=status_code)
        self.reason = reason


class InvalidReply(Exception):
    """Raised by a `validate` callback: the reply is well-formed JSON but wrong, so try again."""


@dataclass
class Completion:
    data: dict
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    prompt_chars: int


class _Failure(Exception):
    """One retryable attempt failure; only the last one reaches the user."""

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after
        self.detail = detail


_thread_state = threading.local()


def _session() -> requests.Session:
    # requests.Session is not documented as thread-safe; one per thread still reuses connections
    # across the many batches a worker thread sends.
    session = getattr(_thread_state, "session", None)
    if session is None:
        session = requests.Session()
        _thread_state.session = session
    return session


def is_configured() -> bool:
    return bool(settings.DEEPSEEK_API_KEY)


def chat_json(
    *,
    system: str,
    user: str,
    validate: Callable[[dict], None] | None = None,
    max_attempts: int | None = None,
    log_extra: dict | None = None,
    read_timeout: float | None = None,
) -> Completion:
    """Send one JSON-mode chat completion and return the parsed JSON object of the reply.

    Each HTTP attempt holds a `permit` while the request is in flight, never during the backoff sleep. `validate` may raise InvalidReply to have a reply retried.
    Raises DeepSeekConfigError (no retry) or DeepSeekUnavailable (attempts exhausted).
    """
    if not is_configured():
        raise DeepSeekConfigError(
            "DeepSeek is not configured. Ask an administrator to set DEEPSEEK_API_KEY.", attempts=0
        )
    attempts_allowed = max(1, max_attempts if max_attempts is not None else settings.DEEPSEEK_MAX_ATTEMPTS)
    url = f"{settings.DEEPSEEK_BASE_URL}/chat/completions"
    headers = {
        "Authorization": f"Bearer {settings.DEEPSEEK_API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    body = {
        "model": settings.DEEPSEEK_MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "response_format": {"type": "json_object"},
        "thinking": {"type": "disabled"},
        "temperature": 0,
        "stream": False,
    }
    # requests' json= escapes every non-ASCII character; raw UTF-8 keeps non-Latin sheets compact.
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    # A person waiting on a chat answer needs a shorter read timeout than a batch worker.
    timeout = (settings.DEEPSEEK_CONNECT_TIMEOUT, read_timeout or settings.DEEPSEEK_READ_TIMEOUT)
    extra = dict(log_extra or {})
    prompt_tokens = completion_tokens = 0
    failure: _Failure | None = None

    for attempt in range(1, attempts_allowed + 1):
        if failure is not None:
            time.sleep(_backoff_seconds(attempt - 1, failure.retry_after))
        started = time.monotonic()
        status_code: int | None = None
        try:
            with permit():
                response = _post(url, payload, headers, timeout, attempt)
            status_code = response.status_code
            envelope = _envelope(response, attempt)
            usage = envelope.get("usage")
            if isinstance(usage, dict):
                prompt_tokens += _int(usage.get("prompt_tokens"))
                completion_tokens += _int(usage.get("completion_tokens"))
            data = _reply_object(envelope, validate)
        except _Failure as exc:
            failure = exc
            logger.warning(
                "DeepSeek attempt %d/%d failed: %s",
                attempt,
                attempts_allowed,
                exc.reason,
                extra=_log_fields(extra, attempt, exc.status_code or status_code, started),
            )
            continue
        except DeepSeekConfigError as exc:
            logger.error(
                "DeepSeek rejected the request as configured (status %s)",
                exc.status_code,
                extra=_log_fields(extra, attempt, exc.status_code, started),
            )
            raise
        logger.info("DeepSeek call succeeded", extra=_log_fields(extra, attempt, status_code, started))
        return Completion(
            data=data,
            attempts=attempt,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            prompt_chars=len(system) + len(user),
        )

    assert failure is not None  # the loop ran at least once and every pass failed
    logger.error(
        "DeepSeek gave up after %d attempts: %s",
        attempts_allowed,
        failure.reason,
        extra={**extra, "attempt": attempts_allowed, "status_code": failure.status_code},
    )
    raise DeepSeekUnavailable(
        _unavailable_message(failure, attempts_allowed),
        attempts=attempts_allowed,
        reason=failure.reason,
        status_code=failure.status_code,
    )


def _post(
    url: str, payload: bytes, headers: dict, timeout: tuple[float, float], attempt: int
) -> requests.Response:
    try:
        return _session().post(url, data=payload, headers=headers, timeout=timeout)
    except requests.Timeout:  # before ConnectionError: ConnectTimeout is both
        raise _Failure("timeout") from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ):
        raise DeepSeekConfigError(
            "DEEPSEEK_BASE_URL is not a valid URL. Ask an administrator to check it.", attempts=attempt
        ) from None
    except requests.exceptions.InvalidHeader:
        # `from None`: requests quotes the offending header value, which is the API key.
        raise DeepSeekConfigError(
            "DEEPSEEK_API_KEY contains invalid characters. Ask an administrator to check it.",
            attempts=attempt,
        ) from None
    except requests.RequestException:
        # Refused/reset/dropped connections, truncated bodies, DNS failures: all worth another try.
        raise _Failure("connection") from None


def _envelope(response: requests.Response, attempt: int) -> dict:
    status = response.status_code
    if status in RETRYABLE_4XX or status >= 500:
        raise _Failure(
            "rate_limited" if status == 429 else "server_error",
            status_code=status,
            retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status >= 400:
        raise DeepSeekConfigError(
            _config_message(status, _server_message(response)), attempts=attempt, status_code=status
        )
    if status != 200:
        raise _Failure("bad_response", status_code=status)
    try:
        envelope = response.json()
    except ValueError:
        raise _Failure("bad_response", status_code=status) from None
    if not isinstance(envelope, dict):
        raise _Failure("bad_response", status_code=status)
    return envelope


def _reply_object(envelope: dict, validate: Callable[[dict], None] | None) -> dict:
    try:
        content = envelope["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _Failure("bad_response", status_code=200) from None
    # JSON mode occasionally answers with nothing but whitespace; DeepSeek documents it as transient.
    if not isinstance(content, str) or not content.strip():
        raise _Failure("blank", status_code=200)
    try:
        data = json.loads(content)
    except ValueError:
        raise _Failure("bad_json", status_code=200) from None
    if not isinstance(data, dict):
        raise _Failure("not_object", status_code=200)
    if validate is not None:
        try:
            validate(data)
        except InvalidReply as exc:
            raise _Failure("invalid_reply", status_code=200, detail=str(exc)) from None
    return data


def _backoff_seconds(retry_number: int, retry_after: float | None) -> float:
    # Full jitter spreads the retries of many workers that failed together.
    ceiling = min(MAX_BACKOFF_SECONDS, settings.DEEPSEEK_BACKOFF_SECONDS * 2 ** (retry_number - 1))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _server_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str) or not message.strip():
        message = response.text or response.reason or ""
    message = " ".join(message.split())
    if len(message) > SERVER_MESSAGE_MAX_CHARS:
        message = message[: SERVER_MESSAGE_MAX_CHARS - 1] + "…"
    return message


def _config_message(status: int, server_message: str) -> str:
    if status == 401:
        return "DeepSeek rejected the API key. Ask an administrator to check DEEPSEEK_API_KEY."
    if status == 402:
        return "The DeepSeek account has run out of credit (402 Insufficient Balance)."
    if status == 403:
        return (
            "DeepSeek refused access (403). Ask an administrator to check DEEPSEEK_API_KEY and the account."
        )
    if status == 404:
        return (
            "DeepSeek could not find the endpoint or model (404). "
            "Ask an administrator to check DEEPSEEK_BASE_URL and DEEPSEEK_MODEL."
        )
    return f"DeepSeek rejected the request ({status}): {server_message or 'no details given'}"


def _unavailable_message(failure: _Failure, attempts: int) -> str:
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if failure.reason == "timeout":
        return f"DeepSeek did not answer in time ({tries})."
    if failure.reason == "connection":
        return f"Could not connect to DeepSeek ({tries})."
    if failure.reason == "rate_limited":
        return f"DeepSeek is busy and asked us to slow down (429, {tries})."
    if failure.reason == "server_error":
        return f"DeepSeek is having server problems ({failure.status_code}, {tries})."
    if failure.reason == "blank":
        return f"DeepSeek returned an empty reply ({tries})."
    if failure.reason == "invalid_reply":
        return f"DeepSeek's reply did not match the request: {failure.detail} ({tries})."
    return f"DeepSeek returned a reply that could not be read ({tries})."


def _log_fields(extra: dict, attempt: int, status_code: int | None, started: float) -> dict:
    duration_ms = round((time.monotonic() - started) * 1000)
    return {**extra, "attempt": attempt, "status_code": status_code, "duration_ms": duration_ms}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- The concurrency permit -------------------------------------------------------------------------


@contextlib.contextmanager
def permit() -> Iterator[int]:
    """Hold one of DEEPSEEK_CONCURRENCY permits for one model call, across every process.

    A permit is a row taken with a conditional update and given back afterwards; no transaction is
    held during the HTTP call. Its lease (PERMIT_LEASE_SECONDS) is renewed by a heartbeat thread while
    the call runs, however long it takes, so a dead holder's permit is free again within that lease.
    """
    limit = settings.DEEPSEEK_CONCURRENCY
    token = uuid.uuid4().hex
    lease = timedelta(seconds=PERMIT_LEASE_SECONDS)
    delay = 0.02
    while True:
        now = timezone.now()
        free = Q(holder="") | Q(lease_until__lt=now)
        numbers = list(LlmSlot.objects.filter(free, number__lt=limit).values_list("number", flat=True))
        random.shuffle(numbers)
        slot = next(
            (
                n
                for n in numbers
                if LlmSlot.objects.filter(free, number=n).update(holder=token, lease_until=now + lease)
            ),
            None,
        )
        if slot is not None:
            break
        if not numbers and LlmSlot.objects.filter(number__lt=limit).count() < limit:
            _slots_create(limit)
            continue
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.25)
    stop = threading.Event()
    renewer = threading.Thread(target=_permit_renew, args=(slot, token, stop), name="llm-permit", daemon=True)
    renewer.start()
    try:
        yield slot
    finally:
        stop.set()
        renewer.join()
        LlmSlot.objects.filter(number=slot, holder=token).update(holder="", lease_until=None)


# A dead process's permit is free again after this; a live one renews it every third of it.
PERMIT_LEASE_SECONDS = 30


def _permit_renew(slot: int, token: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(PERMIT_LEASE_SECONDS / 3):
            try:
                LlmSlot.objects.filter(number=slot, holder=token).update(
                    lease_until=timezone.now() + timedelta(seconds=PERMIT_LEASE_SECONDS)
                )
            except DatabaseError:
                logger.warning("LLM permit renewal failed", exc_info=True)
    finally:
        connection.close()  # this thread's own connection, if it opened one


def _slots_create(limit: int) -> None:
    LlmSlot.objects.bulk_create([LlmSlot(number=n) for n in range(limit)], ignore_conflicts=True)
