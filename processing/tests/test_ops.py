"""The ops page (/ops/): staff only, numbers from the batches, jobs, brokers and heartbeats."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker

from processing import health, ops
from processing.models import ImportBatch, ImportJob

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("stella", is_staff=True))
    return client


@pytest.fixture
def deepseek_import() -> ImportJob:
    """A running DeepSeek-mode import: one batch done now, one failed two hours ago, one queued."""
    now = timezone.now()
    job = ImportJob.objects.create(
        original_filename="march.xlsx",
        status=ImportJob.Status.PROCESSING,
        standardizer="deepseek",
        total_batches=3,
        completed_batches=1,
        failed_batches=1,
        total_rows=30,
        prompt_tokens=1200,
        completion_tokens=340,
        started_at=now - timedelta(hours=3),
    )
    batch = {"job": job, "total_batches": 3, "source_file": "march.xlsx"}
    ImportBatch.objects.create(
        **batch, batch_number=1, status="done", llm_calls=2, llm_seconds=3.0, finished_at=now
    )
    ImportBatch.objects.create(
        **batch,
        batch_number=2,
        status="failed",
        attempts=3,
        llm_calls=3,
        llm_seconds=9.0,
        last_error="DeepSeek refused the request (422): invalid model",
        finished_at=now - timedelta(hours=2),
    )
    ImportBatch.objects.create(**batch, batch_number=3)
    return job


def test_ops_page_sends_anonymous_users_to_login(client):
    response = client.get(reverse("ops"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_ops_page_is_forbidden_to_users_who_are_not_staff(importer_client):
    assert importer_client.get(reverse("ops")).status_code == 403


def test_ops_page_refuses_post(staff_client):
    assert staff_client.post(reverse("ops")).status_code == 405


def test_ops_page_shows_queues_batches_failures_workers_usage_and_running_imports(
    staff_client, deepseek_import
):
    get_broker("deepseek").enqueue("a task message")
    health.worker_heartbeat(cluster="deepseek", worker="worker-host:4242")

    response = staff_client.get(reverse("ops"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "worker-host:4242" in html and "none running" in html  # deepseek alive, default not
    assert "DeepSeek refused the request (422): invalid model" in html
    assert "march.xlsx" in html and "2 / 3 (66%)" in html  # 1 done + 1 failed of 3
    clusters = {cluster.name: cluster for cluster in response.context["clusters"]}
    assert clusters["deepseek"].alive and clusters["deepseek"].waiting == 1
    assert not clusters["default"].alive and clusters["default"].waiting == 0
    assert dict(response.context["batch_states"]) == {
        "Queued": 1,
        "Running": 0,
        "Done": 1,
        "Failed": 1,
        "Skipped": 0,
    }
    hour, day = response.context["llm_usage"]
    assert (hour.batches, hour.calls, hour.failed_batches, hour.seconds_per_call) == (1, 2, 0, 1.5)
    assert (day.batches, day.calls, day.failed_batches, day.seconds_per_call) == (2, 5, 1, 2.4)
    assert (day.prompt_tokens, day.completion_tokens) == (1200, 340)  # still running: counted
    assert [job.pk for job in response.context["active_imports"]] == [deepseek_import.pk]


def test_usage_leaves_out_offline_imports_and_imports_that_ended_before_the_window():
    now = timezone.now()
    offline = ImportJob.objects.create(original_filename="a.csv", standardizer="offline", status="completed")
    ImportBatch.objects.create(
        job=offline, batch_number=1, total_batches=1, source_file="a.csv", status="done", finished_at=now
    )
    ImportJob.objects.create(
        original_filename="b.csv",
        standardizer="deepseek",
        status="completed",
        prompt_tokens=99,
        finished_at=now - timedelta(hours=2),
    )

    usage = ops.llm_usage(label="Last hour", since=now - timedelta(hours=1))

    assert (usage.batches, usage.calls, usage.prompt_tokens, usage.seconds_per_call) == (0, 0, 0, None)


def test_htmx_poll_gets_only_the_panel(staff_client):
    response = staff_client.get(reverse("ops"), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="ops-panel"') and "<html" not in html
    assert 'hx-trigger="every 10s"' in html


def test_a_broker_that_does_not_answer_is_shown_as_unavailable(staff_client):
    with mock.patch("processing.ops.get_broker", side_effect=ConnectionError("redis down")):
        response = staff_client.get(reverse("ops"))

    assert response.status_code == 200
    assert [cluster.waiting for cluster in response.context["clusters"]] == [None, None]
    assert "unavailable" in response.content.decode() and "redis down" not in response.content.decode()
