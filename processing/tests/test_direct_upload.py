"""Direct-to-S3 browser upload (processing/direct_upload.py): the two endpoints, the settings that turn
it on (CSP included), and — marked `s3` — the whole flow against the real SeaweedFS server of
test_s3.py: presign, a real multipart POST to S3 as a browser sends it, complete, the import runs."""

from __future__ import annotations

import runpy
from urllib.parse import urlsplit

import pytest
import requests
from django.core import signing
from django.urls import reverse

from easycrm.testing.files import HEADER, people, write_csv
from easycrm.testing.http import HTMX
from leads.models import Lead
from processing import direct_upload
from processing.models import ImportJob
from processing.tests import test_s3
from processing.tests.test_s3 import BUCKET, REGION, SETTINGS_FILE

pytestmark = pytest.mark.django_db

# The SeaweedFS fixtures of test_s3.py, found here too.
s3_server, use_s3, s3 = test_s3.s3_server, test_s3.use_s3, test_s3.s3

SIGN = reverse("processing:direct_upload")
COMPLETE = reverse("processing:direct_upload_complete")


@pytest.fixture
def direct_on(settings):
    settings.S3_DIRECT_UPLOAD = True


def settings_module(monkeypatch, **env: str) -> dict:
    """easycrm/settings.py as it evaluates with `env` on top of the test environment."""
    with monkeypatch.context() as patch:
        for name in ("S3_BUCKET", "S3_ENDPOINT_URL", "S3_ADDRESSING_STYLE", "S3_REGION", "S3_DIRECT_UPLOAD"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE))


# --- Settings -----------------------------------------------------------------------------------


def test_without_s3_there_is_no_direct_upload_and_the_csp_stays_self_only(monkeypatch):
    module = settings_module(monkeypatch)

    assert module["S3_DIRECT_UPLOAD"] is False
    assert "connect-src" not in module["SECURE_CSP"]
    assert module["SECURE_CSP"]["form-action"] == ["'self'"]
    assert module["MAX_UPLOAD_REQUEST_MB"] == module["MAX_UPLOAD_MB"] * module["MAX_UPLOAD_FILES"] == 25 * 20


@pytest.mark.parametrize(
    ("env", "origins"),
    [
        (
            {"S3_ENDPOINT_URL": "http://127.0.0.1:8333", "S3_ADDRESSING_STYLE": "path"},
            ["http://127.0.0.1:8333"],
        ),
        (
            {"S3_ENDPOINT_URL": "https://files.example.com", "S3_ADDRESSING_STYLE": "virtual"},
            ["https://uploads.files.example.com", "https://files.example.com"],
        ),
        ({"S3_ENDPOINT_URL": "https://files.example.com"}, ["https://files.example.com"]),
        (
            {"S3_REGION": "eu-west-1"},
            ["https://uploads.s3.amazonaws.com", "https://uploads.s3.eu-west-1.amazonaws.com"],
        ),
        (
            {"S3_REGION": "eu-west-1", "S3_ADDRESSING_STYLE": "path"},
            ["https://s3.amazonaws.com", "https://s3.eu-west-1.amazonaws.com"],
        ),
    ],
)
def test_with_s3_the_csp_allows_sending_to_the_bucket_only(monkeypatch, env, origins):
    module = settings_module(monkeypatch, S3_BUCKET="uploads", **env)

    assert module["S3_DIRECT_UPLOAD"] is True
    assert module["SECURE_CSP"]["connect-src"] == ["'self'", *origins]
    assert module["SECURE_CSP"]["form-action"] == ["'self'", *origins]
    assert module["SECURE_CSP"]["default-src"] == ["'self'"]


def test_direct_upload_can_be_switched_off_with_s3_on(monkeypatch):
    module = settings_module(monkeypatch, S3_BUCKET="uploads", S3_DIRECT_UPLOAD="0")

    assert module["S3_DIRECT_UPLOAD"] is False and "connect-src" not in module["SECURE_CSP"]


def test_the_card_offers_direct_upload_only_when_it_is_on(importer_client, settings):
    assert "data-direct-upload" not in importer_client.get(reverse("processing:list")).content.decode()
    settings.S3_DIRECT_UPLOAD = True

    html = importer_client.get(reverse("processing:list")).content.decode()

    assert f'data-direct-upload="{SIGN}"' in html and f'data-direct-complete="{COMPLETE}"' in html
    # The form stays a plain multipart form: without JS it posts the files to the web server.
    assert f'action="{reverse("processing:upload")}"' in html


# --- Endpoints: access and input ---------------------------------------------------------------


@pytest.mark.parametrize("url", [SIGN, COMPLETE])
def test_endpoints_send_anonymous_users_to_login(client, direct_on, url):
    response = client.post(url, {"filename": "a.csv", "size": "10"})

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("url", [SIGN, COMPLETE])
def test_viewer_may_not_upload_directly(viewer_client, direct_on, url):
    assert viewer_client.post(url, {"filename": "a.csv", "size": "10"}).status_code == 403


@pytest.mark.parametrize("url", [SIGN, COMPLETE])
def test_endpoints_refuse_get(importer_client, direct_on, url):
    assert importer_client.get(url).status_code == 405


@pytest.mark.parametrize("url", [SIGN, COMPLETE])
def test_endpoints_are_404_when_direct_upload_is_off(importer_client, url):
    assert importer_client.post(url, {"filename": "a.csv", "size": "10"}).status_code == 404


def test_endpoints_need_the_csrf_token(importer, direct_on):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(importer)

    assert client.post(SIGN, {"filename": "a.csv", "size": "10"}).status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"filename": "a.csv"}, "The file's size is missing."),
        ({"filename": "a.csv", "size": "lots"}, "The file's size is missing."),
        ({"filename": "notes.txt", "size": "10"}, "Files of type .txt are not supported"),
        ({"filename": "empty.csv", "size": "0"}, "This file is empty."),
        ({"filename": "big.csv", "size": str(1024 * 1024 + 1)}, "the limit is 1 MB"),
    ],
)
def test_sign_refuses_a_file_the_importer_would_refuse(importer_client, direct_on, settings, data, message):
    settings.MAX_UPLOAD_MB = 1

    response = importer_client.post(SIGN, data)

    assert response.status_code == 400 and message in response.json()["error"]


def test_complete_refuses_a_forged_or_foreign_token(importer_client, importer, viewer, direct_on):
    name = "uploads/2026/01/01/abc.csv"
    foreign = signing.dumps({"name": name, "user": viewer.pk, "filename": "a.csv"}, salt=direct_upload.SALT)
    own = signing.dumps({"name": name, "user": importer.pk, "filename": "a.csv"}, salt=direct_upload.SALT)
    unsalted = signing.dumps({"name": name, "user": importer.pk, "filename": "a.csv"})

    answers = [
        importer_client.post(COMPLETE, {"name": name, "filename": "a.csv", "token": token}, **HTMX)
        for token in ("", "garbage", unsalted, foreign)
    ]
    other_key = importer_client.post(
        COMPLETE, {"name": "uploads/other.csv", "filename": "a.csv", "token": own}, **HTMX
    )

    assert [answer.status_code for answer in answers] == [400, 400, 400, 400]
    assert "not started by you" in answers[3].content.decode()
    assert other_key.status_code == 400 and "not started by you" in other_key.content.decode()
    assert not ImportJob.objects.exists()


# --- Against the real S3 server ----------------------------------------------------------------


@pytest.fixture
def direct(s3, settings, monkeypatch):
    """S3 storage on SeaweedFS with direct upload on, and the CSP the settings module builds for it."""
    module = settings_module(
        monkeypatch,
        S3_BUCKET=s3.bucket,
        S3_ENDPOINT_URL=s3.endpoint_url,
        S3_ADDRESSING_STYLE="path",
        S3_REGION=REGION,
    )
    settings.S3_DIRECT_UPLOAD = True
    settings.SECURE_CSP = module["SECURE_CSP"]
    return s3


def sign(client, name: str, size: int):
    return client.post(SIGN, {"filename": name, "size": str(size)}, **HTMX)


def post_to_s3(presigned: dict, name: str, content: bytes) -> requests.Response:
    """The browser's multipart POST: the policy fields, then the file."""
    return requests.post(
        presigned["url"], data=presigned["fields"], files={"file": (name, content)}, timeout=30
    )


@pytest.mark.s3
def test_presign_post_complete_imports_the_file_from_s3(
    direct, importer_client, importer, tmp_path, settings, django_capture_on_commit_callbacks
):
    content = write_csv(tmp_path / "leads.csv", HEADER, people(25)).read_bytes()

    signed = sign(importer_client, "Spring leads.csv", len(content))
    presigned = signed.json()
    stored = post_to_s3(presigned, "Spring leads.csv", content)
    with django_capture_on_commit_callbacks(execute=True):
        done = importer_client.post(
            COMPLETE,
            {"name": presigned["name"], "filename": "Spring leads.csv", "token": presigned["token"]},
            **HTMX,
        )

    assert signed.status_code == 200 and stored.status_code in (200, 201, 204), stored.text
    assert presigned["name"].startswith("uploads/") and presigned["name"].endswith(".csv")
    # The page may send there: the CSP names the origin the presigned POST goes to.
    page = importer_client.get(reverse("processing:list"))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(presigned["url"]))
    assert f"connect-src 'self' {origin}" in page["Content-Security-Policy"]
    job = ImportJob.objects.get()
    assert done.status_code == 200 and f'id="import-{job.pk}"' in done.content.decode()
    assert "imports-changed" in done["HX-Trigger"]
    assert job.file.name == presigned["name"] and job.uploaded_by == importer
    assert job.original_filename == "Spring leads.csv" and job.size == len(content)
    assert job.status == ImportJob.Status.COMPLETED, job.error_message
    assert job.total_batches == 3 and Lead.objects.filter(import_job=job).count() == 25
    assert direct.client().head_object(Bucket=BUCKET, Key=presigned["name"])["ContentLength"] == len(content)
    # Completing the same upload again does not import it twice.
    again = importer_client.post(
        COMPLETE, {"name": presigned["name"], "filename": "Spring leads.csv", "token": presigned["token"]}
    )
    assert again.status_code == 400 and "already been imported" in again.content.decode()
    assert ImportJob.objects.count() == 1


@pytest.mark.s3
def test_s3_refuses_a_body_over_the_limit_the_policy_states(direct, importer_client, settings):
    settings.MAX_UPLOAD_MB = 1
    presigned = sign(importer_client, "big.csv", 100).json()  # declared small, sent large

    stored = post_to_s3(presigned, "big.csv", b"a,b\n" * (300 * 1024))

    assert stored.status_code == 400 and "EntityTooLarge" in stored.text
    assert presigned["name"] not in direct.object_keys()
    done = importer_client.post(
        COMPLETE, {"name": presigned["name"], "filename": "big.csv", "token": presigned["token"]}
    )
    assert done.status_code == 400 and "did not arrive" in done.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.s3
def test_a_key_issued_to_another_user_is_refused(direct, client, importer, django_user_model):
    from django.contrib.auth.models import Group

    other = django_user_model.objects.create_user("ines")
    other.groups.add(Group.objects.get(name="importer"))
    client.force_login(importer)
    presigned = sign(client, "mine.csv", 20).json()
    assert post_to_s3(presigned, "mine.csv", b"Email\nann@example.com\n").ok

    client.force_login(other)
    response = client.post(
        COMPLETE, {"name": presigned["name"], "filename": "mine.csv", "token": presigned["token"]}
    )

    assert response.status_code == 400 and "not started by you" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.s3
def test_a_missing_object_is_refused(direct, importer_client):
    presigned = sign(importer_client, "never-sent.csv", 20).json()

    response = importer_client.post(
        COMPLETE,
        {"name": presigned["name"], "filename": "never-sent.csv", "token": presigned["token"]},
        **HTMX,
    )

    assert response.status_code == 400 and "did not arrive" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.s3
def test_a_presigned_post_cannot_write_another_key(direct, importer_client):
    presigned = sign(importer_client, "a.csv", 20).json()
    fields = {**presigned["fields"], "key": "uploads/elsewhere.csv"}

    stored = requests.post(presigned["url"], data=fields, files={"file": ("a.csv", b"x,y\n")}, timeout=30)

    assert stored.status_code == 403, stored.text
    assert "uploads/elsewhere.csv" not in direct.object_keys()


@pytest.mark.s3
def test_an_object_refused_at_completion_fails_its_import_and_is_deleted(direct, importer_client, settings):
    presigned = sign(importer_client, "leads.csv", 2048).json()
    assert post_to_s3(presigned, "leads.csv", b"Email\n" + b"a@example.com\n" * 150).ok
    settings.MAX_UPLOAD_MB = 0  # the limit changed between the upload and its completion

    response = importer_client.post(
        COMPLETE, {"name": presigned["name"], "filename": "leads.csv", "token": presigned["token"]}, **HTMX
    )

    job = ImportJob.objects.get()
    assert response.status_code == 200 and f'id="import-{job.pk}"' in response.content.decode()
    assert job.status == ImportJob.Status.FAILED and "the limit is 0 MB" in job.error_message
    assert not job.file and presigned["name"] not in direct.object_keys()
