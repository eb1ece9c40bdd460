"""The lead table (filter, sort, page; HTMX swaps the table only), the lead page and the CSV export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from chatbot.services import chat_history
from processing.forms import UploadForm
from processing.services import imports_active_for

from .filters import (
    DEFAULT_PER_PAGE,
    MAX_PAGE,
    PER_PAGE_CHOICES,
    LeadPage,
    LeadQuery,
    leads_filter,
    leads_page,
)
from .models import Lead
from .services import leads_export_lines

# The table container's id: its own refresh (on "leads-changed") must not add a history entry.
TABLE_ID = "lead-table"
# The chat panel on the list page shows the end of the conversation; the chat page shows more.
CHAT_PANEL_MESSAGES = 20
# Sort key, header label, filter boxes in the header (parameter, placeholder).
COLUMNS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("first_name", "First name", (("first_name", "First name"),)),
    ("last_name", "Last name", (("last_name", "Last name"),)),
    ("title", "Title", (("title", "Title"),)),
    ("company", "Company", (("company", "Company"),)),
    ("email", "Email", (("email", "Email"),)),
    ("phone", "Phone", (("phone", "Phone"),)),
    ("source", "Worksheet / source", (("source", "File"), ("worksheet", "Worksheet"))),
    ("updated", "Updated", ()),
)


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_list(request: HttpRequest) -> HttpResponse:
    page = leads_page(LeadQuery.from_params(request.GET))
    context = _table_context(page)
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "leads/list.html#table", context)
        if request.htmx.trigger != TABLE_ID:
            # The address bar shows the clean URL of what is shown, not the raw form fields.
            push_url(response, context["urls"]["current"])
    else:
        can_import = request.user.has_perm("processing.add_importjob")
        context["active_imports"] = imports_active_for(user=request.user) if can_import else None
        context["upload_form"] = UploadForm() if can_import else None
        context["chat_messages"] = chat_history(user=request.user, limit=CHAT_PANEL_MESSAGES)
        response = render(request, "leads/list.html", {**context, "nav": "leads"})
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(Lead.objects.select_related("import_job"), pk=pk)
    back_query = LeadQuery.from_params(request.GET)  # the table the user came from
    context = {
        "nav": "leads",
        "lead": lead,
        # A list, not lead.raw.items in the template: a source column named "items" would shadow it.
        "raw_items": list(lead.raw.items()) if isinstance(lead.raw, dict) else [],
        "back_url": _list_url(back_query),
    }
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "leads/detail.html#lead" if fragment else "leads/detail.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_export(request: HttpRequest) -> StreamingHttpResponse:
    """The current view of the table (filters and sort, every page) as CSV, streamed."""
    leads = leads_filter(LeadQuery.from_params(request.GET))
    filename = f"leads_{timezone.localtime():%Y%m%d_%H%M%S}.csv"
    response = StreamingHttpResponse(leads_export_lines(leads), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _table_context(page: LeadPage) -> dict:
    query = page.query
    urls = {
        "current": _list_url(query),
        "clear": _list_url(query.cleared()),
        "export": _url("leads:export", query.replace(page=1, per_page=DEFAULT_PER_PAGE)),
        "first": _list_url(query.replace(page=1)),
        "previous": _list_url(query.replace(page=max(query.page - 1, 1))),
        "next": _list_url(query.replace(page=min(query.page + 1, MAX_PAGE))),
        "last": _list_url(query.replace(page=page.num_pages or 1)),
    }
    columns = []
    for key, label, filter_boxes in COLUMNS:
        active = query.sort_key == key
        next_sort = key if not active or query.sort_descending else f"-{key}"
        columns.append(
            {
                "label": label,
                "url": _list_url(query.replace(sort=next_sort, page=1)),
                "aria_sort": ("descending" if query.sort_descending else "ascending") if active else "",
                "filters": [(name, placeholder, getattr(query, name)) for name, placeholder in filter_boxes],
            }
        )
    return {
        "page": page,
        "query": query,
        "urls": urls,
        "columns": columns,
        "detail_querystring": query.querystring(),
        # Conditions the column boxes cannot hold (from the chatbot's "Show in table"), removable.
        "condition_chips": [
            {
                "label": condition.describe(),
                "param": condition.to_param(),
                "remove_url": _list_url(query.without_condition(condition)),
            }
            for condition in query.conditions
        ],
        "per_page_choices": PER_PAGE_CHOICES,
    }


def _list_url(query: LeadQuery) -> str:
    return _url("leads:list", query)


def _url(view_name: str, query: LeadQuery) -> str:
    querystring = query.querystring()
    return f"{reverse(view_name)}?{querystring}" if querystring else reverse(view_name)
