"""Every page carries the security headers (easycrm.middleware.SecurityHeadersMiddleware and Django's
SecurityMiddleware), and no template needs what the Content-Security-Policy forbids. The browser's
view of it (no violation on the main pages) is in leads/tests/test_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from leads.models import Lead

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def assert_security_headers(response) -> None:
    assert response["Content-Security-Policy"] == CSP
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = response["Permissions-Policy"]
    assert "camera=()" in permissions and "microphone=()" in permissions and "geolocation=()" in permissions


@pytest.mark.django_db
def test_the_lead_page_carries_the_security_headers(viewer_client):
    lead = Lead.objects.create(first_name="Ada", email="ada@example.com")

    response = viewer_client.get(reverse("leads:detail", args=[lead.pk]))

    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.django_db
def test_the_imports_page_carries_the_security_headers(importer_client):
    response = importer_client.get(reverse("processing:list"))

    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.django_db
def test_the_login_page_carries_the_security_headers(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.django_db
def test_the_admin_carries_the_security_headers(admin_client):
    response = admin_client.get(reverse("admin:leads_lead_changelist"))

    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.django_db
def test_an_htmx_fragment_and_an_error_page_carry_the_policy_too(viewer_client):
    fragment = viewer_client.get(reverse("leads:list"), headers={"HX-Request": "true"})
    missing = viewer_client.get(reverse("leads:detail", args=[999_999]))

    assert fragment.status_code == 200 and missing.status_code == 404
    assert_security_headers(fragment)
    assert_security_headers(missing)


@pytest.mark.django_db
def test_a_header_set_by_the_view_is_kept(rf, settings):
    from django.http import HttpResponse

    from easycrm.middleware import SecurityHeadersMiddleware

    def view(request):
        response = HttpResponse()
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = SecurityHeadersMiddleware(view)(rf.get("/"))

    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert "camera=()" in response["Permissions-Policy"]


def test_no_template_has_inline_script_event_handlers_or_style_attributes():
    offending = {}
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        found = (
            re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text)  # inline script
            + re.findall(r"\s(?:on[a-z]+|hx-on[:-][^=\s]*|style)=", text)  # handlers, hx-on, style attributes
            + re.findall(r"<style\b|javascript:", text)
        )
        if found:
            offending[str(template.relative_to(TEMPLATES))] = found
    assert offending == {}
