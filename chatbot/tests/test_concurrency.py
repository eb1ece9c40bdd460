"""Questions asked at the same moment (real threads, one database connection each): a user's first
questions share one conversation, and the rate limit counts every question. Also the constraint and
the migration behind "one conversation per user"."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from chatbot import services
from chatbot.models import Conversation, Message, QuestionCounter

THREADS = 8


def ask_at_once(users: list, *, racing_on: tuple[str, ...], text: str = "How many leads?") -> Counter:
    """Each user asks `text` from its own thread, all released together; how each ask ended.

    A row read from a `racing_on` table outside a transaction is where check-then-write races live, so
    the threads meet after their first such read: all have read before any of them writes, every time.
    Reads in a transaction are not held up; where a lock serializes the threads, the meeting times out."""
    start, meeting = threading.Barrier(len(users)), threading.Barrier(len(users), timeout=2)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def ask(user) -> None:
        met = False

        def meet_after_first_unguarded_read(execute, sql, params, many, context):
            nonlocal met
            result = execute(sql, params, many, context)
            row_read = sql.lstrip().startswith("SELECT") and " WHERE " in sql
            unguarded = row_read and not context["connection"].in_atomic_block
            if unguarded and not met and any(f'"{table}"' in sql for table in racing_on):
                met = True
                with contextlib.suppress(threading.BrokenBarrierError):
                    meeting.wait()
            return result

        try:
            start.wait()
            with connection.execute_wrapper(meet_after_first_unguarded_read):
                services.chat_ask(user=user, text=text)
            outcome = "answered"
        except services.ChatRateLimited:
            outcome = "rate limited"
        except Exception as exc:  # reported in the assertion, not lost in the thread
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=ask, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def wait_for_a_fresh_minute_if_this_one_ends_soon() -> None:
    # The limit counts per clock minute: questions straddling two minutes would be counted apart.
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


@pytest.mark.django_db(transaction=True)
def test_first_questions_asked_at_once_share_one_conversation(django_user_model):
    users = [django_user_model.objects.create_user(f"user{number}") for number in range(2)]

    outcomes = ask_at_once(
        [user for user in users for _ in range(THREADS // 2)], racing_on=(Conversation._meta.db_table,)
    )

    assert outcomes == {"answered": THREADS}
    for user in users:
        conversation = Conversation.objects.get(user=user)
        assert conversation.messages.count() == THREADS  # a question and an answer per thread
    assert Message.objects.count() == 2 * THREADS


@pytest.mark.django_db(transaction=True)
def test_questions_asked_at_once_are_all_counted_by_the_rate_limit(django_user_model, monkeypatch):
    monkeypatch.setattr(services, "RATE_LIMIT_PER_MINUTE", 3)
    user = django_user_model.objects.create_user("eager")
    wait_for_a_fresh_minute_if_this_one_ends_soon()

    # The counter table, and the database cache table: a count kept in the cache must be exact too.
    outcomes = ask_at_once(
        [user] * THREADS, racing_on=(QuestionCounter._meta.db_table, settings.CACHES["default"]["LOCATION"])
    )

    assert outcomes == {"answered": 3, "rate limited": THREADS - 3}
    assert Message.objects.filter(role=Message.Role.USER).count() == 3


@pytest.mark.django_db
def test_question_counter_counts_per_minute_and_forgets_earlier_minutes(viewer, importer):
    counts = [QuestionCounter.objects.count_question(user=viewer, minute=minute) for minute in (7, 7, 7, 8)]
    QuestionCounter.objects.count_question(user=importer, minute=7)

    assert counts == [1, 2, 3, 1]
    assert sorted(QuestionCounter.objects.values_list("user__username", "minute", "questions")) == [
        ("imogen", 7, 1),
        ("victor", 8, 1),
    ]


@pytest.mark.django_db
def test_a_user_has_at_most_one_conversation(viewer):
    Conversation.objects.create(user=viewer)

    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(user=viewer)


@pytest.mark.django_db(transaction=True)
def test_migration_merges_a_users_conversations_into_the_newest_keeping_every_message(django_user_model):
    before, after = (
        ("chatbot", "0001_initial"),
        ("chatbot", "0003_one_conversation_per_user_question_counter"),
    )
    MigrationExecutor(connection).migrate([before])
    old_apps = MigrationExecutor(connection).loader.project_state([before]).apps
    OldConversation = old_apps.get_model("chatbot", "Conversation")
    OldMessage = old_apps.get_model("chatbot", "Message")
    twice, once = (django_user_model.objects.create_user(name) for name in ("twice", "once"))
    older = OldConversation.objects.create(user_id=twice.pk, last_plan={"action": "list"})
    newer = OldConversation.objects.create(user_id=twice.pk, last_plan={"action": "count"})
    single = OldConversation.objects.create(user_id=once.pk)
    for conversation, text in ((older, "first"), (newer, "second"), (older, "third"), (single, "alone")):
        OldMessage.objects.create(conversation=conversation, role="user", kind="question", text=text)

    MigrationExecutor(connection).migrate([after])

    kept = Conversation.objects.get(user=twice)
    assert (kept.pk, kept.last_plan) == (newer.pk, {"action": "count"})
    assert list(kept.messages.values_list("text", flat=True)) == ["first", "second", "third"]
    assert list(Conversation.objects.get(user=once).messages.values_list("text", flat=True)) == ["alone"]
    assert Conversation.objects.count() == 2
