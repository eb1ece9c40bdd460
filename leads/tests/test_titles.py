"""Job titles as people write them (leads/titles.py), and the table's title filter using them."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from leads.filters import Condition, LeadQuery, leads_filter
from leads.models import Lead
from leads.titles import MAX_VARIANTS, title_key, title_variants


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CTO", {"cto", "chief technology officer", "chief technical officer"}),
        ("Chief Technology Officer", {"cto", "chief technology officer"}),
        ("VP", {"vp", "vice president"}),
        ("VPs", {"vp", "vice president"}),
        ("V.P.", {"vp", "vice president"}),
        ("VP of Sales", {"vp sales", "vice president of sales", "sales vp"}),
        ("Head of Sales", {"head of sales", "sales head"}),
        ("heads of sales", {"head of sales"}),
        ("Sales Managers", {"sales manager"}),
        ("SVP", {"senior vice president"}),
        ("EVP", {"executive vice president"}),
        ("Sr. Engineer", {"senior engineer"}),
    ],
)
def test_a_title_has_its_acronyms_expansions_and_singular_as_variants(value, expected):
    variants = title_variants(value)

    assert variants[0] == " ".join(value.lower().split())  # the value as typed comes first
    assert expected <= set(variants)
    assert len(variants) <= MAX_VARIANTS


def test_words_that_are_no_known_title_have_no_variants():
    assert title_variants("Director") == ("director",)
    assert title_variants("Head of Sales Operations")[0] == "head of sales operations"


@pytest.fixture
def titled_leads(db) -> dict[str, Lead]:
    titles = [
        "CTO",
        "Chief Technology Officer",
        "CTO & Founder",
        "Marketing Director",
        "VP Sales",
        "Head of Sales",
    ]
    return {title: Lead.objects.create(first_name=title, title=title) for title in titles}


def titles_of(query: LeadQuery) -> set[str]:
    return {lead.title for lead in leads_filter(query)}


@pytest.mark.django_db
def test_the_title_box_finds_the_other_spellings_as_whole_words(titled_leads):
    full = titles_of(LeadQuery.from_params(QueryDict("title=Chief+Technology+Officer")))
    short = titles_of(LeadQuery.from_params(QueryDict("title=cto")))

    assert full == {"CTO", "Chief Technology Officer", "CTO & Founder"}  # not the Director
    assert short == full | {"Marketing Director"}  # "cto" typed is still "contains", as it always was


@pytest.mark.django_db
def test_title_conditions_find_the_other_spellings_but_equals_stays_exact(titled_leads):
    def with_condition(op: str, value: str) -> set[str]:
        return titles_of(LeadQuery(conditions=(Condition("title", op, value),)))

    assert with_condition("word", "cto") == {"CTO", "Chief Technology Officer", "CTO & Founder"}
    assert with_condition("word", "vice president of sales") == {"VP Sales"}
    assert with_condition("word", "sales head") == {"Head of Sales"}
    assert with_condition("starts_with", "chief technology") == {"Chief Technology Officer"}
    assert with_condition("equals", "cto") == {"CTO"}


@pytest.mark.django_db
def test_company_or_domain_matches_either_and_is_empty_only_when_both_are(db):
    Lead.objects.create(first_name="A", company="Contoso", email="a@gmail.com")
    Lead.objects.create(first_name="B", company="", email="b@contoso.com")
    Lead.objects.create(first_name="C", company="Globex", email="c@globex.com")
    Lead.objects.create(first_name="D", company="", email="")

    def names(op: str, value: str = "") -> set[str]:
        query = LeadQuery(conditions=(Condition("company_or_domain", op, value),))
        return {lead.first_name for lead in leads_filter(query)}

    assert names("contains", "contoso") == {"A", "B"}
    assert names("is_empty") == {"D"}
    assert names("not_empty") == {"A", "B", "C"}
    assert Condition("company_or_domain", "contains", "contoso").describe() == (
        "company or email domain contains 'contoso'"
    )


@pytest.mark.parametrize(
    "spellings",
    [
        ("CTO", "cto", "C.T.O.", "CTOs", "Chief Technology Officer", "chief technical officer"),
        ("VP Sales", "VP of Sales", "Sales VP", "Vice President Sales", "Vice-President of Sales"),
        ("Head of Sales", "Sales Head", "Heads of Sales"),
        ("Sr. Engineer", "Senior Engineer", "senior engineers"),
        ("Marketing Director", "Director of Marketing"),
    ],
)
def test_the_spellings_of_a_title_share_one_key(spellings):
    assert len({title_key(spelling) for spelling in spellings}) == 1


def test_different_titles_keep_different_keys():
    keys = [
        title_key(title) for title in ("CTO", "CEO", "CTO & Founder", "VP Sales", "VP Marketing", "Sales", "")
    ]

    assert len(set(keys)) == len(keys)
