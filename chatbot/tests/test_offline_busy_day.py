"""The offline parser's rules for the misses of eval_questions_fresh3.json (questions as typed on a busy
day): shorthand, places without "in", weekdays and day ranges, "the oldest lead", group phrasings, long
"or"/"vs" lists, sheets and files by name, "met at", "the April one", "may" the month and the verb."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatbot.offline import SourceNames, offline_plan
from chatbot.plans import Clarification, Plan
from leads.filters import Condition

from .conftest import TODAY

SOURCES = SourceNames(
    worksheets=("April", "Fair", "March", "Sheet1", "Sheet2"),
    files=("Trade Show 2025.xlsx", "fair.xlsx", "web.csv"),
    latest_file="web.csv",
)
CTO = Condition("title", "word", "cto")
BERLIN = Condition("remarks", "contains", "berlin")


def plan_of(question: str, previous: str | None = None, sources: SourceNames = SOURCES) -> Plan:
    before = offline_plan(previous, today=TODAY, sources=sources) if previous else None
    plan = offline_plan(question, previous=before, today=TODAY, sources=sources)
    assert isinstance(plan, Plan), f"{question!r}: {plan}"
    return plan


def days(first: str, last: str) -> Condition:
    return Condition("created", "between", f"{first}..{last}")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("leads w/o phone", (Condition("phone", "is_empty"),)),
        ("ctos w/ an email", (CTO, Condition("email", "not_empty"))),
        ("how many ppl at Acme", (Condition("company_or_domain", "contains", "acme"),)),
        ("sales mgrs in berlin", (Condition("title", "word", "sales manager"), BERLIN)),
        ("# of CTOs", (CTO,)),
    ],
)
def test_shorthand_is_read_as_the_words_it_stands_for(question, expected):
    assert set(plan_of(question).filters) == set(expected)


def test_shorthand_inside_a_known_name_is_the_name():
    sources = SourceNames(worksheets=("PPL",))

    assert plan_of("leads in the ppl sheet", sources=sources).filters == (
        Condition("worksheet", "contains", "PPL"),
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("cto count berlin", (CTO, BERLIN)),
        ("ceos london", (Condition("title", "word", "ceo"), Condition("remarks", "contains", "london"))),
        (
            "berlin or hamburg leads, how many",
            (Condition.any_of("remarks", "contains", ["berlin", "hamburg"]),),
        ),
        ("leads from Globex Berlin", (Condition("company_or_domain", "contains", "globex berlin"),)),
    ],
)
def test_a_known_place_without_in_is_still_a_place(question, expected):
    assert set(plan_of(question).filters) == set(expected)


def test_us_is_a_pronoun_unless_a_place_word_introduces_it():
    assert plan_of("leads who met us at CeBIT").filters == (Condition("remarks", "contains", "cebit"),)
    assert plan_of("leads in the us").filters == (Condition("remarks", "contains", "us"),)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("new leads since Monday", days("2025-06-09", "2025-06-11")),  # TODAY is Wednesday 11 June
        ("leads added on friday", Condition("created", "equals", "2025-06-06")),
        ("leads added last wednesday", Condition("created", "equals", "2025-06-04")),
        ("how many since yesterday", days("2025-06-10", "2025-06-11")),
        ("between 1 and 15 May how many leads came in", days("2025-05-01", "2025-05-15")),
        ("leads from the 1st to the 15th of May", days("2025-05-01", "2025-05-15")),
        ("leads added May 1-15", days("2025-05-01", "2025-05-15")),
        ("leads created between May 1 and 15", days("2025-05-01", "2025-05-15")),
        ("leads created between May 1 and June 5", days("2025-05-01", "2025-06-05")),
        ("how many leads in may", days("2025-05-01", "2025-05-31")),
    ],
)
def test_weekdays_day_ranges_and_may_the_month(question, expected):
    assert plan_of(question).filters == (expected,)


def test_may_alone_is_the_verb():
    assert plan_of("may I see the ctos").filters == (CTO,)
    assert plan_of("may we list the leads from may").filters == (days("2025-05-01", "2025-05-31"),)


def test_one_oldest_or_newest_lead_is_one_row():
    assert (plan_of("oldest lead we have").sort, plan_of("oldest lead we have").limit) == ("created", 1)
    assert plan_of("who is our most recent contact").limit == 1
    assert plan_of("the latest leads").limit == 10


@pytest.mark.parametrize(
    ("question", "group_by"),
    [
        ("which email domains show up most", "email_domain"),
        ("what titles appear most often", "title"),
        ("which companies do we have the most leads from", "company"),
        ("rank companies by number of leads", "company"),
        ("titles ranked by leads", "title"),
        ("most frequent job titles", "title"),
    ],
)
def test_more_ways_to_ask_for_a_group(question, group_by):
    plan = plan_of(question)
    assert (plan.action, plan.group_by) == ("group", group_by)


def test_three_values_joined_by_or_or_vs():
    assert plan_of("from acme or globex or initech").filters == (
        Condition.any_of("company_or_domain", "contains", ["acme", "globex", "initech"]),
    )
    versus = plan_of("Berlin vs Munich vs Hamburg")
    assert versus.action == "count_each"
    assert versus.filters == (Condition.any_of("remarks", "contains", ["berlin", "munich", "hamburg"]),)
    companies = plan_of("Acme vs Globex")
    assert (companies.action, companies.filters) == (
        "count_each",
        (Condition.any_of("company_or_domain", "contains", ["acme", "globex"]),),
    )


def test_a_sheet_or_file_called_by_name_is_not_a_person():
    assert set(plan_of("leads we got from the sheet called Sheet2 in Berlin").filters) == {
        Condition("worksheet", "contains", "sheet2"),
        BERLIN,
    }
    assert plan_of("leads from the file called web.csv").filters == (
        Condition("source", "contains", "web.csv"),
    )
    assert plan_of("anyone called Lea").filters == (Condition("name", "equals", "lea"),)


def test_more_words_before_a_sheet_or_file_name():
    assert plan_of("number of leads off the March sheet").filters == (
        Condition("worksheet", "contains", "March"),
    )
    assert plan_of("leads via the trade show list").filters == (
        Condition("source", "contains", "Trade Show 2025.xlsx"),
    )


def test_the_april_one_after_the_march_sheet_is_the_april_sheet():
    plan = plan_of("and the April one?", previous="how many leads from the March sheet")

    assert (plan.action, plan.filters) == ("count", (Condition("worksheet", "contains", "April"),))


def test_a_write_request_in_shorthand_is_still_refused():
    assert isinstance(offline_plan("pls delete ppl w/o email", today=TODAY, sources=SOURCES), Clarification)


def test_a_department_before_people_is_a_title_word():
    assert plan_of("marketing ppl").filters == (Condition("title", "word", "marketing"),)
    assert set(plan_of("how many marketing and sales people in berlin").filters) == {
        Condition.any_of("title", "word", ["marketing", "sales"]),
        BERLIN,
    }
    # A company before "people" is still the company (the database has it).
    known = replace(SOURCES, known_companies=("acme",))
    assert plan_of("acme people", sources=known).filters == (
        Condition("company_or_domain", "contains", "acme"),
    )


def test_an_ampersand_joins_like_and():
    assert set(plan_of("ctos & ceos at globex").filters) == {
        Condition.any_of("title", "word", ["cto", "ceo"]),
        Condition("company_or_domain", "contains", "globex"),
    }
    assert plan_of("berlin & munich leads").filters == (
        Condition.any_of("remarks", "contains", ["berlin", "munich"]),
    )
    # A company of the database with "&" in its name stays whole (see test_offline).
    sources = SourceNames(companies=("ernst & young",))
    assert plan_of("leads from Ernst & Young", sources=sources).filters == (
        Condition("company_or_domain", "contains", "Ernst & Young"),
    )


@pytest.mark.parametrize(
    "question", ["show me the CTOs at Acme instead", "CTOs at Acme too", "CTOs at Acme as well"]
)
def test_a_closing_discourse_word_is_not_part_of_the_company(question):
    assert set(plan_of(question, previous="leads from Hooli").filters) == {
        CTO,
        Condition("company_or_domain", "contains", "acme"),
    }


def test_a_place_word_inside_a_name_is_the_name():
    assert plan_of("find Paris Hilton").filters == (Condition("name", "contains", "paris hilton"),)


@pytest.mark.parametrize(
    "question",
    ["how many leads on monday and tuesday", "ctos added in may and in june", "leads from 30-31 feb"],
)
def test_dates_that_cannot_hold_are_asked_back_not_answered_with_nothing(question):
    assert isinstance(offline_plan(question, today=TODAY, sources=SOURCES), Clarification)


def test_dates_that_overlap_still_hold_together():
    assert set(plan_of("leads created after May 1 and before June 1").filters) == {
        Condition("created", "after", "2025-05-01"),
        Condition("created", "before", "2025-06-01"),
    }


def test_a_place_after_from_the_is_a_place():
    assert plan_of("leads from the UK").filters == (Condition("remarks", "contains", "uk"),)
