"""An HTMX request from a logged-out user gets 401 + HX-Redirect instead of a login page that htmx
would swap into the middle of the current page."""

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
