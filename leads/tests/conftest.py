"""Users in each role, logged-in clients, and a compact way to create leads."""

from __future__ import annotations

HTMX = {"HTTP_HX_REQUEST": "true"}
