"""Project middleware: request bodies over the upload limit are refused before they are read, and an
HTMX request from a logged-out user gets 401 + HX-Redirect instead of a login page that htmx would swap
into the middle of the current page."""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import resolve_url


class HtmxLoginRedirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        htmx = getattr(request, "htmx", False)
        if not htmx or response.status_code != 302:
            return response
        login_path = resolve_url(settings.LOGIN_URL)
        if urlparse(response.get("Location", "")).path != login_path:
            return response
        current = urlparse(request.htmx.current_url or "")
        next_url = current.path + (f"?{current.query}" if current.query else "") if current.path else "/"
        unauthorized = HttpResponse("Your session has ended. Please log in again.", status=401)
        unauthorized["HX-Redirect"] = f"{login_path}?{urlencode({'next': next_url})}"
        return unauthorized


# Room for the multipart envelope and the other form fields around the file.
_UPLOAD_OVERHEAD_BYTES = 64 * 1024


class RequestSizeLimitMiddleware:
    """Refuse a request whose declared Content-Length exceeds MAX_UPLOAD_MB with 413, before anything
    (the CSRF check, the upload handlers) reads its body: a 60 MB upload is not read in full first.
    The proxy in front should apply the same limit (docs/deployment.md)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.MAX_UPLOAD_MB * 1024 * 1024 + _UPLOAD_OVERHEAD_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            message = f"This file is larger than the {settings.MAX_UPLOAD_MB} MB limit. Split it into smaller files."
            response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
            response["Connection"] = "close"
            return response
        return self.get_response(request)
