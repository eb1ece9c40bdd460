"""The LLM permit: every model call, whoever makes it, holds one of DEEPSEEK_CONCURRENCY permits."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from llm.client import chat_json, permit
from llm.fake_server import FakeDeepSeek
from llm.models import LlmSlot

pytestmark = pytest.mark.django_db(transaction=True)


def _ask() -> None:
    try:
        chat_json(system="Reply in json.", user="{}")
    finally:
        connection.close()  # each thread has its own connection


def test_calls_from_many_threads_never_exceed_the_cap(fake_deepseek: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_CONCURRENCY = 2
    fake_deepseek.latency = 0.1
    fake_deepseek.reply_with(lambda body: {"ok": True})
    threads = [threading.Thread(target=_ask) for _ in range(6)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fake_deepseek.call_count == 6
    assert fake_deepseek.peak_concurrency == 2
    assert not LlmSlot.objects.exclude(holder="").exists()  # every permit given back


def test_a_call_waits_while_another_process_holds_every_permit(fake_deepseek: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_CONCURRENCY = 1
    fake_deepseek.reply_with(lambda body: {"ok": True})
    LlmSlot.objects.create(
        number=0, holder="another-process", lease_until=timezone.now() + timedelta(minutes=1)
    )
    caller = threading.Thread(target=_ask)

    caller.start()
    time.sleep(0.5)
    calls_while_held = fake_deepseek.call_count
    LlmSlot.objects.filter(number=0).update(holder="", lease_until=None)
    caller.join(timeout=10)

    assert calls_while_held == 0
    assert fake_deepseek.call_count == 1


def test_a_dead_holders_permit_is_taken_once_its_lease_ran_out(settings) -> None:
    settings.DEEPSEEK_CONCURRENCY = 1
    LlmSlot.objects.create(number=0, holder="dead-process", lease_until=timezone.now() - timedelta(seconds=1))

    with permit() as number:
        assert number == 0
        assert LlmSlot.objects.get(number=0).holder not in ("", "dead-process")

    assert LlmSlot.objects.get(number=0).holder == ""


def test_the_permit_is_released_during_the_backoff_sleep(fake_deepseek: FakeDeepSeek, settings) -> None:
    settings.DEEPSEEK_CONCURRENCY = 1
    fake_deepseek.reply_with(lambda body: {"ok": True})
    fake_deepseek.fail_next("429", retry_after=0.5)
    held_during_backoff = []
    caller = threading.Thread(target=_ask)

    caller.start()
    deadline = time.monotonic() + 5
    while fake_deepseek.call_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # inside the 0.5 s Retry-After wait
    held_during_backoff.append(LlmSlot.objects.exclude(holder="").count())
    caller.join(timeout=10)

    assert held_during_backoff == [0]
    assert fake_deepseek.call_count == 2


def test_a_long_call_keeps_its_permit_and_a_second_caller_waits(
    fake_deepseek: FakeDeepSeek, settings, monkeypatch
):
    # The permit's lease is short (a dead holder frees it soon); a live holder renews it.
    from llm import client

    monkeypatch.setattr(client, "PERMIT_LEASE_SECONDS", 0.3)
    settings.DEEPSEEK_CONCURRENCY = 1
    settings.DEEPSEEK_READ_TIMEOUT = 5.0
    fake_deepseek.latency = 1.0
    fake_deepseek.reply_with(lambda body: {"ok": True})
    callers = [threading.Thread(target=_ask) for _ in range(2)]

    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=10)

    assert fake_deepseek.call_count == 2
    assert fake_deepseek.peak_concurrency == 1  # the lease never ran out under the first call
