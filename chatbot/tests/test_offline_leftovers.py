"""Words no rule used: ignored (and said so in the plan) when they cannot change the meaning, asked back
about when they could (offline._may_ignore)."""

from __future__ import annotations

import pytest

from chatbot.offline import offline_plan
from chatbot.plans import Clarification, Plan, plan_describe

from .conftest import TODAY
from .test_eval import SOURCES


def parse(question: str, previous: str | None = None) -> Plan | Clarification:
    before = offline_plan(previous, today=TODAY, sources=SOURCES) if previous else None
    assert before is None or isinstance(before, Plan)
    return offline_plan(question, previous=before, today=TODAY, sources=SOURCES)


@pytest.mark.parametrize(
    ("question", "ignored", "described"),
    [
        ("how many CTOs have we actually got?", ("actually",), "count · title has the word 'cto'"),
        ("so, umm, how many people from Globex did we meet basically", ("umm", "meet", "basically"), "count"),
        ("list every CEO ever, thanks mate", ("mate",), "list the first 10 · title has the word 'ceo'"),
        ("folks without a phone number", ("folks",), "list the first 10 · phone is empty"),
        # "ring" is no longer "corrected" to "during" (two letters more): the typed word is ignored.
        ("anyone with a US number we'd like to ring", ("ring",), "phone starts with '+1'"),
        ("for my weekly report: leads added this week by source file", ("weekly",), "count per source file"),
        # A place or company that ran on into words no name has ends where they start.
        (
            "my boss wants the CTO count for Berlin asap",
            ("boss", "wants", "asap"),
            "remarks contains 'berlin'",
        ),
    ],
)
def test_words_that_cannot_change_the_meaning_are_ignored_and_shown(question, ignored, described):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert plan.ignored == ignored
    text = plan_describe(plan)
    assert described in text
    assert text.endswith("ignored: " + ", ".join(f"“{word}”" for word in ignored))
    assert "ignored" not in str(plan.to_plan_dict())  # never sent back to the model or stored as plan


def test_a_follow_up_with_an_ignored_word_still_refines_the_previous_plan():
    plan = parse("and how many of those have a phone, roughly speaking?", previous="list the CTOs")

    assert isinstance(plan, Plan)
    assert plan.action == "count"
    assert {condition.field for condition in plan.filters} == {"title", "phone"}
    assert plan.ignored == ("speaking",)


@pytest.mark.parametrize(
    "question",
    [
        "which leads are qualified?",  # a property after "are"
        "promising CTOs in Berlin",  # qualifies the title
        "show me the hot leads",  # a status leads do not have
        "leads with kids",  # after "with"
        "how many CTOs did Tom meet",  # a capitalized name
        'how many CTOs have we "really" got',  # quoted
        "how many CTOs did we meet 3 times",  # a number
        "how many CTOs in Berlin, not Munich",  # a negation
        "how many leads did we close last quarter",  # a field leads do not have
        "what's the weather like in Munich today",  # only a place and a date: not about leads
        "my boss wants the CTO count for Berlin ASAP",  # a value that ran on into a capitalized word
        "what about umbrella?",  # a follow-up's new value is never ignored (asked without a previous)
    ],
)
def test_words_that_could_change_the_meaning_are_asked_back(question):
    assert isinstance(parse(question), Clarification)


def test_a_replacement_value_in_a_follow_up_is_used_not_ignored():
    plan = parse("what about umbrella?", previous="how many leads from Hooli")

    assert isinstance(plan, Plan)
    assert [condition.value for condition in plan.filters] == ["umbrella"]
    assert plan.ignored == ()


def test_a_value_naming_a_field_leads_do_not_have_is_asked_back():
    outcome = parse("leads in the healthcare industry")

    assert isinstance(outcome, Clarification)
    assert "no “industry” field" in outcome.message


@pytest.mark.parametrize(
    ("question", "group_by", "ignored"),
    [
        ("which companies are giving us the most leads", "company", ()),
        ("gimme the titles breakdown for Globex", "title", ()),
        ("distribution of leads across worksheets", "worksheet", ("distribution",)),
    ],
)
def test_group_phrasings(question, group_by, ignored):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert (plan.action, plan.group_by, plan.ignored) == ("group", group_by, ignored)


def test_number_words_after_newest_and_how_is_a_company_doing():
    newest = parse("newest three leads")
    looking = parse("how's Initech looking, lead-wise?")

    assert isinstance(newest, Plan) and (newest.sort, newest.limit) == ("-created", 3)
    assert isinstance(looking, Plan) and looking.action == "count"
    assert [condition.value for condition in looking.filters] == ["initech"]
    assert looking.ignored == ("lead-wise",)


def test_touched_is_updated():
    plan = parse("how many leads were touched today")

    assert isinstance(plan, Plan)
    assert [(c.field, c.op) for c in plan.filters] == [("updated", "equals")]
