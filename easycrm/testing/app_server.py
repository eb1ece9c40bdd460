"""The app as it runs in production, for the browser tests (marker `browser`): gunicorn and both
task clusters as real subprocesses against the pytest test database, and headless Chromium driven
by Playwright. Loaded as a plugin by the root conftest.py.

Nothing runs in-process: the web server enqueues on the ORM broker (Q_SYNC=0) and the clusters
standardize through a FakeDeepSeek with latency, so an import's progress is visible and it can be
cancelled while it runs. The tests are transactional for that reason (the subprocesses must see
what the test committed, and the other way round).

The processes are module-scoped: started once per test module and stopped when it ends, so no
cluster of ours can take the tasks of another module's workers (processing/tests/test_workers.py).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from easycrm.testing.workers import Workers, subprocess_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from llm.fake_server import FakeDeepSeek

BASE_DIR = Path(__file__).resolve().parents[2]
MANAGE = BASE_DIR / "manage.py"
SCREENSHOTS = BASE_DIR / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every Playwright wait is bounded by this (ms); a test that needs longer is broken, not slow.
PAGE_TIMEOUT_MS = 15_000
START_TIMEOUT = 30
# Deliberately small: an import of a few batches shows its progress, and a cancel finds it running.
DEEPSEEK_CONCURRENCY = 2
DEEPSEEK_LATENCY = 0.4


def app_env(**overrides: str) -> dict[str, str]:
    """The environment of the app's processes as deployed: DEBUG off, the test process's key (so the
    sessions it creates with force_login are valid on the server)."""
    from django.conf import settings

    return subprocess_env(
        DEBUG="0", SECRET_KEY=settings.SECRET_KEY, ALLOWED_HOSTS="127.0.0.1,localhost", **overrides
    )


class AppServer:
    """gunicorn serving easycrm.wsgi on a free port of 127.0.0.1."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_path = log_dir / "gunicorn.log"
        self.env = env
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> AppServer:
        with self.log_path.open("wb") as log:
            # Own process group, so stopping it reaches the worker too.
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "easycrm.wsgi",
                    "--bind",
                    "127.0.0.1:0",  # the kernel picks the port; gunicorn logs it
                    "--workers",
                    "1",
                    "--threads",
                    "8",
                    "--graceful-timeout",
                    "3",
                    "--no-control-socket",
                    "--error-logfile",
                    "-",
                    "--log-level",
                    "info",
                ],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self.logs())
            if found and "Booting worker" in self.logs():
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"gunicorn did not start:\n{self.logs()}")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)  # graceful: the master stops its worker
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # nothing of the group may outlive the tests
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def collected_static() -> None:
    """The static files in STATIC_ROOT (git-ignored), which WhiteNoise serves when DEBUG is off."""
    result = subprocess.run(
        [sys.executable, str(MANAGE), "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=BASE_DIR,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        pytest.fail(f"collectstatic failed:\n{result.stderr[-3000:]}")


@pytest.fixture(scope="module")
def app_media(tmp_path_factory) -> Path:
    """Uploaded files, shared by the web server and the workers."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def app_server(django_db_setup, collected_static, app_media, tmp_path_factory) -> Iterator[AppServer]:
    """The web server, against the test database; stopped when the module's tests are done."""
    server = AppServer(tmp_path_factory.mktemp("gunicorn"), app_env(MEDIA_ROOT=str(app_media)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_deepseek() -> Iterator[FakeDeepSeek]:
    """A FakeDeepSeek that takes DEEPSEEK_LATENCY per call; tests may change `latency`."""
    from llm.fake_server import FakeDeepSeek

    with FakeDeepSeek(api_key="test-key", latency=DEEPSEEK_LATENCY) as fake:
        yield fake


@pytest.fixture(scope="module")
def task_workers(
    django_db_setup, app_media, slow_deepseek, tmp_path_factory
) -> Iterator[tuple[Workers, FakeDeepSeek]]:
    """Both task clusters (splits, and batches through the slow FakeDeepSeek), as `make run` starts them."""
    env = app_env(
        MEDIA_ROOT=str(app_media),
        Q_WORKERS="1",
        DEEPSEEK_API_KEY="test-key",
        DEEPSEEK_BASE_URL=slow_deepseek.base_url,
        DEEPSEEK_CONCURRENCY=str(DEEPSEEK_CONCURRENCY),
        DEEPSEEK_CONNECT_TIMEOUT="2",
        DEEPSEEK_READ_TIMEOUT="10",
        DEEPSEEK_BACKOFF_SECONDS="0.05",
    )
    group = Workers(tmp_path_factory.mktemp("qcluster"), env)
    group.start()
    group.start("deepseek")
    try:
        yield group, slow_deepseek
    finally:
        group.stop_all()


@pytest.fixture
def import_pipeline(task_workers, transactional_db) -> Iterator[FakeDeepSeek]:
    """The running workers' FakeDeepSeek, at the default latency. At teardown, before the test's
    flush, waits until the pipeline is idle: a batch stored after the flush would leak into the
    next test."""
    group, fake = task_workers
    fake.latency = DEEPSEEK_LATENCY
    yield fake
    pipeline_idle(logs=group.logs)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium. Missing Chromium is a failure, not a skip: CI installs it (.ci/run)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install -y chromium), "
            "or point the CHROMIUM environment variable at a Chromium binary."
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -r requirements.txt")
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls of the test
    # (and pytest-django's flush) are still plain synchronous code.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            expect.set_options(timeout=PAGE_TIMEOUT_MS)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture
def open_page(chromium, app_server, transactional_db, request) -> Iterator[Callable[..., Page]]:
    """open_page(user=None): a page in a fresh browser context, logged in as `user` when given.

    On a failed test, every page's screenshot goes to test-artifacts/failures/ and the server log
    to the report."""
    from django.test import Client

    contexts = []

    def open_(user=None) -> Page:
        context = chromium.new_context(base_url=app_server.url, accept_downloads=True)
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        if user is not None:
            client = Client()
            client.force_login(user)  # a real session row in the shared database
            cookie = client.cookies["sessionid"]
            context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": app_server.url}])
        contexts.append(context)
        return context.new_page()

    yield open_
    report = getattr(request.node, "browser_call_report", None)
    if report is not None and report.failed:
        failures = BASE_DIR / "test-artifacts" / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        for number, context in enumerate(contexts):
            for page_number, page in enumerate(context.pages):
                with contextlib.suppress(Exception):
                    page.screenshot(path=failures / f"{request.node.name}-{number}-{page_number}.png")
        print(f"--- gunicorn log\n{app_server.logs()}")
    for context in contexts:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets open_page know, at teardown, whether the test itself failed.
    report = yield
    if report.when == "call":
        item.browser_call_report = report
    return report


@pytest.fixture
def role_user(transactional_db, django_user_model) -> Callable[..., object]:
    """role_user(username, role, password=None): a user in the "viewer" or "importer" group.

    The groups come from the roles migrations (0002, and 0007 for the importer's lead edits), which a
    transactional test's flush has emptied: they are created again here from those migrations' lists."""
    from django.contrib.auth.models import Group, Permission

    roles = importlib.import_module("leads.migrations.0002_roles")
    edits = importlib.import_module("leads.migrations.0007_importer_edits_leads")

    def make(username: str, role: str, password: str | None = None):
        group, _ = Group.objects.get_or_create(name=role)
        wanted = {"viewer": roles.VIEWER, "importer": [*roles.IMPORTER, *edits.IMPORTER_EXTRA]}[role]
        group.permissions.set(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in wanted
        )
        user = django_user_model.objects.create_user(username, password=password)
        user.groups.add(group)
        return user

    return make


def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot in test-artifacts/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def pipeline_idle(timeout: float = 20, logs: Callable[[], str] | None = None) -> None:
    """Wait until no import runs and the queue is empty: nothing may write after the test's flush."""
    from django_q.models import OrmQ

    from processing.models import ImportBatch, ImportJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = (
            ImportJob.objects.filter(status__in=ImportJob.ACTIVE).exists()
            or ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING).exists()
            or OrmQ.objects.exists()
        )
        if not busy:
            return
        time.sleep(0.1)
    pytest.fail(f"the import pipeline was still busy after {timeout} s\n{logs() if logs else ''}")
