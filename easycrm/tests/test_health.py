"""/healthz and the request size limit."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from processing import services

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_broker_storage_and_the_last_sweep(client):
    services.imports_sweep()

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == body["database"] == body["broker"] == body["storage"] == "ok"
    assert 0 <= body["last_sweep_seconds"] < 5
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_and_names_the_failing_part_when_storage_fails(client):
    with mock.patch("django.core.files.storage.FileSystemStorage.exists", side_effect=OSError("gone")):
        response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["storage"] == "failing" and response.json()["database"] == "ok"
    assert "gone" not in response.content.decode()


def test_healthz_refuses_post(client):
    assert client.post(reverse("healthz")).status_code == 405


def test_a_request_body_over_the_upload_limit_is_refused_before_it_is_read(importer_client, settings):
    settings.MAX_UPLOAD_REQUEST_MB = 1
    with mock.patch("django.http.request.HttpRequest.read", side_effect=AssertionError("body read")):
        response = importer_client.generic(
            "POST", reverse("processing:upload"), data=b"", CONTENT_LENGTH=str(5 * 1024 * 1024)
        )

    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.content.decode()
