"""Job titles as people write them: "CTO" and "Chief Technology Officer" are one title.

`title_variants` gives the spellings a title filter looks for, so the lead table's title box, its
`c=title:…` conditions and the chatbot's plans all find the same leads for "CTO", "cto",
"Chief Technology Officer" or "VP of Sales" / "Vice President Sales". Pure text, no database.

    title_variants("CTO")        → ("cto", "chief technology officer", "chief technical officer")
    title_variants("VP Sales")   → ("vp sales", "vice president sales", "vp of sales", ...)
    title_key("Chief Technology Officer") == title_key("C.T.O.") == "cto"   # counted together
"""

from __future__ import annotations

import re

# Each group is one title; its first member is the short form. Whole words only ("cto" inside
# "director" is no CTO).
TITLE_EQUIVALENTS: tuple[tuple[str, ...], ...] = (
    ("ceo", "chief executive officer", "chief executive"),
    ("cto", "chief technology officer", "chief technical officer"),
    ("cfo", "chief financial officer", "chief finance officer"),
    ("coo", "chief operating officer", "chief operations officer"),
    ("cmo", "chief marketing officer"),
    ("cio", "chief information officer"),
    ("cpo", "chief product officer"),
    ("cro", "chief revenue officer"),
    ("chro", "chief human resources officer", "chief people officer"),
    ("ciso", "chief information security officer"),
    ("svp", "senior vice president", "senior vp", "sr vp"),
    ("evp", "executive vice president", "executive vp"),
    ("vp", "vice president"),
    ("md", "managing director"),
    ("gm", "general manager"),
    ("kam", "key account manager"),
    ("sdr", "sales development representative"),
    ("bdr", "business development representative"),
    ("hr", "human resources"),
    ("sr", "senior"),
    ("jr", "junior"),
    ("mgr", "manager"),
)
# "Head of Sales" is also written "Sales Head"; "Director of Marketing" "Marketing Director".
ROLES_BEFORE_OF = ("vice president", "vp", "svp", "evp", "head", "director", "manager")
# Last words that end in "s" without being plurals of a title.
PLURAL_AREAS = frozenset(
    {"sales", "operations", "resources", "services", "logistics", "analytics", "relations", "affairs",
     "communications", "systems", "markets", "events", "partnerships"}
)  # fmt: skip
MAX_VARIANTS = 12

_GROUP_OF: dict[str, tuple[str, ...]] = {spelling: group for group in TITLE_EQUIVALENTS for spelling in group}
_SPELLINGS = sorted(_GROUP_OF, key=lambda spelling: (-len(spelling.split()), -len(spelling)))
_SPELLING_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(s) for s in _SPELLINGS) + r")\b")
_ROLES = "|".join(re.escape(role) for role in ROLES_BEFORE_OF)


def title_variants(value: str) -> tuple[str, ...]:
    """The spellings of the title `value` (lower case, the value itself first): acronyms and their
    expansions, "sr"/"senior", "X of Y"/"Y X" for heads, directors and VPs. At most MAX_VARIANTS."""
    variants = [" ".join(value.lower().split())]
    base = _base(variants[0])
    for candidate in [form for singular in _singulars(base) for form in _swapped(singular)]:
        for spelling in _spelled(candidate):
            if spelling and spelling not in variants:
                variants.append(spelling)
            if len(variants) >= MAX_VARIANTS:
                return tuple(variants)
    return tuple(variants)


def title_key(value: str) -> str:
    """The one form all spellings of a title share, so that grouping leads by title counts "CTO", "cto",
    "C.T.O." and "Chief Technology Officer" together: lower case, singular, every known expansion as its
    short form, "<role> of <area>" and "VP <area>" as "<area> <role>" ("VP of Sales" → "sales vp")."""
    base = _base(" ".join(re.sub(r"(?<=[a-z])-(?=[a-z])", " ", value.lower()).split()))
    short = _SPELLING_PATTERN.sub(lambda match: _GROUP_OF[match.group(0)][0], _singulars(base)[-1])
    if match := re.fullmatch(r"(?P<role>vp|svp|evp|head|director|mgr) of (?P<area>[a-z& ]+)", short):
        return f"{match['area']} {match['role']}"
    if match := re.fullmatch(r"(?P<role>vp|svp|evp) (?P<area>[a-z& ]+)", short):
        return f"{match['area']} {match['role']}"
    return short


def _base(value: str) -> str:
    """ "V.P." and "Sr." are "vp" and "sr", "C T O" is "cto", "&" is "and"."""
    base = " ".join(re.sub(r"(?<=[a-z])\.", " ", value).replace(" & ", " and ").split())
    if re.search(r"\b[a-z] [a-z]\b", base):
        base = re.sub(r"\b(?:(?<= )|^)([a-z]) (?=[a-z]\b)", r"\1", base)
    return base


def _spelled(value: str) -> list[str]:
    """`value` with every known short form or expansion written each way (first match of each group)."""
    spellings = [value]
    for match in _SPELLING_PATTERN.finditer(value):
        group = _GROUP_OF[match.group(0)]
        found = match.group(0)
        more = []
        for spelling in spellings:
            for other in group:
                if other != found:
                    more.append(re.sub(rf"\b{re.escape(found)}\b", other, spelling, count=1))
        spellings.extend(more)
        if len(spellings) >= MAX_VARIANTS:
            break
    return spellings


def _singulars(value: str) -> list[str]:
    """ "ctos" → also "cto", "sales managers" → also "sales manager", "heads of sales" → "head of sales"."""
    if match := re.fullmatch(rf"(?P<role>{_ROLES})s of (?P<area>.+)", value):
        return [value, f"{match['role']} of {match['area']}"]
    head, _, last = value.rpartition(" ")
    if len(last) < 3 or not last.endswith("s") or last.endswith("ss") or last in PLURAL_AREAS:
        return [value]
    singular = f"{last[:-3]}y" if last.endswith("ies") else last[:-1]
    return [value, f"{head} {singular}".strip()]


def _swapped(value: str) -> list[str]:
    """ "head of sales" ↔ "sales head"; "vp of sales" also "vp sales"."""
    forms = [value]
    if value in _GROUP_OF:  # "managing director" is a title of its own, not a director of managing
        return forms
    if match := re.fullmatch(rf"(?P<role>{_ROLES}) of (?P<area>[a-z& ]+)", value):
        forms += [f"{match['area']} {match['role']}", f"{match['role']} {match['area']}"]
    elif (match := re.fullmatch(r"(?P<role>vice president|vp|svp|evp) (?P<area>[a-z& ]+)", value)) or (
        match := re.fullmatch(r"(?P<area>[a-z&]+(?: [a-z&]+)?) (?P<role>head|director)", value)
    ):
        forms += [f"{match['role']} of {match['area']}"]
    return forms
