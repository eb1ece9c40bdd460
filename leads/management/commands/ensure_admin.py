"""Make sure an administrator account exists (used by `make run` on a fresh machine)."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser from DJANGO_SUPERUSER_USERNAME/PASSWORD if no superuser exists yet."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            # Shown once on the terminal of whoever ran `make run`; never logged.
            self.stdout.write(f"Created administrator '{username}' with password: {password}")
        else:
            self.stdout.write(f"Created administrator '{username}'.")
