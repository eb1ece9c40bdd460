"""Project-wide fixtures (the environment itself is set by easycrm/pytest_env.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_deepseek(settings):
    """A FakeDeepSeek on a random local port, with the DeepSeek settings pointed at it."""
    from processing.tests.fake_deepseek import FakeDeepSeek

    with FakeDeepSeek(api_key="test-key") as fake:
        settings.DEEPSEEK_API_KEY = "test-key"
        settings.DEEPSEEK_BASE_URL = fake.base_url
        settings.DEEPSEEK_READ_TIMEOUT = 1.0
        settings.DEEPSEEK_CONNECT_TIMEOUT = 1.0
        settings.DEEPSEEK_BACKOFF_SECONDS = 0.01
        yield fake


# The browser tests' fixtures: the app as real processes (gunicorn, both task clusters) and Chromium.
pytest_plugins = ["processing.tests.app_server"]
