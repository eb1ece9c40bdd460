"""The offline parser's rules for the misses of eval_questions_fresh4.json (managers, non-native
speakers, company names with "&"): names with "&" kept whole, a split half of one or two letters never
a value, each date with its own verb, "the tab named sheet 1", phone country codes, status and owner
as sort keys, requests to change or send asked back, bare group follow-ups."""

from __future__ import annotations

import pytest

from chatbot.offline import READ_ONLY_TEXT, SourceNames, offline_plan
from chatbot.plans import Clarification, Plan
from leads.filters import Condition

from .conftest import TODAY

SOURCES = SourceNames(
    worksheets=("April", "Fair", "March", "Sheet1", "Sheet2"),
    files=("Trade Show 2025.xlsx", "fair.xlsx", "web.csv"),
    latest_file="web.csv",
)
CTO = Condition("title", "word", "cto")


def outcome_of(question: str, previous: str | None = None, sources: SourceNames = SOURCES):
    before = offline_plan(previous, today=TODAY, sources=sources) if previous else None
    return offline_plan(question, previous=before, today=TODAY, sources=sources)


def plan_of(question: str, previous: str | None = None, sources: SourceNames = SOURCES) -> Plan:
    plan = outcome_of(question, previous, sources)
    assert isinstance(plan, Plan), f"{question!r}: {plan}"
    return plan


def company(value: str) -> Condition:
    return Condition("company_or_domain", "contains", value)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how many leads from AT&T?", (company("AT&T"),)),
        ("count leads from AT & T", (company("AT & T"),)),
        ("any leads at Procter & Gamble", (company("Procter & Gamble"),)),
        ("do we have leads from Smith, Jones & Co?", (company("Smith, Jones & Co"),)),
        ("any contacts from McKinsey & Company", (company("McKinsey & Company"),)),
        ("CTOs at Johnson & Johnson", (CTO, company("Johnson & Johnson"))),
        ("leads from procter & gamble in Berlin", (Condition("remarks", "contains", "berlin"), company("procter & gamble"))),
    ],
)  # fmt: skip
def test_a_company_name_with_an_ampersand_stays_whole(question, expected):
    plan = plan_of(question)

    assert set(plan.filters) == set(expected)
    assert all(len(c.value) > 2 for c in plan.filters if c.field == "company_or_domain")


def test_ampersand_still_joins_titles_and_places():
    assert plan_of("ctos & ceos at globex").filters == (
        Condition.any_of("title", "word", ["cto", "ceo"]),
        company("globex"),
    )
    assert plan_of("leads in Berlin & Munich").filters == (
        Condition.any_of("remarks", "contains", ["berlin", "munich"]),
    )


@pytest.mark.parametrize("question", ["leads from AT and T", "how many from A and B", "from Acme or X"])
def test_a_split_half_of_one_or_two_letters_is_never_a_value(question):
    outcome = outcome_of(question)

    # Asked back, or kept whole: never a condition that matches almost every lead.
    if isinstance(outcome, Plan):
        values = [value for c in outcome.filters for value in (c.value, *c.alternatives)]
        assert all(len(value) > 2 for value in values), outcome
    else:
        assert isinstance(outcome, Clarification)


def test_each_date_belongs_to_its_own_verb():
    assert set(plan_of("added this week and updated today").filters) == {
        Condition("created", "between", "2025-06-09..2025-06-11"),
        Condition("updated", "equals", "2025-06-11"),
    }
    assert set(plan_of("leads updated in May and created in April").filters) == {
        Condition("updated", "between", "2025-05-01..2025-05-31"),
        Condition("created", "between", "2025-04-01..2025-04-30"),
    }
    # One kind of verb: every date is of that kind, as before.
    assert plan_of("leads updated since June 2").filters == (
        Condition("updated", "between", "2025-06-02..2025-06-11"),
    )


@pytest.mark.parametrize(
    "question", ["the tab named sheet 1", "show me the tab called Sheet 1", "leads in the sheet named sheet1"]
)
def test_the_tab_named_sheet_n_is_that_sheet(question):
    (condition,) = plan_of(question).filters

    assert (condition.field, condition.op, condition.value.lower()) == ("worksheet", "contains", "sheet1")


@pytest.mark.parametrize(
    ("question", "code"),
    [("leads with a German number", "+49"), ("how many have a US phone number", "+1"), ("UK mobiles", "+44")],
)
def test_a_phone_number_of_a_country_starts_with_its_code(question, code):
    assert plan_of(question).filters == (Condition("phone", "starts_with", code),)


def test_leads_we_can_call_have_a_phone():
    assert plan_of("how many leads can we call?").filters == (Condition("phone", "not_empty"),)
    assert set(plan_of("CTOs we can call").filters) == {CTO, Condition("phone", "not_empty")}


@pytest.mark.parametrize(
    ("question", "sort", "limit"),
    [
        ("list the leads sorted by status", "status", 10),
        ("list the Fair sheet by owner", "owner", 10),
        ("last 10 leads we added", "-created", 10),
        ("who was added most recently?", "-created", 1),
    ],
)
def test_sort_keys_and_the_newest(question, sort, limit):
    plan = plan_of(question)

    assert (plan.sort, plan.limit) == (sort, limit)
    assert all(c.field != "title" for c in plan.filters)  # "owner" is not the job title here


@pytest.mark.parametrize(
    "question",
    [
        "set the owner of all Acme leads to me",
        "please mark Ada as qualified",
        "assign all Globex leads to Tom",
        "how do I import a new file?",
        "send an email to all CTOs",
    ],
)
def test_requests_to_change_or_send_are_asked_back(question):
    assert outcome_of(question) == Clarification(READ_ONLY_TEXT)


def test_status_is_asked_back_not_guessed():
    assert isinstance(outcome_of("how many leads are qualified?"), Clarification)
    # "set" at the end of a question is presence, not a request.
    assert plan_of("how many leads have their phone set?").filters == (Condition("phone", "not_empty"),)


def test_a_bare_group_phrase_refines_the_previous_answer():
    plan = plan_of("per sheet?", previous="how many leads from the trade show file")

    assert (plan.action, plan.group_by) == ("group", "worksheet")
    assert plan.filters == (Condition("source", "contains", "Trade Show 2025.xlsx"),)


@pytest.mark.parametrize(
    ("question", "group_by", "limit"),
    [
        ("which sheet brought in the most leads?", "worksheet", 20),
        ("what are our 5 biggest accounts", "company", 5),
        ("give me a summary of leads per source file", "source", 20),
    ],
)
def test_report_phrasings_group(question, group_by, limit):
    plan = plan_of(question)

    assert (plan.action, plan.group_by, plan.limit, plan.filters) == ("group", group_by, limit, ())


def test_how_are_we_doing_counts():
    plan = plan_of("how are we doing on CTOs?")

    assert (plan.action, plan.filters) == ("count", (CTO,))


def test_sort_what_by_a_field_sorts_it():
    plan = plan_of("sort the CEOs by company")

    assert (plan.action, plan.sort, plan.group_by, plan.filters) == (
        "list",
        "company",
        None,
        (Condition("title", "word", "ceo"),),
    )


def test_the_newest_of_a_title_is_one_lead():
    assert (plan_of("the newest CTO").limit, plan_of("the newest CTOs").limit) == (1, 10)


def test_a_country_one_after_a_question_about_numbers_replaces_the_country():
    plan = plan_of("and with a US one?", previous="how many leads with a German number")

    assert (plan.action, plan.filters) == ("count", (Condition("phone", "starts_with", "+1"),))


def test_leads_has_a_company():
    assert plan_of("how much leads has Contoso Ltd?").filters == (company("contoso ltd"),)
    assert plan_of("which leads has a phone").filters == (Condition("phone", "not_empty"),)


def test_what_happened_is_what_came_in():
    assert plan_of("what happened yesterday?").filters == (Condition("created", "equals", "2025-06-10"),)


def test_phone_numbers_from_a_country_are_its_code_not_a_place():
    assert plan_of("leads with phone numbers from Germany").filters == (
        Condition("phone", "starts_with", "+49"),
    )
    # Leads from Germany are still a place.
    assert plan_of("leads from Germany").filters == (Condition("remarks", "contains", "germany"),)


def test_nothing_in_a_field_is_empty():
    assert plan_of("which leads have nothing in the phone field").filters == (Condition("phone", "is_empty"),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how are we doing in Hamburg?", ("count", None, None)),
        ("give me overview of titles", ("group", "title", None)),
        ("the last lead we imported", ("list", None, "-created")),
    ],
)
def test_more_report_phrasings(question, expected):
    plan = plan_of(question)

    assert (plan.action, plan.group_by, plan.sort) == expected


def test_a_count_for_a_company_broken_down_by_sheet():
    plan = plan_of("What's the lead count for Umbrella, broken down by sheet?")

    assert (plan.action, plan.group_by, plan.filters) == ("group", "worksheet", (company("umbrella"),))
