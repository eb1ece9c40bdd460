"""Worker heartbeats per task cluster (processing.health), their place in /healthz and the warning
shown while a cluster has no live worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from easycrm.testing.workers import Workers, subprocess_env
from processing import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def real_queue(settings):
    """Tasks go to workers (not Q_SYNC), so a cluster without a live worker is down."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}


def _beat_at(cluster: str, worker: str, seconds_ago: float) -> None:
    key = health.HEARTBEAT_KEY.format(cluster=cluster)
    beats = cache.get(key) or {}
    beats[worker] = timezone.now() - timedelta(seconds=seconds_ago)
    cache.set(key, beats, timeout=None)


def test_a_cluster_whose_worker_beats_is_alive_and_one_never_seen_is_not():
    health.worker_heartbeat(cluster="deepseek", worker="host:1")

    ages = health.clusters_alive()

    assert set(ages) == {"default", "deepseek"}
    assert ages["default"] is None and 0 <= ages["deepseek"] < 2


def test_the_newest_worker_beat_counts_and_old_ones_are_forgotten(real_queue):
    _beat_at("deepseek", "host:1", seconds_ago=300)
    _beat_at("deepseek", "host:2", seconds_ago=5)
    _beat_at("default", "host:3", seconds_ago=health.WORKER_ALIVE_SECONDS + 5)

    assert 4 < health.clusters_alive()["deepseek"] < 7
    assert health.clusters_down() == ["default"]
    assert (
        list(health.cluster_workers()["deepseek"]) == ["host:2"] and health.cluster_workers()["default"] == {}
    )
    health.worker_heartbeat(cluster="deepseek", worker="host:2")
    assert list(health.cluster_workers()["deepseek"]) == ["host:2"]  # host:1 stopped long ago


def test_no_cluster_is_down_when_tasks_run_in_process(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}

    assert health.clusters_down() == []


def test_the_heartbeat_thread_beats_at_once(settings):
    # A cache of this process: the thread has its own database connection, outside the test's transaction.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    heartbeat = health.heartbeat_start(cluster="default")
    try:
        deadline = time.monotonic() + 5
        while health.clusters_alive()["default"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health.clusters_alive()["default"] is not None
    finally:
        heartbeat.stop()
    assert not heartbeat.is_alive()


def test_a_task_run_in_process_starts_no_heartbeat():
    # Q_SYNC: django-q2 runs its worker function in this process, which sends post_spawn.
    assert health.worker_heartbeat_start(proc_name="MainProcess") is None


def test_healthz_gives_the_age_of_each_clusters_last_heartbeat(client):
    health.worker_heartbeat(cluster="deepseek", worker="host:1")

    body = client.get(reverse("healthz")).json()

    assert body["clusters"]["default"] is None and 0 <= body["clusters"]["deepseek"] < 2
    assert body["status"] == "ok"  # the web tier stays in the load balancer without workers


def _warning(user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return render_to_string("processing/_worker_warning.html", request=request)


def test_warning_names_the_stopped_cluster_and_how_to_start_it_for_staff(real_queue, django_user_model):
    health.worker_heartbeat(cluster="default", worker="host:1")
    staff = django_user_model.objects.create_user("stella", is_staff=True)

    html = _warning(staff)

    assert "Imports are waiting: no worker is running." in html
    assert "Batches are not being standardized." in html and "New uploads" not in html
    assert "Q_CLUSTER_NAME=deepseek manage.py qcluster" in html and reverse("ops") in html


def test_warning_asks_other_users_to_tell_an_administrator(real_queue, importer):
    html = _warning(importer)

    assert "Imports are waiting: no worker is running." in html and "New uploads are not being read." in html
    assert "tell your administrator" in html and reverse("ops") not in html


def test_no_warning_while_every_cluster_has_a_live_worker(real_queue, importer):
    for cluster in health.CLUSTERS:
        health.worker_heartbeat(cluster=cluster, worker="host:1")

    assert _warning(importer).strip() == ""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_qcluster_worker_beats_for_its_cluster(tmp_path):
    workers = Workers(tmp_path, subprocess_env(MEDIA_ROOT=str(tmp_path / "media")))
    try:
        workers.start("deepseek")
        deadline = time.monotonic() + 30
        # One per DEEPSEEK_CONCURRENCY worker; a beat lost to a concurrent write is back within 10 s.
        while len(health.cluster_workers()["deepseek"]) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(health.cluster_workers()["deepseek"]) == 5, workers.logs()
        ages = health.clusters_alive()
        assert ages["deepseek"] < health.WORKER_ALIVE_SECONDS and ages["default"] is None
    finally:
        workers.stop_all()
