"""Test environment, loaded as a pytest plugin (`-p easycrm.pytest_env`) so it is in place before
pytest-django reads the settings: no real DeepSeek, tasks run in-process, fast backoff."""

from __future__ import annotations

import contextlib
import os

# Never let a test talk to the real DeepSeek API, whatever the developer's shell exports.
os.environ.pop("DEEPSEEK_API_KEY", None)
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("Q_SYNC", "1")
os.environ.setdefault("DEEPSEEK_BACKOFF_SECONDS", "0.01")


def pytest_configure(config) -> None:
    # Django deletes an old SQLite test database but not its WAL side files; a stale -wal file would
    # be replayed into the new database ("disk I/O error").
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{name}{suffix}")
