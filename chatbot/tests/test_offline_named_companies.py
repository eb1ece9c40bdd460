"""A word is a company only when something says so: typed with a capital, quoted, or a company of the
database (source_names looks up the words the question names). Otherwise "the interesting leads" would
search for a company "interesting", and "at Acme nowadays" for "acme nowadays"."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatbot import services
from chatbot.offline import named_company_candidates, offline_plan
from chatbot.plans import Clarification, Plan
from leads.filters import Condition
from leads.models import Lead

from .conftest import TODAY
from .test_eval import SOURCES


def parse(question: str, *known: str) -> Plan | Clarification:
    return offline_plan(question, today=TODAY, sources=replace(SOURCES, known_companies=known))


def company(value: str) -> Condition:
    return Condition("company_or_domain", "contains", value)


@pytest.mark.parametrize(
    "question", ["show me the interesting leads", "any cheap leads?", "how many promising contacts"]
)
def test_a_lowercase_word_before_leads_that_no_company_has_is_asked_back(question):
    assert isinstance(parse(question), Clarification)


@pytest.mark.parametrize(
    ("question", "known"),
    [
        ("show me the Acme leads", ()),  # typed with a capital
        ('show me the "acme" leads', ()),  # quoted
        ("acme leads please", ("acme",)),  # a company of the database
        ("Acme leads please", ("acme",)),  # a capital at the start says nothing; the database does
    ],
)
def test_a_word_before_leads_is_a_company_when_something_says_so(question, known):
    plan = parse(question, *known)

    assert isinstance(plan, Plan)
    assert [condition.values for condition in plan.filters] == [("acme",)]


def test_a_capital_at_the_start_alone_does_not_make_a_company():
    assert isinstance(parse("Interesting leads please"), Clarification)


@pytest.mark.parametrize(
    ("question", "known", "value", "ignored"),
    [
        ("how many people work at Acme nowadays", (), "acme", ("nowadays",)),
        ("how many people work at acme nowadays", ("acme",), "acme", ("nowadays",)),
        # Whole names stay whole: every word capitalized, a legal form, or the database has the name.
        ("leads from Globex Berlin", (), "globex berlin", ()),
        ("leads from Acme ltd", (), "acme ltd", ()),
        ("leads from globex berlin", ("globex", "globex berlin"), "globex berlin", ()),
    ],
)
def test_a_company_name_does_not_run_on_into_other_words(question, known, value, ignored):
    plan = parse(question, *known)

    assert isinstance(plan, Plan)
    assert plan.filters == (company(value),)
    assert plan.ignored == ignored


def test_a_name_that_runs_on_into_a_word_that_could_matter_is_asked_back():
    # "closed" could say something about the leads (offline._may_ignore): not dropped.
    assert isinstance(parse("how many people work at Acme closed"), Clarification)


def test_the_candidates_are_the_words_after_from_and_before_leads():
    candidates = named_company_candidates("How many people work at Acme nowadays? And Globex leads?")

    assert candidates == ("many", "how many", "acme", "acme nowadays", "globex", "and globex")
    assert named_company_candidates("show me the leads") == ()


@pytest.mark.django_db
def test_source_names_looks_up_the_named_companies_in_one_query(lead_set, django_assert_num_queries):
    Lead.objects.create(first_name="Sam", company="Interesting Times")

    with django_assert_num_queries(1):
        found = services.named_company_names("Show me the acme leads and the interesting leads at GLOBEX")
    assert found == ("acme", "globex")
    assert services.named_company_names("show me the leads") == ()
    sources = services.source_names("how many people work at acme nowadays")
    assert sources.known_companies == ("acme",)
    plan = offline_plan("how many people work at acme nowadays", today=TODAY, sources=sources)
    assert plan.filters == (company("acme"),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how many ctos in berln", Condition("remarks", "contains", "berlin")),
        ("leads in hamburgg", Condition("remarks", "contains", "hamburg")),
        (
            "how many rows came from the trade show file",
            Condition("source", "contains", "Trade Show 2025.xlsx"),
        ),
        (
            "how many came in through the newsletter signups?",
            Condition("source", "contains", "newsletter_signups.csv"),
        ),
        ("leads that came via the partners list", Condition("source", "contains", "partners.xlsx")),
    ],
)
def test_place_typos_rows_and_through_the_file(question, expected):
    plan = parse(question)

    assert isinstance(plan, Plan)
    assert expected in plan.filters


@pytest.mark.parametrize(
    "question",
    [
        "show me the important people",  # not "import"
        "the main contacts at Globex",  # not "domain"
    ],
)
def test_a_misspelling_is_a_letter_or_two_not_a_syllable(question):
    assert isinstance(parse(question), Clarification)


def test_part_of_a_file_name_word_does_not_name_the_file():
    # "new" is in "newsletter_signups.csv" but is not one of its words; "tradeshow" is two of its words.
    assert parse("show me the new leads").filters == ()
    assert parse("leads from the tradeshow").filters == (
        Condition("source", "contains", "Trade Show 2025.xlsx"),
    )


def test_a_phone_value_makes_having_a_phone_redundant():
    assert parse("anyone with a US number we could ring").filters == (
        Condition("phone", "starts_with", "+1"),
    )
