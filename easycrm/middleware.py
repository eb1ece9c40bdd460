"""Project middleware: request bodies over the upload limit are refused before they are read, an
HTMX request from a logged-out user gets 401 + HX-Redirect instead of a login page that htmx would swap
into the middle of the current page, and every response carries the Content-Security-Policy and
Permissions-Policy headers (the other security headers come from Django's SecurityMiddleware)."""

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
    """Refuse a request whose declared Content-Length exceeds MAX_UPLOAD_REQUEST_MB (by default
    MAX_UPLOAD_MB × MAX_UPLOAD_FILES: one upload carries several files) with 413, before anything
    (the CSRF check, the upload handlers) reads its body: a 600 MB upload is not read in full first.
    Each file's own MAX_UPLOAD_MB is checked by the upload form. The proxy in front should apply the
    same limit (docs/deployment.md)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.MAX_UPLOAD_REQUEST_MB * 1024 * 1024 + _UPLOAD_OVERHEAD_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            message = (
                f"This upload is larger than the {settings.MAX_UPLOAD_REQUEST_MB} MB limit of one request. "
                "Upload fewer files at once, or split them into smaller files."
            )
            response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
            response["Connection"] = "close"
            return response
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Content-Security-Policy (settings.SECURE_CSP) and Permissions-Policy
    (settings.PERMISSIONS_POLICY) on every response; a header a view set itself is kept.

    With DEBUG on, error responses go without the CSP: Django's technical 404/500 pages are inline
    CSS and JS. DEBUG is off in production and in the browser tests, which check for violations."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = "; ".join(
            " ".join([directive, *sources]) for directive, sources in settings.SECURE_CSP.items()
        )
        self.permissions_policy = ", ".join(
            f"{feature}=({' '.join(allowlist)})" for feature, allowlist in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        if not (settings.DEBUG and response.status_code >= 400):
            response.setdefault("Content-Security-Policy", self.csp)
        response.setdefault("Permissions-Policy", self.permissions_policy)
        return response
