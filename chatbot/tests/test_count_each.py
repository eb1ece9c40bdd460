"""Two counts in one question ("how many in Berlin and how many in Munich?", "CTOs vs CEOs"): the
count_each plan, from the offline parser and from the model, answered with one count per value. (Plans from the model: test_llm.py.)"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from chatbot.models import Message
from chatbot.offline import SourceNames, offline_plan
from chatbot.plans import Clarification, Plan, plan_describe, plan_validate
from chatbot.services import plan_run
from leads.filters import Condition

from .conftest import HTMX, TODAY

BERLIN_OR_MUNICH = {"field": "remarks", "op": "contains", "value": ["berlin", "munich"]}


def shown_total(html: str) -> int:
    return int(re.search(r"Showing [\d,]+–[\d,]+ of ([\d,]+)", html).group(1).replace(",", ""))


@pytest.mark.parametrize(
    ("question", "values"),
    [
        ("how many leads in Berlin and how many in Munich?", ["berlin", "munich"]),
        ("How many in Berlin, and how many leads in Munich", ["berlin", "munich"]),
        ("How many CTOs vs CEOs do we have?", ["cto", "ceo"]),
        ("how many from Acme and how many from Globex", ["acme", "globex"]),
        ("number of leads in Hamburg compared to Munich", ["hamburg", "munich"]),
        ("compare Berlin and Munich", ["berlin", "munich"]),
        ("how many Berlin leads vs Hamburg leads", ["berlin", "hamburg"]),
        ("can you count the CFOs and the CEOs separately", ["cfo", "ceo"]),
        ("How many leads in Berlin and Munich each?", ["berlin", "munich"]),
        ("Compare Acme with Globex", ["acme", "globex"]),
        ("compare the March and April sheets", ["March", "April"]),
    ],
)
def test_how_many_a_and_how_many_b_is_one_count_per_value(question, values):
    plan = offline_plan(question, today=TODAY, sources=SourceNames(worksheets=("April", "March")))

    assert isinstance(plan, Plan) and plan.action == "count_each"
    assert [list(condition.values) for condition in plan.filters] == [values]


def test_the_other_conditions_hold_for_each_count():
    plan = offline_plan("How many CTOs in Berlin and how many in Munich?", today=TODAY)

    assert plan.action == "count_each"
    assert set(plan.filters) == {
        Condition("title", "word", "cto"),
        Condition.any_of("remarks", "contains", ["berlin", "munich"]),
    }


def test_and_alone_still_means_both_and_two_kinds_cannot_be_counted_each():
    assert offline_plan("How many leads in Berlin and with a phone?", today=TODAY).action == "count"
    assert isinstance(
        offline_plan("how many leads in Berlin and how many with a phone?", today=TODAY), Clarification
    )


def test_a_follow_up_with_one_value_counts_it():
    previous = offline_plan("how many in Berlin and how many in Munich?", today=TODAY)

    plan = offline_plan("and in Hamburg?", previous=previous, today=TODAY)

    assert plan.action == "count" and plan.filters == (Condition("remarks", "contains", "hamburg"),)


def test_count_each_needs_exactly_one_condition_with_several_values():
    assert isinstance(plan_validate({"action": "count_each", "filters": [BERLIN_OR_MUNICH]}), Plan)
    for filters in (
        [],
        [{"field": "remarks", "op": "contains", "value": "berlin"}],
        [BERLIN_OR_MUNICH, {"field": "title", "op": "word", "value": ["cto", "ceo"]}],
    ):
        result = plan_validate({"action": "count_each", "filters": filters})
        assert isinstance(result, Clarification) and "count_each" in result.message


@pytest.mark.django_db
def test_each_value_is_counted_and_links_to_its_own_leads(lead_set):
    plan = plan_validate({"action": "count_each", "filters": [BERLIN_OR_MUNICH]})

    result = plan_run(plan)

    assert plan_describe(plan) == (
        "count for each of 'berlin', 'munich' · remarks contains 'berlin' or 'munich'"
    )
    assert result["total"] == 7  # either city: the leads "Show in table" opens
    assert [(row["value"], row["count"]) for row in result["groups"]] == [("berlin", 5), ("munich", 2)]
    assert result["groups"][0]["querystring"] == "c=remarks%3Acontains%3Aberlin"


@pytest.mark.django_db
def test_the_answer_says_both_counts_with_a_chart_and_a_table_of_either(viewer_client, lead_set):
    response = viewer_client.post(
        reverse("chatbot:ask"), {"text": "how many leads in Berlin and how many in Munich?"}, **HTMX
    )

    html = response.content.decode()
    assert "5 for “berlin” and 2 for “munich” (7 matching leads in all)." in html
    assert '<figure class="bar-chart">' in html
    rows = re.findall(r'<a href="([^"]+)">(\w+)</a></td>\s*<td class="num">(\d+)</td>', html)
    assert [(name, int(count)) for _, name, count in rows] == [("berlin", 5), ("munich", 2)]
    munich = viewer_client.get(rows[1][0].replace("&amp;", "&")).content.decode()
    assert shown_total(munich) == 2
    answer = Message.objects.get(role=Message.Role.ASSISTANT)
    table = viewer_client.get(answer.table_url).content.decode()
    assert shown_total(table) == 7
    assert "Remarks contains &#x27;berlin&#x27; or &#x27;munich&#x27;" in table
