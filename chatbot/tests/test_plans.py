"""Plan validation (whatever the model sends), the plan in words, and the plan as the lead table's query."""

from __future__ import annotations

from datetime import date

import pytest
from django.http import QueryDict

from chatbot.plans import MAX_LIMIT, Clarification, Plan, plan_describe, plan_to_query, plan_validate
from chatbot.services import plan_run
from leads.filters import Condition, LeadQuery, leads_filter
from leads.models import Lead


def plan(action="list", filters=(), **extra) -> dict:
    return {
        "action": action,
        "filters": list(filters),
        "group_by": None,
        "sort": None,
        "limit": None,
        **extra,
    }


def condition(field, op, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


# --- Validation ----------------------------------------------------------------------------------


def test_a_valid_plan_becomes_a_plan_with_defaults():
    validated = plan_validate(
        plan(
            "list",
            [
                condition("company", "contains", "  Globex  "),
                condition("phone", "not_empty"),
                condition("created", "between", ["2025-06-11", "2025-06-09"]),
            ],
            sort="-created",
        )
    )

    assert validated == Plan(
        "list",
        (
            Condition("company", "contains", "Globex"),
            Condition("phone", "not_empty"),
            Condition("created", "between", "2025-06-09..2025-06-11"),
        ),
        sort="-created",
        limit=10,
    )
    assert plan_validate(validated.to_plan_dict()) == validated


def test_count_and_group_drop_what_does_not_apply_to_them():
    assert plan_validate(plan("count", sort="company", limit=5, group_by="title")) == Plan("count")
    assert plan_validate(plan("group", group_by="title", sort="company")) == Plan(
        "group", group_by="title", limit=20
    )
    assert plan_validate({"action": "count"}) == Plan("count")


def test_a_huge_limit_is_cut_to_the_maximum():
    assert plan_validate(plan("list", limit=10**12)).limit == MAX_LIMIT
    assert plan_validate(plan("group", group_by="company", limit=500)).limit == MAX_LIMIT


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (None, "not an object"),
        ("DELETE FROM leads_lead", "not an object"),
        ([{"action": "count"}], "not an object"),
        ({}, "is not something I can do"),
        (plan("delete"), "“delete” is not something I can do"),
        (plan("count", sql="DROP TABLE leads_lead"), "unexpected parts (sql)"),
        (plan("list", [condition("password", "equals", "x")]), "cannot filter on “password”"),
        (plan("list", [condition("company", "regex", ".*")]), "“regex” does not apply to company"),
        (plan("list", [condition("company", "before", "2025-01-01")]), "does not apply to company"),
        (plan("list", [condition("created", "contains", "2025")]), "does not apply to created"),
        (plan("list", [condition("created", "after", "last tuesday")]), "is not a date"),
        (plan("list", [condition("created", "after", "0001-01-01")]), "out of range"),
        (plan("list", [condition("created", "between", ["2025-01-01"])]), "needs two dates"),
        (plan("list", [condition("company", "contains", "")]), "needs some text"),
        (plan("list", [condition("company", "contains", 42)]), "needs some text"),
        (plan("list", [condition("company", "contains", {"$ne": None})]), "needs some text"),
        (plan("list", [condition("company", "contains", ["a", 42])]), "needs some text"),
        (plan("list", [condition("phone", "is_empty", ["a", "b"])]), "takes no value"),
        (plan("list", [condition("created", "before", ["2025-01-01", "2025-02-01"])]), "is not a date"),
        (plan("list", [condition("company", "contains", "x" * 201)]), "too long"),
        (plan("list", [condition("phone", "not_empty", "yes")]), "takes no value"),
        (plan("list", [{**condition("company", "contains", "a"), "or": [1]}]), "unexpected parts (or)"),
        (plan("list", ["company contains a"]), "a filter is not an object"),
        ({**plan("list"), "filters": {"field": "company"}}, "filters are not a list"),
        (plan("list", [condition("company", "contains", str(n)) for n in range(11)]), "more than 10"),
        (plan("group", group_by="password"), "cannot group by “password”"),
        (plan("group", group_by="remarks"), "cannot group by “remarks”"),
        (plan("group"), "say what to group by"),
        (plan("list", sort="password; DROP TABLE"), "cannot sort by"),
        (plan("list", limit="10"), "is not a number of rows"),
        (plan("list", limit=True), "is not a number of rows"),
        (plan("list", limit=-5), "is not a number of rows"),
        (plan("list", limit=2.5), "is not a number of rows"),
        ({"action": "list", "filters": [[[[[[[]]]]]]]}, "a filter is not an object"),
    ],
)
def test_malformed_and_hostile_plans_become_a_clarification(data, says):
    outcome = plan_validate(data)

    assert isinstance(outcome, Clarification)
    assert says in outcome.message
    assert "“How many leads from Globex?”" in outcome.message  # what to ask instead


def test_model_text_quoted_in_a_clarification_is_cut_short():
    outcome = plan_validate(plan("list", [condition("x" * 5000, "equals", "a")]))

    assert isinstance(outcome, Clarification)
    assert len(outcome.message) < 400


def test_the_model_may_say_it_did_not_understand():
    assert isinstance(plan_validate({"action": "clarify"}), Clarification)
    assert isinstance(plan_validate(plan("clarify")), Clarification)


@pytest.mark.django_db
def test_sql_in_a_value_is_only_text_to_look_for(lead_set):
    hostile = plan_validate(
        plan("count", [condition("company", "contains", "x'; DROP TABLE leads_lead; --")])
    )

    assert isinstance(hostile, Plan)
    assert plan_run(hostile)["total"] == 0
    assert Lead.objects.count() == len(lead_set)


@pytest.mark.django_db
def test_like_wildcards_in_a_value_match_literally(lead_set):
    assert plan_run(plan_validate(plan("count", [condition("company", "contains", "%")])))["total"] == 0
    assert plan_run(plan_validate(plan("count", [condition("email", "contains", "_")])))["total"] == 0


# --- In words ------------------------------------------------------------------------------------


def test_plans_describe_themselves_in_words():
    count = plan_validate(
        plan("count", [condition("company", "contains", "globex"), condition("title", "word", "cto")])
    )
    listing = plan_validate(plan("list", [condition("phone", "is_empty")], sort="-created", limit=5))
    groups = plan_validate(
        plan("group", [condition("created", "between", ["2025-06-09", "2025-06-11"])], group_by="company")
    )

    assert plan_describe(count) == (
        "count · company contains 'globex' · "
        "title has the word 'cto' (or 'chief technology officer', 'chief technical officer')"
    )
    assert plan_describe(listing) == "list the first 5, sorted by created, newest first · phone is empty"
    assert plan_describe(groups) == "count per company, top 20 · created between 2025-06-09 and 2025-06-11"
    assert plan_describe(Plan("list", sort="last_name", limit=10)) == (
        "list the first 10, sorted by last name, A–Z · all leads"
    )
    from_contoso = plan_validate(plan("count", [condition("company_or_domain", "contains", "contoso")]))
    assert plan_describe(from_contoso) == "count · company or email domain contains 'contoso'"
    exact = plan_validate(plan("count", [condition("title", "equals", "CTO")]))
    assert plan_describe(exact) == "count · title equals 'CTO'"  # "exactly" finds no other spellings


# --- As the lead table's query -------------------------------------------------------------------


def test_conditions_the_table_boxes_can_hold_go_into_them():
    query = plan_to_query(
        plan_validate(
            plan(
                "list",
                [
                    condition("company", "contains", "globex"),
                    condition("company", "contains", "berlin"),
                    condition("phone", "not_empty"),
                    condition("email", "is_empty"),
                    condition("created", "between", ["2025-06-09", "2025-06-11"]),
                    condition("updated", "before", "2025-06-01"),
                    condition("title", "word", "cto"),
                ],
                sort="company",
            )
        )
    )

    assert query == LeadQuery(
        company="globex",
        has_phone=True,
        has_email=False,
        created_from=date(2025, 6, 9),
        created_to=date(2025, 6, 11),
        updated_to=date(2025, 5, 31),
        conditions=(Condition("company", "contains", "berlin"), Condition("title", "word", "cto")),
        sort="company",
    )


PLANS_FOR_THE_TABLE = [
    plan("count", [condition("company", "contains", "globex")]),
    plan("count", [condition("company", "contains", "globex"), condition("company", "contains", "berlin")]),
    plan("list", [condition("title", "word", "cto"), condition("created", "after", "2025-06-01")]),
    plan(
        "list", [condition("created", "before", "2025-06-01"), condition("updated", "equals", "2025-05-20")]
    ),
    plan("list", [condition("created", "equals", "2025-06-11"), condition("phone", "not_empty")]),
    plan("count", [condition("email", "is_empty"), condition("email_domain", "contains", "gmail")]),
    plan("group", [condition("remarks", "contains", "berlin")], group_by="title"),
    plan("list", [condition("name", "equals", "ada lovelace"), condition("worksheet", "contains", "fair")]),
    plan("count", [condition("company_or_domain", "contains", "contoso")]),
    plan("count", [condition("company_or_domain", "is_empty")]),
    plan("list", [condition("title", "contains", "cto")]),
    plan("list", [condition("title", "word", "vp of marketing"), condition("title", "starts_with", "vice")]),
    plan(
        "list",
        [
            condition("source", "contains", "Trade Show 2025.xlsx"),
            condition("worksheet", "contains", "march"),
        ],
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("data", PLANS_FOR_THE_TABLE)
def test_the_table_query_selects_exactly_the_plans_leads(lead_set, data):
    validated = plan_validate(data)
    as_conditions_only = LeadQuery(conditions=validated.filters)

    table = leads_filter(LeadQuery.from_params(QueryDict(plan_to_query(validated).querystring())))

    assert sorted(lead.pk for lead in table) == sorted(lead.pk for lead in leads_filter(as_conditions_only))
