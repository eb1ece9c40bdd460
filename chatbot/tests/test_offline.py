"""The offline parser's rules for this round: fresh questions vs follow-ups, sheets and files by their
names in the database, titles as people say them, "from X" as company or email domain. (Accuracy over
many phrasings is the evaluation sets' job, test_eval.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot import services
from chatbot.offline import SourceNames, company_candidates, offline_plan, question_is_follow_up
from chatbot.plans import Clarification, Plan
from leads.filters import Condition
from leads.models import Lead

from .conftest import TODAY

SOURCES = SourceNames(
    worksheets=("April", "March", "March 2024", "Sheet1"),
    files=("Trade Show 2024.xlsx", "Trade Show 2025.xlsx", "TradeFair_Berlin.csv", "web.csv"),
    latest_file="web.csv",
)


def filters_of(question: str, sources: SourceNames = SOURCES, previous: Plan | None = None) -> tuple:
    plan = offline_plan(question, previous=previous, today=TODAY, sources=sources)
    assert isinstance(plan, Plan), plan
    return plan.filters


@pytest.mark.parametrize(
    "question",
    [
        "and how many of them have a phone?",
        "what about Initech?",
        "only those with a phone",
        "just the CTOs",
        "which ones are in Berlin?",
        "what are their emails?",
        "of these, who is a CEO?",
        "and the April sheet?",
    ],
)
def test_questions_that_point_back_are_follow_ups(question):
    assert question_is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "How many leads have a phone number?",
        "Now show me all leads from Acme",
        "How many leads have their phone set?",
        "and how many leads do we have in total?",
        "Which companies have the most leads?",
        "Show me the CTOs",
    ],
)
def test_complete_questions_start_over(question):
    assert not question_is_follow_up(question)


def test_a_complete_question_after_an_answer_does_not_keep_its_filters():
    previous = offline_plan("How many CTOs at Globex?", today=TODAY)

    plan = offline_plan("How many leads have a phone number?", previous=previous, today=TODAY)

    assert plan.filters == (Condition("phone", "not_empty"),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many leads in the April sheet?", Condition("worksheet", "contains", "April")),
        ("leads on the april tab", Condition("worksheet", "contains", "April")),
        ("the sheet called April", Condition("worksheet", "contains", "April")),
        ("leads from the berlin trade fair list", Condition("source", "contains", "TradeFair_Berlin.csv")),
        ("leads from the tradefair", Condition("source", "contains", "TradeFair_Berlin.csv")),
        ("the web import", Condition("source", "contains", "web.csv")),
        ("leads from the last import", Condition("source", "contains", "web.csv")),
        ('leads in the "Trade Show 2025" file', Condition("source", "contains", "Trade Show 2025.xlsx")),
        # "March" and "March 2024" both hold "March": one condition finds both sheets.
        ("the March sheet", Condition("worksheet", "contains", "March")),
    ],
)
def test_sheets_and_files_are_matched_to_the_names_in_the_database(question, expected):
    assert filters_of(question) == (expected,)


def test_a_name_that_fits_several_files_or_none_is_asked_back_with_what_there_is():
    several = offline_plan("leads from the trade show list", today=TODAY, sources=SOURCES)
    none = offline_plan("leads in the Summer sheet", today=TODAY, sources=SOURCES)
    two = offline_plan("leads in the March and Summer sheets", today=TODAY, sources=SOURCES)
    nothing_imported = offline_plan("leads from the last import", today=TODAY, sources=SourceNames())

    assert isinstance(several, Clarification)
    assert "“Trade Show 2024.xlsx”, “Trade Show 2025.xlsx”" in several.message
    assert isinstance(none, Clarification) and "“April”, “March”" in none.message
    assert isinstance(two, Clarification) and "when each names one" in two.message
    assert (
        isinstance(nothing_imported, Clarification)
        and "no file has been imported" in nothing_imported.message
    )


def test_without_names_a_sheet_word_still_names_a_sheet_and_a_month_is_not_a_date():
    assert filters_of("leads in the March sheet", sources=SourceNames()) == (
        Condition("worksheet", "contains", "march"),
    )
    assert filters_of("leads added in March", sources=SourceNames())[0].field == "created"


def test_words_of_the_names_are_not_corrected_as_misspellings():
    sources = SourceNames(files=("Leeds Expo.xlsx",))

    assert filters_of("leads from the Leeds expo list", sources=sources) == (
        Condition("source", "contains", "Leeds Expo.xlsx"),
    )


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("How many CTOs?", "cto"),
        ("How many C.T.O.s?", "cto"),
        ("chief technology officers", "chief technology officer"),
        ("cheif tecnology oficers", "chief technology officer"),
        ("the VPs of Sales", "vp of sales"),
        ("VP Sales", "vp sales"),
        ("heads of marketing", "head of marketing"),
        ("sales heads", "sales head"),
        ("how many Vice-Presidents", "vice president"),
    ],
)
def test_titles_are_read_as_people_write_them(question, title):
    assert filters_of(question) == (Condition("title", "word", title),)


def test_from_a_name_is_the_company_or_the_email_domain_but_the_company_word_means_the_company():
    assert filters_of("leads from Contoso") == (Condition("company_or_domain", "contains", "contoso"),)
    # A word before "leads" is a company when the database has it (or it is typed with a capital later on).
    known = replace(SOURCES, known_companies=("contoso",))
    assert filters_of("Contoso leads", known) == (Condition("company_or_domain", "contains", "contoso"),)
    assert filters_of("leads whose company is Contoso") == (Condition("company", "equals", "contoso"),)
    assert filters_of("leads from Germany") == (Condition("remarks", "contains", "germany"),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many CTOs or CEOs?", (Condition.any_of("title", "word", ["cto", "ceo"]),)),
        ("CTOs, CFOs and heads of sales", (Condition.any_of("title", "word", ["cto", "cfo", "head of sales"]),)),
        ("leads in Berlin or in Munich", (Condition.any_of("remarks", "contains", ["berlin", "munich"]),)),
        ("from Acme, Globex or Initech", (Condition.any_of("company_or_domain", "contains", ["acme", "globex", "initech"]),)),
        ("Acme or Globex leads", (Condition.any_of("company_or_domain", "contains", ["acme", "globex"]),)),
        ("leads in the March or the April sheet", (Condition.any_of("worksheet", "contains", ["March", "April"]),)),
        # Titles side by side must both hold: "CTO & Founder".
        ("CTO founders", (Condition("title", "word", "cto"), Condition("title", "word", "founder"))),
        # A comma alone does not join: "how many" is no place.
        ("leads in Berlin, how many?", (Condition("remarks", "contains", "berlin"),)),
    ],
)  # fmt: skip
def test_alternatives_of_one_kind_are_one_condition_any_of_whose_values_may_match(question, expected):
    assert filters_of(question) == expected


def test_alternatives_of_different_kinds_are_asked_back():
    for question in (
        "leads from Germany or Acme",
        "CTOs or leads from Acme",
        "leads in the March and Summer sheets",
    ):
        assert isinstance(offline_plan(question, today=TODAY, sources=SOURCES), Clarification), question


def test_a_follow_up_with_alternatives_replaces_the_previous_title():
    previous = offline_plan("How many CTOs in Berlin?", today=TODAY, sources=SOURCES)

    assert filters_of("what about CFOs or COOs?", previous=previous) == (
        Condition("remarks", "contains", "berlin"),
        Condition.any_of("title", "word", ["cfo", "coo"]),
    )


def test_a_known_company_with_and_in_its_name_is_kept_whole():
    sources = SourceNames(companies=("Smith and Sons", "Ernst & Young"))

    assert filters_of("How many leads from Smith and Sons?", sources=sources) == (
        Condition("company_or_domain", "contains", "Smith and Sons"),
    )
    assert set(filters_of("contacts at ernst & young in Berlin", sources=sources)) == {
        Condition("company_or_domain", "contains", "ernst & young"),
        Condition("remarks", "contains", "berlin"),
    }
    assert filters_of("leads from Smith and Sons or Acme", sources=sources) == (
        Condition.any_of("company_or_domain", "contains", ["Smith and Sons", "acme"]),
    )
    # Without the name in the database "and" joins two companies, as before.
    assert filters_of("How many leads from Smith and Sons?") == (
        Condition.any_of("company_or_domain", "contains", ["smith", "sons"]),
    )


def test_company_candidates_are_the_spans_around_a_join_word():
    spans = company_candidates("How many leads from Smith and Sons Ltd.?")

    assert {"smith and sons", "smith and sons ltd", "smith and sons ltd.", "from smith and sons"} <= set(
        spans
    )
    assert company_candidates("leads from Anderson in Berlin") == ()  # "and" inside a word joins nothing
    assert "ernst & young" in company_candidates("contacts at Ernst & Young")


@pytest.mark.django_db
def test_the_database_gives_the_parser_the_company_names_the_question_names(
    lead_set, django_assert_num_queries
):
    # Many companies with a join word sort before it: the lookup is by the question, not a first 50.
    Lead.objects.bulk_create(Lead(first_name="A", company=f"Able and Co {number:02}") for number in range(60))
    Lead.objects.create(first_name="Sam", company="Smith and Sons")
    Lead.objects.create(first_name="Eli", company="Ernst & Young")
    Lead.objects.create(first_name="Ann", company="Anderson")

    with django_assert_num_queries(1):
        found = services.joined_company_names("Leads from SMITH AND SONS or Ernst & Young in Berlin?")
    assert found == ("ernst & young", "smith and sons")
    with django_assert_num_queries(0):
        assert services.joined_company_names("How many CTOs from Anderson?") == ()
    assert services.joined_company_names("leads from Smith and Jones") == ()
    assert services.source_names("from Smith and Sons").companies == ("smith and sons",)
    assert services.source_names().companies == ()
    # The parser quotes the name as the question typed it.
    plan = offline_plan(
        "How many leads from Smith and Sons?",
        today=TODAY,
        sources=services.source_names("from Smith and Sons?"),
    )
    assert plan.filters == (Condition("company_or_domain", "contains", "Smith and Sons"),)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
@pytest.mark.django_db
def test_postgresql_looks_up_joined_company_names_on_the_company_sort_index(lead_set):
    with CaptureQueriesContext(connection) as queries:
        services.joined_company_names("leads from Smith and Sons")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {queries.captured_queries[0]['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "lead_company_sort_idx" in plan, plan


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # Polite filler and contractions say nothing about the leads.
        ("Hi! Could you pls tell me how many CTOs we have, thanks", (Condition("title", "word", "cto"),)),
        ("I'd like to know which leads don't have a phone", (Condition("phone", "is_empty"),)),
        ("how many CEOs do we have at the moment", (Condition("title", "word", "ceo"),)),
        # A field word that goes on is no value: presence, not email contains "address".
        ("leads that have an email address", (Condition("email", "not_empty"),)),
        ("leads that do not have a phone number", (Condition("phone", "is_empty"),)),
        ("which leads haven't got an email", (Condition("email", "is_empty"),)),
        ("I'm looking for everybody at Hooli", (Condition("company_or_domain", "contains", "hooli"),)),
        # An article after "and" still joins titles: not CFO and CEO at once (no one).
        ("count the CFOs and the CEOs", (Condition.any_of("title", "word", ["cfo", "ceo"]),)),
        # Places are values, never corrected to a keyword ("munich" is not "much").
        ("how many leads in munich", (Condition("remarks", "contains", "munich"),)),
        ("leads added since the start of the month", (Condition("created", "between", "2025-06-01..2025-06-11"),)),
    ],
)  # fmt: skip
def test_everyday_phrasings_find_what_they_ask_for(question, expected):
    assert filters_of(question) == expected


def test_an_interjection_before_a_follow_up_keeps_it_a_follow_up():
    previous = offline_plan("How many CEOs?", today=TODAY, sources=SOURCES)

    assert question_is_follow_up("Thanks! And how many are in Munich?")
    assert filters_of("thanks! and how many are in Munich?", previous=previous) == (
        Condition("title", "word", "ceo"),
        Condition("remarks", "contains", "munich"),
    )


def test_a_follow_up_for_a_place_narrows_the_previous_plan():
    previous = offline_plan("leads by company", today=TODAY, sources=SOURCES)

    plan = offline_plan("same but just for Berlin", previous=previous, today=TODAY, sources=SOURCES)

    assert plan.group_by == "company" and plan.filters == (Condition("remarks", "contains", "berlin"),)
