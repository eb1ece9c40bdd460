"""Project-wide fixtures (the environment itself is set by easycrm/pytest_env.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from easycrm.testing.files import SAMPLES


@pytest.fixture(autouse=True)
def _media_in_tmp_path(settings, tmp_path) -> None:
    """Uploads a test stores go to its tmp_path: a run leaves the checkout as it found it."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def samples() -> Path:
    """The sample files kept in the repository (processing/tests/data)."""
    return SAMPLES


@pytest.fixture
def fake_deepseek(settings):
    """A FakeDeepSeek on a random local port, with the DeepSeek settings pointed at it."""
    from llm.fake_server import FakeDeepSeek

    with FakeDeepSeek(api_key="test-key") as fake:
        settings.DEEPSEEK_API_KEY = "test-key"
        settings.DEEPSEEK_BASE_URL = fake.base_url
        settings.DEEPSEEK_READ_TIMEOUT = 1.0
        settings.DEEPSEEK_CONNECT_TIMEOUT = 1.0
        settings.DEEPSEEK_BACKOFF_SECONDS = 0.01
        yield fake


# --- Users in each role (groups created by the roles migration) and their logged-in clients ---


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


# The browser tests' fixtures: the app as real processes (gunicorn, both task clusters) and Chromium.
pytest_plugins = ["easycrm.testing.app_server"]
