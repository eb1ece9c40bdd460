"""Project-level endpoints: /healthz for load balancers and monitors, and the login page (which
offers a password reset only when mail can be sent)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.brokers import get_broker

from processing.health import clusters_alive
from processing.services import LAST_SWEEP_KEY

logger = logging.getLogger("easycrm.health")


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the task broker and the file storage answer, else 503; names no host,
    key or error text (anyone may call it). `last_sweep_seconds` is the age of the sweeper's last run:
    over ~120 means the default task cluster (scheduler, splits) is not running. `clusters` gives, per
    task cluster, the age of its newest worker heartbeat (None: no worker seen) — a readiness signal for
    the workers that does not fail the web tier's own check."""
    checks = {"database": _check(_database), "broker": _check(_broker), "storage": _check(_storage)}
    last_sweep = cache.get(LAST_SWEEP_KEY)
    body = {
        "status": "ok" if all(checks.values()) else "unavailable",
        **{name: "ok" if ok else "failing" for name, ok in checks.items()},
        "last_sweep_seconds": round((timezone.now() - last_sweep).total_seconds()) if last_sweep else None,
        "clusters": clusters_alive(),
    }
    return JsonResponse(body, status=200 if all(checks.values()) else 503)


def _check(probe) -> bool:
    try:
        return bool(probe())
    except Exception:
        logger.warning("health check %s failed", probe.__name__, exc_info=True)
        return False


def _database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _broker() -> bool:
    return get_broker().ping()


def _storage() -> bool:
    default_storage.exists("healthz-probe")  # raises when the storage cannot be reached
    return True


def login(request: HttpRequest) -> HttpResponse:
    return auth_views.LoginView.as_view(extra_context={"password_reset": settings.EMAIL_ENABLED})(request)


def password_reset(request: HttpRequest) -> HttpResponse:
    """Django's reset form, only when mail is configured: otherwise it would promise a mail that
    never leaves (settings.EMAIL_ENABLED)."""
    if not settings.EMAIL_ENABLED:
        raise Http404("Password reset is not available: no mail server is configured.")
    return auth_views.PasswordResetView.as_view()(request)
