"""The lead table's query: filters, sort and page, parsed from and printed back to a URL.

The list page, the CSV export and the chatbot's "Show in table" links all go through this module,
so a query means the same thing everywhere. Filtering, sorting and paging happen in the database;
nothing here loads more than one page of leads.

    query = LeadQuery.from_params(request.GET)   # never raises: bad values are coerced
    leads = leads_filter(query)                  # filtered and sorted QuerySet[Lead]
    page = leads_page(query)                     # one page plus a capped count
    page = leads_page(query, PageCursor.parse("after", "1748770200000000.4711"))  # by keyset
    url = f"/?{query.querystring(sort='-company')}"

Beyond the column filters, a query holds `conditions`: what the chatbot's query plans can say and the
column boxes cannot (equals, starts with, empty/not empty, name, email domain, remarks, date ops).
In the URL each is one `c=field:op:value` parameter, e.g. `c=company:equals:Globex`,
`c=created:between:2025-06-09..2025-06-11`, `c=phone:not_empty:`. A condition with several values,
any of which may match ("CTOs or CEOs"), has `_any` after its op and the values as a JSON list:
`c=title:word_any:["cto","ceo"]`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import CharField, F, Func, OrderBy, Q, QuerySet, Value
from django.db.models.fields.tuple_lookups import (
    Tuple,
    TupleGreaterThan,
    TupleGreaterThanOrEqual,
    TupleLessThan,
    TupleLessThanOrEqual,
)
from django.db.models.functions import Concat, Lower, NullIf, StrIndex, Substr
from django.db.models.lookups import IContains, IExact, IRegex, IStartsWith
from django.utils import timezone

from .models import Lead, lead_statuses
from .titles import title_variants

# Filter parameter -> model field, matched case-insensitively anywhere in the value (icontains).
TEXT_FILTERS: dict[str, str] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "title": "title",
    "company": "company",
    "email": "email",
    "phone": "phone",
    "worksheet": "worksheet",
    "source": "source_file",
}
# The global search box (`q`): every word must appear in one of these fields.
SEARCH_FIELDS = ("first_name", "last_name", "title", "company", "email", "phone")
# Date parameter -> (model field, bound). Dates are days in the current time zone, both ends inclusive.
DATE_FILTERS: dict[str, tuple[str, str]] = {
    "updated_from": ("updated_at", "from"),
    "updated_to": ("updated_at", "to"),
    "created_from": ("created_at", "from"),
    "created_to": ("created_at", "to"),
}
# "yes"/"no" parameter -> the field that must be non-empty/empty.
PRESENCE_FILTERS: dict[str, str] = {"has_phone": "phone", "has_email": "email"}

# Sort key -> model fields, compared in this order. Text compares case-insensitively.
SORTS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "title": ("title",),
    "company": ("company",),
    "email": ("email",),
    "phone": ("phone",),
    "worksheet": ("worksheet",),
    "source": ("source_file", "worksheet", "source_row"),
    "updated": ("updated_at",),
    "created": ("created_at",),
    "status": ("status",),
    "owner": ("owner__username",),
}
TEXT_SORT_FIELDS = frozenset(TEXT_FILTERS.values())
DEFAULT_SORT = "-updated"

# The `owner` parameter's value for leads nobody owns.
OWNER_NONE = "none"

PER_PAGE_CHOICES = (25, 50, 100)
DEFAULT_PER_PAGE = 25
# Counting every match of a broad filter over a million rows would cost more than the page itself:
# count at most this many, and show "10,000+" beyond.
COUNT_CAP = 10_000
MAX_PAGE = 1_000_000
MAX_TEXT_LENGTH = 200
MAX_SEARCH_WORDS = 8
# Dates outside this range are typos, and their day boundaries could overflow datetime.
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(9998, 12, 31)

SORT_CHOICES = frozenset([*SORTS, *(f"-{key}" for key in SORTS)])

# Condition field -> its words. "name" matches the first name, the last name or both ("Ada Lovelace");
# "email_domain" is the part of the email after the "@".
CONDITION_FIELDS: dict[str, str] = {
    "first_name": "first name",
    "last_name": "last name",
    "name": "name",
    "title": "title",
    "company": "company",
    "company_or_domain": "company or email domain",
    "email": "email",
    "email_domain": "email domain",
    "phone": "phone",
    "remarks": "remarks",
    "worksheet": "worksheet",
    "source": "source file",
    "created": "created",
    "updated": "updated",
}
# Text condition fields stored in one column of their own.
CONDITION_COLUMNS: dict[str, str] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "title": "title",
    "company": "company",
    "email": "email",
    "phone": "phone",
    "remarks": "remarks",
    "worksheet": "worksheet",
    "source": "source_file",
}
DATE_CONDITION_FIELDS: dict[str, str] = {"created": "created_at", "updated": "updated_at"}
# Condition fields whose values many leads share, so counting leads per value means something (the
# chatbot's "leads per company"); not the per-person email and phone, free-text remarks or dates.
GROUPABLE_FIELDS = ("company", "title", "email_domain", "source", "worksheet", "first_name", "last_name")
# Text comparisons ignore case. "word" matches a whole word or phrase: "cto" finds "CTO & Founder" but not
# "Director", which "contains" would. is_empty/not_empty take no value.
TEXT_OPS = ("contains", "equals", "starts_with", "word", "is_empty", "not_empty")
# Dates are days in the current time zone: before/after exclude the day itself, between includes both ends.
DATE_OPS = ("equals", "before", "after", "between")
VALUELESS_OPS = frozenset({"is_empty", "not_empty"})
TEXT_LOOKUPS = {"contains": "icontains", "equals": "iexact", "starts_with": "istartswith", "word": "iregex"}
MAX_CONDITIONS = 10
BETWEEN_SEPARATOR = ".."
# Values one condition may have, any of which may match ("CTOs or CEOs", "in Berlin or Munich"): the one
# OR a query can say, within one field and op. In the URL the op gets ANY_SUFFIX and the value is a JSON list.
MAX_ALTERNATIVES = 10
ANY_SUFFIX = "_any"
# A `c` parameter holding several values may be longer than one value.
MAX_CONDITION_PARAM_LENGTH = MAX_ALTERNATIVES * (MAX_TEXT_LENGTH + 4) + 40


@dataclass(frozen=True)
class Condition:
    """One whitelisted comparison, e.g. Condition("company", "equals", "Globex") or
    Condition("created", "between", "2025-06-09..2025-06-11"). Invalid ones raise ValueError."""

    field: str
    op: str
    value: str = ""
    # Further values, any of which may match instead of `value` (an OR): see `any_of`.
    alternatives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.field not in CONDITION_FIELDS:
            raise ValueError(f"there is no field “{self.field}”")
        label = CONDITION_FIELDS[self.field]
        if self.alternatives:
            self._check_alternatives(label)
        if self.field in DATE_CONDITION_FIELDS:
            if self.op not in DATE_OPS:
                raise ValueError(f"“{self.op}” does not apply to the {label} date")
            self.days()  # raises for a malformed date
            return
        if self.op not in TEXT_OPS:
            raise ValueError(f"“{self.op}” does not apply to {label}")
        if self.op in VALUELESS_OPS:
            if self.value:
                raise ValueError(f"“{self.op.replace('_', ' ')}” takes no value")
        elif not self.value.strip():
            raise ValueError(f"{label} {self.op.replace('_', ' ')} needs a value")
        elif self.value != _clean_text(self.value):
            raise ValueError(f"the value for {label} is too long or has surrounding spaces")

    def _check_alternatives(self, label: str) -> None:
        if self.field in DATE_CONDITION_FIELDS or self.op in VALUELESS_OPS or self.op not in TEXT_OPS:
            raise ValueError(f"{label} {self.op.replace('_', ' ')} takes one value, not several")
        if len(self.values) > MAX_ALTERNATIVES:
            raise ValueError(f"at most {MAX_ALTERNATIVES} values for {label}")
        for value in self.alternatives:
            if not isinstance(value, str) or not value.strip() or value != _clean_text(value):
                raise ValueError(f"one of the values for {label} is empty or too long")
        if len({value.lower() for value in self.values}) < len(self.values):
            raise ValueError(f"a value for {label} is given twice")

    @classmethod
    def any_of(cls, field_name: str, op: str, values: list[str] | tuple[str, ...]) -> Condition:
        """A condition any of whose values may match: "title has the word 'cto' or 'ceo'". Repeated
        values (ignoring case) count once; one value is an ordinary condition."""
        first_spellings: dict[str, str] = {}
        for value in values:
            first_spellings.setdefault(value.lower(), value)
        unique = list(first_spellings.values())
        if not unique:
            raise ValueError(f"{CONDITION_FIELDS.get(field_name, field_name)} needs a value")
        return cls(field_name, op, unique[0], tuple(unique[1:]))

    @property
    def values(self) -> tuple[str, ...]:
        """Every value the condition accepts: `value` and its alternatives."""
        return (self.value, *self.alternatives)

    @classmethod
    def parse(cls, raw: str) -> Condition:
        """From its URL form "field:op:value" (the value may itself contain colons), or
        "field:op_any:[JSON list]" for several values."""
        field_name, op, value = ([*raw.split(":", 2), "", ""])[:3]
        if op.endswith(ANY_SUFFIX) and op.removesuffix(ANY_SUFFIX) in TEXT_OPS:
            try:
                values = json.loads(value)
            except ValueError:
                values = None
            if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
                raise ValueError('several values look like ["cto", "ceo"]')
            return cls.any_of(field_name, op.removesuffix(ANY_SUFFIX), [_clean_text(item) for item in values])
        return cls(field_name, op, _clean_text(value))

    def to_param(self) -> str:
        if self.alternatives:
            values = json.dumps(list(self.values), ensure_ascii=False, separators=(",", ":"))
            return f"{self.field}:{self.op}{ANY_SUFFIX}:{values}"
        return f"{self.field}:{self.op}:{self.value}"

    def days(self) -> tuple[date, date]:
        """(first, last) day of a date condition's value; one day unless the op is "between"."""
        if self.op == "between":
            first, separator, last = self.value.partition(BETWEEN_SEPARATOR)
            if not separator:
                raise ValueError("a date range looks like 2025-06-01..2025-06-30")
            days = (_parse_condition_date(first), _parse_condition_date(last))
            if days[0] > days[1]:
                raise ValueError("the date range ends before it starts")
            return days
        day = _parse_condition_date(self.value)
        return day, day

    def describe(self) -> str:
        """In words, as the chatbot and the table's chips show it: "company contains 'globex'"."""
        label = CONDITION_FIELDS[self.field]
        if self.field in DATE_CONDITION_FIELDS:
            first, last = self.days()
            if self.op == "between":
                return f"{label} between {first.isoformat()} and {last.isoformat()}"
            return f"{label} {'on' if self.op == 'equals' else self.op} {first.isoformat()}"
        if self.op in VALUELESS_OPS:
            return f"{label} {'is empty' if self.op == 'is_empty' else 'is not empty'}"
        quoted = [f"'{value}'" for value in self.values]
        values = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if self.alternatives else quoted[0]
        if self.op == "word":
            return f"{label} has the word {values}"
        return f"{label} {self.op.replace('_', ' ')} {values}"

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class LeadQuery:
    """Everything that selects and orders the rows of the lead table. Defaults mean "no filter"."""

    first_name: str = ""
    last_name: str = ""
    title: str = ""
    company: str = ""
    email: str = ""
    phone: str = ""
    worksheet: str = ""
    source: str = ""
    # One of settings.LEAD_STATUSES, or "" for any.
    status: str = ""
    # A user id, OWNER_NONE for unassigned leads, or "" for any.
    owner: str = ""
    job: uuid.UUID | None = None
    q: str = ""
    updated_from: date | None = None
    updated_to: date | None = None
    created_from: date | None = None
    created_to: date | None = None
    has_phone: bool | None = None
    has_email: bool | None = None
    # Further conditions, all of which must hold (see Condition).
    conditions: tuple[Condition, ...] = ()
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    # What from_params had to ignore, in words for the user. Not part of the query itself.
    problems: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        # Code that builds a query directly (the chatbot) gets an error, not a silently different table.
        if self.sort not in SORT_CHOICES:
            raise ValueError(f"unknown sort {self.sort!r}")
        if self.per_page not in PER_PAGE_CHOICES:
            raise ValueError(f"per_page must be one of {PER_PAGE_CHOICES}")
        if not 1 <= self.page <= MAX_PAGE:
            raise ValueError(f"page must be between 1 and {MAX_PAGE}")
        if len(self.conditions) > MAX_CONDITIONS:
            raise ValueError(f"at most {MAX_CONDITIONS} conditions")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> LeadQuery:
        """Parse URL parameters (a QueryDict). Never raises: invalid values fall back to the default
        and are described in `problems`; unknown parameters are ignored."""
        values: dict[str, object] = {}
        problems: list[str] = []
        for name in (*TEXT_FILTERS, "q"):
            values[name] = _clean_text(params.get(name, ""))
        if status := _clean_text(params.get("status", "")):
            if status in lead_statuses():
                values["status"] = status
            else:
                problems.append(f"Ignored the status “{status}”: use one of {', '.join(lead_statuses())}.")
        if owner := _clean_text(params.get("owner", "")):
            if owner == OWNER_NONE or _parse_int(owner) is not None:
                values["owner"] = owner
            else:
                problems.append(f"Ignored the owner “{owner}”: not a user.")
        if job := _clean_text(params.get("job", "")):
            try:
                values["job"] = uuid.UUID(job)
            except ValueError:
                problems.append(f"Ignored the import id “{job}”: it is not a valid id.")
        for name in DATE_FILTERS:
            if raw := _clean_text(params.get(name, "")):
                try:
                    values[name] = _parse_date(raw)
                except ValueError:
                    label = name.replace("_", " ").capitalize()
                    problems.append(f"Ignored “{raw}” for {label}: use a date like 2025-01-31.")
        for prefix in ("updated", "created"):
            first, last = values.get(f"{prefix}_from"), values.get(f"{prefix}_to")
            if first and last and first > last:
                problems.append(
                    f"{prefix.capitalize()} from {first.isoformat()} is after {prefix} to {last.isoformat()}: "
                    "no lead can match. Swap the dates?"
                )
        for name in PRESENCE_FILTERS:
            raw = _clean_text(params.get(name, "")).lower()
            if raw in ("yes", "no"):
                values[name] = raw == "yes"
            elif raw:
                problems.append(f"Ignored “{raw}” for {name.replace('_', ' ')}: use yes or no.")
        conditions: list[Condition] = []
        for raw in _param_list(params, "c"):
            try:
                condition = Condition.parse(_clean_text(raw, MAX_CONDITION_PARAM_LENGTH))
            except ValueError as exc:
                problems.append(f"Ignored the condition “{_clean_text(raw)}”: {exc}.")
                continue
            if condition in conditions:
                continue
            if len(conditions) == MAX_CONDITIONS:
                problems.append(f"Used only the first {MAX_CONDITIONS} conditions.")
                break
            conditions.append(condition)
        values["conditions"] = tuple(conditions)
        sort = _clean_text(params.get("sort", ""))
        if sort in SORT_CHOICES:
            values["sort"] = sort
        elif sort:
            problems.append(f"Cannot sort by “{sort}”: sorted by last update instead.")
        per_page = _parse_int(params.get("per_page", ""))
        if per_page in PER_PAGE_CHOICES:
            values["per_page"] = per_page
        elif params.get("per_page"):
            problems.append(f"Showing {DEFAULT_PER_PAGE} leads per page (choose 25, 50 or 100).")
        values["page"] = min(max(_parse_int(params.get("page", "")) or 1, 1), MAX_PAGE)
        return cls(**values, problems=tuple(problems))

    def to_params(self) -> dict[str, str | list[str]]:
        """The URL parameters that differ from the defaults, in a stable order. Conditions are one
        repeated parameter, `c`."""
        params: dict[str, str | list[str]] = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name == "problems" or value == spec.default:
                continue
            if spec.name == "conditions":
                params["c"] = [condition.to_param() for condition in value]
            elif isinstance(value, bool):
                params[spec.name] = "yes" if value else "no"
            elif isinstance(value, date):
                params[spec.name] = value.isoformat()
            else:
                params[spec.name] = str(value)
        return params

    def querystring(self, **changes: object) -> str:
        """The URL query string of this query with `changes` applied (without the "?")."""
        query = dataclasses.replace(self, **changes) if changes else self
        return urlencode(query.to_params(), doseq=True)

    def replace(self, **changes: object) -> LeadQuery:
        return dataclasses.replace(self, **changes)

    @property
    def is_filtered(self) -> bool:
        """Whether any filter is set (sort and paging do not count)."""
        return self.cleared() != self.replace(page=1)

    def without_condition(self, condition: Condition) -> LeadQuery:
        """The same table without one of its conditions, back to page 1."""
        return self.replace(conditions=tuple(c for c in self.conditions if c != condition), page=1)

    def cleared(self) -> LeadQuery:
        """The same table without filters: keeps sort and page size, back to page 1."""
        return LeadQuery(sort=self.sort, per_page=self.per_page)

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def sort_descending(self) -> bool:
        return self.sort.startswith("-")


def leads_filter(query: LeadQuery, queryset: QuerySet[Lead] | None = None) -> QuerySet[Lead]:
    """The leads matching `query`, in its order (empty values last in both directions, ties by id)."""
    queryset = Lead.objects.all() if queryset is None else queryset
    ordering = _ordering(query.sort)
    if query.owner and query.sort_key == "owner":
        # One owner (or nobody) shown: the owner sort is all ties, broken by id; no join to sort on.
        ordering = ordering[-1:]
    return queryset.filter(_conditions(query)).order_by(*ordering)


def leads_count_capped(queryset: QuerySet[Lead], cap: int = COUNT_CAP) -> int:
    """COUNT(*) of at most cap + 1 rows: a result above `cap` means "more than cap"."""
    # Without ordering and with only the id, the database stops after cap + 1 matches.
    return queryset.order_by().values("pk")[: cap + 1].count()


# Sorts whose pages can be read by keyset (a cursor, `after=`/`before=` in the URL) instead of OFFSET, so
# page 2,000 costs what page 2 does: the "updated" sorts by (updated_at, id) on lead_updated_idx, and
# every one-column text sort by (NULLIF(LOWER(column), ''), id) on its lead_<column>_sort_idx
# (leads/migrations/0009). The "source" sort (three columns) still pages by OFFSET, as does a deep page
# reached by its number alone (a typed or bookmarked `page=`). See docs/workspace.md.
TIME_KEYSET_SORTS = frozenset({"updated", "-updated"})
# Sort key -> its text column.
TEXT_KEYSET_FIELDS: dict[str, str] = {
    key: fields[0] for key, fields in SORTS.items() if len(fields) == 1 and fields[0] in TEXT_SORT_FIELDS
}
TEXT_KEYSET_SORTS = frozenset([*TEXT_KEYSET_FIELDS, *(f"-{key}" for key in TEXT_KEYSET_FIELDS)])
KEYSET_SORTS = TIME_KEYSET_SORTS | TEXT_KEYSET_SORTS
# The annotation holding a text sort's value, as the database computes it (SQLite lower-cases only
# ASCII, PostgreSQL per its collation): cursors carry this value, never one lower-cased by Python.
SORT_VALUE = "keyset_value"
# base64 of a 300-character value in up to 4 bytes per character, and the id.
MAX_CURSOR_LENGTH = 2_000
# Under a filter, how far a text sort's page walks its index for matches before sorting them instead
# (0: no bound, PostgreSQL plans the walk alone).
SORT_WINDOW = 2_000
_TEXT_CURSOR_SEPARATOR = "~"


def text_sort_value(model_field: str) -> NullIf:
    """A text sort's key: case-insensitive, "" as NULL so empty values can come last (the same
    expression as the lead_<field>_sort_idx indexes, which PostgreSQL matches exactly)."""
    return NullIf(Lower(model_field), Value(""))


@dataclass(frozen=True)
class PageCursor:
    """Where a keyset page starts: after (the next page) or before (the previous page) one lead,
    named by its sort value and id. The value is the lead's updated_at for the "updated" sorts, in the
    URL `after=<microseconds since the epoch>.<id>`; for a text sort it is the lead's SORT_VALUE (None
    for an empty value), in the URL `after=<id>~<the value as unpadded URL-safe base64>`."""

    direction: str  # "after" | "before"
    value: datetime | str | None
    pk: int

    @classmethod
    def parse(cls, direction: str, raw: str) -> PageCursor | None:
        """From its URL form, or None for a malformed one (the page is then read by OFFSET)."""
        raw = str(raw).replace("\x00", "").strip()
        if len(raw) > MAX_CURSOR_LENGTH:
            return None
        if _TEXT_CURSOR_SEPARATOR in raw:
            return cls._parse_text(direction, raw)
        micros, separator, pk = raw.partition(".")
        if not separator or _parse_int(pk) is None or not micros.isascii() or not micros.isdigit():
            return None
        try:
            updated_at = _EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            return None
        return cls(direction, updated_at, int(pk))

    @classmethod
    def _parse_text(cls, direction: str, raw: str) -> PageCursor | None:
        pk, _, encoded = raw.partition(_TEXT_CURSOR_SEPARATOR)
        if _parse_int(pk) is None or not encoded.isascii():
            return None
        try:
            value = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if "\x00" in value or base64.urlsafe_b64encode(value.encode()).decode().rstrip("=") != encoded:
            return None  # PostgreSQL rejects NUL; a non-canonical encoding is not one of ours
        return cls(direction, value or None, int(pk))

    @classmethod
    def of(cls, direction: str, lead: Lead, sort: str = DEFAULT_SORT) -> PageCursor:
        """The cursor naming `lead` in `sort`; for a text sort the lead must come from leads_page (it
        carries SORT_VALUE)."""
        if sort.removeprefix("-") in TEXT_KEYSET_FIELDS:
            return cls(direction, getattr(lead, SORT_VALUE), lead.pk)
        return cls(direction, lead.updated_at, lead.pk)

    def fits(self, sort: str) -> bool:
        """Whether this cursor can position a page of `sort` (a text value for a text sort)."""
        if sort in TIME_KEYSET_SORTS:
            return isinstance(self.value, datetime)
        return sort in TEXT_KEYSET_SORTS and not isinstance(self.value, datetime)

    def to_param(self) -> str:
        if isinstance(self.value, datetime):
            return f"{(self.value - _EPOCH) // timedelta(microseconds=1)}.{self.pk}"
        encoded = base64.urlsafe_b64encode((self.value or "").encode()).decode().rstrip("=")
        return f"{self.pk}{_TEXT_CURSOR_SEPARATOR}{encoded}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LeadPage:
    """One page of the table. `query` is the query actually shown (its page clamped to the last)."""

    query: LeadQuery
    leads: list[Lead]
    total: int
    has_next: bool
    # The cursor the rows were read from (None: by OFFSET), so the page's own URL keeps it.
    read_from: PageCursor | None = None

    @property
    def count_cap(self) -> int:
        return COUNT_CAP

    @property
    def total_is_capped(self) -> bool:
        """Whether `total` only says "more than count_cap"."""
        return self.total > COUNT_CAP

    @property
    def number(self) -> int:
        return self.query.page

    @property
    def num_pages(self) -> int | None:
        """The last page number, or None when the count was capped."""
        if self.total_is_capped:
            return None
        return max(1, -(-self.total // self.query.per_page))

    @property
    def start(self) -> int:
        return (self.number - 1) * self.query.per_page + 1 if self.leads else 0

    @property
    def end(self) -> int:
        return self.start + len(self.leads) - 1 if self.leads else 0

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def past_end(self) -> bool:
        """A page beyond the last lead, possible only when the count was capped."""
        return not self.leads and self.number > 1

    def cursor(self, direction: str) -> PageCursor | None:
        """The cursor of the next ("after") or previous ("before") page, when this sort has them."""
        if self.query.sort not in KEYSET_SORTS or not self.leads:
            return None
        lead = self.leads[-1] if direction == "after" else self.leads[0]
        return PageCursor.of(direction, lead, self.query.sort)


def leads_page(
    query: LeadQuery,
    cursor: PageCursor | None = None,
    *,
    count: Callable[[QuerySet[Lead], LeadQuery], int] | None = None,
) -> LeadPage:
    """The page `query` asks for, clamped to the last page.

    The rows are read first: when they end on this page they give the exact total, and the count
    (a full scan for a filter no index serves) is skipped. Otherwise the total is counted, capped.
    With a cursor (from the previous page's "next" link, or the next page's "previous" link) and a
    keyset sort, the rows are read from the cursor on instead of skipping the pages before.
    `count(queryset, query)` counts instead of leads_count_capped (the table's: leads.counts).
    """
    queryset = leads_filter(query).defer("raw", "remarks")
    if text_field := TEXT_KEYSET_FIELDS.get(query.sort_key):
        queryset = queryset.annotate(**{SORT_VALUE: text_sort_value(text_field)})
    rows = None
    if cursor is not None and cursor.fits(query.sort) and query.page > 1:
        rows = _keyset_rows(queryset, query, cursor) or None
    read_from = cursor if rows is not None else None
    if rows is None:
        rows = _page_rows(queryset, query)
    if len(rows) <= query.per_page and (rows or query.page == 1):
        total = (query.page - 1) * query.per_page + len(rows)
    else:
        total = count(queryset, query) if count else leads_count_capped(queryset, COUNT_CAP)
        last_page = max(1, -(-total // query.per_page))
        if not rows and total <= COUNT_CAP:  # past the end: show the last page instead
            query = query.replace(page=last_page)
            rows = _page_rows(queryset, query)
    return LeadPage(
        query=query,
        leads=rows[: query.per_page],
        total=total,
        has_next=len(rows) > query.per_page,
        read_from=read_from,
    )


def _page_rows(queryset: QuerySet[Lead], query: LeadQuery) -> list[Lead]:
    offset = (query.page - 1) * query.per_page
    # One row more than shown tells whether a next page exists.
    limit = query.per_page + 1
    if query.sort not in TEXT_KEYSET_SORTS:
        return list(queryset[offset : offset + limit])
    descending = query.sort_descending
    if not offset:
        rows = _valued_rows(queryset, query, Q(), descending=descending, limit=limit)
        return (
            rows
            if len(rows) == limit
            else rows + list(_empty_part(queryset, descending)[: limit - len(rows)])
        )
    valued = _valued_part(queryset, Q(), descending)
    rows = list(valued[offset : offset + limit])
    if len(rows) == limit:
        return rows
    # Past the leads with a value: skip what is left of the offset among the empty ones.
    valued_count = offset + len(rows) if rows else valued.count()
    skip = max(0, offset - valued_count)
    return rows + list(_empty_part(queryset, descending)[skip : skip + limit - len(rows)])


def _keyset_rows(queryset: QuerySet[Lead], query: LeadQuery, cursor: PageCursor) -> list[Lead] | None:
    """The page after or before the cursor's lead, plus one row as in _page_rows; None when there is
    no whole page before the cursor (leads were deleted meanwhile): OFFSET then decides."""
    limit = query.per_page + 1
    descending = query.sort_descending
    if query.sort in TEXT_KEYSET_SORTS:
        return _text_keyset_rows(queryset, query, cursor)
    if cursor.direction == "after":
        # The first condition alone is a range on the index; the second drops the cursor's ties.
        beyond = _keyset_q("updated_at", older=descending, value=cursor.value, pk=cursor.pk, inclusive=False)
        return list(queryset.filter(beyond)[:limit])
    # Backwards: the cursor's lead and the page before it, read in reverse and put back in order; the
    # cursor's lead (first of the page the link came from) is then the row that says "there is a next".
    back = _keyset_q("updated_at", older=not descending, value=cursor.value, pk=cursor.pk, inclusive=True)
    rows = list(queryset.filter(back).reverse()[:limit])
    return rows[::-1] if len(rows) > query.per_page else None


def _text_keyset_rows(queryset: QuerySet[Lead], query: LeadQuery, cursor: PageCursor) -> list[Lead] | None:
    """_keyset_rows of a text sort: the leads with a value, then the empty ones by id (_valued_part)."""
    limit = query.per_page + 1
    descending = query.sort_descending
    value, pk = cursor.value, cursor.pk
    if cursor.direction == "after":
        if value is None:  # within the empty values: by id alone
            return list(
                _empty_part(queryset, descending).filter(Q(pk__lt=pk) if descending else Q(pk__gt=pk))[:limit]
            )
        beyond = _keyset_q(SORT_VALUE, older=descending, value=value, pk=pk, inclusive=False)
        rows = _valued_rows(queryset, query, beyond, descending=descending, limit=limit)
        return (
            rows
            if len(rows) == limit
            else rows + list(_empty_part(queryset, descending)[: limit - len(rows)])
        )
    if value is None:
        tie = Q(pk__gte=pk) if descending else Q(pk__lte=pk)
        rows = list(_empty_part(queryset, not descending).filter(tie)[:limit])
        if len(rows) < limit:
            rows += _valued_rows(queryset, query, Q(), descending=not descending, limit=limit - len(rows))
    else:
        back = _keyset_q(SORT_VALUE, older=not descending, value=value, pk=pk, inclusive=True)
        rows = _valued_rows(queryset, query, back, descending=not descending, limit=limit)
    return rows[::-1] if len(rows) > query.per_page else None


def _valued_part(queryset: QuerySet[Lead], position: Q, descending: bool) -> QuerySet[Lead]:
    """The leads with a sort value at `position`, in the order its index holds them.

    The table puts empty values last in both directions, which no single index order gives: the
    leads with a value and the empty ones (_empty_part) are read apart, each one range of
    (NULLIF(LOWER(column), ''), id) read forwards for an ascending sort and backwards for a
    descending one (no NULLS clause: then PostgreSQL and SQLite use the index).
    """
    order = (F(SORT_VALUE).desc(), "-id") if descending else (F(SORT_VALUE).asc(), "id")
    return queryset.filter(Q(**{f"{SORT_VALUE}__isnull": False}) & position).order_by(*order)


def _empty_part(queryset: QuerySet[Lead], descending: bool) -> QuerySet[Lead]:
    """The leads without a sort value, by id (see _valued_part)."""
    order = (F(SORT_VALUE).desc(), "-id") if descending else (F(SORT_VALUE).asc(), "id")
    return queryset.filter(**{f"{SORT_VALUE}__isnull": True}).order_by(*order)


def _valued_rows(
    queryset: QuerySet[Lead], query: LeadQuery, position: Q, *, descending: bool, limit: int
) -> list[Lead]:
    """Up to `limit` leads of _valued_part(queryset, position, descending).

    Unfiltered that is one index range. Under a filter PostgreSQL walks the sort index until enough
    leads match: fast when matches are frequent, a scan of most of the table when they cluster
    elsewhere in the order (a company filter sorted by company). So the walk is bounded: the next
    SORT_WINDOW leads of the index first; only when fewer match there is the page read from all the
    filter's matches, sorted without the index: what reading those matches costs, as without the index.
    """
    part = _valued_part(queryset, position, descending)
    if not query.is_filtered or not SORT_WINDOW:
        return list(part[:limit])
    unfiltered = Lead.objects.annotate(**{SORT_VALUE: text_sort_value(TEXT_KEYSET_FIELDS[query.sort_key])})
    edge = list(
        _valued_part(unfiltered, position, descending).values_list(SORT_VALUE, "pk")[
            SORT_WINDOW - 1 : SORT_WINDOW
        ]
    )
    if not edge:
        return list(part[:limit])
    value, pk = edge[0]
    near = _keyset_q(SORT_VALUE, older=not descending, value=value, pk=pk, inclusive=True)
    rows = list(part.filter(near)[:limit])
    if len(rows) < limit:  # the whole page again, from the filter's matches (near ones included)
        key = _Unindexed(F(SORT_VALUE))
        rows = list(
            part.order_by(key.desc() if descending else key.asc(), "-id" if descending else "id")[:limit]
        )
    return rows


class _Unindexed(Func):
    """The same text through an expression no index holds (`value || ''`): sorting by it makes the
    database read a filter's matches and sort them, instead of walking the sort index for them."""

    template = "(%(expressions)s || '')"
    output_field = CharField()


def _keyset_q(field_name: str, *, older: bool, value: datetime | str, pk: int, inclusive: bool) -> Q:
    """Leads past (value, pk) in (field, id) order: smaller ones ("older"), or larger ones.

    For a text sort the row comparison `(value, id) > (…, …)` is added: PostgreSQL starts the index
    scan right at the cursor instead of reading every tie before it (a first name shared by 100,000
    leads). SQLite gets Django's expansion of it; the range condition keeps its index there."""
    if older:
        tie = Q(pk__lte=pk) if inclusive else Q(pk__lt=pk)
        past = Q(**{f"{field_name}__lte": value}) & (Q(**{f"{field_name}__lt": value}) | tie)
    else:
        tie = Q(pk__gte=pk) if inclusive else Q(pk__gt=pk)
        past = Q(**{f"{field_name}__gte": value}) & (Q(**{f"{field_name}__gt": value}) | tie)
    if field_name != SORT_VALUE:
        return past
    row = {
        (True, False): TupleLessThan,
        (True, True): TupleLessThanOrEqual,
        (False, False): TupleGreaterThan,
        (False, True): TupleGreaterThanOrEqual,
    }[older, inclusive]
    return past & Q(row(Tuple(F(SORT_VALUE), F("pk")), (value, pk)))


def _conditions(query: LeadQuery) -> Q:
    conditions = Q()
    for name, model_field in TEXT_FILTERS.items():
        if value := getattr(query, name):
            conditions &= (
                _title_q("icontains", value) if name == "title" else Q(**{f"{model_field}__icontains": value})
            )
    for word in query.q.split()[:MAX_SEARCH_WORDS]:
        any_field = Q()
        for model_field in SEARCH_FIELDS:
            any_field |= Q(**{f"{model_field}__icontains": word})
        conditions &= any_field
    if query.status:
        conditions &= Q(status=query.status)
    if query.owner == OWNER_NONE:
        conditions &= Q(owner__isnull=True)
    elif query.owner:
        conditions &= Q(owner_id=int(query.owner))
    if query.job is not None:
        conditions &= Q(import_job_id=query.job)
    for name, (model_field, bound) in DATE_FILTERS.items():
        if (day := getattr(query, name)) is not None:
            # Compare with the day's boundaries, not `__date`, so the index on the column is used.
            if bound == "from":
                conditions &= Q(**{f"{model_field}__gte": _start_of(day)})
            else:
                conditions &= Q(**{f"{model_field}__lt": _start_of(day + timedelta(days=1))})
    for name, model_field in PRESENCE_FILTERS.items():
        wanted = getattr(query, name)
        if wanted is not None:
            conditions &= ~Q(**{model_field: ""}) if wanted else Q(**{model_field: ""})
    for condition in query.conditions:
        conditions &= condition_q(condition)
    return conditions


def condition_q(condition: Condition) -> Q:
    """The database filter of one condition."""
    if condition.alternatives:
        any_value = Q()
        for value in condition.values:
            any_value |= condition_q(Condition(condition.field, condition.op, value))
        return any_value
    if condition.field in DATE_CONDITION_FIELDS:
        model_field = DATE_CONDITION_FIELDS[condition.field]
        first, last = condition.days()
        if condition.op == "before":
            return Q(**{f"{model_field}__lt": _start_of(first)})
        if condition.op == "after":
            return Q(**{f"{model_field}__gte": _start_of(first + timedelta(days=1))})
        return Q(
            **{
                f"{model_field}__gte": _start_of(first),
                f"{model_field}__lt": _start_of(last + timedelta(days=1)),
            }
        )
    if condition.field == "company_or_domain":
        # "Leads from Contoso": the company or the email domain names it; empty means both are.
        company, domain = (
            condition_q(Condition(name, condition.op, condition.value))
            for name in ("company", "email_domain")
        )
        return company & domain if condition.op == "is_empty" else company | domain
    if condition.op in VALUELESS_OPS:
        if condition.field == "name":
            empty = Q(first_name="", last_name="")
        elif condition.field == "email_domain":
            empty = Q(email="")
        else:
            empty = Q(**{CONDITION_COLUMNS[condition.field]: ""})
        return empty if condition.op == "is_empty" else ~empty
    lookup_name = TEXT_LOOKUPS[condition.op]
    if condition.field == "title" and condition.op != "equals":  # "exactly" stays exact (group links)
        return _title_q(lookup_name, condition.value)
    value = _word_pattern(condition.value) if condition.op == "word" else condition.value
    if condition.field in CONDITION_COLUMNS:
        return Q(**{f"{CONDITION_COLUMNS[condition.field]}__{lookup_name}": value})
    lookup = {"icontains": IContains, "iexact": IExact, "istartswith": IStartsWith, "iregex": IRegex}
    if condition.field == "name":
        # "Ada", "Lovelace" and "Ada Lovelace" all find Ada Lovelace.
        return (
            Q(**{f"first_name__{lookup_name}": value})
            | Q(**{f"last_name__{lookup_name}": value})
            | Q(lookup[lookup_name](full_name_expression(), value))
        )
    return Q(lookup[lookup_name](email_domain_expression(), value))


def _title_q(lookup_name: str, value: str) -> Q:
    """A title filter also finds the title's other spellings: "CTO" finds "Chief Technology Officer"
    (leads.titles), in the table's title box and in contains/word/starts-with conditions alike. The
    value as typed keeps its lookup; the other spellings are whole words (or prefixes)."""
    typed, *others = title_variants(value)
    any_spelling = Q(**{f"title__{lookup_name}": _word_pattern(typed) if lookup_name == "iregex" else typed})
    for spelling in others:
        # The other spellings as whole words: "CTO" for "Chief Technology Officer", never "Director".
        if lookup_name == "istartswith":
            any_spelling |= Q(title__istartswith=spelling)
        else:
            any_spelling |= Q(title__iregex=_word_pattern(spelling))
    return any_spelling


def _word_pattern(value: str) -> str:
    """A regular expression for `value` as a whole word, read the same by PostgreSQL and Python's re
    (SQLite): \\W is a non-word character in both, and a backslash before any character that is not a
    letter or digit makes it literal in both."""
    escaped = "".join(char if char.isalnum() or char == " " else f"\\{char}" for char in value)
    return rf"(^|\W){escaped}(\W|$)"


def email_domain_expression() -> Substr:
    """The part of the email after the "@" (emails are stored lower-cased)."""
    return Substr("email", StrIndex("email", Value("@")) + Value(1), output_field=CharField())


def full_name_expression() -> Concat:
    return Concat("first_name", Value(" "), "last_name", output_field=CharField())


def _ordering(sort: str) -> list[OrderBy | str]:
    descending = sort.startswith("-")
    ordering: list[OrderBy | str] = []
    for model_field in SORTS[sort.removeprefix("-")]:
        if model_field in TEXT_SORT_FIELDS:
            # "" becomes NULL so that NULLS LAST puts empty values last in both directions.
            expression = text_sort_value(model_field)
            ordering.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        elif "__" in model_field or Lead._meta.get_field(model_field).null:
            ordering.append(
                F(model_field).desc(nulls_last=True) if descending else F(model_field).asc(nulls_last=True)
            )
        else:
            # No NULLS clause on a NOT NULL column: PostgreSQL then matches it to its index.
            ordering.append(f"-{model_field}" if descending else model_field)
    ordering.append("-id" if descending else "id")
    return ordering


def _clean_text(value: object, limit: int = MAX_TEXT_LENGTH) -> str:
    # PostgreSQL rejects NUL characters in text parameters.
    return str(value).replace("\x00", "").strip()[:limit]


def _param_list(params: Mapping[str, str], name: str) -> list[str]:
    if hasattr(params, "getlist"):  # a QueryDict: every value of a repeated parameter
        return list(params.getlist(name))
    value = params.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _parse_condition_date(value: str) -> date:
    try:
        return _parse_date(value.strip())
    except ValueError:
        raise ValueError(f"“{value}” is not a date like 2025-01-31") from None


def _parse_int(value: object) -> int | None:
    text = _clean_text(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return int(text)


def _parse_date(value: str) -> date:
    parsed = date.fromisoformat(value)
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise ValueError(value)
    return parsed


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
