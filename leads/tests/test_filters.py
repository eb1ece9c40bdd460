"""LeadQuery parsing/printing and the database side of filtering, sorting and paging."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from leads import filters
from leads.filters import LeadQuery, leads_count_capped, leads_filter, leads_page
from leads.models import Lead
from processing.models import ImportJob

pytestmark = pytest.mark.django_db


def names(queryset) -> list[str]:
    return [lead.first_name for lead in queryset]


def set_updated(lead: Lead, day: date, hour: int = 12) -> None:
    # update() bypasses auto_now, which would otherwise stamp "now".
    moment = timezone.make_aware(datetime.combine(day, time(hour)))
    Lead.objects.filter(pk=lead.pk).update(updated_at=moment, created_at=moment)


# --- LeadQuery: parsing and printing ---------------------------------------------------------


def test_query_string_round_trip_keeps_every_parameter():
    job = uuid.uuid4()
    params = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "title": "cto",
        "company": "Acme",
        "email": "ada@",
        "phone": "+49",
        "worksheet": "Sheet 2",
        "source": "fair.xlsx",
        "job": str(job),
        "q": "analytical engine",
        "updated_from": "2025-01-01",
        "updated_to": "2025-01-31",
        "created_from": "2024-12-01",
        "created_to": "2024-12-31",
        "has_phone": "yes",
        "has_email": "no",
        "sort": "-company",
        "page": "3",
        "per_page": "50",
    }
    query = LeadQuery.from_params(params)

    assert query.to_params() == params
    assert LeadQuery.from_params(QueryDict(query.querystring())) == query
    assert query.job == job and query.has_phone is True and query.has_email is False
    assert query.updated_from == date(2025, 1, 1)
    assert query.problems == ()


def test_defaults_are_left_out_of_the_url():
    query = LeadQuery.from_params(QueryDict("sort=-updated&page=1&per_page=25&q=&company="))

    assert query == LeadQuery()
    assert query.querystring() == ""
    assert query.querystring(sort="company", page=2) == "sort=company&page=2"


@pytest.mark.parametrize(
    ("querystring", "expected", "problem"),
    [
        ("sort=password", LeadQuery(), "Cannot sort by “password”"),
        ("per_page=9999", LeadQuery(), "25 leads per page"),
        ("per_page=-5", LeadQuery(), "25 leads per page"),
        ("page=abc", LeadQuery(), None),
        ("page=-3", LeadQuery(), None),
        ("page=99999999999999999999", LeadQuery(), None),
        ("updated_from=2024-13-45", LeadQuery(), "Ignored “2024-13-45” for Updated from"),
        ("created_to=0001-01-01", LeadQuery(), "Ignored “0001-01-01” for Created to"),
        ("job=not-a-uuid", LeadQuery(), "import id"),
        ("has_phone=maybe", LeadQuery(), "use yes or no"),
        ("company=ac%00me", LeadQuery(company="acme"), None),
        (f"company={'x' * 500}", LeadQuery(company="x" * 200), None),
    ],
)
def test_invalid_parameters_fall_back_to_defaults_and_say_so(querystring, expected, problem):
    query = LeadQuery.from_params(QueryDict(querystring))

    assert query == expected
    if problem:
        assert any(problem in text for text in query.problems)
    else:
        assert query.problems == ()


def test_building_a_query_in_code_with_a_bad_sort_is_an_error():
    with pytest.raises(ValueError, match="unknown sort"):
        LeadQuery(sort="password")
    with pytest.raises(ValueError, match="per_page"):
        LeadQuery(per_page=7)


def test_is_filtered_ignores_sort_and_paging():
    assert not LeadQuery(sort="company", page=4, per_page=100).is_filtered
    assert LeadQuery(has_email=False).is_filtered
    assert LeadQuery(company="acme", sort="company", page=3).cleared() == LeadQuery(sort="company")


# --- Filtering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "model_field", "stored", "typed"),
    [
        ("first_name", "first_name", "Margarethe", "GARET"),
        ("last_name", "last_name", "Müller", "mül"),
        ("title", "title", "Head of Sales", "of sa"),
        ("company", "company", "ACME Corp", "acme"),
        ("email", "email", "ada@example.com", "EXAMPLE.C"),
        ("phone", "phone", "+49 30 1234567", "30 12"),
        ("worksheet", "worksheet", "Q3 Leads", "q3 l"),
        ("source", "source_file", "Trade Fair.xlsx", "fair.XLSX"),
    ],
)
def test_each_column_filter_is_a_case_insensitive_contains(param, model_field, stored, typed):
    Lead.objects.create(remarks="match", **{model_field: stored})
    Lead.objects.create(remarks="other", first_name="Zed", company="Initech", source_file="web.csv")

    found = leads_filter(LeadQuery(**{param: typed}))

    assert [lead.remarks for lead in found] == ["match"]


def test_column_filters_combine_with_and():
    Lead.objects.create(first_name="Ada", company="Acme")
    Lead.objects.create(first_name="Ada", company="Globex")
    Lead.objects.create(first_name="Bob", company="Acme")

    assert [
        (lead.first_name, lead.company) for lead in leads_filter(LeadQuery(first_name="ada", company="acme"))
    ] == [("Ada", "Acme")]


def test_global_search_needs_every_word_in_some_field():
    Lead.objects.create(first_name="Ada", last_name="Lovelace", company="Engines Ltd")
    Lead.objects.create(first_name="Ada", last_name="Byron", company="Acme")
    Lead.objects.create(first_name="Grace", title="Ada programmer")
    Lead.objects.create(first_name="Phoney", phone="+44 20 7946 0000")
    Lead.objects.create(first_name="Mailed", email="someone@lovelace.org")

    assert sorted(names(leads_filter(LeadQuery(q="ada")))) == ["Ada", "Ada", "Grace"]
    assert names(leads_filter(LeadQuery(q="ADA engines"))) == ["Ada"]
    assert sorted(names(leads_filter(LeadQuery(q="lovelace")))) == ["Ada", "Mailed"]
    assert names(leads_filter(LeadQuery(q="7946"))) == ["Phoney"]
    assert names(leads_filter(LeadQuery(q="ada nobody"))) == []


def test_date_ranges_include_both_end_days():
    for day in (1, 9, 10, 20, 21):
        set_updated(Lead.objects.create(first_name=f"jan{day:02}"), date(2025, 1, day), hour=23)

    query = LeadQuery(updated_from=date(2025, 1, 10), updated_to=date(2025, 1, 20), sort="updated")
    assert names(leads_filter(query)) == ["jan10", "jan20"]
    assert names(leads_filter(LeadQuery(created_to=date(2025, 1, 9), sort="created"))) == ["jan01", "jan09"]
    assert names(leads_filter(LeadQuery(created_from=date(2025, 1, 21)))) == ["jan21"]


def test_source_and_import_filters():
    job = ImportJob.objects.create(original_filename="fair.xlsx")
    Lead.objects.create(first_name="from-job", source_file="fair.xlsx", import_job=job)
    Lead.objects.create(first_name="same-file-other-import", source_file="fair.xlsx")
    Lead.objects.create(first_name="elsewhere", source_file="web.csv")

    assert sorted(names(leads_filter(LeadQuery(source="FAIR")))) == ["from-job", "same-file-other-import"]
    assert names(leads_filter(LeadQuery(job=job.pk))) == ["from-job"]
    assert names(leads_filter(LeadQuery(job=uuid.uuid4()))) == []


def test_has_phone_and_has_email():
    Lead.objects.create(first_name="both", phone="+1 555", email="both@example.com")
    Lead.objects.create(first_name="phone-only", phone="+1 556")
    Lead.objects.create(first_name="neither")

    assert sorted(names(leads_filter(LeadQuery(has_phone=True)))) == ["both", "phone-only"]
    assert names(leads_filter(LeadQuery(has_phone=False))) == ["neither"]
    assert names(leads_filter(LeadQuery(has_phone=True, has_email=False))) == ["phone-only"]
    assert names(leads_filter(LeadQuery(has_email=True))) == ["both"]


# --- Sorting ---------------------------------------------------------------------------------


@pytest.fixture
def companies() -> list[Lead]:
    return [
        Lead.objects.create(first_name=first_name, company=company)
        for first_name, company in [
            ("b", "Beta"),
            ("empty1", ""),
            ("a", "alpha"),
            ("g", "Gamma"),
            ("empty2", ""),
        ]
    ]


def test_sort_ascending_is_case_insensitive_with_empty_values_last(companies):
    assert names(leads_filter(LeadQuery(sort="company"))) == ["a", "b", "g", "empty1", "empty2"]


def test_sort_descending_also_puts_empty_values_last(companies):
    assert names(leads_filter(LeadQuery(sort="-company"))) == ["g", "b", "a", "empty2", "empty1"]


def test_sort_by_source_orders_by_file_then_worksheet_then_row():
    Lead.objects.create(first_name="b-sheet1-row9", source_file="b.csv", worksheet="Sheet1", source_row=9)
    Lead.objects.create(first_name="a-sheet2-row1", source_file="a.csv", worksheet="Sheet2", source_row=1)
    Lead.objects.create(first_name="a-sheet1-norow", source_file="a.csv", worksheet="Sheet1")
    Lead.objects.create(first_name="a-sheet1-row3", source_file="a.csv", worksheet="Sheet1", source_row=3)
    Lead.objects.create(first_name="no-source")

    assert names(leads_filter(LeadQuery(sort="source"))) == [
        "a-sheet1-row3",
        "a-sheet1-norow",
        "a-sheet2-row1",
        "b-sheet1-row9",
        "no-source",
    ]


def test_default_sort_is_latest_update_first_with_ties_broken_by_id():
    first, second, third = (Lead.objects.create(first_name=name) for name in ("first", "second", "third"))
    same_moment = timezone.now() - timedelta(days=1)
    Lead.objects.filter(pk__in=[first.pk, second.pk]).update(updated_at=same_moment)

    assert names(leads_filter(LeadQuery())) == ["third", "second", "first"]
    assert names(leads_filter(LeadQuery(sort="updated"))) == ["first", "second", "third"]


# --- Paging and counting ---------------------------------------------------------------------


@pytest.fixture
def sixty_leads() -> None:
    Lead.objects.bulk_create(Lead(first_name=f"lead{i:02}", company="Acme") for i in range(60))


def test_second_page_of_sixty(sixty_leads):
    page = leads_page(LeadQuery(page=2, sort="first_name"))

    assert (page.start, page.end, page.total, page.num_pages) == (26, 50, 60, 3)
    assert names(page.leads) == [f"lead{i:02}" for i in range(25, 50)]
    assert page.has_previous and page.has_next


def test_page_past_the_end_shows_the_last_page(sixty_leads):
    page = leads_page(LeadQuery(page=40, per_page=50))

    assert page.number == 2 and page.query.page == 2
    assert (page.start, page.end) == (51, 60)
    assert not page.has_next


def test_last_page_is_read_without_a_count_query(sixty_leads, django_assert_num_queries):
    with django_assert_num_queries(1):
        page = leads_page(LeadQuery(page=3))
    assert (page.start, page.end, page.total) == (51, 60, 60)


def test_count_stops_at_the_cap(sixty_leads, monkeypatch):
    assert leads_count_capped(Lead.objects.all(), cap=10) == 11
    assert leads_count_capped(Lead.objects.filter(first_name="lead07"), cap=10) == 1

    monkeypatch.setattr(filters, "COUNT_CAP", 10)
    page = leads_page(LeadQuery())
    assert page.total_is_capped and page.num_pages is None and page.has_next


def test_page_beyond_a_capped_count_is_reported_as_past_the_end(sixty_leads, monkeypatch):
    monkeypatch.setattr(filters, "COUNT_CAP", 10)

    page = leads_page(LeadQuery(page=9))

    assert page.past_end and page.leads == [] and page.number == 9


# --- Conditions (what the chatbot's plans and the table's chips say) -------------------------


def test_conditions_round_trip_through_repeated_url_parameters():
    conditions = (
        filters.Condition("company", "equals", "Globex: Berlin & Co"),
        filters.Condition("created", "between", "2025-06-09..2025-06-11"),
        filters.Condition("phone", "not_empty"),
    )
    query = LeadQuery(conditions=conditions, company="acme")

    querystring = query.querystring()

    assert querystring.count("c=") == 3
    assert "c=company%3Aequals%3AGlobex%3A+Berlin+%26+Co" in querystring
    assert LeadQuery.from_params(QueryDict(querystring)) == query
    assert LeadQuery.from_params(query.to_params()) == query
    assert query.is_filtered
    assert query.cleared().conditions == ()
    assert query.without_condition(conditions[0]).conditions == conditions[1:]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("salary:equals:1", "there is no field “salary”"),
        ("company:regex:.*", "“regex” does not apply to company"),
        ("company:contains:", "needs a value"),
        ("phone:is_empty:x", "takes no value"),
        ("created:contains:2025", "does not apply to the created date"),
        ("created:before:yesterday", "is not a date"),
        ("created:between:2025-06-09", "date range"),
        ("updated:between:2025-06-09..2025-01-01", "ends before it starts"),
        ("garbage", "there is no field"),
    ],
)
def test_invalid_conditions_are_ignored_and_said_so(raw, problem):
    query = LeadQuery.from_params({"c": raw})

    assert query.conditions == ()
    assert any(problem in text for text in query.problems), query.problems


def test_too_many_conditions_keep_the_first_ones_and_duplicates_collapse():
    params = QueryDict(mutable=True)
    params.setlist("c", ["company:contains:a"] * 2 + [f"title:contains:t{i}" for i in range(12)])

    query = LeadQuery.from_params(params)

    assert len(query.conditions) == filters.MAX_CONDITIONS
    assert query.conditions[0] == filters.Condition("company", "contains", "a")
    assert any("first 10 conditions" in text for text in query.problems)
    with pytest.raises(ValueError, match="at most"):
        LeadQuery(conditions=(filters.Condition("company", "contains", "a"),) * 11)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (("company", "contains", "GLOB"), ["globex-cto", "globex-ceo", "globex-berlin"]),
        (("company", "equals", "globex"), ["globex-cto", "globex-ceo"]),
        (("company", "starts_with", "glo"), ["globex-cto", "globex-ceo", "globex-berlin"]),
        (("company", "is_empty", ""), ["no-company"]),
        (("title", "not_empty", ""), ["globex-cto", "globex-ceo", "globex-berlin", "initech"]),
        (("name", "contains", "ada lovelace"), ["globex-cto"]),
        (("name", "equals", "LOVELACE"), ["globex-cto"]),
        (("name", "is_empty", ""), ["globex-ceo", "globex-berlin", "no-company"]),
        (("email_domain", "equals", "globex.com"), ["globex-cto", "globex-ceo"]),
        (("email_domain", "contains", "globex"), ["globex-cto", "globex-ceo", "globex-berlin"]),
        (("email_domain", "starts_with", "init"), ["initech"]),
        (("email_domain", "is_empty", ""), ["no-company"]),
        (("email", "starts_with", "ada@"), ["globex-cto"]),
        (("phone", "not_empty", ""), ["globex-cto", "initech"]),
        (("remarks", "contains", "berlin"), ["globex-berlin"]),
        (("worksheet", "equals", "fair"), ["initech"]),
        (("source", "contains", ".XLSX"), ["initech"]),
    ],
)
def test_each_text_condition_matches_case_insensitively(condition, expected):
    Lead.objects.create(
        first_name="Ada",
        last_name="Lovelace",
        company="Globex",
        title="CTO",
        email="ada@globex.com",
        phone="+4930123",
        remarks="globex-cto",
    )
    Lead.objects.create(company="GLOBEX", title="CEO", email="ceo@globex.com", remarks="globex-ceo")
    Lead.objects.create(
        company="Globex Berlin", title="CFO", email="cfo@globex.de", remarks="City: Berlin\nglobex-berlin"
    )
    Lead.objects.create(
        first_name="Peter",
        company="Initech",
        title="Manager",
        email="peter@initech.io",
        phone="555",
        worksheet="Fair",
        source_file="fair.xlsx",
        remarks="initech",
    )
    Lead.objects.create(remarks="no-company")

    found = leads_filter(LeadQuery(conditions=(filters.Condition(*condition),)))

    assert sorted(lead.remarks.split("\n")[-1] for lead in found) == sorted(expected)


def test_date_conditions_work_on_whole_days():
    for day in (8, 9, 11, 12):
        set_updated(Lead.objects.create(first_name=f"jun{day:02}"), date(2025, 6, day), hour=0)

    def found(op: str, value: str) -> list[str]:
        query = LeadQuery(conditions=(filters.Condition("created", op, value),), sort="created")
        return names(leads_filter(query))

    assert found("before", "2025-06-09") == ["jun08"]
    assert found("after", "2025-06-11") == ["jun12"]
    assert found("equals", "2025-06-11") == ["jun11"]
    assert found("between", "2025-06-09..2025-06-11") == ["jun09", "jun11"]


def test_conditions_describe_themselves_in_words():
    assert str(filters.Condition("company", "equals", "Globex")) == "company equals 'Globex'"
    assert (
        filters.Condition("email_domain", "starts_with", "glo").describe() == "email domain starts with 'glo'"
    )
    assert filters.Condition("phone", "not_empty").describe() == "phone is not empty"
    assert filters.Condition("source", "is_empty").describe() == "source file is empty"
    assert filters.Condition("created", "equals", "2025-06-11").describe() == "created on 2025-06-11"
    assert filters.Condition("updated", "before", "2025-06-11").describe() == "updated before 2025-06-11"
    assert (
        filters.Condition("created", "between", "2025-06-09..2025-06-11").describe()
        == "created between 2025-06-09 and 2025-06-11"
    )


def test_conditions_combine_with_the_column_filters():
    Lead.objects.create(first_name="match", company="Globex", title="CTO")
    Lead.objects.create(first_name="wrong-title", company="Globex", title="CEO")
    Lead.objects.create(first_name="wrong-company", company="Globex Ltd", title="CTO")

    query = LeadQuery(title="ct", conditions=(filters.Condition("company", "equals", "globex"),))

    assert names(leads_filter(query)) == ["match"]


def test_word_condition_matches_whole_words_only():
    for title in ("CTO", "CTO & Co-Founder", "Marketing Director", "Acting (cto)", "CTOs", "Head of C++ dev"):
        Lead.objects.create(first_name=title, title=title)
    Lead.objects.create(first_name="dotted", title="a.b team")
    Lead.objects.create(first_name="not-dotted", title="axb team")

    def found(value: str) -> list[str]:
        query = LeadQuery(conditions=(filters.Condition("title", "word", value),), sort="first_name")
        return names(leads_filter(query))

    assert found("cto") == ["Acting (cto)", "CTO", "CTO & Co-Founder"]
    assert found("c++") == ["Head of C++ dev"]
    assert found("a.b") == ["dotted"]
    assert found("head of") == ["Head of C++ dev"]
    assert filters.Condition("title", "word", "cto").describe() == "title has the word 'cto'"
