"""Classes of questions from the sixth first-sight set (eval_questions_fresh7.json) and the leftovers of
round 5: bare sort and group commands build on the previous answer, a word after "most" is a property,
"top leads" has no score to rank by, "how many each", "the 5th of June", "everything", the words
not understood quoted as typed, capitalized names with a title word in them ("Berlin Partner"), and
a misspelled company that matches no lead read as the company it is a typo of ("globx")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatbot import services
from chatbot.offline import nearest_company, offline_plan, respelling_candidates
from chatbot.plans import Clarification, Plan
from leads.filters import Condition
from leads.models import Lead

from .conftest import TODAY
from .test_eval import SOURCES

CTOS = Condition("title", "word", "cto")


def parse(question: str, previous: Plan | None = None) -> Plan | Clarification:
    return offline_plan(question, previous=previous, today=TODAY, sources=SOURCES)


def previous_plan(question: str) -> Plan:
    plan = parse(question)
    assert isinstance(plan, Plan)
    return plan


@pytest.mark.parametrize(
    ("question", "sort", "group_by"),
    [
        ("sort by last name", "last_name", None),
        ("order by company", "company", None),
        ("group by company", None, "company"),
        ("break down by worksheet", None, "worksheet"),
    ],
)
def test_a_bare_sort_or_group_command_keeps_the_previous_filters(question, sort, group_by):
    plan = parse(question, previous_plan("list the CTOs"))

    assert isinstance(plan, Plan)
    assert plan.filters == (CTOS,)
    assert (plan.sort, plan.group_by) == (sort, group_by)


def test_a_sort_command_about_all_leads_starts_over():
    plan = parse("sort all leads by company", previous_plan("list the CTOs"))

    assert isinstance(plan, Plan)
    assert (plan.filters, plan.sort) == ((), "company")


@pytest.mark.parametrize(
    "question", ["which leads are most likely to buy?", "which CTOs are more likely to reply"]
)
def test_a_word_after_most_or_more_is_a_property_and_is_asked_back(question):
    outcome = parse(question)

    assert isinstance(outcome, Clarification)
    assert "likely" in outcome.message


@pytest.mark.parametrize("question", ["top leads", "show me the top 5 leads", "our best contacts in Berlin"])
def test_ranking_the_leads_themselves_is_asked_back(question):
    outcome = parse(question)

    assert isinstance(outcome, Clarification)
    assert "no score" in outcome.message


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("top 3 companies", Plan("group", (), group_by="company", limit=3)),
        ("show the 5 newest leads", Plan("list", (), sort="-created", limit=5)),
    ],
)
def test_top_companies_and_newest_leads_are_still_answered(question, expected):
    assert parse(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "Hamburg vs Berlin, how many each",
        "how many each in Hamburg and Berlin",
        "hamburg and berlin, how many each?",
    ],
)
def test_how_many_each_counts_each_value(question):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert plan.action == "count_each"
    assert plan.filters == (Condition.any_of("remarks", "contains", ["hamburg", "berlin"]),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("leads added since the 5th of June", Condition("created", "between", "2025-06-05..2025-06-11")),
        ("leads created on the 3rd of May", Condition("created", "equals", "2025-05-03")),
        ("leads from the 1st to the 15th of May", Condition("created", "between", "2025-05-01..2025-05-15")),
    ],
)
def test_a_day_written_the_5th_of_june(question, expected):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert plan.filters == (expected,)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("show me everything from fair.xlsx", Condition("source", "contains", "fair.xlsx")),
        ("everything on the March sheet", Condition("worksheet", "contains", "March")),
    ],
)
def test_everything_asks_about_the_leads(question, expected):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert plan.filters == (expected,)


def test_the_words_not_understood_are_quoted_as_typed_not_as_corrected():
    outcome = parse("CTOs with suport tickets")

    assert isinstance(outcome, Clarification)
    assert "“suport tickets”" in outcome.message


@pytest.mark.parametrize(
    ("question", "company"),
    [
        ("leads from Berlin Partner", "Berlin Partner"),
        ("leads from Globex Partner GmbH", "Globex Partner GmbH"),
        ("how many at Smith Consultant Group?", "Smith Consultant Group"),
    ],
)
def test_a_capitalized_name_with_a_title_word_in_it_is_one_company(question, company):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert plan.filters == (Condition("company_or_domain", "contains", company),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("CTOs from Acme", {CTOS, Condition("company_or_domain", "contains", "acme")}),
        ("leads from Berlin CTO", {CTOS, Condition("remarks", "contains", "berlin")}),
        (
            "leads from Globex Marketing Director",
            {
                Condition("title", "word", "marketing director"),
                Condition("company_or_domain", "contains", "globex"),
            },
        ),
        (
            "Engineers at Acme Head of Sales",
            {
                Condition("title", "word", "engineer"),
                Condition("title", "word", "head of sales"),
                Condition("company_or_domain", "contains", "acme"),
            },
        ),
    ],
)
def test_an_acronym_or_a_role_of_an_area_after_a_name_stays_a_title(question, expected):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert set(plan.filters) == expected


def test_a_misspelled_company_the_database_names_is_read_as_that_company():
    sources = replace(SOURCES, respelled_companies=(("globx", "globex"),))
    plan = offline_plan("list al the ctos at globx", today=TODAY, sources=sources)

    assert isinstance(plan, Plan)
    assert set(plan.filters) == {CTOS, Condition("company_or_domain", "contains", "globex")}


@pytest.mark.parametrize(
    ("word", "companies", "expected"),
    [
        ("globx", ["globex", "globex berlin", "gloria"], "globex"),
        ("umbrela", ["umbrella"], "umbrella"),
        ("globez", ["globex", "globen"], None),  # two as close: no guess
        ("initrode", ["initech"], None),  # not close enough
        ("blobex", ["globex"], None),  # another first letter
    ],
)
def test_nearest_company_needs_one_close_name(word, companies, expected):
    assert nearest_company(word, companies) == expected


def test_respelling_candidates_skip_words_the_parser_knows():
    assert respelling_candidates("leads at globx from the partners file in Munich", SOURCES) == ("globx",)
    assert respelling_candidates("CTOs at Acme", SOURCES) == ()  # too short to guess at


@pytest.mark.django_db
def test_source_names_respells_only_a_company_no_lead_matches(lead_set, django_assert_max_num_queries):
    Lead.objects.create(first_name="Sam", email="sam@umbrelo.io")

    with django_assert_max_num_queries(4):
        found = services.respelled_company_names("leads at globx or umbrelo", SOURCES)
    # "umbrelo" is an email domain of a lead: searched as typed.
    assert found == (("globx", "globex"),)
    sources = services.source_names("how many CTOs at globx?")
    plan = offline_plan("how many CTOs at globx?", today=TODAY, sources=sources)
    assert isinstance(plan, Plan)
    assert set(plan.filters) == {CTOS, Condition("company_or_domain", "contains", "globex")}
    assert services.source_names("how many CTOs at Globex?").respelled_companies == ()
