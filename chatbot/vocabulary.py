"""The offline parser's words: numbers, months, field names, job titles, places, and the words that
end a value, may be ignored or may be corrected. Lower case, as questions are after normalization.

Only words live here; the patterns built from them and the rules using them are in `offline.py`.
"""

from __future__ import annotations

from leads.titles import TITLE_EQUIVALENTS


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that ask for a change. Past participles ("updated this week") are date words, not requests.
WRITE_WORDS = frozenset(
    {
        "delete",
        "remove",
        "drop",
        "truncate",
        "erase",
        "wipe",
        "destroy",
        "purge",
        "insert",
        "update",
        "modify",
        "edit",
        "rename",
        "overwrite",
        "merge",
        "create",
        "add",
    }
)
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
}
# Days of the week, for "since Monday", "on Friday", "last Tuesday" (the latest such day before today).
WEEKDAYS = {
    name: number
    for number, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
# Shorthand typed on a busy day, read as the words it stands for (never inside sheet, file or company
# names): "leads w/o phone", "how many ppl", "sales mgrs".
ABBREVIATIONS = {
    "w/o": "without", "w/out": "without", "w/": "with", "ppl": "people", "thru": "through", "abt": "about",
    "mgr": "manager", "mgrs": "managers", "dir": "director", "dirs": "directors", "wk": "week",
    "wks": "weeks", "mth": "month", "mths": "months", "yr": "year", "yrs": "years", "yday": "yesterday",
    "ur": "your", "u": "you", "r": "are", "orgs": "organizations", "org": "organization", "#": "number of",
    "tel": "telephone", "tel.": "telephone", "approx.": "approximately", "pls.": "please", "gimme": "give me",
}  # fmt: skip
MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

# Field words, longest first within each field so "first name" wins over "name".
FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "first_name": ("first names", "first name", "firstname", "given name", "forename"),
    "last_name": ("last names", "last name", "lastname", "surnames", "surname", "family name"),
    "email_domain": ("email domains", "email domain", "domains", "domain"),
    "email": ("email addresses", "email address", "emails", "email", "mail address", "mail"),
    "name": ("full name", "names", "name"),
    "title": ("job titles", "job title", "titles", "title", "positions", "position", "roles", "role"),
    "company": ("company name", "companies", "company", "employers", "employer", "organizations",
                "organization", "organisations", "organisation", "firms", "firm"),
    "phone": ("phone numbers", "phone number", "telephone numbers", "telephone number", "telephone",
              "mobile numbers", "mobile number", "mobile", "phones", "phone", "numbers", "number"),
    "remarks": ("remarks", "remark", "notes", "note", "comments", "comment"),
    "worksheet": ("worksheets", "worksheet", "sheets", "sheet", "tabs", "tab"),
    "source": ("source files", "source file", "file names", "file name", "filenames", "filename",
               "sources", "source", "spreadsheets", "spreadsheet", "files", "file", "uploads", "upload",
               "imports", "import", "lists"),
}  # fmt: skip
# Job-title words found anywhere in a question ("CTOs", "sales managers"), matched as whole words.
TITLE_WORDS = (
    "cto", "ceo", "cfo", "coo", "cmo", "cio", "cso", "cpo", "cro", "vp", "svp", "evp", "vice president",
    "president", "director", "manager", "engineer", "developer", "founder", "co-founder", "cofounder",
    "owner", "partner", "consultant", "analyst", "designer", "architect", "assistant", "intern",
    "recruiter", "accountant", "specialist", "coordinator", "officer", "executive", "administrator",
    "representative", "salesperson", "programmer", "scientist", "buyer", "chairman", "treasurer",
    "chro", "ciso", "md", "gm", "kam", "sdr", "bdr", "secretary", "advisor", "strategist",
)  # fmt: skip
# Roles written "<role> of <area>" ("Head of Sales", "VP of Marketing") or "<role> <area>" ("VP Sales").
ROLES_OF_AREA = ("vice president", "vp", "svp", "evp", "head", "director", "chief")
# Everyday misspellings of title words that difflib's closeness misses or gets wrong.
TITLE_MISSPELLINGS = {
    "cheif": "chief", "chif": "chief", "vise": "vice", "manger": "manager", "maneger": "manager",
    "managr": "manager", "directer": "director", "directory": "director", "enginer": "engineer",
    "engeneer": "engineer", "enginner": "engineer", "devloper": "developer", "develloper": "developer",
    "developper": "developer", "consultent": "consultant", "presedent": "president", "presidant": "president",
    "analist": "analyst", "architekt": "architect", "recruter": "recruiter", "secretery": "secretary",
    "cordinator": "coordinator", "technolgy": "technology", "tecnology": "technology",
    "techology": "technology",
    "finacial": "financial", "financal": "financial", "markting": "marketing", "marketting": "marketing",
    "offcier": "officer", "oficer": "officer", "excutive": "executive", "executve": "executive",
}  # fmt: skip
TITLE_QUALIFIERS = (
    "sales", "marketing", "product", "project", "account", "key account", "engineering", "software",
    "hr", "it", "finance", "financial", "operations", "technical", "regional", "general", "senior",
    "junior", "managing", "creative", "art", "data", "business", "customer", "support", "office",
    "procurement", "purchasing", "research", "quality", "executive", "medical",
)  # fmt: skip
# Departments, found as a title word when they name people: "marketing people", "the sales team".
DEPARTMENTS = (
    "sales", "marketing", "product", "engineering", "hr", "finance", "operations", "procurement",
    "purchasing", "research", "support", "legal", "accounting", "logistics",
)  # fmt: skip
PEOPLE_WORDS = (
    "people",
    "ppl",
    "staff",
    "team",
    "teams",
    "folks",
    "guys",
    "department",
    "departments",
    "dept",
)
WEBMAIL = ("gmail", "googlemail", "yahoo", "hotmail", "outlook", "gmx", "icloud", "aol", "protonmail")
FILE_EXTENSIONS = ("csv", "xlsx", "xlsm", "xls", "ods", "tsv", "txt")

# Words that end a value: "from Globex with a phone" → "globex".
BOUNDARY_WORDS = _word_set(
    """with without who whose that which and or in at from added created updated modified changed
    edited imported entered new this last past since before after between on during by per sorted
    sort order ordered have has having had where named called titled their leads lead employees staff
    people contacts today yesterday is are was were do does did to for only also group grouped
    newest oldest latest recent recently but not no missing than alphabetically top first there
    please instead too anyway though again together across"""
) | {word for words in FIELD_WORDS.values() for word in words if " " not in word}
# Words a question may contain without changing its meaning.
FILLER_WORDS = _word_set(
    """a an the me us we our i you your my do does did is are was were be been being there here any
    all of for to please can could would will should show list give get find display see tell what
    which who whom how many much count number numbers total leads lead contacts contact people persons
    person records record entries entry rows row ones one them those these they their it its in have has had
    got having with and so far currently now just only also about database crm system exist exists
    existing altogether overall then ok okay same but as some every each whose where from at on by
    that this let know want need view pull up fetch search ever yet right added created new imported
    entered came come arrived updated modified changed edited import imported received sum kindly thanks thank again still
    already stored saved registered recorded available anyone everyone work works working worked
    employed based located headquartered companies company group grouped break down breakdown split
    most common biggest largest top first latest newest oldest recent recently sorted sort order
    ordered alphabetically ascending descending a-z z-a hey total amount tally whats among other
    else entire whole full complete like per set filled bring brought through via hi hello pls plz
    thx cheers roughly approximately approx mind wondering wonder quick question quickly telling
    everybody everything anybody am looking searching may might instead too anyway though summary overview
    report coming comes say anything somebody someone use uses using call together happened field
    fields column columns broken"""
)
# Phone numbers "from" a country, by their calling code: "leads with a German number" (phone starts
# with "+49"). Only codes written with "+"; numbers typed without one are not found.
PHONE_COUNTRIES = {
    "german": "+49", "germany": "+49", "us": "+1", "u.s.": "+1", "american": "+1", "usa": "+1",
    "uk": "+44", "british": "+44", "french": "+33", "france": "+33", "austrian": "+43", "austria": "+43",
    "swiss": "+41", "switzerland": "+41", "dutch": "+31", "spanish": "+34", "italian": "+39",
    "polish": "+48", "irish": "+353",
}  # fmt: skip
# Verbs that open a request to change or send something: "set the owner of …", "send an email to …".
# Only at the start of a question ("leads with their phone set" is a question).
WRITE_OPENINGS = (
    "set", "assign", "reassign", "change", "mark", "move", "transfer", "send", "call", "export",
    "download", "share", "forward", "import", "upload", "tag",
)  # fmt: skip
# Phrases that say nothing about the leads: "at the moment" is not the company "moment".
FILLER_PHRASES = (
    "at the moment", "at present", "right now", "as of now", "as of today", "to date", "if possible",
    "if you can", "by any chance", "for me", "off the top of your head", "as well", "this time",
)  # fmt: skip
# What a misspelled word may be corrected to: the words the rules look for. Short everyday words
# ("far", "thank") are not targets, or "fair" and "hank" would turn into them.
KEYWORDS = sorted(
    {word for words in FIELD_WORDS.values() for phrase in words for word in phrase.split()}
    | {word for phrase in TITLE_WORDS + TITLE_QUALIFIERS for word in phrase.split() if len(word) > 3}
    | {f"{word}s" for word in TITLE_WORDS if " " not in word and len(word) > 3}
    | {word for group in TITLE_EQUIVALENTS for phrase in group for word in phrase.split() if len(word) > 3}
    | {"chief", "head", "heads"}
    | {month for month in MONTHS if len(month) > 3}
    | _word_set(
        """how many much show list count find leads lead with without have having number total group
        grouped each every sorted order between since before after during today yesterday week weeks
        month months year years named called contains containing starts starting begins beginning
        ends ending exactly equals empty blank missing unknown added created updated modified imported
        newest oldest latest recent breakdown people contacts employees companies which where whose
        who does mention mentions mentioning addresses address accounts different distinct unique
        both either most common display from status owner"""
    )
)
# Words never corrected: every keyword plus the filler and boundary words ("the" must not become "them").
VOCABULARY = (
    frozenset(KEYWORDS)
    | FILLER_WORDS
    | BOUNDARY_WORDS
    | WRITE_WORDS
    | set(WRITE_OPENINGS)
    | set(NUMBER_WORDS)
    | set(WEBMAIL)
)
# Phrases a value may not be: "in total" is not a place.
NOT_VALUES = _word_set("total all database crm system general it them those these there stock particular") | {
    "the database",
    "our database",
    "the crm",
    "our crm",
    "the system",
    "our system",
}

# Places a question may name: leads have no address fields, but the source's city/country columns are kept
# in remarks ("City: Berlin"). Anything else after "from" is taken for a company.
PLACES = _word_set(
    """germany france spain italy uk usa us austria switzerland netherlands belgium poland sweden norway
    denmark finland ireland portugal india china japan australia brazil mexico canada england scotland
    berlin munich hamburg frankfurt cologne stuttgart dusseldorf düsseldorf leipzig dresden vienna
    zurich geneva london manchester paris lyon madrid barcelona rome milan amsterdam rotterdam brussels
    warsaw prague stockholm oslo copenhagen helsinki dublin lisbon boston chicago seattle toronto
    sydney tokyo singapore dubai"""
) | {"new york", "san francisco", "los angeles", "united states", "united kingdom"}
# Their words are values, never corrected to a keyword ("in munich" must not become "in much").
PLACE_WORDS = frozenset(word for place in PLACES for word in place.split())

# Words that point back at the previous answer ("and how many of them…", "which ones…").
FOLLOW_UP_WORDS = frozenset({"them", "those", "these", "ones"})
# Pronouns that point back only when the question names no subject of its own: "what are their emails?"
# is a follow-up, "how many leads have their phone set?" is not.
FOLLOW_UP_PRONOUNS = frozenset({"they", "their", "theirs"})
# Words that make a question complete on its own: it says what it asks about.
SUBJECT_WORDS = frozenset(
    {"leads", "lead", "contacts", "contact", "people", "everyone", "everybody", "everything", "all"}
)
# Words that name where leads came from: a sheet of a file, or the file itself.
SHEET_WORDS = ("worksheets", "worksheet", "sheets", "sheet", "tabs", "tab")
FILE_WORDS = ("spreadsheets", "spreadsheet", "files", "file", "lists", "list", "uploads", "upload", "imports",
              "import", "excel", "csv")  # fmt: skip
# A word after these is a value (a name, a company), never a misspelled keyword.
VALUE_INTRODUCERS = _word_set(
    "named called from at is equals contains containing mention mentions mentioning like about "
    "starting start begins beginning starts name company title"
)

# Leftover words that are never ignored (see offline._may_ignore): they may turn a question around…
NEGATIONS = _word_set(
    "not no never without except excluding exclude besides neither nor none non unless minus"
)
# …or ask about something leads do not have: "the revenue of Globex", "deals closed last quarter".
UNKNOWN_FIELD_WORDS = _word_set(
    """revenue revenues deal deals turnover profit budget price value industry industries sector
    sectors segment status stage stages pipeline opportunity opportunities owner owners assigned
    country countries region regions city cities address website linkedin age gender salary score
    rating priority quarter quarters size employees headcount probability hot cold warm won lost
    active inactive open"""
)
