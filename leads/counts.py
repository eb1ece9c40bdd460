"""The lead table's total per filter, remembered for a few seconds (issue 12, "Load").

Counting a filter no index serves scans the table (up to ~60 ms for a contains-filter on 50k leads on
PostgreSQL), and a table asks for it on every page, sort and next page of the same filter — by every
user. The total is kept in the shared cache per filter (sort and page do not change it) for
LEAD_TOTAL_CACHE_SECONDS. It is forgotten at once, for every filter, when a change people are shown
happens — an import ends, an undo, a bulk action, an edit — so a table refreshed by "leads-changed"
counts again; meanwhile (say while another person's import runs) a total may be that many seconds old.
The rows of the page are always read fresh. See docs/reliability.md, "Load".
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from . import filters
from .filters import DEFAULT_PER_PAGE, DEFAULT_SORT, LeadQuery, leads_count_capped
from .models import Lead

logger = logging.getLogger("easycrm.leads")

GENERATION_KEY = "easycrm:lead-totals:generation"
TOTAL_KEY = "easycrm:lead-totals:{digest}"


def leads_total_cached(queryset: QuerySet[Lead], query: LeadQuery) -> int:
    """leads_count_capped(queryset) for `query`'s filter, from the cache when counted recently."""
    seconds = settings.LEAD_TOTAL_CACHE_SECONDS
    if seconds <= 0:
        return leads_count_capped(queryset, filters.COUNT_CAP)
    filter_only = query.replace(sort=DEFAULT_SORT, page=1, per_page=DEFAULT_PER_PAGE).querystring()
    key = TOTAL_KEY.format(digest=hashlib.sha256(filter_only.encode()).hexdigest()[:32])
    try:
        found = cache.get_many([GENERATION_KEY, key])  # one round trip
    except Exception:
        # A cache outage must not break the table: count as without the cache.
        logger.warning("could not read the cached lead totals", exc_info=True)
        return leads_count_capped(queryset, filters.COUNT_CAP)
    generation = found.get(GENERATION_KEY, 0)
    remembered = found.get(key)
    if remembered is not None and remembered[0] == generation:
        return remembered[1]
    total = leads_count_capped(queryset, filters.COUNT_CAP)
    try:
        cache.set(key, (generation, total), seconds)
    except Exception:
        logger.warning("could not cache a lead total", exc_info=True)
    return total


def leads_totals_forget() -> None:
    """Every remembered total is stale from now on (leads changed in a way people are shown)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not set yet, or evicted
        cache.set(GENERATION_KEY, 1, None)
    except Exception:
        logger.warning("could not forget the cached lead totals", exc_info=True)
