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
# Uploads go straight through unless a test asks for the review step (processing/tests/test_review.py).
os.environ.setdefault("IMPORT_REVIEW", "never")
# import_leads in this process: forked children would not see a test's uncommitted data.
os.environ.setdefault("IMPORT_PROCESSES", "1")
# One SQLite test database per run, so two runs in one checkout cannot trample each other.
_VAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var")
os.environ.setdefault("SQLITE_TEST_NAME", os.path.join(_VAR, f"test-{os.getpid()}.sqlite3"))


def _sqlite_test_files() -> list[str]:
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = database.get("TEST", {}).get("NAME")
    if not name or not database["ENGINE"].endswith("sqlite3"):
        return []
    return [f"{name}{suffix}" for suffix in ("", "-wal", "-shm")]


def pytest_unconfigure(config) -> None:
    for path in _sqlite_test_files():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def pytest_configure(config) -> None:
    # Django deletes an old SQLite test database but not its WAL side files; a stale -wal file would
    # be replayed into the new database ("disk I/O error").
    pytest_unconfigure(config)
