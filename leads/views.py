"""The lead workspace: the table (filter, sort, page, chips, saved views; HTMX swaps the table only),
bulk actions on its rows, the lead page (edit, notes, history), the CSV export and the insights."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, trigger_client_event

from chatbot.services import chat_history
from processing.forms import UploadForm
from processing.models import ImportJob
from processing.services import imports_active_for

from . import editing, insights
from .counts import leads_total_cached, leads_totals_forget
from .filters import (
    DATE_FILTERS,
    DEFAULT_PER_PAGE,
    MAX_PAGE,
    OWNER_NONE,
    PER_PAGE_CHOICES,
    PRESENCE_FILTERS,
    TEXT_FILTERS,
    LeadPage,
    LeadQuery,
    PageCursor,
    leads_count_capped,
    leads_filter,
    leads_page,
)
from .forms import BULK_ACTIONS, UNASSIGNED, BulkForm, LeadForm, NoteForm, SavedViewForm, owner_queryset
from .models import Lead, LeadChange, SavedView, lead_statuses
from .services import leads_export_lines

# The table container's id: its own refresh (on "leads-changed") must not add a history entry.
TABLE_ID = "lead-table"
# Client event (HX-Trigger) the table listens to; also sent by processing.views when an import ends.
LEADS_CHANGED = "leads-changed"
# The chat panel on the list page shows the end of the conversation; the chat page shows more.
CHAT_PANEL_MESSAGES = 20
# Finished imports of the last day are summed up in one "Recent imports" line above the table.
RECENT_IMPORTS = 3
RECENT_IMPORTS_WINDOW = timedelta(days=1)
# A lead id no table shows, reversed once per table and replaced by each row's id (_table_rows).
ROW_URL_PLACEHOLDER = 987_654_321_987_654_321
# Sort key, header label, filter boxes in the header (parameter, placeholder).
COLUMNS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("first_name", "First name", (("first_name", "First name"),)),
    ("last_name", "Last name", (("last_name", "Last name"),)),
    ("title", "Title", (("title", "Title"),)),
    ("company", "Company", (("company", "Company"),)),
    ("email", "Email", (("email", "Email"),)),
    ("phone", "Phone", (("phone", "Phone"),)),
    ("status", "Status", ()),
    ("owner", "Owner", ()),
    ("source", "Source", (("source", "File"), ("worksheet", "Worksheet"))),
    ("updated", "Updated", ()),
)
FILTER_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "title": "Title",
    "company": "Company",
    "email": "Email",
    "phone": "Phone",
    "worksheet": "Worksheet",
    "source": "File",
    "updated_from": "Updated from",
    "updated_to": "Updated to",
    "created_from": "Created from",
    "created_to": "Created to",
}


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_list(request: HttpRequest) -> HttpResponse:
    page = leads_page(LeadQuery.from_params(request.GET), _page_cursor(request), count=leads_total_cached)
    context = _table_context(request, page)
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "leads/list.html#table", context)
        if request.htmx.trigger != TABLE_ID:
            # The address bar shows the clean URL of what is shown, not the raw form fields.
            push_url(response, context["urls"]["current"])
    else:
        can_import = request.user.has_perm("processing.add_importjob")
        context["active_imports"] = imports_active_for(user=request.user) if can_import else None
        context["recent_imports"] = _recent_imports(request.user) if can_import else None
        context["upload_form"] = UploadForm() if can_import else None
        context["chat_messages"] = chat_history(user=request.user, limit=CHAT_PANEL_MESSAGES)
        context["saved_view_form"] = SavedViewForm(user=request.user)
        response = render(request, "leads/list.html", {**context, "nav": "leads"})
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(Lead.objects.select_related("import_job", "owner"), pk=pk)
    can_edit = request.user.has_perm("leads.change_lead")
    context = _detail_context(
        request,
        lead,
        form=LeadForm(instance=lead) if can_edit else None,
        note_form=NoteForm() if can_edit else None,
    )
    return _render_detail(request, context)


@login_required
@permission_required("leads.change_lead", raise_exception=True)
@require_POST
def lead_edit(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(Lead.objects.select_related("owner"), pk=pk)
    # The form gets its own copy: validating a ModelForm writes the new values into its instance, and
    # lead_update needs the old ones to record before → after.
    form = LeadForm(request.POST, instance=Lead.objects.get(pk=lead.pk))
    if form.is_valid():
        try:
            changes = editing.lead_update(lead=lead, user=request.user, values=form.changed_values())
            leads_totals_forget()
        except IntegrityError:  # another request took the email since the form checked it
            form.add_error("email", "Another lead already has this email.")
    if form.errors:
        lead.refresh_from_db()
        context = _detail_context(request, lead, form=form, note_form=NoteForm())
        return _render_detail(request, context, status=400)
    notice = f"Saved: {_changed_fields(changes)}." if changes else "Nothing changed."
    return _detail_done(request, lead, notice)


@login_required
@permission_required("leads.change_lead", raise_exception=True)
@require_POST
def lead_note_add(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(Lead.objects.select_related("owner"), pk=pk)
    note_form = NoteForm(request.POST)
    if not note_form.is_valid():
        form = LeadForm(instance=lead)
        context = _detail_context(request, lead, form=form, note_form=note_form)
        return _render_detail(request, context, status=400)
    editing.lead_note_add(lead=lead, user=request.user, text=note_form.cleaned_data["text"])
    return _detail_done(request, lead, "Note added.")


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_POST
def leads_bulk(request: HttpRequest) -> HttpResponse:
    """An action on the checked rows or on every lead of the table; asks first, with the count."""
    form = BulkForm(request.POST)
    query = LeadQuery.from_params(QueryDict(request.POST.get("query", "")))
    back_url = _list_url(query)
    if not form.is_valid():
        return _bulk_page(request, form=form, back_url=back_url, count=0, status=400)
    data = form.cleaned_data
    _bulk_permission_check(request, data["action"])
    selected = leads_filter(query) if data["all_matching"] else Lead.objects.filter(pk__in=data["ids"])
    if data["action"] == "export":
        return _csv_response(selected)
    count = leads_count_capped(selected, editing.BULK_LIMIT)
    if count > editing.BULK_LIMIT:
        form.add_error(None, f"At most {editing.BULK_LIMIT:,} leads at once: narrow the filter first.")
        return _bulk_page(request, form=form, back_url=back_url, count=count, status=400)
    if not data["confirmed"]:
        return _bulk_page(request, form=form, back_url=back_url, count=count)
    message = _bulk_apply(request, data, selected)
    leads_totals_forget()
    if request.htmx:
        response = render(request, "leads/bulk.html#done", {"message": message, "back_url": back_url})
        trigger_client_event(response, LEADS_CHANGED)
        return response
    messages.success(request, message)
    return redirect(back_url)


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_export(request: HttpRequest) -> StreamingHttpResponse:
    """The current view of the table (filters and sort, every page) as CSV, streamed."""
    return _csv_response(leads_filter(LeadQuery.from_params(request.GET)))


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    query = LeadQuery.from_params(QueryDict(request.POST.get("query", ""))).replace(page=1)
    form = SavedViewForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("name", ["Give the view a name."])))
        return _redirect(request, _list_url(query))
    view = form.save(commit=False)
    view.user, view.querystring = request.user, query.querystring()
    view.save()
    messages.success(request, f"Saved the view “{view.name}”.")
    return _redirect(request, _list_url(query))


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=pk, user=request.user)  # only one's own views
    view.delete()
    messages.success(request, f"Deleted the view “{view.name}”.")
    return _redirect(request, reverse("leads:list"))


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def lead_insights(request: HttpRequest) -> HttpResponse:
    charts, completeness = insights.insights_cached()
    context = {
        "nav": "insights",
        "charts": charts,
        "completeness": completeness,
        "time_zone": timezone.get_current_timezone_name(),
    }
    template = "leads/insights.html#charts" if request.htmx else "leads/insights.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- helpers ---------------------------------------------------------------------------------


def _csv_response(leads) -> StreamingHttpResponse:
    filename = f"leads_{timezone.localtime():%Y%m%d_%H%M%S}.csv"
    response = StreamingHttpResponse(leads_export_lines(leads), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """After a POST: a redirect, or for HTMX a client-side one (the whole page changes)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = url
        return response
    return redirect(url)


def _bulk_permission_check(request: HttpRequest, action: str) -> None:
    needed = {"status": "leads.change_lead", "owner": "leads.change_lead", "delete": "leads.delete_lead"}
    if action in needed and not request.user.has_perm(needed[action]):
        raise PermissionDenied


def _bulk_apply(request: HttpRequest, data: dict, selected) -> str:
    action = data["action"]
    if action == "delete":
        count = editing.leads_bulk_delete(leads=selected)
        return f"Deleted {count:,} lead{'s' if count != 1 else ''}."
    if action == "status":
        count = editing.leads_bulk_update(leads=selected, user=request.user, status=data["status"])
        return f"Set the status of {count:,} lead{'s' if count != 1 else ''} to {data['status']}."
    unassign = data["owner"] == UNASSIGNED
    owner = None if unassign else data["owner"]
    count = editing.leads_bulk_update(leads=selected, user=request.user, owner=owner, unassign=unassign)
    who = "nobody" if unassign else owner.get_username()
    return f"Assigned {count:,} lead{'s' if count != 1 else ''} to {who}."


def _bulk_page(request: HttpRequest, *, form: BulkForm, back_url: str, count: int, status: int = 200):
    data = form.cleaned_data if form.is_bound and hasattr(form, "cleaned_data") else {}
    context = {
        "form": form,
        "count": count,
        "back_url": back_url,
        "action_label": BULK_ACTIONS.get(data.get("action", ""), ""),
        "data": data,
        "owner_name": _owner_name(data.get("owner")),
        "posted": request.POST,
    }
    if request.htmx:  # htmx swaps only 2xx responses: an error must replace the dialog too
        return render(request, "leads/bulk.html#confirm", context)
    return render(request, "leads/bulk.html", {**context, "nav": "leads"}, status=status)


def _owner_name(owner) -> str:
    if owner in (None, ""):
        return ""
    return "nobody" if owner == UNASSIGNED else owner.get_username()


def _changed_fields(changes: list[LeadChange]) -> str:
    return ", ".join(Lead._meta.get_field(change.field).verbose_name for change in changes)


def _detail_context(request: HttpRequest, lead: Lead, *, form=None, note_form=None) -> dict:
    return {
        "nav": "leads",
        "lead": lead,
        # A list, not lead.raw.items in the template: a source column named "items" would shadow it.
        "raw_items": list(lead.raw.items()) if isinstance(lead.raw, dict) else [],
        "back_url": _list_url(LeadQuery.from_params(request.GET)),  # the table the user came from
        "back_querystring": LeadQuery.from_params(request.GET).querystring(),
        "form": form,
        "note_form": note_form,
        "notes": lead.notes.select_related("author")[:200],
        "history": _history(lead),
    }


def _history(lead: Lead) -> list[dict]:
    """The lead's imports and people's edits, newest first: who, when, what."""
    entries = [
        {
            "when": change.created_at,
            "who": change.user.get_username() if change.user else "a deleted user",
            "field": Lead._meta.get_field(change.field).verbose_name,
            "before": change.before,
            "after": change.after,
        }
        for change in lead.changes.select_related("user").order_by("-created_at", "-id")[:200]
    ]
    for revision in lead.revisions.select_related("job").order_by("-created_at", "-id")[:50]:
        entries.append(
            {
                "when": revision.created_at,
                "job": revision.job,
                "action": revision.get_action_display(),
            }
        )
    return sorted(entries, key=lambda entry: entry["when"], reverse=True)


def _render_detail(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "leads/detail.html#lead" if fragment else "leads/detail.html"
    if fragment:
        status = 200  # htmx swaps only 2xx responses: the form with its errors must replace the old one
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _detail_done(request: HttpRequest, lead: Lead, notice: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, notice)
        url = reverse("leads:detail", args=[lead.pk])
        querystring = request.GET.urlencode()
        return redirect(f"{url}?{querystring}" if querystring else url)
    lead = Lead.objects.select_related("import_job", "owner").get(pk=lead.pk)
    context = _detail_context(request, lead, form=LeadForm(instance=lead), note_form=NoteForm())
    context["notice"] = notice
    return _render_detail(request, context)


def _recent_imports(user) -> list[ImportJob]:
    since = timezone.now() - RECENT_IMPORTS_WINDOW
    jobs = ImportJob.objects.filter(uploaded_by=user, status__in=ImportJob.TERMINAL, created_at__gte=since)
    return list(jobs.order_by("-created_at").only("pk", "original_filename", "status")[:RECENT_IMPORTS])


def _table_context(request: HttpRequest, page: LeadPage) -> dict:
    query = page.query
    urls = {
        "current": _cursor_url(query, page.read_from),
        "clear": _list_url(query.cleared()),
        "export": _url("leads:export", query.replace(page=1, per_page=DEFAULT_PER_PAGE)),
        "first": _list_url(query.replace(page=1)),
        "previous": _cursor_url(query.replace(page=max(query.page - 1, 1)), page.cursor("before")),
        "next": _cursor_url(query.replace(page=min(query.page + 1, MAX_PAGE)), page.cursor("after")),
        "last": _list_url(query.replace(page=page.num_pages or 1)),
    }
    columns = []
    for key, label, filter_boxes in COLUMNS:
        active = query.sort_key == key
        next_sort = key if not active or query.sort_descending else f"-{key}"
        columns.append(
            {
                "key": key,
                "label": label,
                "url": _list_url(query.replace(sort=next_sort, page=1)),
                "aria_sort": ("descending" if query.sort_descending else "ascending") if active else "",
                "filters": [(name, placeholder, getattr(query, name)) for name, placeholder in filter_boxes],
            }
        )
    owners = list(owner_queryset().only("pk", "username"))
    view_querystring = query.querystring(page=1)
    saved_views = list(SavedView.objects.filter(user=request.user))
    return {
        "page": page,
        "rows": _table_rows(page.leads, query.querystring()),
        "query": query,
        "urls": urls,
        "columns": columns,
        "detail_querystring": query.querystring(),
        "chips": _filter_chips(query, owners),
        # Conditions the column boxes cannot hold (from the chatbot's "Show in table"): the form keeps them.
        "condition_params": [condition.to_param() for condition in query.conditions],
        "per_page_choices": PER_PAGE_CHOICES,
        "statuses": lead_statuses(),
        "owners": owners,
        "owner_none": OWNER_NONE,
        "unassigned": UNASSIGNED,
        "view_querystring": view_querystring,
        "saved_views": saved_views,
        "active_view": next((view for view in saved_views if view.querystring == view_querystring), None),
        "can_edit": request.user.has_perm("leads.change_lead"),
        "can_delete": request.user.has_perm("leads.delete_lead"),
        "bulk_limit": editing.BULK_LIMIT,
        "time_zone": timezone.get_current_timezone_name(),
    }


def _table_rows(leads: list[Lead], detail_querystring: str) -> list[Lead]:
    """The page's leads, each with its link and its update time as the row shows them, computed once
    per table here: the `{% url %}` tag and the `date` filter cost ~60 µs a row each, a third of the
    table's rendering under issue 12's load (bench/web_cost.py)."""
    placeholder = str(ROW_URL_PLACEHOLDER)
    url = reverse("leads:detail", args=[ROW_URL_PLACEHOLDER])
    suffix = f"?{detail_querystring}" if detail_querystring else ""
    for lead in leads:
        lead.row_url = url.replace(placeholder, str(lead.pk)) + suffix
        updated = timezone.localtime(lead.updated_at)
        lead.row_updated_iso, lead.row_updated = updated.isoformat(), updated.strftime("%Y-%m-%d %H:%M")
    return leads


def _filter_chips(query: LeadQuery, owners: list) -> list[dict]:
    """Every active filter in words, with the URL of the same table without it."""
    chips = []

    def chip(label: str, without: LeadQuery) -> None:
        chips.append({"label": label, "remove_url": _list_url(without.replace(page=1))})

    if query.q:
        chip(f"Search “{query.q}”", query.replace(q=""))
    for name in TEXT_FILTERS:
        if value := getattr(query, name):
            chip(f"{FILTER_LABELS[name]} contains “{value}”", query.replace(**{name: ""}))
    if query.status:
        chip(f"Status is {query.status}", query.replace(status=""))
    if query.owner:
        names = {str(user.pk): user.get_username() for user in owners}
        label = "Nobody" if query.owner == OWNER_NONE else names.get(query.owner, f"user {query.owner}")
        chip(f"Owner is {label}", query.replace(owner=""))
    for name in DATE_FILTERS:
        if (day := getattr(query, name)) is not None:
            chip(f"{FILTER_LABELS[name]} {day.isoformat()}", query.replace(**{name: None}))
    for name, model_field in PRESENCE_FILTERS.items():
        wanted = getattr(query, name)
        if wanted is not None:
            chip(f"{'Has' if wanted else 'No'} {model_field}", query.replace(**{name: None}))
    if query.job is not None:
        chip("Only one import", query.replace(job=None))
    for condition in query.conditions:
        label = condition.describe()
        chip(label[:1].upper() + label[1:], query.without_condition(condition))
    return chips


def _list_url(query: LeadQuery) -> str:
    return _url("leads:list", query)


def _page_cursor(request: HttpRequest) -> PageCursor | None:
    """The keyset cursor of a "next" (`after=`) or "previous" (`before=`) link, if any."""
    for direction in ("after", "before"):
        if raw := request.GET.get(direction):
            return PageCursor.parse(direction, raw)
    return None


def _cursor_url(query: LeadQuery, cursor: PageCursor | None) -> str:
    """A page link that also carries the keyset cursor, so the database reads from there instead of
    skipping every page before (the page number stays for the "Page n" text and without the cursor).
    Page 1 needs none."""
    url = _list_url(query)
    if cursor is None or query.page == 1:
        return url
    return f"{url}{'&' if '?' in url else '?'}{cursor.direction}={cursor.to_param()}"


def _url(view_name: str, query: LeadQuery) -> str:
    querystring = query.querystring()
    return f"{reverse(view_name)}?{querystring}" if querystring else reverse(view_name)
