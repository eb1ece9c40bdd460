"""Users in each role, logged-in clients, and a compact way to create leads."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

HTMX = {"HTTP_HX_REQUEST": "true"}


def _user(django_user_model, username: str, group: str | None):
    user = django_user_model.objects.create_user(username)  # no password: hashing one costs ~0.3 s
    if group:
        user.groups.add(Group.objects.get(name=group))  # the roles migration created the groups
    return user


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "victor", "viewer")


@pytest.fixture
def importer(django_user_model):
    return _user(django_user_model, "imogen", "importer")


@pytest.fixture
def outsider(django_user_model):
    """Logged in, but in no group: may not see leads."""
    return _user(django_user_model, "olga", None)


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def importer_client(client, importer):
    client.force_login(importer)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client
