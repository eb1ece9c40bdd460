"""The evaluation set (eval_questions.json): questions → expected plans and, on the fixed lead set,
expected answers. The offline parser must get at least 90 % of the plans right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.offline import offline_plan
from chatbot.plans import ACTIONS, Clarification, Plan, plan_validate
from chatbot.services import plan_run
from leads.filters import CONDITION_FIELDS, DATE_OPS, TEXT_OPS

from .conftest import TODAY

EVAL_SET = json.loads((Path(__file__).parent / "eval_questions.json").read_text(encoding="utf-8"))
REQUIRED_ACCURACY = 0.9


def expected_plan(item: dict) -> Plan | None:
    if item.get("clarification"):
        return None
    plan = plan_validate(item["plan"])
    assert isinstance(plan, Plan), f"{item['question']!r}: the expected plan is invalid: {plan}"
    return plan


def offline_answer(item: dict) -> Plan | Clarification:
    """What the offline parser makes of the item, after asking its previous questions in order."""
    previous = None
    for question in item.get("previous", []):
        outcome = offline_plan(question, previous=previous, today=TODAY)
        previous = outcome if isinstance(outcome, Plan) else previous
    return offline_plan(item["question"], previous=previous, today=TODAY)


def comparable(plan: Plan) -> dict:
    """Filters in any order; text values regardless of case."""
    data = plan.to_plan_dict()
    data["filters"] = sorted(
        (item["field"], item["op"], json.dumps(item["value"]).lower()) for item in data["filters"]
    )
    return data


def is_right(item: dict, outcome: Plan | Clarification) -> bool:
    expected = expected_plan(item)
    if expected is None:
        return isinstance(outcome, Clarification)
    return isinstance(outcome, Plan) and comparable(outcome) == comparable(expected)


def test_eval_set_covers_every_action_field_and_operator():
    plans = [plan for item in EVAL_SET if (plan := expected_plan(item))]
    conditions = [condition for plan in plans for condition in plan.filters]

    assert len(EVAL_SET) >= 60
    assert {plan.action for plan in plans} == set(ACTIONS)
    assert {condition.field for condition in conditions} == set(CONDITION_FIELDS)
    assert {condition.op for condition in conditions} == set(TEXT_OPS) | set(DATE_OPS)
    assert {plan.group_by for plan in plans if plan.group_by} >= {"company", "title", "source", "worksheet"}
    assert sum(1 for item in EVAL_SET if item.get("previous")) >= 6
    assert sum(1 for item in EVAL_SET if item.get("clarification")) >= 6
    assert sum(1 for item in EVAL_SET if "misspelling" in item["tags"]) >= 4
    assert sum(1 for item in EVAL_SET if "answer" in item) >= 30


def test_offline_parser_accuracy_on_the_eval_set(capsys):
    wrong = []
    for item in EVAL_SET:
        outcome = offline_answer(item)
        if not is_right(item, outcome):
            wrong.append(f"  {item['question']!r}: got {outcome}")
    accuracy = 1 - len(wrong) / len(EVAL_SET)

    with capsys.disabled():
        print(f"\nOffline parser: {len(EVAL_SET) - len(wrong)}/{len(EVAL_SET)} plans right ({accuracy:.1%})")
        for line in wrong:
            print(line)
    assert accuracy >= REQUIRED_ACCURACY


@pytest.mark.django_db
def test_expected_answers_on_the_fixed_lead_set(lead_set):
    wrong = []
    for item in EVAL_SET:
        if "answer" not in item:
            continue
        result = plan_run(expected_plan(item))
        if "count" in item["answer"] and result["total"] != item["answer"]["count"]:
            wrong.append(f"{item['question']!r}: {result['total']} leads, expected {item['answer']['count']}")
        if "groups" in item["answer"]:
            groups = {row["value"]: row["count"] for row in result["groups"]}
            if groups != item["answer"]["groups"]:
                wrong.append(f"{item['question']!r}: groups {groups}, expected {item['answer']['groups']}")

    assert wrong == []
