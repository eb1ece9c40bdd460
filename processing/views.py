"""Import pages: upload, live status, history, detail, problem rows, and cancel / resume / retry / undo.

Everyone who may view imports sees all of them; uploading needs add_importjob, and cancel, resume,
retry and undo need change_importjob (the viewer and importer groups, leads/migrations/0002_roles.py).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling, reswap, retarget, trigger_client_event

from leads.counts import leads_totals_forget

from . import changes, direct_upload, problems, services
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
    # Each file is its own import; one refused among accepted ones becomes a failed job with its reason.
    jobs = [
        services.import_start(
            file=upload, filename=upload.name, user=request.user, review_mode=settings.IMPORT_REVIEW
        )
        for upload in form.cleaned_data["file"]
    ]
    if not request.htmx:
        _upload_messages(request, jobs)
        return redirect("leads:list")
    # The new jobs' panels go into the active list; a fresh card replaces the used one out of band.
    return _upload_panels(request, jobs, card=True)


@login_required
@permission_required("processing.add_importjob", raise_exception=True)
@require_POST
def direct_upload_sign(request: HttpRequest) -> JsonResponse:
    """A presigned POST for one file the browser sends straight to S3 (processing.direct_upload)."""
    if not settings.S3_DIRECT_UPLOAD:
        raise Http404("Direct upload is off.")
    filename = request.POST.get("filename", "")
    try:
        size = int(request.POST.get("size", ""))
    except ValueError:
        return JsonResponse({"error": "The file's size is missing."}, status=400)
    try:
        presigned = direct_upload.presign(filename=filename, size=size, user=request.user)
    except services.ImportRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(presigned)


@login_required
@permission_required("processing.add_importjob", raise_exception=True)
@require_POST
def direct_upload_complete(request: HttpRequest) -> HttpResponse:
    """Start the import of a file the browser put into S3; answers like `upload` for one file."""
    if not settings.S3_DIRECT_UPLOAD:
        raise Http404("Direct upload is off.")
    try:
        job = direct_upload.complete(
            name=request.POST.get("name", ""),
            filename=request.POST.get("filename", ""),
            token=request.POST.get("token", ""),
            user=request.user,
        )
    except direct_upload.DirectUploadRefused as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    if not request.htmx:
        _upload_messages(request, [job])
        return redirect("leads:list")
    return _upload_panels(request, [job], card=False)


def _upload_messages(request: HttpRequest, jobs: list[ImportJob]) -> None:
    """One message naming the files being imported, one naming those refused and why."""
    started = [job for job in jobs if job.status != ImportJob.Status.FAILED]
    refused = [job for job in jobs if job.status == ImportJob.Status.FAILED]
    if len(started) == 1 and not refused:
        message = f"“{started[0].original_filename}” is being imported; its progress is shown below."
        messages.success(request, message)
    elif started:
        names = ", ".join(f"“{job.original_filename}”" for job in started)
        messages.success(
            request, f"{len(started)} files are being imported: {names}. Their progress is shown below."
        )
    if refused:
        reasons = "; ".join(f"“{job.original_filename}”: {job.error_message}" for job in refused)
        messages.error(request, f"Not imported: {reasons}")


def _upload_panels(request: HttpRequest, jobs: list[ImportJob], *, card: bool) -> HttpResponse:
    """The new jobs' status panels for the active list, in upload order, with a fresh upload card
    out of band when `card`."""
    html = ""
    for job in jobs:
        job.refresh_from_db()
        html += _render(request, "processing/_status.html", {"job": job})
    if card:
        context = {"upload_form": UploadForm(), "fragment": True, "oob": True}
        html += _render(request, "processing/_upload_card.html", context)
    events = (IMPORTS_CHANGED, LEADS_CHANGED) if any(job.is_terminal for job in jobs) else (IMPORTS_CHANGED,)
    return _trigger(HttpResponse(html), *events)


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
@require_safe
def import_status(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    if not request.htmx:
        return redirect("processing:detail", job_id=job.pk)
    html = _render(request, "processing/_status.html", {"job": job})
    if job.status == ImportJob.Status.REVIEW:
        # Waiting for a person: nothing changes until they act; the lead table has nothing new yet.
        return _trigger(HttpResponseStopPolling(html), IMPORTS_CHANGED)
    if not job.is_terminal:
        return HttpResponse(html)
    # 286 ends the polling; the lead table and the import lists refresh themselves on these events.
    return _trigger(HttpResponseStopPolling(html), LEADS_CHANGED, IMPORTS_CHANGED)


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
@require_safe
def import_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("uploaded_by", "undone_by"), pk=job_id)
    context: dict = {"nav": "imports", "job": job}
    if not request.htmx or request.htmx.target == "import-changes":
        # What changed: a tab (?show=kind) and a page of its rows (?rows=N), swapped on its own.
        context["changes"] = changes.import_changes(
            job=job, kind=request.GET.get("show"), page=request.GET.get("rows")
        )
        if request.htmx:
            return render(request, "processing/detail.html#changes", context)
    batches = job.batches.defer("rows", "results").order_by("batch_number")
    context["batches"] = Paginator(batches, BATCH_PAGE_SIZE).get_page(request.GET.get("page"))
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
    if job.skipped_batches:
        message += " Resume import runs the rows it did not get to."
    return _action_done(request, job, message, events=(LEADS_CHANGED, IMPORTS_CHANGED))


@login_required
@permission_required("processing.change_importjob", raise_exception=True)
@require_POST
def resume(request: HttpRequest, job_id) -> HttpResponse:
    """Queue again the batches a cancel skipped (services.import_resume)."""
    job = get_object_or_404(ImportJob, pk=job_id)
    batch_ids = services.import_resume(job=job)
    if not batch_ids:
        if job.settling:
            message = "A batch of this import is still finishing. Try again in a moment."
        else:
            message = "Only a cancelled import, not undone, with rows it did not get to can be resumed."
        return _action_done(request, job, message, ok=False)
    count = len(batch_ids)
    message = f"Import resumed: {count:,} batch{'es' if count != 1 else ''} queued again."
    return _action_done(request, job, message, events=(IMPORTS_CHANGED,))


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
    job = context.get("job")
    if job is not None and request.htmx and "on_detail_page" not in context:
        # A panel swapped in on its own import's page must not link to that page.
        current = request.htmx.current_url_abs_path or ""
        context = {**context, "on_detail_page": current.split("?")[0] == job.get_absolute_url()}
    return render_to_string(template, context, request=request)


def _trigger(response: HttpResponse, *events: str) -> HttpResponse:
    if LEADS_CHANGED in events:
        # The tables these events refresh count again (leads.counts).
        leads_totals_forget()
    for event in events:
        trigger_client_event(response, event)
    return response
