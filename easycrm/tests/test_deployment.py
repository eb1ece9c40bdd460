"""The documented production environment passes `manage.py check --deploy`, `make run`'s defaults
stay plain http, and the password reset is offered only when mail is configured."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def documented_production_env() -> dict[str, str]:
    """The ```env block of docs/deployment.md's "The production environment", with a real key."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text.split("### The production environment", 1)[1]
    block = re.search(r"```env\n(.*?)```", section, re.S).group(1)
    env = {}
    for line in block.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    # Nothing of the developer's or the test run's own settings (DEBUG=1, Q_SYNC) leaks in.
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        env={**base, "DATA_DIR": os.environ.get("DATA_DIR", str(ROOT / "var")), **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_check_deploy_is_clean_with_the_documented_production_environment():
    env = documented_production_env()
    assert env["HTTPS"] == "1" and env["DEBUG"] == "0"

    result = _check_deploy(env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_make_run_defaults_stay_plain_http_and_check_deploy_says_so():
    # What `make run` sets: a generated key, DEBUG off, nothing else (http://127.0.0.1:8000).
    result = _check_deploy({"SECRET_KEY": secrets.token_urlsafe(50)})

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


@pytest.mark.django_db
def test_behind_tls_http_is_redirected_except_the_health_check(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    assert client.get(reverse("healthz")).status_code == 200
    redirect = client.get(reverse("login"))
    assert redirect.status_code == 301 and redirect["Location"].startswith("https://")
    assert client.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https").status_code == 200


@pytest.mark.django_db
def test_login_page_hides_the_password_reset_link_when_mail_is_off(client, settings):
    settings.EMAIL_ENABLED = False

    assert "Forgot your password?" not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("password_reset")).status_code == 404
    assert client.post(reverse("password_reset"), {"email": "a@example.com"}).status_code == 404


@pytest.mark.django_db
def test_password_reset_mails_a_link_when_mail_is_configured(client, settings, django_user_model):
    settings.EMAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    django_user_model.objects.create_user("petra", email="petra@example.com", password="x" * 12)

    login = client.get(reverse("login")).content.decode()
    response = client.post(reverse("password_reset"), {"email": "petra@example.com"})

    assert f'href="{reverse("password_reset")}"' in login
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
    assert "Check your mail" in client.get(response["Location"]).content.decode()
