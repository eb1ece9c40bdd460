"""Presentation of lead values in templates."""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def email_breaks(email: str) -> SafeString:
    """The email with line-break opportunities before "@" and after each "." (<wbr>), so a long
    address wraps at its natural joints on a phone instead of in the middle of a word."""
    local, at, domain = str(email).partition("@")
    parts = [escape(local).replace(".", ".<wbr>")]
    if at:
        parts.append("<wbr>@" + escape(domain).replace(".", ".<wbr>"))
    return mark_safe("".join(parts))  # noqa: S308 - both parts were escaped above
