"""Request helpers for view tests."""

from __future__ import annotations

# Extra headers of a request sent by htmx (django-htmx reads HX-Request).
HTMX = {"HTTP_HX_REQUEST": "true"}
