"""The import review screen (processing.review): see and correct what an import will do, then import or
discard it. Every change is a plain POST form (works without JS); with HTMX the review body is swapped
in place and the counts reload. All of it needs add_importjob, like uploading."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from . import review
from .models import ImportJob

REVIEW_CHANGED = "review-changed"
_PERMISSION = "processing.add_importjob"


def _context(job: ImportJob, **extra) -> dict:
    waiting = job.status == ImportJob.Status.REVIEW
    sheets = review.review_sheets(job) if waiting else []
    return {
        "nav": "imports",
        "job": job,
        "waiting": waiting,
        "sheets": sheets,
        # The button counts the rows of the sheets that will be read, not those of skipped sheets.
        "import_rows": sum(sheet.rows for sheet in sheets if not sheet.skip_reason),
        "choices": review.CHOICES,
        **extra,
    }


def _gone(request: HttpRequest, job: ImportJob) -> HttpResponse:
    """To the import's own page: it is no longer under review (confirmed here or elsewhere, cancelled)."""
    if request.htmx:
        return HttpResponseClientRedirect(job.get_absolute_url())
    return redirect(job.get_absolute_url())


def _review_post(view):
    """A change to a review: POST only, with the upload permission; a refused change re-renders the
    review with its reason (or leaves for the import's page when it is no longer under review)."""

    @login_required
    @permission_required(_PERMISSION, raise_exception=True)
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest, job_id) -> HttpResponse:
        job = get_object_or_404(ImportJob, pk=job_id)
        try:
            return view(request, job)
        except review.ReviewRefused as exc:
            return _refused(request, job, exc)

    return wrapper


@login_required
@permission_required(_PERMISSION, raise_exception=True)
@require_safe
def review_page(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    # Split again after a new header row was chosen: the page waits for the review to come back.
    rereading = job.status in (ImportJob.Status.UPLOADED, ImportJob.Status.PROCESSING) and job.review_pending
    if job.status != ImportJob.Status.REVIEW and not rereading:
        return _gone(request, job)
    context = _context(job, rereading=rereading)
    if request.htmx:
        return render(request, "processing/review.html#body", context)
    return render(request, "processing/review.html", context)


@login_required
@permission_required(_PERMISSION, raise_exception=True)
@require_safe
def review_counts(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=job_id)
    if job.status != ImportJob.Status.REVIEW:
        return _gone(request, job)
    counts = review.review_counts(job)
    if request.htmx:
        # Only the counts: the sheets and their preview are already on the page.
        return render(request, "processing/review.html#counts", {"job": job, "counts": counts})
    return render(request, "processing/review.html", _context(job, counts=counts))


def _changed(request: HttpRequest, job: ImportJob, error: str = "") -> HttpResponse:
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("processing:review", job_id=job.pk)
    job.refresh_from_db()
    rereading = job.status == ImportJob.Status.UPLOADED
    response = render(request, "processing/review.html#body", _context(job, error=error, rereading=rereading))
    if not error:
        trigger_client_event(response, REVIEW_CHANGED)
    return response


@_review_post
def review_column(request: HttpRequest, job: ImportJob) -> HttpResponse:
    sheet, header, role = (request.POST.get(name, "") for name in ("sheet", "header", "role"))
    review.review_set_role(job=job, sheet=sheet, header=header, role=role)
    return _changed(request, job)


@_review_post
def review_sheet(request: HttpRequest, job: ImportJob) -> HttpResponse:
    include = request.POST.get("include")
    if include not in ("0", "1"):
        return HttpResponseBadRequest("include must be 0 or 1")
    review.review_set_sheet(job=job, sheet=request.POST.get("sheet", ""), include=include == "1")
    return _changed(request, job)


@_review_post
def review_header(request: HttpRequest, job: ImportJob) -> HttpResponse:
    try:
        row = int(request.POST.get("row", ""))
    except ValueError:
        return HttpResponseBadRequest("row must be a row number")
    review.review_set_header_row(job=job, sheet=request.POST.get("sheet", ""), row=row)
    return _changed(request, job)


@_review_post
def review_confirm(request: HttpRequest, job: ImportJob) -> HttpResponse:
    remember = request.POST.get("remember", "1") == "1"
    review.review_confirm(job=job, user=request.user, remember=remember)
    job.refresh_from_db()
    message = f"“{job.original_filename}” is being imported: {job.total_rows:,} rows."
    if request.htmx and request.POST.get("panel"):
        # "Import now" on a status panel: that panel, now running.
        from .views import IMPORTS_CHANGED, _render, _trigger

        html = _render(request, "processing/_status.html", {"job": job, "notice": message})
        return _trigger(HttpResponse(html), IMPORTS_CHANGED)
    messages.success(request, message)
    return _gone(request, job)


@_review_post
def review_discard(request: HttpRequest, job: ImportJob) -> HttpResponse:
    name = job.original_filename
    if not review.review_discard(job=job):
        raise review.ReviewRefused("This import is no longer waiting for a review.")
    messages.success(request, f"“{name}” was discarded; nothing was imported.")
    if request.htmx and request.POST.get("panel"):
        from .views import IMPORTS_CHANGED, _trigger

        return _trigger(HttpResponse(""), IMPORTS_CHANGED)
    if request.htmx:
        return HttpResponseClientRedirect("/")
    return redirect("leads:list")


def _refused(request: HttpRequest, job: ImportJob, exc: review.ReviewRefused) -> HttpResponse:
    job.refresh_from_db()
    if job.status != ImportJob.Status.REVIEW:
        if not request.htmx:
            messages.error(request, str(exc))
        return _gone(request, job)
    if request.htmx:
        response = _changed(request, job, error=str(exc))
        response.status_code = 400
        return response
    messages.error(request, str(exc))
    return redirect("processing:review", job_id=job.pk)
