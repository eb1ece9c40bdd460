"""Query plans: what a question asks of the lead table, as data that can be checked before it runs.

A plan comes from the model (untrusted JSON) or from the offline parser. `plan_validate` turns any
JSON value into either a `Plan` (whitelisted fields, ops and values only) or a `Clarification` to show
the user; it never raises. A Plan runs through the lead table's own query (`plan_to_query` →
`leads.filters.leads_filter`), so an answer and its "Show in table" link select the same leads.

    {"action": "count", "filters": [{"field": "company", "op": "contains", "value": "globex"}],
     "group_by": null, "sort": null, "limit": null}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from leads.filters import (
    BETWEEN_SEPARATOR,
    CONDITION_FIELDS,
    DATE_CONDITION_FIELDS,
    DATE_OPS,
    DEFAULT_SORT,
    GROUPABLE_FIELDS,
    MAX_ALTERNATIVES,
    MAX_CONDITIONS,
    MAX_DATE,
    MIN_DATE,
    PRESENCE_FILTERS,
    SORT_CHOICES,
    TEXT_FILTERS,
    TEXT_OPS,
    VALUELESS_OPS,
    Condition,
    LeadQuery,
)
from leads.titles import title_variants

# "count_each": one count per value of the plan's condition with several values ("how many in Berlin and
# how many in Munich?"), with the other conditions applied to each.
ACTIONS = ("list", "count", "group", "count_each")
PLAN_KEYS = frozenset({"action", "filters", "group_by", "sort", "limit"})
FILTER_KEYS = frozenset({"field", "op", "value"})


def _plural(label: str) -> str:
    return f"{label[:-1]}ies" if label.endswith("y") else f"{label}s"


# Field -> its plural in answers ("312 leads in 45 companies").
GROUP_FIELDS: dict[str, str] = {name: _plural(CONDITION_FIELDS[name]) for name in GROUPABLE_FIELDS}
MAX_LIMIT = 20
DEFAULT_LIST_LIMIT = 10
DEFAULT_GROUP_LIMIT = 20
# Title ops that also find a title's other spellings ("CTO", "Chief Technology Officer"); "equals" is exact.
TITLE_VARIANT_OPS = ("contains", "word", "starts_with")
MAX_SPELLINGS_SHOWN = 3
# Model-supplied text quoted back in a clarification is cut to this length.
QUOTE_MAX_CHARS = 40

EXAMPLES = "“How many leads from Globex?”, “CTOs added this week” or “Leads by company”"
HELP_TEXT = f"I answer questions about the leads, such as {EXAMPLES}."


@dataclass(frozen=True)
class Plan:
    """A validated plan. `limit` is the rows (list) or groups (group) to show; None for a count."""

    action: str
    filters: tuple[Condition, ...] = ()
    group_by: str | None = None
    sort: str | None = None
    limit: int | None = None
    # Words of the question the offline parser did not use and judged not to change the meaning
    # ("actually", "asap"): shown in the plan text, never part of the plan's JSON.
    ignored: tuple[str, ...] = field(default=(), compare=False)

    def to_plan_dict(self) -> dict:
        """The JSON form: what is stored, sent back to the model as the previous plan, and compared."""
        return {
            "action": self.action,
            "filters": [_filter_dict(condition) for condition in self.filters],
            "group_by": self.group_by,
            "sort": self.sort,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class Clarification:
    """Instead of an answer: what the user should say differently."""

    message: str


def plan_validate(data: object) -> Plan | Clarification:
    """A Plan when `data` is a plan over whitelisted fields, ops and values; otherwise a Clarification
    saying what was wrong. Never raises, whatever `data` is."""
    try:
        return _validate(data)
    except _Invalid as exc:
        return Clarification(f"I could not answer that: {exc} {HELP_TEXT}")


def plan_describe(plan: Plan) -> str:
    """The plan in words: "count · company contains 'globex' · title has the word 'cto'"."""
    if plan.action == "count":
        head = "count"
    elif plan.action == "count_each":
        split = each_condition(plan)
        values = ", ".join(f"'{value}'" for value in split.values) if split else ""
        head = f"count for each of {values}"
    elif plan.action == "group":
        head = f"count per {CONDITION_FIELDS[plan.group_by or 'company']}, top {plan.limit}"
    else:
        head = f"list the first {plan.limit}"
        if plan.sort:
            head += f", sorted by {_sort_words(plan.sort)}"
    conditions = [_describe(condition) for condition in plan.filters] or ["all leads"]
    ignored = [f"ignored: {', '.join(f'“{word}”' for word in plan.ignored)}"] if plan.ignored else []
    return " · ".join([head, *conditions, *ignored])


def _describe(condition: Condition) -> str:
    """A condition in words, with the other spellings a title condition also finds."""
    words = condition.describe()
    if condition.field == "title" and condition.op in TITLE_VARIANT_OPS:
        typed = [value.lower() for value in condition.values]
        spellings = dict.fromkeys(
            spelling for value in condition.values for spelling in title_variants(value)
        )
        others = [spelling for spelling in spellings if spelling not in typed]
        if others:
            shown = ", ".join(f"'{other}'" for other in others[:MAX_SPELLINGS_SHOWN])
            words += f" (or {shown}{', …' if len(others) > MAX_SPELLINGS_SHOWN else ''})"
    return words


def each_condition(plan: Plan) -> Condition | None:
    """The condition a count_each plan counts value by value: its one condition with several values."""
    return next((condition for condition in plan.filters if condition.alternatives), None)


def plan_each(plan: Plan) -> list[tuple[str, Plan]]:
    """A count_each plan as one count plan per value of its split condition, in the question's order
    ("berlin" → count of remarks contains "berlin" and the other conditions)."""
    split = each_condition(plan)
    if split is None:
        return []
    return [
        (
            value,
            Plan(
                "count",
                tuple(Condition(split.field, split.op, value) if c == split else c for c in plan.filters),
            ),
        )
        for value in split.values
    ]


def plan_to_query(plan: Plan) -> LeadQuery:
    """The lead table's query selecting exactly the plan's leads. Conditions the table's own boxes can
    hold go there (so the user sees and can edit them); the rest become the table's conditions."""
    values: dict[str, object] = {}
    conditions: list[Condition] = []
    for condition in plan.filters:
        native = _table_filter(condition, taken=values.keys())
        if native:
            values.update(native)
        else:
            conditions.append(condition)
    return LeadQuery(
        **values,
        conditions=tuple(conditions),
        sort=plan.sort if plan.action == "list" and plan.sort else DEFAULT_SORT,
    )


# --- Validation --------------------------------------------------------------------------------


class _Invalid(Exception):
    pass


def _validate(data: object) -> Plan | Clarification:
    if not isinstance(data, dict):
        raise _Invalid("the plan is not an object.")
    unknown = sorted(str(key) for key in set(data) - PLAN_KEYS)
    if unknown:
        raise _Invalid(f"the plan has unexpected parts ({_quote(', '.join(unknown))}).")
    if data.get("action") == "clarify":  # the model's way of saying it did not understand
        return Clarification(f"I am not sure what you are asking. {HELP_TEXT}")
    action = data.get("action")
    if action not in ACTIONS:
        raise _Invalid(f"“{_quote(action)}” is not something I can do (list, count, group or count_each).")
    filters = _validate_filters(data.get("filters"))
    group_by = data.get("group_by")
    if group_by is not None and group_by not in GROUP_FIELDS:
        raise _Invalid(f"I cannot group by “{_quote(group_by)}”; I can group by {_words(GROUP_FIELDS)}.")
    sort = data.get("sort")
    if sort is not None and sort not in SORT_CHOICES:
        raise _Invalid(f"I cannot sort by “{_quote(sort)}”.")
    limit = data.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _Invalid(f"“{_quote(limit)}” is not a number of rows.")
    if action == "count":
        return Plan("count", filters)
    if action == "count_each":
        split = [condition for condition in filters if condition.alternatives]
        if len(split) != 1:
            raise _Invalid("count_each needs exactly one condition with several values, counted one by one.")
        return Plan("count_each", filters)
    if action == "group":
        if group_by is None:
            raise _Invalid(f"say what to group by: {_words(GROUP_FIELDS)}.")
        return Plan("group", filters, group_by=group_by, limit=min(limit or DEFAULT_GROUP_LIMIT, MAX_LIMIT))
    return Plan("list", filters, sort=sort, limit=min(limit or DEFAULT_LIST_LIMIT, MAX_LIMIT))


def _validate_filters(data: object) -> tuple[Condition, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise _Invalid("the filters are not a list.")
    conditions: list[Condition] = []
    for item in data:
        condition = _validate_filter(item)
        if condition not in conditions:
            conditions.append(condition)
    if len(conditions) > MAX_CONDITIONS:
        raise _Invalid(f"that needs more than {MAX_CONDITIONS} conditions.")
    return tuple(conditions)


def _validate_filter(item: object) -> Condition:
    if not isinstance(item, dict):
        raise _Invalid("a filter is not an object.")
    unknown = sorted(str(key) for key in set(item) - FILTER_KEYS)
    if unknown:
        raise _Invalid(f"a filter has unexpected parts ({_quote(', '.join(unknown))}).")
    field_name, op, value = item.get("field"), item.get("op"), item.get("value")
    if field_name not in CONDITION_FIELDS:
        raise _Invalid(f"I cannot filter on “{_quote(field_name)}”; I know {_words(CONDITION_FIELDS)}.")
    label = CONDITION_FIELDS[field_name]
    allowed = DATE_OPS if field_name in DATE_CONDITION_FIELDS else TEXT_OPS
    if op not in allowed:
        raise _Invalid(f"“{_quote(op)}” does not apply to {label}.")
    if op in VALUELESS_OPS:
        if value not in (None, ""):
            raise _Invalid(f"{label} {op.replace('_', ' ')} takes no value.")
        text = ""
    elif field_name in DATE_CONDITION_FIELDS:
        text = _date_value(value, op, label)
    elif isinstance(value, list):
        # Several values, any of which may match: "CTOs or CEOs".
        if not 1 <= len(value) <= MAX_ALTERNATIVES:
            raise _Invalid(f"{label} {op.replace('_', ' ')} takes 1 to {MAX_ALTERNATIVES} values.")
        try:
            return Condition.any_of(field_name, op, [_text_value(item, op, label) for item in value])
        except ValueError as exc:
            raise _Invalid(f"{exc}.") from None
    else:
        text = _text_value(value, op, label)
    try:
        return Condition(field_name, op, text)
    except ValueError as exc:
        raise _Invalid(f"{exc}.") from None


def _text_value(value: object, op: str, label: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{label} {op.replace('_', ' ')} needs some text to look for.")
    text = " ".join(value.split())
    if "\x00" in text or len(text) > 200:
        raise _Invalid(f"the text to look for in {label} is too long.")
    return text


def _date_value(value: object, op: str, label: str) -> str:
    if op == "between":
        if isinstance(value, str) and BETWEEN_SEPARATOR in value:
            value = value.split(BETWEEN_SEPARATOR, 1)
        if not isinstance(value, list) or len(value) != 2:
            raise _Invalid(f'{label} between needs two dates, like ["2025-06-01", "2025-06-30"].')
        first, last = (_date(part, label) for part in value)
        if first > last:
            first, last = last, first
        return f"{first.isoformat()}{BETWEEN_SEPARATOR}{last.isoformat()}"
    return _date(value, label).isoformat()


def _date(value: object, label: str) -> date:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        parsed = date.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"“{_quote(value)}” is not a date like 2025-06-30 (for {label}).") from None
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise _Invalid(f"{parsed.isoformat()} is out of range (for {label}).")
    return parsed


# --- Helpers -----------------------------------------------------------------------------------


def _filter_dict(condition: Condition) -> dict:
    if condition.op in VALUELESS_OPS:
        value: object = None
    elif condition.op == "between":
        value = condition.value.split(BETWEEN_SEPARATOR, 1)
    elif condition.alternatives:
        value = list(condition.values)
    else:
        value = condition.value
    return {"field": condition.field, "op": condition.op, "value": value}


def _table_filter(condition: Condition, *, taken: Collection[str]) -> dict[str, object] | None:
    """The lead table's own parameters equivalent to `condition`, if it has free ones."""
    field_name, op = condition.field, condition.op
    if condition.alternatives:  # a box holds one value; "any of" is a condition of its own
        return None
    # The table's column boxes mean "contains"; its has_phone/has_email choices mean (not) empty.
    if op == "contains" and field_name in TEXT_FILTERS and field_name not in taken:
        return {field_name: condition.value}
    presence = f"has_{field_name}"
    if op in VALUELESS_OPS and presence in PRESENCE_FILTERS and presence not in taken:
        return {presence: op == "not_empty"}
    if field_name in DATE_CONDITION_FIELDS:
        start, end = f"{field_name}_from", f"{field_name}_to"
        if start in taken or end in taken:
            return None
        first, last = condition.days()
        bounds = {
            "equals": (first, last),
            "between": (first, last),
            "before": (None, first - timedelta(days=1) if first > MIN_DATE else None),
            "after": (first + timedelta(days=1) if first < MAX_DATE else None, None),
        }[op]
        if bounds == (None, None):
            return None
        return {name: day for name, day in zip((start, end), bounds, strict=True) if day is not None}
    return None


def _sort_words(sort: str) -> str:
    key = sort.removeprefix("-")
    descending = sort.startswith("-")
    if key in DATE_CONDITION_FIELDS:
        return f"{key}, {'newest' if descending else 'oldest'} first"
    label = CONDITION_FIELDS.get(key, key)
    return f"{label}, {'Z–A' if descending else 'A–Z'}"


def _words(names: Iterable[str]) -> str:
    return ", ".join(CONDITION_FIELDS[name] for name in names)


def _quote(value: object) -> str:
    """Untrusted text for a message: one line, short. (Templates escape it.)"""
    text = " ".join(str(value).split())
    return text if len(text) <= QUOTE_MAX_CHARS else text[: QUOTE_MAX_CHARS - 1] + "…"
