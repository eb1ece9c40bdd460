"""Import pages: upload, live status, history, detail, problem rows, and cancel / retry / undo.

Everyone who may view imports sees all of them; uploading needs add_importjob, and cancel, retry
and undo need change_importjob (the viewer and importer groups, leads/migrations/0002_roles.py).
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling, reswap, retarget, trigger_client_event

from . import problems, services
from . import undo as undo_service
from .forms import UploadForm
from .models import ImportJob

HISTORY_PAGE_SIZE = 50
BATCH_PAGE_SIZE = 100
# Client events (HX-Trigger) that other parts of a page listen to with `hx-trigger="… from:body"`.
LEADS_CHANGED = "leads-changed"
IMPORTS_CHANGED = "imports-changed"


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
@require_safe
def import_list(request: HttpRequest) -> HttpResponse:
    if request.htmx:
        return render(request, "processing/list.html#history", _history_context(request))
    return render(request, "processing/list.html", _history_context(request, upload_form=UploadForm()))


@login_required
@permission_required("processing.add_importjob", raise_exception=True)
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        if request.htmx:
            card = render(request, "processing/_upload_card.html", {"upload_form": form, "fragment": True})
            return reswap(retarget(card, "#upload-card"), "outerHTML")
        return render(
            request, "processing/list.html", _history_context(request, upload_form=form), status=400
        )
    upload = form.cleaned_data["file"]
    job = services.import_start(file=upload, filename=upload.name, user=request.user)
    if not request.htmx:
        messages.success(
            request, f"“{job.original_filename}” is being imported; its progress is shown below."
        )
        return redirect("leads:list")
    job.refresh_from_db()
    # The new job's panel goes into the active list; a fresh card replaces the used one out of band.
    html = _render(request, "processing/_status.html", {"job": job}) + _render(
        request, "processing/_upload_card.html", {"upload_form": UploadForm(), "fragment": True, "oob": True}
    )
    events = (IMPORTS_CHANGED, LEADS_CHANGED) if job.is_terminal else (IMPORTS_CHANGED,)
    return _trigger(HttpResponse(html), *events)


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
@require_safe
def import_status(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    if not request.htmx:
        return redirect("processing:detail", job_id=job.pk)
    html = _render(request, "processing/_status.html", {"job": job})
    if not job.is_terminal:
        return HttpResponse(html)
    # 286 ends the polling; the lead table and the import lists refresh themselves on these events.
    return _trigger(HttpResponseStopPolling(html), LEADS_CHANGED, IMPORTS_CHANGED)


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
@require_safe
def import_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("uploaded_by", "undone_by"), pk=job_id)
    batches = job.batches.defer("rows", "results").order_by("batch_number")
    context = {
        "nav": "imports",
        "job": job,
        "batches": Paginator(batches, BATCH_PAGE_SIZE).get_page(request.GET.get("page")),
    }
    if request.htmx:
        return render(request, "processing/detail.html#summary", context)
    return render(request, "processing/detail.html", context)


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
@require_safe
def import_problems(request: HttpRequest, job_id) -> StreamingHttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    filename = f"{Path(job.original_filename).stem}-problems.csv"
    return StreamingHttpResponse(
        problems.import_problems_lines(job=job),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition_header(as_attachment=True, filename=filename)},
    )


@login_required
@permission_required("processing.change_importjob", raise_exception=True)
@require_POST
def cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    if not services.import_cancel(job=job):
        return _action_done(request, job, "This import had already ended.", ok=False)
    message = "Import cancelled. Leads stored before that are kept."
    return _action_done(request, job, message, events=(LEADS_CHANGED, IMPORTS_CHANGED))


@login_required
@permission_required("processing.change_importjob", raise_exception=True)
@require_POST
def retry_failed(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    if not job.can_retry:
        message = "Only a finished import with failed batches, not undone, can be retried."
        return _action_done(request, job, message, ok=False)
    batch_ids = services.import_retry_failed(job=job)
    message = f"Retrying {len(batch_ids):,} failed batch{'es' if len(batch_ids) != 1 else ''}."
    return _action_done(request, job, message, ok=bool(batch_ids), events=(IMPORTS_CHANGED,))


@login_required
@permission_required("processing.change_importjob", raise_exception=True)
@require_POST
def undo(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    try:
        result = undo_service.import_undo(job=job, user=request.user)
    except undo_service.UndoRefused as exc:
        return _action_done(request, job, str(exc), ok=False)
    return _action_done(request, job, str(result), events=(LEADS_CHANGED, IMPORTS_CHANGED))


def _history_context(request: HttpRequest, **extra) -> dict:
    jobs = ImportJob.objects.select_related("uploaded_by").defer("warnings", "error_message")
    return {
        "nav": "imports",
        "page": Paginator(jobs, HISTORY_PAGE_SIZE).get_page(request.GET.get("page")),
        "active_imports": services.imports_active_for(user=request.user),
        **extra,
    }


def _action_done(
    request: HttpRequest, job: ImportJob, message: str, *, ok: bool = True, events: tuple[str, ...] = ()
) -> HttpResponse:
    """HTMX: the job's refreshed status panel carrying the message; otherwise a message and a redirect."""
    if not request.htmx:
        messages.add_message(request, messages.SUCCESS if ok else messages.ERROR, message)
        return redirect("processing:detail", job_id=job.pk)
    job.refresh_from_db()
    context = {"job": job, "notice": message, "notice_level": "success" if ok else "error"}
    return _trigger(HttpResponse(_render(request, "processing/_status.html", context)), *events)


def _render(request: HttpRequest, template: str, context: dict) -> str:
    return render_to_string(template, context, request=request)


def _trigger(response: HttpResponse, *events: str) -> HttpResponse:
    for event in events:
        trigger_client_event(response, event)
    return response
