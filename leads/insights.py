"""The insights page's numbers: aggregate queries over the leads, each result row with the URL of the
lead table filtered to it (so every bar of a chart is a link to its leads).

Every chart is one GROUP BY (top-N by count, or the days/weeks of a recent window); completeness is
one pass with filtered counts. Charts are in the shape templates/_bar_chart.html takes:
{"title": ..., "items": [{"label", "count", "url"}], "max": ...}.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate, TruncWeek
from django.urls import reverse
from django.utils import timezone

from .filters import Condition, LeadQuery, email_domain_expression
from .models import Lead

TOP = 10
DAYS = 30
WEEKS = 12
# Completeness: the fields a salesperson needs, and the condition field of each.
COMPLETENESS_FIELDS = (("email", "Email"), ("phone", "Phone"), ("title", "Title"), ("company", "Company"))


def table_url(*conditions: tuple[str, str, str]) -> str:
    """The lead table with these (field, op, value) conditions; "" if a value cannot be a condition
    (too long, surrounding spaces)."""
    try:
        query = LeadQuery(conditions=tuple(Condition(*condition) for condition in conditions))
    except ValueError:
        return ""
    return f"{reverse('leads:list')}?{query.querystring()}"


# At 1M leads the page's GROUP BYs take about a second together (bench/workspace.py): computed once
# per change of the table, and at most this old otherwise (a deletion does not change the key).
CACHE_SECONDS = 60


def insights_cached() -> tuple[list[dict], dict]:
    """(charts, completeness), from the cache while no lead was added or written since."""
    # Both aggregates are one index lookup each (lead_updated_idx, the primary key).
    latest = Lead.objects.aggregate(updated=Max("updated_at"), id=Max("id"))
    key = f"leads:insights:{latest['id']}:{latest['updated'].isoformat() if latest['updated'] else ''}"
    return cache.get_or_set(key, lambda: (lead_insights(), completeness()), CACHE_SECONDS)


def lead_insights() -> list[dict]:
    return [
        _per_day(),
        _per_week(),
        _top("source_file", "source", "Leads by source file"),
        _top("company", "company", "Top companies"),
        _top_domains(),
        _top("title", "title", "Top titles"),
    ]


def _chart(title: str, items: list[dict]) -> dict:
    return {"title": title, "items": items, "max": max((item["count"] for item in items), default=0)}


def _per_day() -> dict:
    today = timezone.localdate()
    first = today - timedelta(days=DAYS - 1)
    rows = (
        Lead.objects.filter(created_at__gte=_start_of(first))
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    items = [
        {
            "label": row["day"].isoformat(),
            "count": row["count"],
            "url": table_url(("created", "equals", row["day"].isoformat())),
        }
        for row in rows
    ]
    return _chart(f"Leads added per day (last {DAYS} days)", items)


def _per_week() -> dict:
    today = timezone.localdate()
    first = today - timedelta(days=today.weekday(), weeks=WEEKS - 1)
    rows = (
        Lead.objects.filter(created_at__gte=_start_of(first))
        .annotate(week=TruncWeek("created_at", tzinfo=timezone.get_current_timezone()))
        .values("week")
        .annotate(count=Count("id"))
        .order_by("week")
    )
    items = []
    for row in rows:
        monday = row["week"].date() if hasattr(row["week"], "date") else row["week"]
        sunday = monday + timedelta(days=6)
        items.append(
            {
                "label": f"Week of {monday.isoformat()}",
                "count": row["count"],
                "url": table_url(("created", "between", f"{monday.isoformat()}..{sunday.isoformat()}")),
            }
        )
    return _chart(f"Leads added per week (last {WEEKS} weeks)", items)


def _top(model_field: str, condition_field: str, title: str) -> dict:
    rows = (
        Lead.objects.exclude(**{model_field: ""})
        .values(model_field)
        .annotate(count=Count("id"))
        .order_by("-count", model_field)[:TOP]
    )
    items = [
        {
            "label": row[model_field],
            "count": row["count"],
            "url": table_url((condition_field, "equals", row[model_field])),
        }
        for row in rows
    ]
    return _chart(title, items)


def _top_domains() -> dict:
    rows = (
        Lead.objects.exclude(email="")
        .annotate(domain=email_domain_expression())
        .values("domain")
        .annotate(count=Count("id"))
        .order_by("-count", "domain")[:TOP]
    )
    items = [
        {
            "label": row["domain"],
            "count": row["count"],
            "url": table_url(("email_domain", "equals", row["domain"])),
        }
        for row in rows
    ]
    return _chart("Top email domains", items)


def completeness() -> dict:
    """How many leads have each field, as a chart whose maximum is the number of leads."""
    aggregates = {name: Count("id", filter=~Q(**{name: ""})) for name, _ in COMPLETENESS_FIELDS}
    counts = Lead.objects.aggregate(total=Count("id"), **aggregates)
    total = counts["total"]
    items = [
        {
            "label": f"{label} ({round(100 * counts[name] / total) if total else 0}%)",
            "count": counts[name],
            "url": table_url((name, "not_empty", "")),
        }
        for name, label in COMPLETENESS_FIELDS
    ]
    return {"title": f"Data completeness (of {total:,} leads)", "items": items, "max": total, "total": total}


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
