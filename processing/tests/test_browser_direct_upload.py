"""Direct-to-S3 upload in a real browser: the app's processes run with S3 storage on the SeaweedFS
server of test_s3.py, so the upload card sends the files to the bucket itself (presigned POST,
static/js/upload.js) and the web server only signs and completes. Own module: the app's processes
are module-scoped and these need the S3 environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from easycrm.testing.app_server import DEEPSEEK_CONCURRENCY, AppServer, app_env
from easycrm.testing.files import HEADER, people, write_csv
from easycrm.testing.workers import Workers
from leads.models import Lead
from processing.models import ImportJob
from processing.tests import test_s3
from processing.tests.test_s3 import REGION, S3Server

pytestmark = [pytest.mark.browser, pytest.mark.s3, pytest.mark.django_db(transaction=True)]

s3_server = test_s3.s3_server  # the SeaweedFS fixture, found here too


def s3_env(server: S3Server) -> dict[str, str]:
    return {
        "S3_BUCKET": server.bucket,
        "S3_ENDPOINT_URL": server.endpoint_url,
        "S3_ACCESS_KEY_ID": server.access_key,
        "S3_SECRET_ACCESS_KEY": server.secret_key,
        "S3_REGION": REGION,
        "S3_ADDRESSING_STYLE": "path",
    }


@pytest.fixture(scope="module")
def app_server(
    django_db_setup, collected_static, app_media, tmp_path_factory, s3_server
) -> Iterator[AppServer]:
    """The web server with S3 storage (and so direct upload) on."""
    env = app_env(MEDIA_ROOT=str(app_media), **s3_env(s3_server))
    server = AppServer(tmp_path_factory.mktemp("gunicorn"), env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def task_workers(django_db_setup, app_media, slow_deepseek, tmp_path_factory, s3_server):
    """Both clusters, reading the uploads from the bucket."""
    env = app_env(
        MEDIA_ROOT=str(app_media),
        Q_WORKERS="1",
        DEEPSEEK_API_KEY="test-key",
        DEEPSEEK_BASE_URL=slow_deepseek.base_url,
        DEEPSEEK_CONCURRENCY=str(DEEPSEEK_CONCURRENCY),
        DEEPSEEK_BACKOFF_SECONDS="0.05",
        **s3_env(s3_server),
    )
    group = Workers(tmp_path_factory.mktemp("qcluster"), env)
    group.start()
    group.start("deepseek")
    try:
        yield group, slow_deepseek
    finally:
        group.stop_all()


def watch(page: Page) -> tuple[list[str], list[str]]:
    """The POST requests the page sends (method and URL), and its CSP violations."""
    posts: list[str] = []
    violations: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return posts, violations


def test_picked_files_go_straight_to_the_bucket_and_are_imported(
    open_page,
    role_user,
    import_pipeline,
    tmp_path,
    app_server,
    s3_server,
):
    import_pipeline.latency = 0
    page = open_page(role_user("imogen", "importer"))
    posts, violations = watch(page)
    page.goto("/imports/")
    paths: list[Path] = [
        write_csv(tmp_path / f"direct{n}.csv", HEADER, people(4, domain=f"s{n}.example")) for n in range(3)
    ]
    notes = tmp_path / "notes.txt"
    notes.write_text("not a spreadsheet")
    page.locator("#upload-file").set_input_files([paths[0], notes, *paths[1:]])
    page.get_by_role("button", name="Upload and import").click()

    panels = page.locator("#active-imports .import-status")
    expect(panels).to_have_count(3)
    for path in paths:
        panel = panels.filter(has=page.get_by_role("heading", name=path.name))
        expect(panel.locator(".badge")).to_have_text("Completed", timeout=30_000)
    jobs = list(ImportJob.objects.order_by("created_at"))
    assert [job.original_filename for job in jobs] == [path.name for path in paths]
    assert all(job.status == ImportJob.Status.COMPLETED for job in jobs), [job.error_message for job in jobs]
    assert Lead.objects.count() == 12
    assert {job.file.name for job in jobs} <= s3_server.object_keys()
    # The files went to S3; the web server was asked to sign and to complete, never sent a file.
    bucket_url = f"{s3_server.endpoint_url}/{s3_server.bucket}"
    assert sum(url.startswith(bucket_url) for url in posts) == 3
    assert f"{app_server.url}/imports/upload/" not in posts
    assert posts.count(f"{app_server.url}/imports/upload/direct/complete/") == 3
    assert violations == []
    # The refused file is named in the card with its reason; it stopped none of the others.
    errors = page.locator("[data-direct-errors]")
    expect(errors).to_have_text(
        "notes.txt: Files of type .txt are not supported. Upload a .csv, .xlsx or .xls file."
    )
    assert not ImportJob.objects.filter(original_filename="notes.txt").exists()
