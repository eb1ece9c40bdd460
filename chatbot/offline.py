"""The built-in question parser: answers the common shapes of question when no DeepSeek key is set.

Rule-based and purely lexical: it reads the question (the previous plan, for follow-ups, and the sheet
and file names in the database, to match "the trade show list"), never the leads. Rules run in a fixed
order over a normalized copy of the question; each rule that matches records a condition (or the
action, grouping, sort or limit) and blanks out the words it used. Whatever is left must be filler
words, or the parser says it did not understand — a wrong answer given confidently is worse than a
question back. The words the rules look for are in `vocabulary.py`.

    offline_plan("How many leads from Globex?", today=date(2025, 6, 11))
    → Plan(action="count", filters=(Condition("company_or_domain", "contains", "globex"),))
"""

from __future__ import annotations

import difflib
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from leads.filters import (
    BETWEEN_SEPARATOR,
    DATE_CONDITION_FIELDS,
    MAX_DATE,
    MIN_DATE,
    TEXT_OPS,
    VALUELESS_OPS,
    Condition,
)
from leads.titles import TITLE_EQUIVALENTS

from .plans import GROUP_FIELDS, HELP_TEXT, Clarification, Plan, plan_validate
from .vocabulary import (
    ABBREVIATIONS,
    BOUNDARY_WORDS,
    DEPARTMENTS,
    FIELD_WORDS,
    FILE_EXTENSIONS,
    FILE_WORDS,
    FILLER_PHRASES,
    FILLER_WORDS,
    FOLLOW_UP_PRONOUNS,
    FOLLOW_UP_WORDS,
    KEYWORDS,
    MONTHS,
    NEGATIONS,
    NOT_VALUES,
    NUMBER_WORDS,
    PEOPLE_WORDS,
    PHONE_COUNTRIES,
    PLACE_WORDS,
    PLACES,
    ROLES_OF_AREA,
    SHEET_WORDS,
    SUBJECT_WORDS,
    TITLE_MISSPELLINGS,
    TITLE_QUALIFIERS,
    TITLE_WORDS,
    UNKNOWN_FIELD_WORDS,
    VALUE_INTRODUCERS,
    VOCABULARY,
    WEBMAIL,
    WEEKDAYS,
    WRITE_OPENINGS,
    WRITE_WORDS,
)

# Marks a placeholder for quoted text; a private-use character, removed from questions first.
QUOTED = "\ue000"
# Text ops that take a value; the others (is_empty, not_empty) take none.
TEXT_VALUE_OPS = tuple(op for op in TEXT_OPS if op not in VALUELESS_OPS)
# A value longer than this is a sentence the parser did not understand, not a company name.
MAX_VALUE_CHARS = 80
# "How many in Berlin and how many with a phone?": one count per value works for values of one kind.
_EACH_TEXT = (
    "I can count each of several values of one kind (“how many in Berlin and how many in Munich?”, "
    "“CTOs vs CEOs”), not of different kinds. Ask about one at a time."
)
# Alternatives the parser cannot put in one condition: "from Germany or Acme".
_MIXED_ALTERNATIVES = "I can join alternatives of one kind with “or”, not a place and a company"
READ_ONLY_TEXT = (
    "I can only read leads: I cannot delete, change or add anything. "
    "Ask me to count, list or group leads instead."
)
# Openings that make a question a follow-up whatever follows ("and Acme?", "what about last week?").
FOLLOW_UP_START = re.compile(
    r"^(?:and|but|also|plus|what about|how about|and what about|same|the same|"
    r"of (?:them|those|these)|among (?:them|those|these)|which of (?:them|those|these)|"
    r"per|(?:split|broken down|grouped|sorted|ordered) by|"
    r"(?:sort|order|group|split|rank|break down)(?: (?:them|those|these|it))? by)\b"
)
# Openings that make a question a follow-up only when it names no subject: "just the CTOs" refines,
# "now show me all leads from Acme" starts over.
SOFT_FOLLOW_UP_START = re.compile(r"^(?:now|only|just|then|ok|okay|so|again)\b")
# Words a question may open with before it starts: "thanks!", "great,", "hi".
INTERJECTIONS = re.compile(
    r"^(?:(?:thanks|thank you|thx|great|cool|perfect|nice|alright|hmm|hi|hello|hey|got it)(?: ,)? )+"
)
# A question that asks about everything starts over even after "and": "and how many leads in total?".
FRESH_MARKERS = re.compile(
    r"\b(?:in total|overall|altogether|all (?:the |our )?leads|all of (?:the |our )?leads)\b"
)
# Words that join alternatives of one kind: "the March or April sheet".
JOIN_WORDS = frozenset({"and", "or", "&"})
# Words between a place word ("from the …") and a name that are not part of the name.
NAME_LEAD_INS = frozenset(
    {"the", "our", "my", "this", "that", "a", "an", "from", "in", "on", "of", "at", "off", "via", "through"}
)


@dataclass(frozen=True)
class SourceNames:
    """The worksheet and source file names present in the database — names only, never lead data —
    so that "the trade show list" or "the March sheet" can be matched to what was imported."""

    worksheets: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    # The file of the most recently added lead: "the last import".
    latest_file: str = ""
    # Company names with a word that joins values ("Smith and Sons", "Ernst & Young"): kept whole
    # after "from"/"at", instead of read as two companies.
    companies: tuple[str, ...] = ()
    # The one- and two-word company names the question may name that the database holds, lower-cased
    # (`named_company_candidates`): "acme leads" names a company only when it is one of these or typed
    # with a capital ("show me the interesting leads" names none).
    known_companies: tuple[str, ...] = ()
    # Misspelled companies (`respelling_candidates`) that match no lead, each with the one company of
    # the database it is a typo of (`nearest_company`), lower-cased: ("globx", "globex").
    respelled_companies: tuple[tuple[str, str], ...] = ()

    def words(self) -> frozenset[str]:
        """Every word of every name: never "corrected" as a misspelling."""
        names = (*self.worksheets, *self.files, *self.companies)
        return frozenset(word for name in names for word in _name_words(name))


# Words around a join word that may be part of a company name: "Smith and Sons Ltd" has 2 and 2.
COMPANY_SPAN_WORDS = 4
MAX_COMPANY_CANDIDATES = 200


def company_candidates(question: str, *, max_chars: int = 100) -> tuple[str, ...]:
    """The spans of the question that may be a company name with a join word in it, lower-cased:
    1 to 4 words, then "and"/"&"/"or", then 1 to 4 words ("from smith and sons ltd?" → "smith and
    sons", "smith and sons ltd", "from smith and sons", …). The database says which are companies
    (`services.joined_company_names`); `_quote_companies` then keeps those whole."""
    words = [word.strip("\"'“”‘’?!,;:()") for word in question.lower().split()]
    candidates: dict[str, None] = {}
    for index, word in enumerate(words):
        if word not in JOIN_WORDS:
            continue
        for before in range(1, COMPANY_SPAN_WORDS + 1):
            for after in range(1, COMPANY_SPAN_WORDS + 1):
                span = words[max(index - before, 0) : index + after + 1]
                if len(span) < before + after + 1 or not all(span):
                    continue
                name = " ".join(span)
                for candidate in (name, name.rstrip(".")):
                    if len(candidate) <= max_chars:
                        candidates[candidate] = None
    return tuple(candidates)[:MAX_COMPANY_CANDIDATES]


# Words after which, or before which, a question names a company: "from Acme", "Acme leads".
_COMPANY_BEFORE = frozenset({"from", "at", "for", "with", "of", "by"})
_COMPANY_AFTER = frozenset({"leads", "contacts", "employees", "staff", "people"})
_ARTICLES = frozenset({"the", "a", "an", "our", "my", "your", "their", "these", "those", "all"})


def named_company_candidates(question: str, *, max_chars: int = 100) -> tuple[str, ...]:
    """The one or two words after "from", "at", … or before "leads", "people", … lower-cased ("work at
    acme nowadays" → "acme", "acme nowadays"). The database says which are companies
    (`services.source_names`); the parser then reads "acme leads" as a company only when it is one, or
    typed with a capital, and cuts "acme nowadays" to "acme"."""
    words = [word.strip("\"'“”‘’?!,;:()") for word in question.lower().split()]
    candidates: dict[str, None] = {}
    for index, word in enumerate(words):
        spans = []
        if word in _COMPANY_BEFORE:
            start = index + 1 + (index + 1 < len(words) and words[index + 1] in _ARTICLES)
            spans = [words[start : start + size] for size in (1, 2)]
        elif word in _COMPANY_AFTER and index:
            spans = [words[max(index - size, 0) : index] for size in (1, 2)]
        for span in spans:
            name = " ".join(span)
            if span and all(span) and not set(span) & _ARTICLES and len(name) <= max_chars:
                candidates[name] = None
    return tuple(candidates)[:MAX_COMPANY_CANDIDATES]


MAX_RESPELLINGS = 2
MIN_RESPELLING_CHARS = 5


def respelling_candidates(question: str, sources: SourceNames | None = None) -> tuple[str, ...]:
    """The one-word company candidates (`named_company_candidates`) that may be a misspelled company:
    five letters or more, and no word the parser knows (keyword, filler, place, title, webmail or a
    sheet or file name). At most MAX_RESPELLINGS; the database says which match no lead."""
    known = VOCABULARY | FILLER_WORDS | PLACE_WORDS | set(WEBMAIL) | (sources or SourceNames()).words()
    words = [
        name
        for name in named_company_candidates(question)
        if name.isalpha()
        and len(name) >= MIN_RESPELLING_CHARS
        and name not in known
        and re.sub(r"e?s$", "", name) not in TITLE_WORDS
    ]
    return tuple(words[:MAX_RESPELLINGS])


def nearest_company(word: str, companies: list[str] | tuple[str, ...]) -> str | None:
    """The one company name (lower-cased) that `word` is a typo of ("globx" → "globex"): the closest by
    difflib's ratio at 0.8 or more, same first letter; none when two are as close."""
    names = [name for name in dict.fromkeys(companies) if name and name[0] == word[0] and name != word]
    scored = sorted(
        ((difflib.SequenceMatcher(None, word, name).ratio(), name) for name in names), reverse=True
    )
    scored = [(score, name) for score, name in scored if score >= 0.8]
    if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


def question_is_follow_up(question: str) -> bool:
    """Whether the question builds on the previous answer ("and how many of them…", "what about
    Initech?", "only those with a phone") rather than being a complete question of its own."""
    return _is_follow_up(_normalize(question)[0])


@dataclass
class _State:
    text: str  # the normalized question, with used words replaced by " | "
    quoted: list[str]
    today: date
    sources: SourceNames = SourceNames()
    # The words typed with a capital, except as the question's first word, lower-cased: names.
    capitalized: frozenset[str] = frozenset()
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

    def add_any(self, field_name: str, op: str, values: list[str]) -> None:
        """One condition any of whose values may match ("in Berlin or Munich"); one value is a plain one."""
        values = [value for raw in values if (value := self.value(raw))]
        if len(values) < 2:
            self.add(field_name, op, values[0] if values else "")
            return
        try:
            condition = Condition.any_of(field_name, op, values)
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

    def apply(
        self, pattern: str | re.Pattern, handle: Callable[[re.Match], bool | str | None], *, mark: str = "|"
    ) -> None:
        """Run `handle` on each match of `pattern`; a match it does not reject is blanked out: replaced
        by `mark`, or by the text `handle` returns (a rule's own mark, to find its matches again)."""
        for match in reversed(list(re.finditer(pattern, self.text))):
            outcome = handle(match)
            if outcome is not False:
                blank = outcome if isinstance(outcome, str) else mark
                self.text = re.sub(
                    " +", " ", f"{self.text[: match.start()]} {blank} {self.text[match.end() :]}"
                )

    def leftover(self) -> list[str]:
        """The words no rule used and that are not filler, quoted text shown as typed."""
        words = [word for word in self.text.split() if word not in FILLER_WORDS and word not in "|,"]
        return [re.sub(r"\ue000(\d+)", lambda m: f"“{self.quoted[int(m.group(1))]}”", word) for word in words]


def offline_plan(
    question: str, *, previous: Plan | None = None, today: date, sources: SourceNames | None = None
) -> Plan | Clarification:
    """The plan for `question`, refining `previous` when the question is a follow-up ("and of them…");
    a complete question of its own starts a new plan. `sources` are the sheet and file names to match."""
    sources = sources or SourceNames()
    question = _quote_titled_names(_quote_ampersand_names(_quote_companies(question, sources.companies)))
    corrected: dict[str, str] = {}
    text, quoted = _normalize(question, protected=sources.words(), corrected=corrected)
    if not text.strip(" ,|"):
        return Clarification(HELP_TEXT)
    if _WRITE_OPENING.match(text):
        return Clarification(READ_ONLY_TEXT)
    # "how many in Berlin and how many in Munich?", "CTOs vs CEOs": the values joined, counted each.
    text, count_each = _each_joined(text)
    words = set(text.split())
    if words & WRITE_WORDS:
        return Clarification(READ_ONLY_TEXT)
    follow_up = previous is not None and _is_follow_up(text)
    replacement_wanted = bool(re.match(r"^(?:and |but )?(?:what|how) about\b|^and\b", text.strip()))
    capitalized = frozenset(word.lower() for word in re.findall(r"(?<=\s)[A-Z][\w-]*", question.strip()))
    state = _State(text=f" {text} ", quoted=quoted, today=today, sources=sources, capitalized=capitalized)
    for rule in RULES:
        rule(state)
    if not state.problems and not _dates_can_hold(state.filters):
        # "on Monday and Tuesday": a plan cannot say "or" of dates; both at once would find nothing.
        state.problems.append(
            "those days cannot both hold; ask about one day or range (“between Monday and Tuesday”)"
        )
    if state.problems:
        return Clarification(f"I could not use that: {state.problems[0]}. {HELP_TEXT}")
    if sources.respelled_companies:
        spellings = dict(sources.respelled_companies)
        state.filters = [_respelled(condition, spellings) for condition in state.filters]
    if unknown := _unknown_field(state, question):
        return Clarification(f"Leads have no {unknown} field. {HELP_TEXT}")
    leftover = state.leftover()
    ignored: tuple[str, ...] = ()
    # "What about umbrella?": there the leftover is the new value, never ignored.
    replacing = follow_up and replacement_wanted and not state.filters
    if (
        leftover
        and not replacing
        and _may_ignore(leftover, state, text, question, corrected, follow_up=follow_up)
    ):
        ignored, leftover = tuple(corrected.get(word, word) for word in leftover), []
    if follow_up and previous is not None:
        if replacement_wanted and (swapped := _other_source(text, previous, sources)):
            return swapped
        return _ignoring(
            _follow_up(state, previous, leftover if replacement_wanted else [], leftover, corrected), ignored
        )
    if not (state.group_by or state.sort) and _RANKED_LEADS.search(text):
        return Clarification(_NO_SCORE_TEXT)
    if leftover:
        return Clarification(_EACH_TEXT) if count_each else _not_understood(leftover, corrected)
    action = "group" if state.group_by else state.action or "list"
    if count_each and not state.group_by:
        if sum(1 for condition in state.filters if condition.alternatives) != 1:
            return Clarification(_EACH_TEXT)
        action = "count_each"
    asked_for_nothing = not (state.filters or state.sort or state.limit or state.action or state.group_by)
    if asked_for_nothing and not re.search(r"\b(?:leads?|contacts|everyone|everything|all)\b", text):
        return Clarification(f"I am not sure what you are asking. {HELP_TEXT}")
    return _ignoring(_plan(action, state.filters, state.group_by, state.sort, state.limit), ignored)


# "the top leads", "our best 5 contacts": a ranking of the leads themselves, by a score they do not have.
_RANKED_LEADS = re.compile(
    r"\b(?:top|best|hottest|strongest)(?: \d+)? (?:leads|contacts|prospects|people|ones)\b"
)
_NO_SCORE_TEXT = (
    "Leads have no score or rating to rank them by. I can sort them by when they were added or "
    "updated (“the 5 newest leads”) or rank companies, titles, sheets or files by their number of "
    "leads (“top 5 companies”)."
)


def _respelled(condition: Condition, spellings: dict[str, str]) -> Condition:
    """ "leads at globx": a company value that matches no lead, read as the company it is a typo of."""
    if condition.field not in ("company", "company_or_domain") or condition.op not in TEXT_VALUE_OPS:
        return condition
    values = [spellings.get(value.lower(), value) for value in condition.values]
    return (
        Condition.any_of(condition.field, condition.op, values)
        if values != list(condition.values)
        else condition
    )


def _unknown_field(state: _State, question: str) -> str | None:
    """ "leads in the healthcare industry": a value naming something leads do not have (not a name typed
    with a capital, "Open Text")."""
    capitalized = {word.lower() for word in re.findall(r"[A-Z][\w-]*", question)}
    for condition in state.filters:
        if condition.field in ("company", "company_or_domain", "remarks"):
            for value in condition.values:
                unknown = set(value.lower().split()) & UNKNOWN_FIELD_WORDS - capitalized
                if unknown:
                    return f"“{min(unknown)}”"
    return None


def _ignoring(outcome: Plan | Clarification, ignored: tuple[str, ...]) -> Plan | Clarification:
    return replace(outcome, ignored=ignored) if ignored and isinstance(outcome, Plan) else outcome


_FIELD_WORD_SET = frozenset(
    word for words in FIELD_WORDS.values() for phrase in words for word in phrase.split()
)
_PROPERTY_BEFORE = frozenset(
    {"are", "is", "was", "were", "be", "been", "with", "without", "having", "has", "have", "whose", "that"}
)
# "the most likely to buy", "less active": a word after these is a property to rank or filter leads by.
_DEGREE_WORDS = frozenset({"most", "least", "more", "less"})
_WHO_WORDS = SUBJECT_WORDS | set(PEOPLE_WORDS) | {"anyone", "anybody", "someone", "somebody", "who", "whom"}


def _may_ignore(
    leftover: list[str],
    state: _State,
    text: str,
    question: str,
    corrected: dict[str, str],
    *,
    follow_up: bool,
) -> bool:
    """Whether the words no rule used can be left out of a plan the other words made ("how many CTOs have
    we *actually* got"): only when the question says whom it asks about (leads, people, a title, a field
    they have or lack, a grouping or sort; not just a place or company: "the weather in Berlin"),
    and no leftover word could change
    its meaning — a value (quoted, a number, a capitalized word, a sheet, file, company or place name), a
    negation, a field (known or not: "revenue"), a word the parser knows but could not place here, or,
    next to a date, a verb that might say which date ("touched")."""
    names = state.sources.words() | PLACE_WORDS | set(WEBMAIL) | set(NUMBER_WORDS)
    capitalized = {word.lower() for word in re.findall(r"[A-Z][\w-]*", question)}
    tokens = state.text.split()
    previous_word = {word: tokens[index - 1] for index, word in enumerate(tokens) if index}
    asked = text.split()  # the question before the rules used its words
    next_word = {word: asked[index + 1] for index, word in enumerate(asked[:-1])}
    word_before = {word: asked[index - 1] for index, word in enumerate(asked) if index}
    heads = _WHO_WORDS | {
        value.split()[0]
        for condition in state.filters
        if condition.field == "title"
        for value in condition.values
    }
    for word in leftover:
        original = corrected.get(word, word)
        if not re.fullmatch(r"[a-z]+(?:-[a-z]+)*", original):
            return False  # quoted text, numbers, "@acme.com", "or"-clauses come out as "“…”", digits, dots
        parts = {word, original, *original.split("-")}
        if parts & (NEGATIONS | _FIELD_WORD_SET | UNKNOWN_FIELD_WORDS | names | capitalized | {"or"}):
            return False
        if word == original and word in VOCABULARY:
            return False
        if (
            original.endswith("ed")
            or previous_word.get(word) in _PROPERTY_BEFORE
            or word_before.get(original) in _DEGREE_WORDS
            or next_word.get(original, "").removesuffix("s") in heads | {"lead", "contact"}
        ):
            # "qualified leads", "which leads are hot", "leads with kids", "promising CTOs": a property
            # the leads would need.
            return False
    for condition in state.filters:
        if condition.field not in ("company", "company_or_domain", "remarks", "name"):
            continue
        for value in condition.values:
            value_words = value.lower().split()
            if set(value_words) & capitalized and any(
                word.isalpha() and word not in capitalized | names | VOCABULARY for word in value_words
            ):
                return False  # "for Berlin asap": a value that ran on into words no rule knows
    if (
        follow_up
        or state.group_by
        or state.sort
        or state.limit
        or set(re.split(r"[\s-]+", text)) & _WHO_WORDS
    ):
        return True
    return any(condition.field == "title" or condition.op in VALUELESS_OPS for condition in state.filters)


def _dates_can_hold(filters: list[Condition]) -> bool:
    """Whether the date conditions on each date field leave at least one day."""
    spans: dict[str, tuple[date, date]] = {}
    for condition in filters:
        if condition.field not in DATE_CONDITION_FIELDS:
            continue
        first, last = condition.days()
        if condition.op == "before":
            first, last = MIN_DATE, first - timedelta(days=1)
        elif condition.op == "after":
            first, last = last + timedelta(days=1), MAX_DATE
        low, high = spans.get(condition.field, (MIN_DATE, MAX_DATE))
        spans[condition.field] = (max(low, first), min(high, last))
    return all(first <= last for first, last in spans.values())


def _quote_companies(question: str, companies: tuple[str, ...]) -> str:
    """The known company names with a join word in them ("Smith and Sons"), quoted where the question
    names them after "from", "at", … or before "leads", so their "and" joins nothing."""
    for name in sorted(companies, key=len, reverse=True):
        question = re.sub(
            rf"(?P<lead>\b(?:from|at|for|of|by|with) (?:the )?)?(?P<name>{re.escape(name)})"
            rf"(?(lead)(?![\w\"'])|(?= (?:leads|contacts|employees|staff|people)\b))",
            lambda match: f'{match.group("lead") or ""}"{match.group("name")}"',
            question,
            flags=re.IGNORECASE,
        )
    return question


_TITLED_NAME = re.compile(
    r"\b(?P<lead>(?:from|at|with|for) (?:the )?)(?P<name>[A-Z][a-z][\w'-]*(?: [A-Z][\w'-]*){1,3})(?! of\b)"
)


def _quote_titled_names(question: str) -> str:
    """ "leads from Berlin Partner", "at Globex Partner GmbH": a run of capitalized words after "from",
    "at", … with a singular title word typed with a capital after its first word is one name, quoted
    so the title word is not read as a title ("CTOs from Acme", "from Berlin CTO", "at Acme Head of
    Sales", "from Globex Marketing Director" — a qualifier before it makes a title — are not)."""

    def quote(match: re.Match) -> str:
        words = match.group("name").split()
        titled = [
            index
            for index, word in enumerate(words)
            if index and not word.isupper() and word.lower() in TITLE_WORDS
        ]
        if (
            not titled
            or words[0].lower().rstrip("s") in TITLE_WORDS
            or any(words[index - 1].lower() in TITLE_QUALIFIERS for index in titled)
        ):
            return match.group(0)
        return f'{match.group("lead")}"{match.group("name")}"'

    return _TITLED_NAME.sub(quote, question)


# "set the owner of …", "please send an email to …": a request, not a question.
_WRITE_OPENING = re.compile(
    r"^ ?(?:(?:please|pls|kindly|can you|could you|would you|will you|how do i|how can i|how do we|"
    rf"how can we|how to|can i|can we) )*(?:{'|'.join(WRITE_OPENINGS)})\b"
    r"(?! (?:by|on|per|of)\b)"
)
_COMPANY_SUFFIXES = frozenset({"co", "company", "sons", "son", "partners", "associates", "cie"})
# Endings of a company name typed in lower case: "from acme ltd" keeps "acme ltd" whole.
_LEGAL_FORMS = frozenset({"ltd", "inc", "llc", "gmbh", "ag", "corp", "plc", "sa", "bv", "group"})
_EDGE_PUNCTUATION = "?!,;:.()"


def _quote_ampersand_names(question: str) -> str:
    """Company names written with "&" quoted, so they stay whole: "AT&T", "Procter & Gamble",
    "Smith, Jones & Co". Such names are common, and a split half ("at", "t") would match almost
    every lead; two companies are joined with "and" or "or". Titles and places on either side are
    not a name ("ctos & ceos", "Berlin & Munich": "&" joins them like "and"), and the names the
    database knows are quoted already."""

    def other(word: str) -> bool:
        low = word.lower().strip(_EDGE_PUNCTUATION + "'’")
        return (
            not low
            or '"' in word
            # "AT & T": a word in capitals is a name's, unless it is a title or a place.
            or (
                low in VOCABULARY
                and low not in _COMPANY_SUFFIXES
                and not word.strip(_EDGE_PUNCTUATION).isupper()
            )
            or low in PLACE_WORDS
            or low in TITLE_WORDS
            or re.sub(r"e?s$", "", low) in TITLE_WORDS
        )

    tokens = question.split()
    spans: list[tuple[int, int]] = []
    for index, word in enumerate(tokens):
        if re.fullmatch(r"[\w.'’-]+&[\w.'’-]+[?!,;:.]*", word):  # "AT&T"
            spans.append((index, index + 1))
        if word != "&" or not index or index + 1 == len(tokens):
            continue
        start = index
        while (
            start > max(index - 3, 0) and not other(tokens[start - 1]) and not tokens[start - 1].endswith(",")
        ):
            start -= 1
        end = index + 1
        while end < min(index + 4, len(tokens)) and not other(tokens[end]):
            end += 1
            if tokens[end - 1][-1] in _EDGE_PUNCTUATION:
                break
        if start == index or end == index + 1:
            continue
        # "Smith, Jones & Co": a comma list belongs to the name only when a company suffix ends it.
        if tokens[end - 1].lower().strip(_EDGE_PUNCTUATION) in _COMPANY_SUFFIXES:
            while start > 0 and tokens[start - 1].endswith(",") and not other(tokens[start - 1]):
                start -= 1
        spans.append((start, end))
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    for start, end in reversed(kept):
        last = tokens[end - 1]
        tail = last[len(last.rstrip("?!,;:")) :]
        name = " ".join(tokens[start:end])
        name = name[: len(name) - len(tail)]
        tokens[start:end] = [f'"{name}"{tail}']
    return " ".join(tokens)


def _each_joined(text: str) -> tuple[str, bool]:
    """ "how many in berlin and how many in munich" → "how many in berlin or in munich", and whether
    the question asked for one count per value ("and how many", "vs", "compared to", "compare")."""
    marker = re.compile(r"(?: ,)? (?:separately|respectively|individually|one by one|each)(?= ,|$)")
    if re.search(r"\b(?:how many|count|number of)\b", text) and marker.search(text):
        # "count the CFOs and the CEOs separately"; "Hamburg vs Berlin, how many each"
        return _each_joined(marker.sub("", text))[0], True
    # "how many each in Hamburg and Berlin"
    each_after = re.compile(r"\b(how many|count|number of) each\b")
    if each_after.search(text):
        return _each_joined(each_after.sub(r"\1", text))[0], True
    head = re.search(r"\bhow many\b", text)
    rest = text[head.end() :] if head else ""
    each = re.compile(
        r"(?: ,)? (?:and |& |, )how many (?:(?:leads|contacts|people) )?(?:(?:are there|do we have|are|were|is) )?"
    )
    if head and each.search(rest):
        return text[: head.end()] + each.sub(" or ", rest), True
    # "Berlin leads vs Hamburg leads": the first noun goes, as in "Berlin or Hamburg leads".
    versus = re.compile(r"(?: (?:leads|contacts|people))? (?:vs|versus|compared (?:to|with))(?: ,)? ")
    if versus.search(text):
        joined = versus.sub(" or ", text)
        # "Acme vs Globex" opens with the names: companies, as in "compare Acme and Globex".
        return (f"from {joined}" if _names_a_company(joined) else joined), True
    compare = re.match(
        r"^ ?(?:, )?compare (?:the (?=numbers? of |counts of ))?(?:numbers? of |counts of )?", text
    )
    if compare:  # "compare Berlin and Munich", "compare CTOs with CEOs"
        rest = re.sub(r" (?:with|to|against) ", " and ", text[compare.end() :])
        # "compare Berlin and Munich" is about places, "compare Acme and Globex" about companies.
        first = rest.split(" ", 1)[0]
        if first in PLACE_WORDS:
            rest = f"in {rest}"
        elif _names_a_company(rest):
            rest = f"from {rest}"
        return f"how many {rest}", True
    return text, False


def _names_a_company(text: str) -> bool:
    """Whether the text opens with a word that can only be a company: not a place, title or keyword."""
    first = text.strip(" ,").split(" ", 1)[0]
    return (
        first not in PLACE_WORDS and first not in VOCABULARY and re.sub(r"e?s$", "", first) not in TITLE_WORDS
    )


def _is_follow_up(text: str) -> bool:
    text = text.strip(" ,|")
    words = set(text.split())
    if words & FOLLOW_UP_WORDS:
        return True
    if FRESH_MARKERS.search(text):
        return False
    if FOLLOW_UP_START.match(text):
        return True
    if SOFT_FOLLOW_UP_START.match(text) or words & FOLLOW_UP_PRONOUNS:
        return not words & SUBJECT_WORDS
    return False


def _follow_up(
    state: _State,
    previous: Plan,
    replacement: list[str],
    leftover: list[str],
    corrected: dict[str, str] | None = None,
) -> Plan | Clarification:
    filters = list(previous.filters)
    if replacement and not state.filters:
        # "What about Initech?": the same question about another value.
        text_filters = [c for c in filters if c.op in TEXT_VALUE_OPS]
        # "What about Munich or Hamburg?": any of them.
        values = [
            state.value(value) for value in re.split(r" ?(?:\b(?:or|and)\b|,) ?", " ".join(replacement))
        ]
        values = [value for value in values if value]
        if not values or any(len(value) > MAX_VALUE_CHARS for value in values):
            return _not_understood(replacement)
        old = text_filters[-1] if text_filters else None
        try:
            if old is not None:
                filters[filters.index(old)] = Condition.any_of(old.field, old.op, values)
            else:
                filters.append(Condition.any_of("company_or_domain", "contains", values))
        except ValueError:  # nothing usable left of the value, e.g. an empty quote
            return _not_understood(replacement)
    elif leftover:
        return _not_understood(leftover, corrected)
    for condition in state.filters:
        # A new condition on a field replaces the previous plan's condition on that field.
        filters = [old for old in filters if old.field != condition.field] + [condition]
    action = "group" if state.group_by else state.action or ("list" if state.sort else previous.action)
    group_by = state.group_by or previous.group_by
    sort = state.sort or (previous.sort if action == previous.action else None)
    limit = state.limit or (previous.limit if action == previous.action else None)
    return _plan(action, filters, group_by, sort, limit)


def _other_source(text: str, previous: Plan, sources: SourceNames) -> Plan | Clarification | None:
    """ "What about April?" after a question about the March sheet: the same question about another
    sheet or file of the database (not the month of April)."""
    rest = re.sub(r"^(?:and |but )?(?:(?:what|how) about )?(?:the )?", "", text.strip(" ,|"))
    # "and the April one?": "one" stands for the sheet or file.
    words = [
        word for word in rest.split() if word not in (",", "|", "one", "ones", *SHEET_WORDS, *FILE_WORDS)
    ]
    for index, condition in enumerate(previous.filters):
        if condition.field not in ("worksheet", "source") or not words:
            continue
        names = sources.worksheets if condition.field == "worksheet" else sources.files
        found = [name for name in names if _name_matches(words, name)]
        if len(found) == 1 and found[0] != condition.value:
            filters = list(previous.filters)
            filters[index] = Condition(condition.field, "contains", found[0])
            return _plan(previous.action, filters, previous.group_by, previous.sort, previous.limit)
    return None


def _plan(
    action: str, filters: list[Condition], group_by: str | None, sort: str | None, limit: int | None
) -> Plan | Clarification:
    if action == "count_each" and not any(condition.alternatives for condition in filters):
        action = "count"  # "and in Munich?" after "how many in Berlin and how many in Hamburg?"
    # "a US number we could ring": the number's country already says it has one.
    valued = {condition.field for condition in filters if condition.op in TEXT_VALUE_OPS}
    filters = [
        condition for condition in filters if not (condition.op == "not_empty" and condition.field in valued)
    ]
    # Checked like a model's plan: the same defaults, caps and condition limit.
    draft = Plan(action, tuple(filters), group_by=group_by, sort=sort, limit=limit or None)
    return plan_validate(draft.to_plan_dict())


def _not_understood(leftover: list[str], corrected: dict[str, str] | None = None) -> Clarification:
    """Asks back, quoting the words not understood as typed (before spelling correction)."""
    if "or" in leftover:
        return _or_clarification()
    words = " ".join((corrected or {}).get(word, word) for word in leftover[:6])
    return Clarification(f"I did not understand “{words}”. {HELP_TEXT}")


def _or_clarification() -> Clarification:
    return Clarification(
        "I can combine alternatives of one kind (“CTOs or CEOs”, “in Berlin or Munich”, “from Acme or "
        "Globex”), not of different kinds (“CTOs or leads from Acme”). Ask about one at a time, e.g. "
        "“How many CTOs?” and then “What about leads from Acme?”."
    )


# --- Normalization -------------------------------------------------------------------------------


def _normalize(
    question: str, *, protected: frozenset[str] = frozenset(), corrected: dict[str, str] | None = None
) -> tuple[str, list[str]]:
    """Lower-case words separated by single spaces; quoted text replaced by placeholders (QUOTED + 0, 1…)
    and kept as typed; punctuation that ends a value becomes ","; misspelled keywords corrected (never
    the words in `protected`), each recorded in `corrected` (corrected word -> as typed)."""
    corrections = corrected
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
    # "w/o phone" is "without phone", "ppl" "people" (unless a sheet, file or company name has the word).
    text = re.sub(
        _ABBREVIATION,
        lambda m: m.group(0) if m.group(0) in protected else ABBREVIATIONS[m.group(0)],
        text,
    )
    # "C.T.O.s" is "ctos", "Vice-President" "vice president".
    text = re.sub(
        r"(?<![^\s(\"])((?:[a-z]\.){2,4}s?)(?=[\s,?!;:)]|$)", lambda m: m.group(1).replace(".", ""), text
    )
    text = re.sub(r"\b(vice|chief|senior|executive|managing|general)-(?=[a-z])", r"\1 ", text)
    text = re.sub(r"\be[- ]mails?\b", lambda m: m.group(0).replace("-", "").replace(" ", ""), text)
    text = text.replace("what's", "what is").replace("who's", "who is").replace("how's", "how is")
    # "don't have" → "do not have", "I'd like" → "i would like", "can't" → "can not".
    text = re.sub(r"\b(ca|wo)n't\b", lambda m: {"ca": "can", "wo": "will"}[m.group(1)] + " not", text)
    text = re.sub(r"\b(\w+)n't\b", r"\1 not", text)
    text = re.sub(
        r"\b(i|we|you|they)'(d|ve|re|m|ll)\b", lambda m: f"{m.group(1)} {_CONTRACTED[m.group(2)]}", text
    )
    # "did we add this week" asks about leads added, it does not ask to add any.
    text = re.sub(
        r"\b(?:did|do|have|has|had) (?:we|you|they|i|someone|anyone) (add|create)(?:ed|d)?\b", r"\1ed", text
    )
    text = text.replace("createed", "created")
    text = re.sub(r"(\w)'s\b", r"\1", text)  # "Globex's" → "globex"
    # "since the 5th of June" → "since june 5" (not the end of a range: "the 1st to the 15th of May").
    text = re.sub(
        rf"(?P<before>\b(?:to|until|till|and|-) )?\b(?:the )?(?P<day>\d{{1,2}})(?:st|nd|rd|th)? of (?P<month>{MONTH})\b",
        lambda m: m.group(0) if m.group("before") else f"{m.group('month')} {m.group('day')}",
        text,
    )
    text = re.sub(r"(\w)-based\b", r"\1 based", text)
    text = re.sub(r"[?!;()\[\]{}<>]", " , ", text)
    text = re.sub(r",", " , ", text)
    text = re.sub(r":", " ", text)
    text = re.sub(r"\.(?=\s|$)", " , ", text)
    words = text.split()
    corrected = []
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if word in TITLE_MISSPELLINGS:
            word = TITLE_MISSPELLINGS[word]
        elif (
            word.isalpha()
            and word not in capitalized
            and word not in protected
            and previous not in VALUE_INTRODUCERS
        ):
            fixed = _correct(word)
            if fixed != word and corrections is not None:
                corrections[fixed] = word
            word = fixed
        corrected.append(word)
    # "Thanks! And how many in Munich?" is a follow-up: an interjection first says nothing.
    return INTERJECTIONS.sub("", " ".join(corrected)), quoted


_KEYWORD_SET = frozenset(KEYWORDS)
_ONE_WORD_PLACES = sorted(place for place in PLACES if " " not in place)
_ABBREVIATION = rf"(?<!\S)(?:{'|'.join(re.escape(word) for word in sorted(ABBREVIATIONS, key=len, reverse=True))})(?=[\s,?!;:)]|$)"
_CONTRACTED = {"d": "would", "ve": "have", "re": "are", "m": "am", "ll": "will"}


def _correct(word: str) -> str:
    if len(word) < 2 or word in VOCABULARY or word in PLACE_WORDS or word in MONTHS or word in WEEKDAYS:
        return word
    for index in range(len(word) - 1):  # one swapped pair of letters: "compnay"
        swapped = word[:index] + word[index + 1] + word[index] + word[index + 2 :]
        if swapped in _KEYWORD_SET:
            return swapped
    # A misspelling drops or adds a letter or two, not a syllable: "important" is not "import", "main"
    # not "domain".
    matches = [
        match
        for match in difflib.get_close_matches(word, KEYWORDS, n=3, cutoff=0.8)
        if abs(len(match) - len(word)) <= max(1, len(word) // 4)
    ]
    # Misspellings rarely get the first letter wrong: of equally close words ("who", "how" for "ho")
    # prefer one that starts like the typed word.
    matches.sort(key=lambda match: (-difflib.SequenceMatcher(None, word, match).ratio(), match[0] != word[0]))
    if matches:
        return matches[0]
    # "berln", "munchen": a place with a letter dropped or changed, when the word is long enough that
    # few other words are as close, and starts like the place.
    places = difflib.get_close_matches(word, _ONE_WORD_PLACES, n=1, cutoff=0.8) if len(word) >= 5 else []
    return places[0] if places and places[0][0] == word[0] else word


# --- Rules, in the order they run ------------------------------------------------------------------


def _words_pattern(words: object) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))  # type: ignore[arg-type]


_BOUNDARY = _words_pattern(BOUNDARY_WORDS)
# A value: one to six words, none of them a boundary word; or a quoted placeholder.
_VALUE_BODY = rf"\ue000\d+|(?:(?!(?:{_BOUNDARY})\b)[^\s|,]+)(?: (?!(?:{_BOUNDARY})\b)[^\s|,]+){{0,5}}"
VALUE = rf"(?P<value>{_VALUE_BODY})"
# What joins alternatives of one kind: "CTOs or CEOs", "Berlin, Munich or Hamburg", "Acme and Globex".
JOIN = r"(?: ,(?: or| and| &)? | or | and | & | and/or )"


# Further values after a VALUE: ", B or C", " or B", " and B"; commas only in a list that ends in or/and.
# A place word may be repeated ("in Berlin or in Munich").
def _more(value: str) -> str:
    """Further values of the pattern `value` after a first one: ", B or C", " or B", " and B"."""
    item = rf"(?:(?:in|from|at) )?(?:{value})"
    # "A, B or C", and "A or B or C" as well.
    return rf"(?P<more>(?: , {item})*(?:(?: ,)? (?:or|and|&|and/or) {item})+)"


MORE_VALUES = _more(_VALUE_BODY)
# "for" before a company or place when it narrows: "same but just for Berlin", "only for Acme".
REFINING_FOR = (
    r"(?:just|only|but|same) for|(?:(?<=\| )|(?<=leads )|(?<=contacts )|(?<=people )|(?<=count )|(?<=number )|"
    r"(?<=total ))for|^ ?for"
)
# Written-out spellings of the known titles (leads.titles), found as titles: "chief executive", "managing director".
TITLE_SPELLINGS = tuple(
    spelling
    for group in TITLE_EQUIVALENTS
    if group[0] in TITLE_WORDS
    for spelling in group
    if " " in spelling
)
# A mark left by the title rule for each title it found, numbered, so that joined titles can be told apart.
TITLE_MARK = "\ue001"
ISO_DATE = r"\d{4}[-/]\d{1,2}[-/]\d{1,2}"
MONTH = _words_pattern(MONTHS)
# A day relative to today: "monday" and "this monday" are the latest Monday up to today, "last monday"
# the latest before it.
RELATIVE_DAY = rf"(?:(?:last|this|past) )?(?:{_words_pattern(WEEKDAYS)})|today|yesterday"
DATE = rf"(?:{ISO_DATE}|(?:{MONTH}) \d{{1,2}}(?:st|nd|rd|th)?(?: \d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)? (?:{MONTH})(?: \d{{4}})?|{RELATIVE_DAY})"
DATE_VERBS = r"(?:(?:were|was|been|got|are|is) )?(?:added|created|new|imported|entered|came in|come in|arrived|updated|modified|changed|edited|touched)"
OPTIONAL_DATE_VERB = rf"(?:{DATE_VERBS} )?"
UNITS = r"(?P<unit>days?|weeks?|months?|years?)"
AMOUNT = rf"(?P<amount>\d+|{_words_pattern(NUMBER_WORDS)})"


def _rule_filler_phrases(state: _State) -> None:
    """ "at the moment", "right now", "if possible": nothing to look for (and "at the moment" is no company)."""
    state.apply(rf"\b(?:{_words_pattern(FILLER_PHRASES)})\b", lambda m: None)
    # "the tab named sheet 1" is "sheet 1": the name says it is a sheet.
    state.text = re.sub(r"\b(?:worksheets?|sheets?|tabs?) (?:named|called) (?=sheet ?\d+\b)", "", state.text)


def _rule_known_sources(state: _State) -> None:
    """ "the trade show list", "the March sheet", "the sheet called March", "from the trade show":
    where leads came from, matched to the worksheet and file names in the database. Runs first, so
    that "March" in "the March sheet" is a sheet and not a date."""

    def latest(match: re.Match) -> None:
        if state.sources.latest_file:
            state.add("source", "contains", state.sources.latest_file)
        else:
            state.problems.append("no file has been imported yet")

    state.apply(
        r"\b(?:(?:from|in|of) )?(?:the|my|our) (?:last|latest|most recent|newest|recent|previous) "
        r"(?:file|upload|import|list|spreadsheet)\b",
        latest,
    )
    tokens = list(re.finditer(r"\S+", state.text))
    kinds = {word: "worksheet" for word in SHEET_WORDS} | {word: "source" for word in FILE_WORDS}
    spans: list[tuple[int, int]] = []
    for index, token in enumerate(tokens):
        word = token.group(0)
        if word in kinds or word in ("leads", "contacts"):
            found = _name_before(state, tokens, index, kinds.get(word))
            if found is None and word in kinds and word != "list":
                found = _name_after(state, tokens, index, kinds[word])
        elif word == "the" and index and tokens[index - 1].group(0) in ("from", "in", "through", "via"):
            found = _name_after(state, tokens, index, None, bare=True)
        else:
            continue
        if found is not None:
            spans.append(found)
    for start, end in sorted(spans, reverse=True):
        state.text = re.sub(" +", " ", f"{state.text[:start]} | {state.text[end:]}")


def _name_before(
    state: _State, tokens: list[re.Match], index: int, kind: str | None
) -> tuple[int, int] | None:
    """A name right before the place word at `index` ("the trade show list"): up to four words back to
    an article, a preposition or a word that ends a value; the longest that names a sheet or file."""
    words = [token.group(0) for token in tokens[_name_start(tokens, index) : index]]
    chosen = None
    for size in range(len(words), 0, -1):
        if _matching_names(state, words[-size:], kind):
            chosen = size
            break
    if chosen is None:
        # "Acme leads" is a company; "the trade show leads" is a name only when the database has it.
        if kind is None:
            return None
        # A name the database does not have: the words after the last one that ends a value.
        while any(word in BOUNDARY_WORDS for word in words):
            words = words[1:]
        while words and (words[0] in FILLER_WORDS or words[0] in VOCABULARY - MONTHS.keys()):
            words = words[1:]
        chosen = len(words)
        if not chosen or not _is_name_phrase(words):
            return None
    # "the March and April sheets", "the fair, web or partners files": any of the names, when each
    # names one sheet or file, all of the same kind.
    phrases, start = _joined_names(tokens, index - chosen, words[-chosen:])
    if kind is None and not (start > 0 and tokens[start - 1].group(0) in NAME_LEAD_INS):
        return None
    if len(phrases) > 1:
        if not _add_sources(state, phrases, kind):
            if kind is None:
                return None
            state.problems.append(
                "I can look at several sheets or files when each names one; ask about one, then “what about …?”"
            )
    elif not _add_source(state, words[-chosen:], kind, fallback=kind is not None):
        return None
    for _ in range(2):  # "from the"
        if start > 0 and tokens[start - 1].group(0) in NAME_LEAD_INS:
            start -= 1
    end_token = tokens[index] if kind is not None else tokens[index - 1]
    return tokens[start].start(), end_token.end()


def _joined_names(tokens: list[re.Match], start: int, last: list[str]) -> tuple[list[list[str]], int]:
    """The names joined before the name `last` that starts at `start` ("March and April", "fair, web or
    partners"), each as its words, and where the first one starts."""
    phrases = [last]
    joiner = start - 1
    if joiner > 0 and tokens[joiner].group(0) == "the" and tokens[joiner - 1].group(0) in JOIN_WORDS:
        joiner -= 1  # "the March or the April sheet"
    joins = JOIN_WORDS
    while joiner >= 0 and tokens[joiner].group(0) in joins and _name_start(tokens, joiner) < joiner:
        start = _name_start(tokens, joiner)
        phrases.insert(0, [token.group(0) for token in tokens[start:joiner]])
        joiner, joins = start - 1, {","}
    return phrases, start


def _name_start(tokens: list[re.Match], index: int) -> int:
    """Where a name ending before `index` may start: up to four words back to an article or a preposition."""
    first = index
    while first > 0 and index - first < 4:
        word = tokens[first - 1].group(0)
        if word in NAME_LEAD_INS or word in "|,":
            break
        first -= 1
    return first


def _name_after(
    state: _State, tokens: list[re.Match], index: int, kind: str | None, *, bare: bool = False
) -> tuple[int, int] | None:
    """A name after the place word ("the sheet called March") or after "from the" (bare: only names
    that are in the database)."""
    start = index + 1
    named = start < len(tokens) and tokens[start].group(0) in ("named", "called")
    start += named
    if bare and start < len(tokens) and tokens[start].group(0) in ("last", "latest", "recent", "previous"):
        start += 1  # "from the last trade show": the name is what follows
    following = [token.group(0) for token in tokens[start : start + 8]]
    place_words = [index for index, word in enumerate(following) if word in SHEET_WORDS + FILE_WORDS]
    if bare and place_words and "|" not in following[: place_words[0]]:
        return None  # "from the Fair worksheet", "in the March and April sheets": the place word's own rule
    words = []
    for token in tokens[start : start + 4]:
        if token.group(0) in BOUNDARY_WORDS or token.group(0) in "|,":
            break
        words.append(token.group(0))
    for size in range(len(words), 0, -1):  # the longest name that matches
        phrase = words[:size]
        if _matching_names(state, phrase, kind) or (named and size == len(words) and _is_name_phrase(phrase)):
            if _add_source(state, phrase, kind, fallback=named):
                first = index - 1 if bare else index
                return tokens[first].start(), tokens[start + size - 1].end()
            return None
    return None


def _excluded(phrase: list[str]) -> bool:
    # File names with an extension and "Sheet2" are the next rules' (they keep the name as typed).
    return bool(re.search(rf"\.(?:{'|'.join(FILE_EXTENSIONS)})\b|^sheet ?\d+$", " ".join(phrase)))


def _is_name_phrase(phrase: list[str]) -> bool:
    """Whether words that match no known name may still be one: not a file name or "Sheet2" (the next
    rules keep those as typed), not only the parser's own words."""
    if _excluded(phrase):
        return False
    return any(word in MONTHS or (word not in FILLER_WORDS and word not in VOCABULARY) for word in phrase)


def _matching_names(state: _State, phrase: list[str], kind: str | None) -> list[tuple[str, str]]:
    """(field, name) of the database names the phrase matches: the kind the question named first."""
    phrase = state.value(" ".join(phrase)).lower().split()  # quoted text as typed
    if _excluded(phrase):
        return []
    order = ("worksheet", "source") if kind == "worksheet" else ("source", "worksheet")
    names = {"worksheet": state.sources.worksheets, "source": state.sources.files}
    for field_name in order:
        found = [name for name in names[field_name] if _name_matches(phrase, name)]
        if found:
            return [(field_name, name) for name in found]
    return []


def _add_source(state: _State, phrase: list[str], kind: str | None, *, fallback: bool) -> bool:
    """Add the condition for a named sheet or file; False when nothing matched and there is no fallback."""
    matches = _matching_names(state, phrase, kind)
    typed = state.value(" ".join(phrase))
    if not matches:
        if not fallback:
            return False
        known = state.sources.worksheets if kind == "worksheet" else state.sources.files
        if known:
            kind_words = "sheet" if kind == "worksheet" else "file"
            listed = ", ".join(f"“{name}”" for name in known[:5])
            state.problems.append(f"there is no {kind_words} called “{typed}” (there are {listed})")
        else:
            state.add(kind or "source", "contains", typed)
        return True
    field_name = matches[0][0]
    if shortest := _one_name(matches):
        state.add(field_name, "contains", shortest)
    else:
        values = sorted({name for _, name in matches}, key=lambda name: (len(name), name))
        label = "sheets" if field_name == "worksheet" else "files"
        listed = ", ".join(f"“{name}”" for name in values[:5])
        state.problems.append(f"“{typed}” could be one of several {label} ({listed}); say which one")
    return True


def _add_sources(state: _State, phrases: list[list[str]], kind: str | None) -> bool:
    """One condition for several named sheets or files, any of which may match; False unless each
    phrase names exactly one sheet or file, all of the same kind."""
    found = [_matching_names(state, phrase, kind) if phrase else [] for phrase in phrases]
    names = [_one_name(matches) for matches in found]
    if not all(names) or len({matches[0][0] for matches in found}) > 1:
        return False
    state.add_any(found[0][0][0], "contains", names)
    return True


def _one_name(matches: list[tuple[str, str]]) -> str:
    """The value that finds every matched name ("March" for "March" and "March 2024"), or "" if none does."""
    values = sorted({name for _, name in matches}, key=lambda name: (len(name), name))
    if values and all(values[0].lower() in value.lower() for value in values):
        return values[0]
    return ""


def _name_matches(phrase: list[str], name: str) -> bool:
    """Whether the typed words name `name`: every word is one of its words (ignoring a plural "s" and a
    small typo), or the words run together are part of it ("tradeshow")."""
    words = _name_words(name)
    typed = [word for word in _name_words(" ".join(phrase)) if word not in NAME_LEAD_INS]
    if not typed or not words:
        return False
    # Run together, the typed words are whole words of the name ("tradeshow"), not a part of one ("new"
    # is not "newsletter_signups").
    joined = "".join(typed)
    runs = {
        "".join(words[first:last]) for first in range(len(words)) for last in range(first + 1, len(words) + 1)
    }
    if len(joined) >= 3 and (joined in runs or joined.removesuffix("s") in runs):
        return True
    return all(_word_matches(word, words) for word in typed)


def _word_matches(word: str, words: list[str]) -> bool:
    for candidate in words:
        if word == candidate or word.rstrip("s") == candidate.rstrip("s"):
            return True
        if len(word) >= 5 and difflib.SequenceMatcher(None, word, candidate).ratio() >= 0.85:
            return True
    return False


def _name_words(name: str) -> list[str]:
    """ "TradeShow_2025.xlsx" → ["trade", "show", "2025"]."""
    stem = re.sub(rf"\.(?:{'|'.join(FILE_EXTENSIONS)})$", "", name.strip(), flags=re.IGNORECASE)
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", stem)
    return re.findall(r"[^\W_]+", stem.lower())


def _rule_dates(state: _State) -> None:
    """ "between June 1 and June 5", "since May", "before 2025-06-01", "in the last 2 weeks", "this month",
    "in April", "yesterday": a condition on the day a lead was created, or updated when the question
    says so ("updated", "modified", "changed", "edited")."""
    updated = r"\b(?:updated|modified|changed|edited|touched)\b"
    added = r"\b(?:added|created|imported|entered|came in|come in|arrived)\b"
    if not re.search(updated, state.text):
        field_name = "created"
    elif not re.search(added, state.text):
        field_name = "updated"
    else:
        # "added this week and updated today": each date belongs to the verb before it (the first
        # verb's field for a date before any verb).
        verbs = list(re.finditer(f"{updated}|{added}", state.text))
        cuts = [0, *(verb.start() for verb in verbs[1:]), len(state.text)]
        pieces = []
        for verb, first, last in zip(verbs, cuts, cuts[1:], strict=False):
            piece = replace(state, text=state.text[first:last])
            name = "updated" if re.match(updated, verb.group(0)) else "created"
            _dates_from_days(piece, name)
            _dates_from_periods(piece, name)
            pieces.append(piece.text)
        state.text = re.sub(" +", " ", " ".join(pieces))
        return
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

    def days_of_month(match: re.Match) -> bool | None:
        # "between 1 and 15 May", "May 1-15": two days of one month.
        year = int(match.group("year")) if match.group("year") else today.year
        try:
            days = [date(year, MONTHS[match.group("month")], int(match.group(name))) for name in ("d1", "d2")]
        except ValueError:
            state.problems.append(f"“{match.group(0).strip()}” is not a range of days of one month")
            return None
        _add_days(state, field_name, min(days), max(days))
        return None

    verbs = OPTIONAL_DATE_VERB
    day = r"(?:the )?(?P<{}>\d{{1,2}})(?:st|nd|rd|th)?"
    until = r"(?: (?:and|to|until|till|through) | ?- ?)"
    year = r"(?:,? (?P<year>\d{4}))?\b"
    state.apply(
        rf"\b{verbs}(?:(?:between|from|in|on|during) )?{day.format('d1')}{until}{day.format('d2')}(?: of)? "
        rf"(?P<month>{MONTH}){year}",
        days_of_month,
    )
    state.apply(
        rf"\b{verbs}(?:(?:between|from|in|on|during) )?(?P<month>{MONTH}) {day.format('d1')}{until}"
        rf"{day.format('d2')}(?! (?:{MONTH})\b){year}",
        days_of_month,
    )
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
        rf"\b{verbs}(?:since|from) (?:the )?(?:starts?|beginning) of (?:the |this )?(?P<unit>week|month|year)\b",
        lambda m: between(_calendar_period(today, "this", m.group("unit"))),
    )
    state.apply(
        rf"\b{verbs}(?:(?:in|during|from|for) )?(?P<which>this|last|previous) (?P<unit>week|month|year)\b",
        lambda m: between(_calendar_period(today, m.group("which"), m.group("unit"))),
    )
    state.apply(
        rf"\b{verbs}(?:(?:in|during|from|for) )?(?P<month>{MONTH})(?: (?P<year>\d{{4}}))?\b",
        # "may" alone is the verb ("may I see…"); the month needs "in May", "added May", "May 2025".
        lambda m: False if m.group(0).strip() == "may" else between(_month_days(m, today)),
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
        # Status and owner are sort keys of the table, not fields a condition can use.
        word = match.group("field")
        field_name = word if word in ("status", "owner") else _field_of(word)
        key = {"email_domain": "email", "name": "last_name", "remarks": None}.get(field_name, field_name)
        if key is None:
            return False  # type: ignore[return-value]
        descending = match.groupdict().get("direction") in ("desc", "descending", "z-a")
        state.sort = f"-{key}" if descending else key
        return None

    state.apply(
        rf"\b(?:sorted|ordered|order|sort)(?: them| it)? (?:by|on) (?:the )?(?P<field>{fields}|date added|created|updated|status|owner)\b"
        rf"(?: (?P<direction>asc|ascending|desc|descending|a-z|z-a))?",
        lambda m: (
            _date_sort(state, m) if m.group("field") in ("date added", "created", "updated") else sort_by(m)
        ),
    )
    # "list the Fair sheet by owner": status and owner are no groups, only sort keys.
    state.apply(
        r"\b(?:by|per) (?:the )?(?P<field>status|owner)\b", lambda m: setattr(state, "sort", m.group("field"))
    )
    # "sort the CEOs by company": what is sorted stays for the other rules.
    state.apply(
        rf"\b(?:sort|order)(?P<middle>(?: (?!by\b)[^\s|,]+){{1,4}}) by (?:the )?(?P<field>{fields})\b",
        lambda m: False if sort_by(m) is False else m.group("middle"),
    )
    state.apply(
        rf"\balphabetically(?: by (?P<field>{fields}))?\b",
        lambda m: setattr(state, "sort", _field_of(m.group("field")) if m.group("field") else "last_name"),
    )

    def newest(match: re.Match) -> None:
        amount = match.group("amount") or match.group("amount2")
        if amount:
            state.limit = _number(amount)
        elif re.match(
            r" (?:lead|contact|person|entry|record|one)\b(?! (?:lists?|files?|sheets?|imports?|uploads?)\b)",
            state.text[match.end() :],
        ) or re.match(rf" (?:{_words_pattern(TITLE_WORDS)})(?= |$)", state.text[match.end() :]):
            state.limit = 1  # "the oldest lead", "our newest contact": one, not a list
        word = match.group("word")
        state.sort = {"oldest": "created", "recently updated": "-updated", "last updated": "-updated"}.get(
            word, "-created"
        )

    state.apply(
        rf"\b(?:the )?(?:(?P<amount>\d+|{_words_pattern(NUMBER_WORDS)}) )?(?P<word>recently updated|last updated|"
        rf"newest|latest|most recent|most recently added|recently added|recent|oldest|"
        rf"last(?= (?:lead|contact|entry|record)\b))"
        rf"(?: (?P<amount2>\d+|{_words_pattern(NUMBER_WORDS)}))?(?: first| ones)?\b",
        newest,
    )

    def most_recently(match: re.Match) -> None:
        state.sort = "-created"
        if match.group("one"):
            state.limit = 1  # "who was added most recently?": one

    state.apply(
        r"\b(?:(?P<one>who|which lead|what lead) (?:was|got) )?(?:added|created|imported|entered) most recently\b",
        most_recently,
    )
    # "the last 10 leads we added": the newest ten ("the last 7 days" is a date, read before).
    state.apply(
        rf"\b(?:the )?(?:last|latest) (?P<amount>\d+|{_words_pattern(NUMBER_WORDS)}) (?=(?:leads|contacts|entries|records)\b)",
        lambda m: _newest(state, _number(m.group("amount"))),
    )
    state.apply(
        rf"\b(?:top|first|show me|show|list|give me) (?P<amount>\d+)\b(?! (?:days?|weeks?|months?|years?|{groups})\b)",
        lambda m: setattr(state, "limit", int(m.group("amount"))),
    )


def _newest(state: _State, amount: int) -> None:
    state.sort, state.limit = "-created", amount


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
        rf"\b(?:which|what) (?P<field>{groups}) (?:have|has|with|had)(?: got)? the (?:most|highest number of|"
        rf"largest number of)(?: leads| contacts)?\b",
        group,
    )
    # "which email domains show up most", "which companies do we have the most leads from".
    state.apply(
        rf"\b(?:which|what) (?P<field>{groups}) (?:show up|shows up|turn up|turns up|come up|comes up|appear|"
        rf"appears|occur|occurs|are there|is there|are|is) (?:the )?most(?: often| frequently| commonly)?\b",
        group,
    )
    # "which sheet brought in the most", "which companies are giving us the most leads": any short verb
    # phrase between the field and "the most".
    state.apply(
        rf"\b(?:which|what) (?P<field>{groups})(?: (?!(?:not|no|never|least|fewest)\b)[a-z]+){{1,4}} (?:the )?most\b",
        group,
    )

    # "our 5 biggest accounts", "top customers": companies by their number of leads.
    def accounts(match: re.Match) -> None:
        state.group_by = "company"
        if match.group("amount"):
            state.limit = _number(match.group("amount"))

    state.apply(
        rf"\b(?:{AMOUNT} )?(?:biggest|largest|top|main|most important) (?:accounts|customers|clients)\b",
        accounts,
    )
    state.apply(
        rf"\b(?:which|what) (?P<field>{groups}) do (?:we|you|i) have (?:the )?most (?:leads |contacts )?"
        rf"(?:from|at|in|with|for)\b",
        group,
    )
    state.apply(
        rf"\b(?:rank|ranked|ranking)(?: the)?(?: (?P<field>{groups}))? by (?:the )?(?:number of |count of )?"
        rf"(?:leads|contacts)\b",
        lambda m: group(m) if m.group("field") else False,
    )
    state.apply(
        rf"\b(?P<field>{groups}) (?:ranked|sorted|ordered) by (?:the )?(?:number of |count of )?(?:leads|contacts)\b",
        group,
    )
    most = "most common|most frequent|most popular|commonest|biggest|largest|main|top"
    state.apply(rf"\b{AMOUNT} (?:{most}) (?P<field>{groups})\b", group)
    state.apply(rf"\b(?:{most})(?: {AMOUNT})? (?P<field>{groups})\b", group)
    # "overview of titles", "a summary by company".
    state.apply(
        rf"\b(?:overview|summary|breakdown|split|report)(?: of| by| on| per)(?: the| our| all)? (?P<field>{groups})\b",
        group,
    )
    state.apply(rf"\b(?P<field>{groups}) with the most (?:leads|contacts)\b", group)
    state.apply(rf"\b(?P<field>{groups}) (?:breakdown|overview|summary|split)\b", group)
    state.apply(rf"\b(?:which|what) (?:different )?(?P<field>{groups}) (?:do|are there|have|exist)\b", group)
    state.apply(rf"\bhow many (?:different |distinct |unique )?(?P<field>{groups})\b", group)


def _rule_value_in_field(state: _State) -> None:
    """ "with the word CTO in their title", "that mention Berlin in the remarks"."""
    fields = _words_pattern(word for words in FIELD_WORDS.values() for word in words)

    def handle(match: re.Match) -> bool | None:
        if match.group("value") in ("nothing", "no value", "no entry"):
            return False  # "nothing in the phone field": an empty field, for the presence rule
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

    field_phrases = [word for words in FIELD_WORDS.values() for word in words]

    def longer_field(match: re.Match) -> bool:
        # "have an email address": the field word goes on ("email address"), no value follows.
        value = match.groupdict().get("value") or ""
        phrase = f"{match.group('field')} {value.split(' ')[0]}"
        return any(word == phrase or word.startswith(f"{phrase} ") for word in field_phrases)

    def explicit(op: str) -> Callable[[re.Match], bool | None]:
        def handle(match: re.Match) -> bool | None:
            field_name = _field_of(match.group("field"))
            value = match.groupdict().get("value") or ""
            if op in VALUELESS_OPS:
                state.add(field_name, op)
                return None
            if op == "default" and longer_field(match):
                return False
            if not value or value in NOT_VALUES or (op == "default" and value in FILLER_WORDS):
                return False  # "have their phone set" is about presence, not a phone "set"
            _add_explicit(state, field_name, op, value)
            return None

        return handle

    def explicit_any(op: str) -> Callable[[re.Match], bool | None]:
        # "whose title is CTO or CEO": any of the values (the email fields' special forms take one).
        def handle(match: re.Match) -> bool | None:
            field_name, values = _field_of(match.group("field")), _alternatives(match)
            if field_name in ("email", "email_domain") or not all(map(_is_value, values)):
                return False
            if op == "default" and longer_field(match):
                return False
            state.add_any(
                field_name,
                "word" if op == "default" and field_name == "title" else op_or(op, "contains"),
                values,
            )
            return None

        return handle

    for op, words in ops.items():
        if op in VALUELESS_OPS:
            state.apply(rf"\b{prefix}?(?P<field>{fields}) (?:{words})\b", explicit(op))
        elif op == "default":
            # Without an op the field word needs a lead-in: "with title CTO", not "phone numbers".
            state.apply(rf"\b{prefix}(?P<field>{fields}) {VALUE}{MORE_VALUES}", explicit_any(op))
            state.apply(rf"\b{prefix}(?P<field>{fields}) {VALUE}", explicit(op))
        else:
            state.apply(rf"\b{prefix}?(?P<field>{fields}) (?:{words}) {VALUE}{MORE_VALUES}", explicit_any(op))
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
    named = r"\b(?:named|called|by the name(?: of)?|with the name|name is)"

    def names_a_source(match: re.Match) -> bool:
        # "the sheet called Sheet2", "the file named web.csv": a sheet or file (the next rule's), not a lead.
        before = state.text[: match.start()].split()
        return bool(before) and before[-1] in SHEET_WORDS + FILE_WORDS

    many, one = _any_of(state, "name", "equals"), lambda m: state.add("name", "equals", m.group("value"))
    state.apply(rf"{named} {VALUE}{MORE_VALUES}", lambda m: False if names_a_source(m) else many(m))
    state.apply(rf"{named} {VALUE}", lambda m: False if names_a_source(m) else one(m))


def _rule_files_sheets_domains(state: _State) -> None:
    extensions = "|".join(FILE_EXTENSIONS)
    lead_in = r"(?:(?:from|in|of|on) (?:the )?(?:(?:file|source file|upload|import) (?:named |called )?)?)?"
    file_name = rf"[\w][\w.\-]*\.(?:{extensions})\b"
    state.apply(
        rf"\b{lead_in}(?P<value>{file_name}){_more(file_name)}(?: (?:files?|uploads?|imports?))?",
        _any_of(state, "source", "contains"),
    )
    state.apply(
        rf"\b{lead_in}(?P<value>{file_name})(?: (?:file|upload|import))?",
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
    sheet = r"sheet ?\d+\b"
    sheet_lead_in = r"(?:(?:from|in|on) )?(?:the )?(?:(?:worksheets?|sheets?|tabs?) (?:named |called )?)?"
    state.apply(
        rf"\b{sheet_lead_in}(?P<value>{sheet}){_more(sheet)}(?: (?:worksheets?|sheets?|tabs?)\b)?",
        _any_of(state, "worksheet", "contains", lambda value: value.replace(" ", "")),
    )
    state.apply(
        rf"\b{sheet_lead_in}(?P<value>sheet ?\d+)\b(?: (?:worksheet|sheet|tab)\b)?",
        lambda m: state.add("worksheet", "contains", m.group("value").replace(" ", "")),
    )
    state.apply(
        r"\b(?:(?:from|in|on) )?(?:the )?(?:worksheet|sheet|tab) (?:named |called )?(?!named\b|called\b)(?P<value>\ue000\d+|[\w.\-]+)",
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
    domain = rf"@?(?:[a-z0-9-]+\.)+(?!(?:{extensions})\b)[a-z]{{2,10}}\b"
    state.apply(
        rf"(?<![\w@.-])(?:(?:with|having|have|has|from|at) )?(?:an? )?(?:{mail_words} (?:at|from|on|@|ending in|ending with) )?"
        rf"(?P<value>{domain}){_more(domain)}(?: {mail_words}| domains?)?",
        _any_of(state, "email_domain", "equals", lambda value: value.lstrip("@")),
    )
    state.apply(
        rf"(?<![\w@.-])(?:(?:with|having|have|has|from|at) )?(?:an? )?(?:{mail_words} (?:at|from|on|@|ending in|ending with) )?"
        rf"@?(?P<value>(?:[a-z0-9-]+\.)+(?!(?:{extensions})\b)[a-z]{{2,10}})\b(?: {mail_words}| domain)?",
        lambda m: state.add("email_domain", "equals", m.group("value")),
    )
    webmail = "|".join(WEBMAIL)
    # "whose email is on yahoo", "their mail is at gmail".
    state.apply(
        rf"\b(?:(?:whose|their|with|having|an?) )?(?:{mail_words}) (?:address )?(?:is|are) (?:on|at|with|from) (?=(?:{webmail})\b)",
        lambda m: None,
    )
    state.apply(
        rf"\b(?:(?:with|having|have|has|using|on|at) )?(?:an? )?(?P<value>{webmail}){_more(webmail)}(?: {mail_words})?\b",
        _any_of(state, "email_domain", "contains"),
    )
    state.apply(
        rf"\b(?:(?:with|having|have|has|using|on|at) )?(?:an? )?(?P<value>{webmail})(?: {mail_words})?\b",
        lambda m: state.add("email_domain", "contains", m.group("value")),
    )


def _rule_phone_countries(state: _State) -> None:
    """ "leads with a German number", "US phone numbers": the phone starts with the country's code."""
    countries = _words_pattern(PHONE_COUNTRIES)
    # "and with a US one?" after a question about German numbers: "one" is a number.
    phones = r"(?:phone|telephone|mobile|cell)(?: numbers?)?|numbers?|phones|mobiles|ones?"
    state.apply(
        rf"\b(?:(?:with|having|have|has|that have|who have) )?(?:an? |any )?(?P<country>{countries}) (?:{phones})\b",
        lambda m: state.add("phone", "starts_with", PHONE_COUNTRIES[m.group("country")]),
    )
    # "phone numbers from Germany": the numbers' country, not where the leads are.
    state.apply(
        rf"\b(?:(?:with|having|have|has) )?(?:an? |any )?(?:{phones}) (?:from|in|of) (?P<country>{countries})\b",
        lambda m: state.add("phone", "starts_with", PHONE_COUNTRIES[m.group("country")]),
    )
    # "leads we can call": a phone number to call.
    state.apply(
        r"\b(?:(?:that|who|which) )?(?:we|i|you) (?:can|could) (?:call|phone|ring)(?: them)?\b|"
        r"\b(?:can|could) (?:we|i|you) (?:call|phone|ring)(?: them)?\b",
        lambda m: state.add("phone", "not_empty"),
    )


def _rule_presence(state: _State) -> None:
    present = {name: FIELD_WORDS[name] for name in ("phone", "email", "remarks", "company", "title", "name",
                                                       "first_name", "last_name")}  # fmt: skip
    words = _words_pattern(word for name in present for word in present[name])
    negative = (
        r"without|with no|no|missing|lacking|lack|lacks|(?:do|does|did)(?: not|n't|nt) have|"
        r"(?:have|has|having|with) no|(?:have|has|had) not(?: got)?|not having|that lack"
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
    # "nothing in the phone field", "an empty email column".
    state.apply(
        rf"\b(?:nothing|no value|no entry) (?:in|under|for) {chain}(?: (?:field|column|box))?",
        presence("is_empty"),
    )
    state.apply(
        rf"\b(?:with|having|has|have)(?: an?)? (?:empty|blank|missing|unknown) {chain}", presence("is_empty")
    )
    state.apply(rf"\b(?:{positive}) {chain}", presence("not_empty"))


def _rule_titles(state: _State) -> None:
    """Job titles as whole words. Titles joined by "or"/"and" ("CTOs or CEOs", "CTOs, CFOs and COOs")
    are one condition any of whose values may match; titles side by side ("CTO founders") must all hold."""
    titles = _words_pattern(TITLE_WORDS)
    qualifiers = _words_pattern(TITLE_QUALIFIERS)
    roles = _words_pattern(ROLES_OF_AREA)
    area = rf"(?:{qualifiers}|(?!(?:{_BOUNDARY})\b)[a-z]+)"
    found: list[str] = []

    def keep(value: str) -> str:
        found.append(value)
        return f"{TITLE_MARK}{len(found) - 1}"

    def title(match: re.Match) -> str:
        return keep(re.sub(rf"\b({titles})(?:s|es)\b", r"\1", match.group("title")))

    def role_of_area(match: re.Match) -> str:
        # "heads of sales" → "head of sales", "VPs marketing" → "vp marketing".
        return keep(re.sub(rf"^({roles})(?:s|es)\b", r"\1", match.group("title")))

    state.apply(rf"\b(?P<title>(?:{roles})(?:s|es)? of (?:{area})(?: (?:{qualifiers}))?)\b", role_of_area)
    state.apply(rf"\b(?P<title>(?:vp|svp|evp|vice president)s? (?:{qualifiers}))\b", role_of_area)
    state.apply(r"\b(?P<title>chief [a-z]+ officer)s?\b", title)
    # The written-out forms of known titles: "chief executives", "managing directors", "key account managers".
    state.apply(rf"\b(?P<title>{_words_pattern(TITLE_SPELLINGS)})s?\b", lambda m: keep(m.group("title")))
    state.apply(rf"\b(?P<title>(?:{qualifiers}) head)s?\b", lambda m: keep(m.group("title")))
    # "marketing people", "the sales team": leads whose title has the department's word.
    departments = _words_pattern(DEPARTMENTS)
    state.apply(
        rf"\b(?P<titles>(?:{departments})(?:(?: ,)? (?:or|and|&) (?:{departments}))*) (?:{_words_pattern(PEOPLE_WORDS)})\b",
        lambda m: " or ".join(keep(name) for name in re.split(r"(?: ,)? (?:or|and|&) ", m.group("titles"))),
    )
    state.apply(rf"\b(?P<title>(?:(?:{qualifiers}) ){{0,2}}(?:{titles})(?:s|es)?)\b", title)
    mark = rf"{TITLE_MARK}(\d+)"

    def joined(match: re.Match) -> str:
        state.add_any("title", "word", [found[int(index)] for index in re.findall(mark, match.group(0))])
        return "|"

    # "the CFOs and the CEOs": an article after the join word still joins.
    state.text = re.sub(rf"{mark}(?:(?:{JOIN}(?:the |our |all (?:the )?)?{mark})+)?", joined, state.text)


def _alternatives(match: re.Match) -> list[str]:
    """The value of a match and those of its MORE_VALUES, in the question's order."""
    more = re.split(rf"{JOIN}(?:(?:in|from|at) )?", match.group("more") or "")
    return [match.group("value"), *(value for value in more if value)]


def _any_of(
    state: _State, field_name: str, op: str, clean: Callable[[str], str] = str
) -> Callable[[re.Match], bool | None]:
    """A handler for a pattern ending in MORE_VALUES: one condition any of whose values may match; a
    match whose joined words cannot be values ("Berlin, how many") is left to the one-value pattern."""

    def handle(match: re.Match) -> bool | None:
        values = _alternatives(match)
        if not all(_is_value(value) for value in values):
            return False
        state.add_any(field_name, op, [clean(value) for value in values])
        return None

    return handle


def _is_value(value: str) -> bool:
    """Whether words may be a place or company: not only filler ("how many"), not "the database"."""
    return value not in NOT_VALUES and any(word not in FILLER_WORDS for word in value.split())


def _rule_met_at(state: _State) -> None:
    """ "leads we met at CeBIT", "people who met us during the expo": where they were met is in the
    remarks (an event, not the company they work at)."""
    state.apply(
        rf"\b(?:(?:who|that|whom) )?(?:(?:we|i|you) )?(?:met|spoke to|talked to)(?: (?:us|them|me|with))? "
        rf"(?:at|during|on|in) (?:the )?{VALUE}",
        lambda m: (
            False if m.group("value") in FILLER_WORDS else state.add("remarks", "contains", m.group("value"))
        ),
    )


def _rule_location(state: _State) -> None:
    def place(match: re.Match) -> bool | None:
        value = match.group("value")
        if value in NOT_VALUES or value in FILLER_WORDS:
            return False
        state.add("remarks", "contains", value)
        return None

    def places(match: re.Match) -> bool | None:
        # "in Berlin or Munich": any of them. Words that cannot be places leave it to the rules below.
        values = _alternatives(match)
        if not all(_is_value(value) for value in values):
            return False
        state.add_any("remarks", "contains", values)
        return None

    state.apply(
        rf"\b(?:(?:based|located|headquartered|situated|living|residing|who live) )?in {VALUE}{MORE_VALUES}",
        places,
    )

    state.apply(
        r"\b(?:(?:in|at|from) )?(?P<value>\ue000\d+|[\w.\-]+) based\b(?: (?:companies|company|firms|businesses|organizations))?",
        place,
    )
    state.apply(rf"\b(?:based|located|headquartered|situated|living|residing|who live) in {VALUE}", place)
    state.apply(rf"\bin {VALUE}", place)


def _company_run_on(state: _State, value: str) -> int:
    """How many of the value's words name the company (or place) when the rest ran on into words that do
    not ("work at Acme nowadays" → 1, "for berlin asap" → 1): the name is typed with a capital, known to
    the database or a place, the words after it are not. 0 when the value is whole (or nothing tells)."""
    words = value.split()
    if len(words) < 2 or value in state.sources.known_companies or QUOTED in value:
        return 0
    for size in range(len(words) - 1, 0, -1):
        name, rest = words[:size], words[size:]
        if set(rest) & (_COMPANY_SUFFIXES | _LEGAL_FORMS):
            continue  # "Acme ltd", "Berlin Partner GmbH": a name of its own
        if " ".join(name) in PLACES:
            return size  # "for Berlin ASAP": a place is not the start of a company the database lacks
        named = " ".join(name) in state.sources.known_companies or all(
            word in state.capitalized for word in name
        )
        if named and not set(rest) & state.capitalized:
            return size
    return 0


def _rule_company(state: _State) -> None:
    def company(match: re.Match) -> bool | str | None:
        value = match.group("value")
        if match.groupdict().get("more"):
            value = state.text[match.start("value") : match.end()].strip()  # the span kept whole
        if value in NOT_VALUES or value in FILLER_WORDS:
            return False
        rest = ""
        if size := _company_run_on(state, value):
            # The words after the name are left for the leftover check ("nowadays" may be ignored).
            value, rest = " ".join(value.split()[:size]), " ".join(value.split()[size:])
        # "from Germany" is a place, kept in remarks; "from Globex" the company or the email domain.
        state.add("remarks" if state.value(value) in PLACES else "company_or_domain", "contains", value)
        return f"| {rest}" if rest else None

    def named_before_people(match: re.Match) -> bool | str | None:
        # "Acme leads": a company when typed with a capital (not as the first word), quoted or known to
        # the database; "show me the interesting leads" names no company.
        value = match.group("value")
        if value in VOCABULARY:
            return False
        if not (value in state.capitalized or value in state.sources.known_companies or QUOTED in value):
            return False
        return company(match)

    def companies(match: re.Match, values: list[str] | None = None) -> bool | None:
        # "from Acme or Globex": any of them; places and companies together cannot be one condition.
        values = values or _alternatives(match)
        if not all(_is_value(value) for value in values):
            return False
        if any(len(re.sub(r"\W", "", state.value(value))) <= 2 for value in values):
            # "from AT and T": a split half of one or two letters would match almost every lead.
            return company(match) if "value" in match.re.groupindex and match.group("more") else False
        kinds = {"remarks" if value in PLACES else "company_or_domain" for value in values}
        if len(kinds) > 1:
            state.problems.append(_MIXED_ALTERNATIVES)
            return None
        state.add_any(kinds.pop(), "contains", values)
        return None

    state.apply(
        rf"\b(?:from|at|working at|working for|works at|works for|work at|work for|employed at|employed by|"
        rf"employees of|staff of|people at|people from|(?<=\| )of|{REFINING_FOR}) {VALUE}{MORE_VALUES}",
        companies,
    )

    def companies_before(match: re.Match) -> bool | None:
        # "Acme or Globex leads", "the Berlin or Munich leads".
        values = [*(word for word in match.group("first").split() if word != ","), match.group("value")]
        if any(value in VOCABULARY and value not in PLACES for value in values):
            return False
        return companies(match, values)

    name = rf"(?!(?:{_words_pattern(VOCABULARY - PLACES)})\b)[a-z][\w&.\-]*"
    state.apply(
        rf"(?:^| )(?P<first>(?:{name} (?:, )?)*?{name})(?: ,)? (?:or|and|&) "
        rf"(?P<value>{name}) (?=(?:leads|employees|staff|people|contacts)\b)",
        companies_before,
    )

    state.apply(
        rf"\b(?:from|at|working at|working for|works at|works for|work at|work for|employed at|employed by|"
        rf"employees of|staff of|people at|people from|(?<=\| )of|does|(?<=leads )has|{REFINING_FOR}) {VALUE}",
        company,
    )
    # "how is Initech looking?", "how's Acme doing": the leads of one company, counted.
    state.apply(
        r"\bhow (?:is|are) (?P<value>\ue000\d+|[a-z][\w&.\-]*(?: [a-z][\w&.\-]*){0,2}) (?:doing|looking|going)\b",
        lambda m: (
            False
            if set(m.group("value").split()) & VOCABULARY - PLACES
            else (company(m), setattr(state, "action", state.action or "count"))[0]
        ),
    )
    state.apply(
        r"(?:^| )(?P<value>\ue000\d+|[a-z][\w&.\-]*) (?=(?:leads|employees|staff|people|contacts)\b)",
        named_before_people,
    )


# Place names that are also everyday words: a place only after "in", "from", "based in", ….
AMBIGUOUS_PLACES = frozenset({"us"})
_BARE_PLACE = _words_pattern(PLACES - AMBIGUOUS_PLACES)


def _rule_bare_places(state: _State) -> None:
    """A known place anywhere ("cto count berlin", "Berlin vs Munich", "berlin or hamburg leads, how
    many"): kept in remarks, like "in Berlin". Runs after the rules with "in"/"from", so "Globex Berlin"
    after "from" stays a company."""

    def places(match: re.Match) -> bool | None:
        following = state.text[match.end() :].split()[:1]
        if (
            following
            and following[0].isalpha()
            and following[0] not in {*VOCABULARY, *PLACE_WORDS, *PEOPLE_WORDS}
        ):
            return False  # "find Paris Hilton": part of a name, left to the name rule
        state.add_any(
            "remarks",
            "contains",
            _alternatives(match) if "more" in match.re.groupindex else [match.group("value")],
        )
        return None

    edge_before, edge_after = r"(?<![^\s|,])", r"(?![^\s|,])"
    state.apply(rf"{edge_before}(?P<value>{_BARE_PLACE}){_more(_BARE_PLACE)}{edge_after}", places)
    state.apply(rf"{edge_before}(?P<value>{_BARE_PLACE}){edge_after}", places)


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
        rf"^[ ,]*(?:find|look up|lookup|search for|search|who is|show me|show) (?:the )?(?:leads? |contacts? )?(?:for |of )?"
        rf"{VALUE}{MORE_VALUES}[ ,]*$",
        _any_of(state, "name", "contains"),
    )
    state.apply(
        rf"^[ ,]*(?:find|look up|lookup|search for|search|who is|show me|show) (?:the )?(?:lead |contact )?(?:for |of )?"
        rf"{VALUE}[ ,]*$",
        lambda m: (
            False if m.group("value") in FILLER_WORDS else state.add("name", "contains", m.group("value"))
        ),
    )


def _rule_details(state: _State) -> None:
    """ "what are their emails?", "show me their phone numbers and titles": the previous answer's leads,
    listed (the list shows those columns)."""
    fields = _words_pattern(word for words in FIELD_WORDS.values() for word in words)

    def details(match: re.Match) -> None:
        state.action = state.action or "list"

    state.apply(rf"\btheir (?:{fields})(?:(?: and|,) (?:their )?(?:{fields}))*\b", details)


def _rule_actions(state: _State) -> None:
    def count(match: re.Match) -> None:
        state.action = state.action or "count"

    def show(match: re.Match) -> None:
        state.action = state.action or "list"

    state.apply(
        r"\b(?:how many|how much|count|number of|total number of|total|tally|amount of|"
        r"how (?:are|is|am) (?:we|i|our team) doing(?: on| with| for)?)\b",
        count,
    )
    state.apply(
        r"\b(?:show|showing|list|listing|display|give|find|get|see|fetch|who|which|what are|view|search)\b",
        show,
    )


RULES: tuple[Callable[[_State], None], ...] = (
    _rule_filler_phrases,
    _rule_known_sources,
    _rule_dates,
    _rule_sort_and_limit,
    _rule_groups,
    _rule_value_in_field,
    _rule_explicit_fields,
    _rule_named,
    _rule_files_sheets_domains,
    _rule_phone_countries,
    _rule_presence,
    _rule_titles,
    _rule_met_at,
    _rule_location,
    _rule_company,
    _rule_bare_places,
    _rule_name_search,
    _rule_details,
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
    if text in ("today", "yesterday"):
        return today - timedelta(days=text == "yesterday")
    relative = re.fullmatch(rf"(?:(?P<which>last|this|past) )?(?P<day>{_words_pattern(WEEKDAYS)})", text)
    if relative:
        back = (today.weekday() - WEEKDAYS[relative.group("day")]) % 7
        if relative.group("which") in ("last", "past") and not back:
            back = 7
        return today - timedelta(days=back)
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
