"""The built-in question parser: answers the common shapes of question when no DeepSeek key is set.

Rule-based and purely lexical: it reads the question (and the previous plan, for follow-ups), never the
leads. Rules run in a fixed order over a normalized copy of the question; each rule that matches
records a condition (or the action, grouping, sort or limit) and blanks out the words it used. Whatever
is left must be filler words, or the parser says it did not understand — a wrong answer given
confidently is worse than a question back. The words the rules look for are in `vocabulary.py`.

    offline_plan("How many leads from Globex?", today=date(2025, 6, 11))
    → Plan(action="count", filters=(Condition("company", "contains", "globex"),))
"""

from __future__ import annotations

import difflib
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from leads.filters import BETWEEN_SEPARATOR, TEXT_OPS, VALUELESS_OPS, Condition

from .plans import GROUP_FIELDS, HELP_TEXT, Clarification, Plan, plan_validate
from .vocabulary import (
    BOUNDARY_WORDS,
    FIELD_WORDS,
    FILE_EXTENSIONS,
    FILLER_WORDS,
    FOLLOW_UP_WORDS,
    KEYWORDS,
    MONTHS,
    NOT_VALUES,
    NUMBER_WORDS,
    PLACES,
    TITLE_QUALIFIERS,
    TITLE_WORDS,
    VALUE_INTRODUCERS,
    VOCABULARY,
    WEBMAIL,
    WRITE_WORDS,
)

# Marks a placeholder for quoted text; a private-use character, removed from questions first.
QUOTED = "\ue000"
# Text ops that take a value; the others (is_empty, not_empty) take none.
TEXT_VALUE_OPS = tuple(op for op in TEXT_OPS if op not in VALUELESS_OPS)
# A value longer than this is a sentence the parser did not understand, not a company name.
MAX_VALUE_CHARS = 80
READ_ONLY_TEXT = (
    "I can only read leads: I cannot delete, change or add anything. "
    "Ask me to count, list or group leads instead."
)
FOLLOW_UP_START = re.compile(
    r"^(?:and|but|what about|how about|and what about|also|now|only|just|then|ok|okay|same|"
    r"of (?:them|those|these)|among (?:them|those|these)|which of (?:them|those|these))\b"
)


@dataclass
class _State:
    text: str  # the normalized question, with used words replaced by " | "
    quoted: list[str]
    today: date
    filters: list[Condition] = field(default_factory=list)
    action: str | None = None
    group_by: str | None = None
    sort: str | None = None
    limit: int | None = None
    problems: list[str] = field(default_factory=list)

    def add(self, field_name: str, op: str, value: str = "") -> None:
        value = self.value(value) if value else ""
        try:
            condition = Condition(field_name, op, value)
        except ValueError as exc:
            self.problems.append(str(exc))
            return
        if condition not in self.filters:
            self.filters.append(condition)

    def value(self, raw: str) -> str:
        """A value as the user meant it: quoted text as typed, anything else as normalized."""
        raw = raw.strip()
        match = re.fullmatch(r"\ue000(\d+)", raw)
        if match:
            return self.quoted[int(match.group(1))]
        raw = re.sub(r"^(?:the|a|an) ", "", raw)
        return re.sub(r"\ue000(\d+)", lambda m: self.quoted[int(m.group(1))], raw)

    def apply(self, pattern: str | re.Pattern, handle: Callable[[re.Match], bool | None]) -> None:
        """Run `handle` on each match of `pattern`; a match it does not reject is blanked out."""
        for match in reversed(list(re.finditer(pattern, self.text))):
            if handle(match) is not False:
                self.text = re.sub(" +", " ", f"{self.text[: match.start()]} | {self.text[match.end() :]}")

    def leftover(self) -> list[str]:
        """The words no rule used and that are not filler, quoted text shown as typed."""
        words = [word for word in self.text.split() if word not in FILLER_WORDS and word not in "|,"]
        return [re.sub(r"\ue000(\d+)", lambda m: f"“{self.quoted[int(m.group(1))]}”", word) for word in words]


def offline_plan(question: str, *, previous: Plan | None = None, today: date) -> Plan | Clarification:
    """The plan for `question`, refining `previous` when the question is a follow-up ("and of them…")."""
    text, quoted = _normalize(question)
    if not text.strip(" ,|"):
        return Clarification(HELP_TEXT)
    words = set(text.split())
    if words & WRITE_WORDS:
        return Clarification(READ_ONLY_TEXT)
    follow_up = previous is not None and bool(FOLLOW_UP_START.match(text.strip()) or words & FOLLOW_UP_WORDS)
    replacement_wanted = bool(re.match(r"^(?:and |but )?(?:what|how) about\b|^and\b", text.strip()))
    state = _State(text=f" {text} ", quoted=quoted, today=today)
    for rule in RULES:
        rule(state)
    if state.problems:
        return Clarification(f"I could not use that: {state.problems[0]}. {HELP_TEXT}")
    leftover = state.leftover()
    if follow_up and previous is not None:
        return _follow_up(state, previous, leftover if replacement_wanted else [], leftover)
    if leftover:
        return _not_understood(leftover)
    if _title_conflict(state.filters):
        return _or_clarification()
    action = "group" if state.group_by else state.action or "list"
    asked_for_nothing = not (state.filters or state.sort or state.limit or state.action or state.group_by)
    if asked_for_nothing and not re.search(r"\b(?:leads?|contacts|everyone|everything|all)\b", text):
        return Clarification(f"I am not sure what you are asking. {HELP_TEXT}")
    return _plan(action, state.filters, state.group_by, state.sort, state.limit)


def _follow_up(
    state: _State, previous: Plan, replacement: list[str], leftover: list[str]
) -> Plan | Clarification:
    filters = list(previous.filters)
    if replacement and not state.filters:
        # "What about Initech?": the same question about another value.
        text_filters = [c for c in filters if c.op in TEXT_VALUE_OPS]
        value = state.value(" ".join(replacement))
        if "or" in replacement or len(value) > MAX_VALUE_CHARS:
            return _not_understood(replacement)
        old = text_filters[-1] if text_filters else None
        try:
            if old is not None:
                filters[filters.index(old)] = Condition(old.field, old.op, value)
            else:
                filters.append(Condition("company", "contains", value))
        except ValueError:  # nothing usable left of the value, e.g. an empty quote
            return _not_understood(replacement)
    elif leftover:
        return _not_understood(leftover)
    for condition in state.filters:
        # A new condition on a field replaces the previous plan's condition on that field.
        filters = [old for old in filters if old.field != condition.field] + [condition]
    action = "group" if state.group_by else state.action or ("list" if state.sort else previous.action)
    group_by = state.group_by or previous.group_by
    sort = state.sort or (previous.sort if action == previous.action else None)
    limit = state.limit or (previous.limit if action == previous.action else None)
    return _plan(action, filters, group_by, sort, limit)


def _plan(
    action: str, filters: list[Condition], group_by: str | None, sort: str | None, limit: int | None
) -> Plan | Clarification:
    # Checked like a model's plan: the same defaults, caps and condition limit.
    draft = Plan(action, tuple(filters), group_by=group_by, sort=sort, limit=limit or None)
    return plan_validate(draft.to_plan_dict())


def _title_conflict(filters: list[Condition]) -> bool:
    # Two job titles ("CTOs and CEOs") mean either one, which a plan (all conditions hold) cannot say.
    return sum(1 for condition in filters if condition.field == "title") > 1


def _not_understood(leftover: list[str]) -> Clarification:
    if "or" in leftover:
        return _or_clarification()
    words = " ".join(leftover[:6])
    return Clarification(f"I did not understand “{words}”. {HELP_TEXT}")


def _or_clarification() -> Clarification:
    return Clarification(
        "I can only combine conditions that must all hold (“and”), not alternatives (“or”). "
        "Ask about one at a time, e.g. “How many CTOs?” and then “What about CEOs?”."
    )


# --- Normalization -------------------------------------------------------------------------------


def _normalize(question: str) -> tuple[str, list[str]]:
    """Lower-case words separated by single spaces; quoted text replaced by placeholders (QUOTED + 0, 1…)
    and kept as typed; punctuation that ends a value becomes ","; misspelled keywords corrected."""
    quoted: list[str] = []

    def keep(match: re.Match) -> str:
        quoted.append(" ".join(match.group(1).split()))
        return f" {QUOTED}{len(quoted) - 1} "

    text = (
        question.replace(QUOTED, "").replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    )
    text = re.sub(r'"([^"]+)"', keep, text)
    text = re.sub(r"(?<!\w)'([^']+)'(?!\w)", keep, text)
    capitalized = {word.lower() for word in re.findall(r"(?<=\s)[A-Z][\w-]*", text)}
    text = text.lower()
    text = re.sub(r"\be[- ]mails?\b", lambda m: m.group(0).replace("-", "").replace(" ", ""), text)
    text = text.replace("what's", "what is").replace("who's", "who is")
    text = re.sub(r"(\w)'s\b", r"\1", text)  # "Globex's" → "globex"
    text = re.sub(r"(\w)-based\b", r"\1 based", text)
    text = re.sub(r"[?!;()\[\]{}<>]", " , ", text)
    text = re.sub(r",", " , ", text)
    text = re.sub(r":", " ", text)
    text = re.sub(r"\.(?=\s|$)", " , ", text)
    words = text.split()
    corrected = []
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if word.isalpha() and word not in capitalized and previous not in VALUE_INTRODUCERS:
            word = _correct(word)
        corrected.append(word)
    return " ".join(corrected), quoted


_KEYWORD_SET = frozenset(KEYWORDS)


def _correct(word: str) -> str:
    if len(word) < 2 or word in VOCABULARY:
        return word
    for index in range(len(word) - 1):  # one swapped pair of letters: "compnay"
        swapped = word[:index] + word[index + 1] + word[index] + word[index + 2 :]
        if swapped in _KEYWORD_SET:
            return swapped
    matches = difflib.get_close_matches(word, KEYWORDS, n=3, cutoff=0.8)
    # Misspellings rarely get the first letter wrong: of equally close words ("who", "how" for "ho")
    # prefer one that starts like the typed word.
    matches.sort(key=lambda match: (-difflib.SequenceMatcher(None, word, match).ratio(), match[0] != word[0]))
    return matches[0] if matches else word


# --- Rules, in the order they run ------------------------------------------------------------------


def _words_pattern(words: object) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))  # type: ignore[arg-type]


_BOUNDARY = _words_pattern(BOUNDARY_WORDS)
# A value: one to six words, none of them a boundary word; or a quoted placeholder.
VALUE = rf"(?P<value>\ue000\d+|(?:(?!(?:{_BOUNDARY})\b)[^\s|,]+)(?: (?!(?:{_BOUNDARY})\b)[^\s|,]+){{0,5}})"
ISO_DATE = r"\d{4}[-/]\d{1,2}[-/]\d{1,2}"
MONTH = _words_pattern(MONTHS)
DATE = rf"(?:{ISO_DATE}|(?:{MONTH}) \d{{1,2}}(?:st|nd|rd|th)?(?: \d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)? (?:{MONTH})(?: \d{{4}})?)"
DATE_VERBS = r"(?:(?:were|was|been|got|are|is) )?(?:added|created|new|imported|entered|came in|come in|arrived|updated|modified|changed|edited)"
OPTIONAL_DATE_VERB = rf"(?:{DATE_VERBS} )?"
UNITS = r"(?P<unit>days?|weeks?|months?|years?)"
AMOUNT = rf"(?P<amount>\d+|{_words_pattern(NUMBER_WORDS)})"


def _rule_dates(state: _State) -> None:
    """ "between June 1 and June 5", "since May", "before 2025-06-01", "in the last 2 weeks", "this month",
    "in April", "yesterday": a condition on the day a lead was created, or updated when the question
    says so ("updated", "modified", "changed", "edited")."""
    field_name = "updated" if re.search(r"\b(?:updated|modified|changed|edited)\b", state.text) else "created"
    _dates_from_days(state, field_name)
    _dates_from_periods(state, field_name)


def _dates_from_days(state: _State, field_name: str) -> None:
    """Days and months as bounds: "between … and …", "since …", "before …", "after …", "on …"."""
    today = state.today

    def date_range(match: re.Match) -> bool | None:
        first, last = _parse_day(match.group("first"), today), _parse_day(match.group("last"), today)
        if first is None or last is None:
            return False
        _add_days(state, field_name, min(first, last), max(first, last))
        return None

    def since(match: re.Match) -> bool | None:
        day = _parse_day(match.group("date"), today)
        if day is None:
            return False
        _add_days(state, field_name, day, max(day, today))
        return None

    def month_bound(op: str) -> Callable[[re.Match], None]:
        # "before May 2025" is before May 1st, "after May" after May 31st, "since May" from May 1st.
        def handle(match: re.Match) -> None:
            first, last = _month_days(match, today)
            if op == "since":
                _add_days(state, field_name, first, max(first, today))
            else:
                state.add(field_name, op, (first if op == "before" else last).isoformat())

        return handle

    def one_day(op: str) -> Callable[[re.Match], bool | None]:
        def handle(match: re.Match) -> bool | None:
            day = _parse_day(match.group("date"), today)
            if day is None:
                return False
            state.add(field_name, op, day.isoformat())
            return None

        return handle

    verbs = OPTIONAL_DATE_VERB
    state.apply(
        rf"\b{verbs}(?:between|from) (?P<first>{DATE}) (?:and|to|until|till|-) (?P<last>{DATE})\b", date_range
    )
    state.apply(rf"\b{verbs}(?:since|from|starting) (?P<date>{DATE})\b", since)
    month_year = rf"(?P<month>{MONTH})(?: (?P<year>\d{{4}}))?\b"
    state.apply(rf"\b{verbs}(?:since|starting) {month_year}", month_bound("since"))
    state.apply(rf"\b{verbs}before {month_year}(?! \d{{1,2}}\b)", month_bound("before"))
    state.apply(rf"\b{verbs}after {month_year}(?! \d{{1,2}}\b)", month_bound("after"))
    state.apply(rf"\b{verbs}before (?P<date>{DATE})\b", one_day("before"))
    state.apply(rf"\b{verbs}after (?P<date>{DATE})\b", one_day("after"))
    state.apply(rf"\b{verbs}(?:on )?(?P<date>{DATE})\b", one_day("equals"))


def _dates_from_periods(state: _State, field_name: str) -> None:
    """Periods: "the last 3 months", "the past week", "this year", "in April", "in 2024", "today"."""
    today = state.today

    def between(days: tuple[date, date]) -> None:
        _add_days(state, field_name, *days)

    verbs = OPTIONAL_DATE_VERB
    state.apply(
        rf"\b{verbs}(?:(?:in|during|over|within|from|for) )?(?:the )?(?:last|past|previous) {AMOUNT} {UNITS}\b",
        lambda m: between(_last_days(today, _number(m.group("amount")), m.group("unit"))),
    )
    # "the past month" is the last 30 days or so; "last month" is the calendar month before this one.
    state.apply(
        rf"\b{verbs}(?:(?:in|during|over|within|from|for) )?(?:the )?past (?P<unit>day|week|month|year)\b",
        lambda m: between(_last_days(today, 1, m.group("unit"))),
    )
    state.apply(
        rf"\b{verbs}(?:(?:in|during|from|for) )?(?P<which>this|last|previous) (?P<unit>week|month|year)\b",
        lambda m: between(_calendar_period(today, m.group("which"), m.group("unit"))),
    )
    state.apply(
        rf"\b{verbs}(?:(?:in|during|from|for) )?(?P<month>{MONTH})(?: (?P<year>\d{{4}}))?\b",
        lambda m: between(_month_days(m, today)),
    )
    state.apply(
        rf"\b{verbs}(?:(?:in|during) )?(?P<year>(?:19|20)\d\d)\b",
        lambda m: between((date(int(m.group("year")), 1, 1), date(int(m.group("year")), 12, 31))),
    )
    state.apply(rf"\b{verbs}today\b", lambda m: state.add(field_name, "equals", today.isoformat()))
    state.apply(
        rf"\b{verbs}yesterday\b",
        lambda m: state.add(field_name, "equals", (today - timedelta(days=1)).isoformat()),
    )


def _add_days(state: _State, field_name: str, first: date, last: date) -> None:
    state.add(field_name, "between", f"{first.isoformat()}{BETWEEN_SEPARATOR}{last.isoformat()}")


def _rule_sort_and_limit(state: _State) -> None:
    fields = _words_pattern(word for words in FIELD_WORDS.values() for word in words)
    groups = _words_pattern(word for name in GROUP_FIELDS for word in FIELD_WORDS[name])

    def sort_by(match: re.Match) -> None:
        field_name = _field_of(match.group("field"))
        key = {"email_domain": "email", "name": "last_name", "remarks": None}.get(field_name, field_name)
        if key is None:
            return False  # type: ignore[return-value]
        descending = bool(
            match.group("direction") and match.group("direction") in ("desc", "descending", "z-a")
        )
        state.sort = f"-{key}" if descending else key
        return None

    state.apply(
        rf"\b(?:sorted|ordered|order|sort)(?: them| it)? (?:by|on) (?:the )?(?P<field>{fields}|date added|created|updated)\b"
        rf"(?: (?P<direction>asc|ascending|desc|descending|a-z|z-a))?",
        lambda m: (
            _date_sort(state, m) if m.group("field") in ("date added", "created", "updated") else sort_by(m)
        ),
    )
    state.apply(
        rf"\balphabetically(?: by (?P<field>{fields}))?\b",
        lambda m: setattr(state, "sort", _field_of(m.group("field")) if m.group("field") else "last_name"),
    )

    def newest(match: re.Match) -> None:
        amount = match.group("amount") or match.group("amount2")
        if amount:
            state.limit = _number(amount)
        word = match.group("word")
        state.sort = {"oldest": "created", "recently updated": "-updated", "last updated": "-updated"}.get(
            word, "-created"
        )

    state.apply(
        rf"\b(?:the )?(?:(?P<amount>\d+|{_words_pattern(NUMBER_WORDS)}) )?(?P<word>recently updated|last updated|"
        rf"newest|latest|most recent|most recently added|recently added|recent|oldest)"
        rf"(?: (?P<amount2>\d+))?(?: first| ones)?\b",
        newest,
    )
    state.apply(
        rf"\b(?:top|first|show me|show|list|give me) (?P<amount>\d+)\b(?! (?:days?|weeks?|months?|years?|{groups})\b)",
        lambda m: setattr(state, "limit", int(m.group("amount"))),
    )


def _date_sort(state: _State, match: re.Match) -> None:
    key = "updated" if match.group("field") == "updated" else "created"
    direction = match.group("direction")
    state.sort = key if direction in ("asc", "ascending") else f"-{key}"


def _rule_groups(state: _State) -> None:
    groups = _words_pattern(
        word for name in GROUP_FIELDS for word in FIELD_WORDS[name] if word not in ("number", "numbers")
    )

    def group(match: re.Match) -> None:
        state.group_by = _field_of(match.group("field"))
        if match.groupdict().get("amount"):
            state.limit = _number(match.group("amount"))

    state.apply(
        rf"\b(?:by|per|for each|for every|each|every|across)(?: the)? (?:email )?(?P<field>{groups})\b", group
    )
    state.apply(
        rf"\b(?:which|what) (?P<field>{groups}) (?:have|has|with|had) the (?:most|highest number of|largest number of)"
        rf"(?: leads| contacts)?\b",
        group,
    )
    state.apply(rf"\b(?:top|most common|biggest|largest|main)(?: {AMOUNT})? (?P<field>{groups})\b", group)
    state.apply(rf"\b(?P<field>{groups}) with the most (?:leads|contacts)\b", group)
    state.apply(rf"\b(?:which|what) (?:different )?(?P<field>{groups}) (?:do|are there|have|exist)\b", group)
    state.apply(rf"\bhow many (?:different |distinct |unique )?(?P<field>{groups})\b", group)


def _rule_value_in_field(state: _State) -> None:
    """ "with the word CTO in their title", "that mention Berlin in the remarks"."""
    fields = _words_pattern(word for words in FIELD_WORDS.values() for word in words)

    def handle(match: re.Match) -> None:
        op = "word" if match.group("word") else "contains"
        state.add(_field_of(match.group("field")), op, match.group("value"))

    state.apply(
        rf"\b(?:with|has|have|having|mention|mentions|mentioning|contain|contains|containing)"
        rf" (?P<word>the word |the text )?{VALUE} in (?:their |the |its )?(?P<field>{fields})\b",
        handle,
    )


def _rule_explicit_fields(state: _State) -> None:
    """ "whose last name is Brown", "with title containing engineer", "where company is empty"."""
    fields = _words_pattern(word for words in FIELD_WORDS.values() for word in words)
    ops = {
        "is_empty": r"(?:is|are) (?:empty|blank|missing|unknown|not set)|(?:is|are) not known",
        "not_empty": r"(?:is|are) (?:not empty|set|known|filled(?: in)?|present)",
        "starts_with": r"(?:starts|starting|begins|beginning|start|begin) with",
        "ends_with": r"(?:ends|ending|end) (?:with|in)",
        "contains": r"contains|containing|contain|includes|including|include|mentions|mentioning|mention|like|has|with",
        "equals": r"(?:is|are|=|equals|equal to|is equal to)(?: exactly)?|exactly|matches",
        "default": r"",
    }
    prefix = r"(?:(?:whose|where|with|having|and|has|have)(?: (?:an?|the|their))? )"

    def explicit(op: str) -> Callable[[re.Match], bool | None]:
        def handle(match: re.Match) -> bool | None:
            field_name = _field_of(match.group("field"))
            value = match.groupdict().get("value") or ""
            if op in VALUELESS_OPS:
                state.add(field_name, op)
                return None
            if not value or value in NOT_VALUES:
                return False
            _add_explicit(state, field_name, op, value)
            return None

        return handle

    for op, words in ops.items():
        if op in VALUELESS_OPS:
            state.apply(rf"\b{prefix}?(?P<field>{fields}) (?:{words})\b", explicit(op))
        elif op == "default":
            # Without an op the field word needs a lead-in: "with title CTO", not "phone numbers".
            state.apply(rf"\b{prefix}(?P<field>{fields}) {VALUE}", explicit(op))
        else:
            state.apply(rf"\b{prefix}?(?P<field>{fields}) (?:{words}) {VALUE}", explicit(op))


def _add_explicit(state: _State, field_name: str, op: str, raw: str) -> None:
    value = state.value(raw)
    looks_like_domain = bool(re.fullmatch(r"@?[\w-]+(\.[\w-]+)+", value))
    if field_name == "email" and op in ("ends_with", "default") and looks_like_domain:
        state.add("email_domain", "equals", value.lstrip("@"))
    elif field_name == "email_domain":
        state.add(
            "email_domain",
            "equals" if looks_like_domain and op != "contains" else op_or(op, "contains"),
            value.lstrip("@"),
        )
    elif op == "default":
        state.add(field_name, "word" if field_name == "title" else "contains", value)
    else:
        state.add(field_name, op_or(op, "contains"), value)


def op_or(op: str, fallback: str) -> str:
    """Ops the plan has; "ends with" and "no op given" fall back."""
    return op if op in TEXT_VALUE_OPS else fallback


def _rule_named(state: _State) -> None:
    state.apply(
        rf"\b(?:named|called|by the name(?: of)?|with the name|name is) {VALUE}",
        lambda m: state.add("name", "equals", m.group("value")),
    )


def _rule_files_sheets_domains(state: _State) -> None:
    extensions = "|".join(FILE_EXTENSIONS)
    lead_in = r"(?:(?:from|in|of|on) (?:the )?(?:file |source file |upload |import )?)?"
    state.apply(
        rf"\b{lead_in}(?P<value>[\w][\w.\-]*\.(?:{extensions}))\b(?: (?:file|upload|import))?",
        lambda m: state.add("source", "contains", m.group("value")),
    )
    state.apply(
        r"\b(?:from|in) (?:the )?(?P<value>\ue000\d+|[\w.\-]+(?: [\w.\-]+)?) (?:file|upload|import|spreadsheet)\b",
        lambda m: (
            False if m.group("value") in FILLER_WORDS else state.add("source", "contains", m.group("value"))
        ),
    )
    state.apply(
        rf"\b(?:from|in|of) (?:the )?(?:file|source file|upload|import) {VALUE}",
        lambda m: state.add("source", "contains", m.group("value")),
    )
    state.apply(
        r"\b(?:(?:from|in|on) )?(?:the )?(?P<value>sheet ?\d+)\b(?: (?:worksheet|sheet|tab)\b)?",
        lambda m: state.add("worksheet", "contains", m.group("value").replace(" ", "")),
    )
    state.apply(
        r"\b(?:(?:from|in|on) )?(?:the )?(?:worksheet|sheet|tab) (?:named |called )?(?P<value>\ue000\d+|[\w.\-]+)",
        lambda m: state.add("worksheet", "contains", m.group("value")),
    )
    state.apply(
        r"\b(?:(?:from|in|on) )?(?:the )?(?P<value>\ue000\d+|[\w.\-]+) (?:worksheet|sheet|tab)\b",
        lambda m: (
            False
            if m.group("value") in FILLER_WORDS
            else state.add("worksheet", "contains", m.group("value"))
        ),
    )
    mail_words = r"(?:emails?|email addresses|email address|addresses|address|mail|accounts|account|users)"
    state.apply(
        rf"\b(?:(?:with|having|have|has|from|at) )?(?:an? )?(?:{mail_words} (?:at|from|on|@|ending in|ending with) )?"
        rf"@?(?P<value>(?:[a-z0-9-]+\.)+(?!(?:{extensions})\b)[a-z]{{2,10}})\b(?: {mail_words}| domain)?",
        lambda m: state.add("email_domain", "equals", m.group("value")),
    )
    state.apply(
        rf"\b(?:(?:with|having|have|has|using|on|at) )?(?:an? )?(?P<value>{'|'.join(WEBMAIL)})(?: {mail_words})?\b",
        lambda m: state.add("email_domain", "contains", m.group("value")),
    )


def _rule_presence(state: _State) -> None:
    present = {name: FIELD_WORDS[name] for name in ("phone", "email", "remarks", "company", "title", "name",
                                                       "first_name", "last_name")}  # fmt: skip
    words = _words_pattern(word for name in present for word in present[name])
    negative = (
        r"without|with no|no|missing|lacking|lack|lacks|(?:do|does|did)(?: not|n't|nt) have|"
        r"(?:have|has|having|with) no|not having|that lack"
    )
    positive = r"with|having|have|has|that have|who have|got"
    article = r"(?:(?:an?|any|some|valid|the|their|its) )?"

    def presence(op: str) -> Callable[[re.Match], None]:
        def handle(match: re.Match) -> None:
            for word in re.findall(rf"\b(?:{words})\b", match.group("fields")):
                state.add(_field_of(word), op)

        return handle

    chain = (
        rf"(?P<fields>(?:both |either )?{article}(?:{words})(?: (?:and|or|&|nor) {article}(?:{words}))*)\b"
    )
    state.apply(rf"\b(?:{negative}) {chain}", presence("is_empty"))
    state.apply(
        rf"\b(?:with|having|has|have)(?: an?)? (?:empty|blank|missing|unknown) {chain}", presence("is_empty")
    )
    state.apply(rf"\b(?:{positive}) {chain}", presence("not_empty"))


def _rule_titles(state: _State) -> None:
    titles = _words_pattern(TITLE_WORDS)
    qualifiers = _words_pattern(TITLE_QUALIFIERS)

    def title(match: re.Match) -> None:
        value = match.group("title")
        value = re.sub(rf"\b({titles})(?:s|es)\b", r"\1", value)
        state.add("title", "word", value)

    state.apply(
        rf"\b(?P<title>head of (?:{qualifiers}|[a-z]+)|chief [a-z]+ officer)s?\b",
        title,
    )
    state.apply(rf"\b(?P<title>(?:(?:{qualifiers}) ){{0,2}}(?:{titles})(?:s|es)?)\b", title)


def _rule_location(state: _State) -> None:
    def place(match: re.Match) -> bool | None:
        value = match.group("value")
        if value in NOT_VALUES or value in FILLER_WORDS:
            return False
        state.add("remarks", "contains", value)
        return None

    state.apply(
        r"\b(?:(?:in|at|from) )?(?P<value>\ue000\d+|[\w.\-]+) based\b(?: (?:companies|company|firms|businesses|organizations))?",
        place,
    )
    state.apply(rf"\b(?:based|located|headquartered|situated|living|residing|who live) in {VALUE}", place)
    state.apply(rf"\bin {VALUE}", place)


def _rule_company(state: _State) -> None:
    def company(match: re.Match) -> bool | None:
        value = match.group("value")
        if value in NOT_VALUES or value in FILLER_WORDS:
            return False
        # "from Germany" is a place, kept in remarks; "from Globex" a company.
        state.add("remarks" if value in PLACES else "company", "contains", value)
        return None

    state.apply(
        rf"\b(?:from|at|working at|working for|works at|works for|work at|work for|employed at|employed by|"
        rf"employees of|staff of|people at|people from|(?<=\| )of|does) {VALUE}",
        company,
    )
    state.apply(
        r"(?:^| )(?P<value>\ue000\d+|[a-z][\w&.\-]*) (?=(?:leads|employees|staff|people|contacts)\b)",
        lambda m: False if m.group("value") in VOCABULARY else company(m),
    )


def _rule_name_search(state: _State) -> None:
    """ "Find Ada Lovelace", "What is Ada's email?": runs after every rule that takes a value, so only unknown
    words are left as the name."""
    details = r"(?:email address|email|phone number|phone|job title|title|company|remarks|notes)"
    state.apply(
        rf"^[ ,]*(?:what is|what are|show|show me|give me|find|get) (?:the )?{VALUE} {details}(?: and {details})*[ ,]*$",
        lambda m: (
            False if m.group("value") in FILLER_WORDS else state.add("name", "contains", m.group("value"))
        ),
    )
    state.apply(
        rf"^[ ,]*(?:find|look up|lookup|search for|search|who is|show me|show) (?:the )?(?:lead |contact )?(?:for |of )?"
        rf"{VALUE}[ ,]*$",
        lambda m: (
            False if m.group("value") in FILLER_WORDS else state.add("name", "contains", m.group("value"))
        ),
    )


def _rule_actions(state: _State) -> None:
    def count(match: re.Match) -> None:
        state.action = state.action or "count"

    def show(match: re.Match) -> None:
        state.action = state.action or "list"

    state.apply(r"\b(?:how many|how much|count|number of|total number of|total|tally|amount of)\b", count)
    state.apply(r"\b(?:show|list|display|give|find|get|see|fetch|who|which|what are|view|search)\b", show)


RULES: tuple[Callable[[_State], None], ...] = (
    _rule_dates,
    _rule_sort_and_limit,
    _rule_groups,
    _rule_value_in_field,
    _rule_explicit_fields,
    _rule_named,
    _rule_files_sheets_domains,
    _rule_presence,
    _rule_titles,
    _rule_location,
    _rule_company,
    _rule_name_search,
    _rule_actions,
)


# --- Small parsers -------------------------------------------------------------------------------


def _field_of(word: str) -> str:
    for name, words in FIELD_WORDS.items():
        if word in words:
            return name
    raise KeyError(word)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS.get(word, 1)


def _parse_day(text: str, today: date) -> date | None:
    text = text.strip()
    try:
        if re.fullmatch(ISO_DATE, text):
            year, month, day = (int(part) for part in re.split(r"[-/]", text))
            return date(year, month, day)
        match = re.fullmatch(
            rf"(?:(?P<month>{MONTH}) (?P<day>\d{{1,2}})|(?P<day2>\d{{1,2}}) (?P<month2>{MONTH}))"
            r"(?:st|nd|rd|th)?(?: (?P<year>\d{4}))?",
            re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", text),
        )
        if not match:
            return None
        month = MONTHS[match.group("month") or match.group("month2")]
        day = int(match.group("day") or match.group("day2"))
        year = int(match.group("year")) if match.group("year") else today.year
        return date(year, month, day)
    except ValueError:
        return None


def _month_days(match: re.Match, today: date) -> tuple[date, date]:
    """First and last day of a named month; without a year, the latest one that has begun."""
    number = MONTHS[match.group("month")]
    year = int(match.group("year")) if match.group("year") else None
    if year is None:
        year = today.year if number <= today.month else today.year - 1
    return date(year, number, 1), date(year, number, monthrange(year, number)[1])


def _last_days(today: date, amount: int, unit: str) -> tuple[date, date]:
    """The last `amount` days, weeks, months or years up to today: "the last 2 weeks" is 14 days."""
    unit = unit.rstrip("s")
    if unit == "day":
        start = today - timedelta(days=amount - 1)
    elif unit == "week":
        start = today - timedelta(days=7 * amount - 1)
    else:
        start = _months_before(today, amount if unit == "month" else 12 * amount) + timedelta(days=1)
    return start, today


def _calendar_period(today: date, which: str, unit: str) -> tuple[date, date]:
    """This (up to today) or the last calendar week, month or year. Weeks start on Monday."""
    if unit == "week":
        monday = today - timedelta(days=today.weekday())
        if which == "this":
            return monday, today
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if unit == "month":
        first = today.replace(day=1)
        if which == "this":
            return first, today
        last = first - timedelta(days=1)
        return last.replace(day=1), last
    if which == "this":
        return date(today.year, 1, 1), today
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


def _months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))
