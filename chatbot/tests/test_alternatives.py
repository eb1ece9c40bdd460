"""Conditions with several values, any of which may match ("CTOs or CEOs"): the one OR a plan can say,
from the plan to the lead table's URL and its query (leads.filters.Condition.alternatives)."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from chatbot.plans import Plan, plan_describe, plan_to_query, plan_validate
from leads.filters import MAX_ALTERNATIVES, Condition, LeadQuery, leads_filter


def test_several_values_round_trip_through_the_table_url():
    condition = Condition.any_of("company", "equals", ["Globex: Berlin & Co", 'say "hi"', "Ümlaut, Inc."])
    query = LeadQuery(conditions=(condition, Condition("title", "word", "cto")))

    assert condition.values == ("Globex: Berlin & Co", 'say "hi"', "Ümlaut, Inc.")
    assert LeadQuery.from_params(QueryDict(query.querystring())) == query
    assert query.without_condition(condition).conditions == (Condition("title", "word", "cto"),)


def test_a_value_given_twice_counts_once_and_one_value_is_a_plain_condition():
    assert Condition.any_of("title", "word", ["cto", "CTO", "ceo"]).values == ("cto", "ceo")
    assert Condition.any_of("title", "word", ["cto", "Cto"]) == Condition("title", "word", "cto")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("title:word_any:cto", "several values look like"),
        ("title:word_any:[1, 2]", "several values look like"),
        ('title:word_any:["cto", ""]', "empty or too long"),
        ('phone:is_empty_any:["a", "b"]', "takes one value"),
        ('created:equals_any:["2025-06-01", "2025-06-02"]', "takes one value"),
        (f"title:word_any:{[str(n) for n in range(MAX_ALTERNATIVES + 1)]}".replace("'", '"'), "at most"),
    ],
)
def test_malformed_several_values_in_the_url_are_ignored_and_said_so(raw, problem):
    query = LeadQuery.from_params({"c": raw})

    assert query.conditions == ()
    assert any(problem in text for text in query.problems), query.problems


@pytest.mark.django_db
def test_any_of_the_values_may_match_with_each_values_own_rules(lead_set):
    def names(*conditions: Condition) -> set[str]:
        return {lead.first_name for lead in leads_filter(LeadQuery(conditions=conditions))}

    ctos_or_ceos = Condition.any_of("title", "word", ["cto", "ceo"])
    berlin_or_munich = Condition.any_of("remarks", "contains", ["berlin", "munich"])
    # Each value finds its title's other spellings ("Chief Technology Officer", "Chief Executive Officer").
    assert names(ctos_or_ceos) == {"Ada", "Bob", "Dan", "Ivy", "Lea", "Mia", "Paul"}
    assert names(ctos_or_ceos, berlin_or_munich) == {"Ada", "Bob", "Lea", "Mia", "Paul"}
    assert names(Condition.any_of("company_or_domain", "contains", ["acme", "contoso"])) == {
        "Hank", "Ivy", "Jon", "Mia", "Noah", "Paul"
    }  # fmt: skip


def test_a_plan_with_several_values_is_validated_described_and_kept_off_the_column_boxes():
    plan = plan_validate(
        {"action": "count", "filters": [{"field": "company", "op": "contains", "value": ["acme", "globex"]}]}
    )

    assert isinstance(plan, Plan)
    assert plan.to_plan_dict()["filters"] == [
        {"field": "company", "op": "contains", "value": ["acme", "globex"]}
    ]
    assert plan_describe(plan) == "count · company contains 'acme' or 'globex'"
    query = plan_to_query(plan)
    assert query.company == "" and query.conditions == plan.filters  # the company box holds one value
